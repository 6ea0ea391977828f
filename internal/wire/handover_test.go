package wire

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// handoverPair is a SOCK_SEQPACKET socketpair whose receiving end takes
// credentials, as the denial logger's sockets do.
func handoverPair(t *testing.T) (send, recv int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// receive reads one handover as the logger does.
func receive(t *testing.T, fd int) (Handover, int, error) {
	t.Helper()
	buf, oob := make([]byte, 512), make([]byte, HandoverOOB)
	n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	return DecodeHandover(buf[:n], oob[:oobn], flags)
}

// TestHandoverRoundTrip: the descriptors arrive in their slots whatever
// is absent, close-on-exec, with the sender's pid.
func TestHandoverRoundTrip(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, sent := range []Handover{{Listener: int(r.Fd()), Agent: -1, DNS: -1},
		{Listener: -1, Agent: int(w.Fd()), DNS: -1}, {Listener: int(r.Fd()), Agent: int(w.Fd()), DNS: int(r.Fd())}} {
		send, recv := handoverPair(t)
		text, oob := sent.Encode(os.Getpid(), os.Getuid(), os.Getgid())
		if err := unix.Sendmsg(send, text, oob, nil, 0); err != nil {
			t.Fatalf("send %s: %v", text, err)
		}
		got, pid, err := receive(t, recv)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if pid != os.Getpid() {
			t.Errorf("%s: pid %d, want %d", text, pid, os.Getpid())
		}
		for _, c := range []struct {
			name       string
			sent, took int
		}{{"listener", sent.Listener, got.Listener}, {"agent", sent.Agent, got.Agent}, {"dns", sent.DNS, got.DNS}} {
			if (c.sent < 0) != (c.took < 0) {
				t.Errorf("%s: %s sent as %d, received as %d", text, c.name, c.sent, c.took)
				continue
			}
			if c.took < 0 {
				continue
			}
			if fl, err := unix.FcntlInt(uintptr(c.took), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
				t.Errorf("%s: received %s is not close-on-exec (%v)", text, c.name, err)
			}
			var a, b unix.Stat_t
			if unix.Fstat(c.sent, &a) != nil || unix.Fstat(c.took, &b) != nil || a.Ino != b.Ino {
				t.Errorf("%s: received %s is another file", text, c.name)
			}
			unix.Close(c.took)
		}
	}
}

// TestHandoverMismatch: an announcement that does not name the
// descriptors that came is refused, and those descriptors are closed.
func TestHandoverMismatch(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, text := range []string{"listener agent", "", "agent agent", "socket"} {
		send, recv := handoverPair(t)
		fds := []int{int(r.Fd())}
		if text == "agent agent" {
			fds = append(fds, int(w.Fd()))
		}
		if err := unix.Sendmsg(send, []byte(text), unix.UnixRights(fds...), nil, 0); err != nil {
			t.Fatal(err)
		}
		buf, oob := make([]byte, 512), make([]byte, HandoverOOB)
		n, oobn, flags, _, err := unix.Recvmsg(recv, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		received, _, _ := controls(oob[:oobn]) // the numbers, to check they get closed
		h, _, err := DecodeHandover(buf[:n], oob[:oobn], flags)
		if err == nil || !strings.Contains(err.Error(), "handover") {
			t.Errorf("%q: %+v, %v: want an error", text, h, err)
		}
		if h != NoHandover {
			t.Errorf("%q: %+v returned with the error", text, h)
		}
		for _, fd := range received {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
				t.Errorf("%q: received descriptor %d still open after the error", text, fd)
			}
		}
	}
}
