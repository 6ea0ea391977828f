package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PTYReader collects everything read from a pty master until EOF/EIO.
type PTYReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	// Timeout bounds WaitFor (10 s unless set).
	Timeout time.Duration
}

// ReadPTY starts reading f in the background.
func ReadPTY(f *os.File) *PTYReader {
	p := &PTYReader{done: make(chan struct{}), Timeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

// Done is closed when the reader has seen EOF or an error (the terminal's
// last process is gone).
func (p *PTYReader) Done() <-chan struct{} { return p.done }

// String is what has been read so far.
func (p *PTYReader) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// WaitFor waits up to Timeout for s to appear in the output after offset
// from, and returns the offset after it; it fails t otherwise.
func (p *PTYReader) WaitFor(t testing.TB, s string, from int) int {
	t.Helper()
	deadline := time.Now().Add(p.Timeout)
	for time.Now().Before(deadline) {
		out := p.String()
		if from <= len(out) {
			if i := strings.Index(out[from:], s); i >= 0 {
				return from + i + len(s)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("terminal output %q: no %q", p.String(), s)
	return 0
}

// OpenPTY opens a pty pair on the host's devpts, closed when the test ends.
func OpenPTY(t testing.TB) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		t.Fatal(errno)
	}
	s := os.NewFile(uintptr(sfd), "pty-slave")
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// StartOnPTY starts c in a new session whose controlling terminal is
// slave (stdio too), the way a user's shell runs it, and closes our copy
// of slave; it returns the reader of master and c's Wait result.
func StartOnPTY(t testing.TB, c *exec.Cmd, master, slave *os.File) (*PTYReader, <-chan error) {
	t.Helper()
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	if c.SysProcAttr == nil {
		c.SysProcAttr = &syscall.SysProcAttr{}
	}
	c.SysProcAttr.Setsid, c.SysProcAttr.Setctty, c.SysProcAttr.Ctty = true, true, 0
	out := ReadPTY(master)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- c.Wait() }()
	slave.Close()
	return out, waitc
}
