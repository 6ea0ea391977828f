package systemd

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAuthSendsNoIdentity holds the wire to "AUTH EXTERNAL" without an
// identity and an empty DATA answer: the bus then authenticates the socket's
// credentials, which is what makes root in a user namespace work (claiming
// the namespace's uid 0 is rejected; TestUserManagerFromUserNamespace shows
// both against a real bus).
func TestAuthSendsNoIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bus")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lines := make(chan []string, 1)
	go func() {
		var got []string
		defer func() { lines <- got }()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		if b, err := r.ReadByte(); err != nil || b != 0 {
			got = append(got, "no leading NUL byte")
			return
		}
		// The bus's side of the conversation, as dbus-daemon answers a
		// client that sends no identity (then refuses, to end it here).
		for _, answer := range []string{"REJECTED EXTERNAL", "DATA", "REJECTED EXTERNAL"} {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got = append(got, strings.TrimSuffix(line, "\r\n"))
			c.Write([]byte(answer + "\r\n"))
		}
	}()
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+path)
	_, err = ConnectUser()
	if err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connect to the user manager at unix:path="+path) {
		t.Errorf("ConnectUser to a bus that refuses: error %v, want an authentication error naming the address", err)
	}
	want := []string{"AUTH", "AUTH EXTERNAL", "DATA"}
	if got := <-lines; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the client sent %q, want %q", got, want)
	}
}

func TestConnectUnreachable(t *testing.T) {
	dir := t.TempDir()
	// A socket file nobody listens on: bound, never listen(2)ed.
	stale := filepath.Join(dir, "stale")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, session, runtime, system string
		connect                        func() (*Conn, error)
		want                           string
		errno                          error
	}{
		{"no socket", "unix:path=" + dir + "/nobus", "", "", ConnectUser, dir + "/nobus", syscall.ENOENT},
		{"nobody listening", "unix:path=" + stale, "", "", ConnectUser, stale, syscall.ECONNREFUSED},
		{"XDG_RUNTIME_DIR/bus", "", dir, "", ConnectUser, "unix:path=" + dir + "/bus", syscall.ENOENT},
		{"no address", "", "", "", ConnectUser, "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set", nil},
		{"system bus", "", "", "unix:path=" + dir + "/nosys", ConnectSystem, "system manager at unix:path=" + dir + "/nosys", syscall.ENOENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", tt.session)
			t.Setenv("XDG_RUNTIME_DIR", tt.runtime)
			t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", tt.system)
			c, err := tt.connect()
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrUnreachable and %q in it", err, tt.want)
			}
			if tt.errno != nil && !errors.Is(err, tt.errno) {
				t.Errorf("error %q: want the errno %v reachable", err, tt.errno)
			}
			if tt.errno == syscall.ENOENT && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q: want errors.Is(err, fs.ErrNotExist)", err)
			}
		})
	}
}

// TestNoManagerOnTheBus: a real bus daemon with no systemd on it (a user
// bus without a user manager) connects, and StartScope then says the
// manager is unreachable (ErrUnreachable), having queued nothing.
func TestNoManagerOnTheBus(t *testing.T) {
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("requires dbus-daemon: not on PATH (apt-get install dbus-daemon)")
	}
	path := filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command(daemon, "--session", "--nofork", "--nopidfile", "--address=unix:path="+path, "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil { // listening
		t.Fatalf("dbus-daemon: %v", err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+path)
	start := time.Now()
	c, err := ConnectUser()
	if err != nil {
		t.Fatalf("ConnectUser to a plain dbus-daemon: %v", err)
	}
	defer c.Close()
	t.Logf("ConnectUser to a plain dbus-daemon: %d µs", time.Since(start).Microseconds())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.StartScope(ctx, "zviz-test-nomanager.scope", "", os.Getpid())
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, new(notQueued)) {
		t.Errorf("StartScope with no systemd on the bus: %v, want ErrUnreachable", err)
	}
	t.Log(err)
	if err := c.StopUnit(ctx, "zviz-test-nomanager.scope"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("StopUnit with no systemd on the bus: %v, want ErrUnreachable", err)
	}
}
