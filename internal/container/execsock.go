package container

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// denialsSock is where the denial logger takes the handovers of the
// processes `zviz exec` starts: a SOCK_SEQPACKET socket (one handover,
// one datagram) in the container's state directory, which is the
// caller's and mode 0700. It is bound and reached through
// /proc/self/fd/DIRFD/ on an O_PATH descriptor of the directory: the
// directory's path (podman's 64-hex ids under a long XDG_RUNTIME_DIR) may
// not fit the 108 bytes of sun_path (unix(7)).
const denialsSock = "denials.sock"

// viaDir is denials.sock's address through the directory descriptor dirfd.
func viaDir(dirfd int) *unix.SockaddrUnix {
	return &unix.SockaddrUnix{Name: "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + denialsSock}
}

// listen makes denials.sock in the state directory dir, listening, for
// the logger that create starts next.
func (d *denialLog) listen(dir string) error {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("denial log: open %s: %w", dir, err)
	}
	d.dir = os.NewFile(uintptr(dfd), dir)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("denial log: socket: %w", err)
	}
	d.execs = os.NewFile(uintptr(fd), denialsSock)
	if err := unix.Bind(fd, viaDir(dfd)); err != nil {
		return fmt.Errorf("denial log: bind %s in %s: %w", denialsSock, dir, err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		return fmt.Errorf("denial log: listen on %s: %w", denialsSock, err)
	}
	return nil
}

// acceptExecs takes the handovers that come in on sock (denials.sock in
// the directory dir), each in a goroutine of its own, until stop; stop
// closes and removes the socket, then waits until every listener taken
// is done.
func (s *server) acceptExecs(sock, dir *os.File) (stop func(), err error) {
	fl, err := net.FileListener(sock)
	if err != nil {
		return nil, fmt.Errorf("denial log: %s: %w", denialsSock, err)
	}
	ln, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, fmt.Errorf("denial log: %s is not a unix socket", denialsSock)
	}
	dirfd, err := unix.FcntlInt(dir.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("denial log: state directory: %w", err)
	}
	var taken sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		s.accept(ln, &taken)
	}()
	return func() {
		ln.Close()
		_ = unix.Unlinkat(dirfd, denialsSock, 0)
		unix.Close(dirfd)
		<-accepting // no taken.Add after this
		taken.Wait()
	}, nil
}

// accept serves each connection of the container's owner until ln is
// closed.
func (s *server) accept(ln *net.UnixListener, taken *sync.WaitGroup) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(s.w, "zviz: denial log: accept on %s: %v\n", denialsSock, err)
			}
			return
		}
		if err := ownersPeer(c); err != nil {
			fmt.Fprintf(s.w, "zviz: denial log: %v\n", err)
			c.Close()
			continue
		}
		taken.Add(1)
		go func() {
			defer taken.Done()
			if err := s.take(c, false); err != nil {
				fmt.Fprintf(s.w, "zviz: %v\n", err)
			}
		}()
	}
}

// ownersPeer checks who connected (SO_PEERCRED, taken at connect(2)):
// only our own uid, the container's owner, may hand a listener over to
// be answered with the container's table and broker. The directory's
// mode keeps others out already; this holds even if it did not.
func ownersPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	cerr := raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	switch {
	case cerr != nil:
		return cerr
	case err != nil:
		return fmt.Errorf("SO_PEERCRED on %s: %w", denialsSock, err)
	case int(cred.Uid) != os.Geteuid():
		return fmt.Errorf("refused a connection to %s from uid %d (pid %d): not the container's owner", denialsSock, cred.Uid, cred.Pid)
	}
	return nil
}

// dialDenials connects to the denial logger of container id, whose state
// directory is dir, for a process whose filters have listeners. The
// socket is blocking: the exec'd process reads the logger's answer with
// read(2).
func dialDenials(id, dir string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot exec in container %q: open %s: %w", id, dir, err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot exec in container %q: socket: %w", id, err)
	}
	if err := unix.Connect(fd, viaDir(dfd)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot exec in container %q: its seccomp filter has a listener, and the process that answers it (zviz:[denials], or its foreground zviz run) is gone: connect %s: %w", id, denialsSock, err)
	}
	return os.NewFile(uintptr(fd), denialsSock), nil
}
