package container

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// sendConsole passes the pty master to the --console-socket listener (the
// protocol runc and conmon share: one message carrying the fd with
// SCM_RIGHTS and its name as payload).
func sendConsole(path string, master *os.File) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("connect to console socket %s: %w", path, unwrap(err))
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("console socket %s: not a unix socket", path)
	}
	oob := unix.UnixRights(int(master.Fd()))
	if _, _, err := uc.WriteMsgUnix([]byte(master.Name()), oob, nil); err != nil {
		return fmt.Errorf("send console to %s: %w", path, err)
	}
	return nil
}

// relay wires a foreground `zviz run` to the container's pty: the caller's
// terminal goes raw, bytes are copied both ways, window size follows.
type relay struct {
	master *os.File
	saved  *term.State
	out    sync.WaitGroup
}

func startRelay(master *os.File) (*relay, error) {
	r := &relay{master: master}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		st, err := term.MakeRaw(int(os.Stdin.Fd()))
		if err != nil {
			return nil, fmt.Errorf("set terminal raw: %w", err)
		}
		r.saved = st
		r.resize()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	r.out.Add(1)
	go func() {
		defer r.out.Done()
		// EIO once the last slave descriptor is closed: the process is gone.
		_, _ = io.Copy(os.Stdout, master)
	}()
	return r, nil
}

// resize copies the caller's window size to the container's terminal.
func (r *relay) resize() {
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, ws)
}

// finish waits for the container's remaining output.
func (r *relay) finish() {
	r.out.Wait()
	r.master.Close()
}

func (r *relay) restore() {
	if r.saved != nil {
		_ = term.Restore(int(os.Stdin.Fd()), r.saved)
		r.saved = nil
	}
}
