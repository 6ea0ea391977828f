package wire

import (
	"errors"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRoundTripWithFD(t *testing.T) {
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer c.Close()
	b := &Bootstrap{ID: "x", Rootfs: "/r", Spec: NewInitSpec(&specs.Spec{Hostname: "h"}), FifoFD: 9,
		Join: map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/run/netns/n"}}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := p.Send(KindBootstrap, b, int(w.Fd())); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var got Bootstrap
	fds, err := c.Expect(KindBootstrap, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "x" || got.Spec.Hostname != "h" || got.FifoFD != 9 || got.Join[specs.NetworkNamespace] != "/run/netns/n" {
		t.Fatalf("payload not preserved: %+v", got)
	}
	if len(fds) != 1 {
		t.Fatalf("want 1 fd, got %v", fds)
	}
	// The received descriptor is the pipe's write end: writing through it
	// reaches our read end.
	if _, err := unix.Write(fds[0], []byte("z")); err != nil {
		t.Fatalf("write through passed fd: %v", err)
	}
	flags, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received fd must be close-on-exec (flags %#x, %v)", flags, err)
	}
	unix.Close(fds[0])
	buf := make([]byte, 1)
	if n, _ := r.Read(buf); n != 1 || buf[0] != 'z' {
		t.Fatalf("read %q", buf[:n])
	}
}

func TestErrorCarriesRootCause(t *testing.T) {
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer c.Close()
	cause := `exec: "nope": executable file not found in $PATH`
	if err := c.Fail(errors.New(cause)); err != nil {
		t.Fatal(err)
	}
	_, err = p.Expect(KindReady, nil)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Message != cause {
		t.Fatalf("want PeerError %q, got %v", cause, err)
	}
}

func TestUnexpectedKind(t *testing.T) {
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer c.Close()
	if err := c.Send(KindMountsDone, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Expect(KindReady, nil); err == nil || !strings.Contains(err.Error(), `got "mounts-done", want "ready"`) {
		t.Fatalf("want protocol error, got %v", err)
	}
}

func TestPeerGone(t *testing.T) {
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c.Close()
	if _, _, err := p.Recv(); !errors.Is(err, ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
}

func TestLargeMessage(t *testing.T) {
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer c.Close()
	// A config with many env entries: above what one datagram can carry
	// (the send buffer), below the limit.
	s := &specs.Spec{Process: &specs.Process{}}
	for i := 0; i < 20000; i++ {
		s.Process.Env = append(s.Process.Env, "K"+strings.Repeat("v", 50))
	}
	if err := p.Send(KindBootstrap, &Bootstrap{Spec: NewInitSpec(s)}); err != nil {
		t.Fatal(err)
	}
	var got Bootstrap
	if _, err := c.Expect(KindBootstrap, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Process.Env) != 20000 {
		t.Fatalf("got %d env entries", len(got.Spec.Process.Env))
	}
	huge := make([]byte, maxMessage+1)
	if err := p.Send(KindBootstrap, string(huge)); err == nil {
		t.Fatal("a message above the limit must be refused")
	}
}
