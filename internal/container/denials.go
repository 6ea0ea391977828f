package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
	"github.com/zviz/zviz/seccomp"
)

// The denial log (--log-denials, --verbose) makes every refused syscall
// visible without changing what is refused: the init installs the
// log-denials variant of the profile's program, whose refusals wait for a
// listener, and hands the listener over a socket (wire.Handover) to a
// process outside the container that answers each call with the errno the
// plain program gives and logs it (seccomp.Listen). That process is the
// foreground `zviz run` itself, or for create/start a per-container helper,
// zviz:[denials], that exits when no process of the container uses the
// filter any more. Never a daemon. If the logger dies the kernel answers
// ENOSYS to the calls it would have answered: still refused.
//
// The same process is the network broker when the profile has an egress
// allow-list (network.go, package broker): the program then sends the
// calls that carry destination addresses to the listener too, and the
// broker answers them. If it dies they fail with ENOSYS: closed. It also
// sends the listener of the config's own filter to its seccomp agent
// (agent.go).
//
// A process `zviz exec` starts gets the same filters, with listeners of
// its own: it hands them over the same way, on a connection `zviz exec`
// made to the logger's socket in the container's state directory
// (denials.sock, execsock.go), and the logger answers them with the same
// table and the same broker (the addresses the resolver admitted are the
// container's). It stops taking them once the init is gone, and exits
// once every listener it took is done.

const (
	denialsArg0 = "zviz:[denials]"
	envDenials  = "_ZVIZ_DENIALS"
	// denialsFDs are zviz:[denials]'s descriptors, in denialLog's order:
	// the init's handover socket, the plan, the init's pidfd,
	// denials.sock and the state directory.
	denialsFDs = "3,4,5,6,7"
)

// denialLog is what create makes for the listener's process: the socket
// the init hands its listeners over on, the init's pidfd (opened while it
// was surely alive: our child, not yet waited for), and denials.sock.
type denialLog struct {
	plan  *listenerPlan // set once the policy is decided, if the program notifies
	ours  *os.File      // receives the init's handover
	init  *os.File      // the init's end, passed as an ExtraFile
	pidfd *os.File      // the init's: once it has exited, no exec can start
	execs *os.File      // denials.sock, listening (listen)
	dir   *os.File      // the state directory (O_PATH), which holds denials.sock
}

func newDenialLog() (*denialLog, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("denial log: socketpair: %w", err)
	}
	return &denialLog{ours: os.NewFile(uintptr(fds[0]), "denials"),
		init: os.NewFile(uintptr(fds[1]), "denials-init")}, nil
}

// watch opens the pidfd of the init (pid), which must be our unwaited
// child.
func (d *denialLog) watch(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("denial log: pidfd_open %d: %w", pid, err)
	}
	d.pidfd = os.NewFile(uintptr(fd), "init-pidfd")
	return nil
}

// close closes this process's copies; serve works on its own.
func (d *denialLog) close() {
	for _, f := range []*os.File{d.ours, d.pidfd, d.execs, d.dir} {
		if f != nil {
			f.Close()
		}
	}
}

// server is the listener's process at work for one container.
type server struct {
	plan *listenerPlan
	w    io.Writer
}

// serve takes the init's handover and those of exec'd processes, answers
// each, and serves their listeners, until the init is gone and every
// listener it took is done. If the init died before its handover, it
// only waits for the exec'd processes' listeners.
func serve(d *denialLog, w io.Writer) error {
	s := &server{plan: d.plan, w: w}
	if err := s.plan.buildBroker(w); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	stop, err := s.acceptExecs(d.execs, d.dir)
	if err != nil {
		return err
	}
	err = s.takeInit(d.ours)
	// The init's listener is done once no process uses its filter; an
	// init with only an agent's listener leaves nothing to wait on here
	// but the init itself.
	if werr := untilExit(d.pidfd); err == nil {
		err = werr
	}
	stop()
	return err
}

func (s *server) takeInit(f *os.File) error {
	fc, err := net.FileConn(f)
	// FileConn made a copy: once c is closed, the init must see the end
	// of the socket (and not wait for an answer that cannot come).
	f.Close()
	if err != nil {
		return fmt.Errorf("denial log: %w", err)
	}
	c, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return errors.New("denial log: the init's socket is not a unix socket")
	}
	return s.take(c, true)
}

// take receives one process's handover on c, answers it, and serves the
// listener it carries until no process uses that filter any more. Only
// the init hands over the resolver's socket. A process that went away
// before its handover is no error.
func (s *server) take(c *net.UnixConn, init bool) error {
	defer c.Close()
	h, pid, err := recvHandover(c)
	if err != nil || h == wire.NoHandover {
		return err
	}
	defer closeHandover(&h)
	answer := s.prepare(&h, pid, init)
	if _, err := c.Write([]byte(answer)); err != nil {
		return fmt.Errorf("denial log: answer process %d: %w", pid, err)
	}
	if answer != wire.HandoverOK || h.Listener < 0 {
		return nil
	}
	return s.listen(h.Listener)
}

// recvHandover reads one handover, with the sender's credentials; none
// (NoHandover) when the process closed its end first.
func recvHandover(c *net.UnixConn) (wire.Handover, int, error) {
	raw, err := c.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		return wire.NoHandover, 0, fmt.Errorf("denial log: SO_PASSCRED: %w", err)
	}
	buf, oob := make([]byte, 512), make([]byte, wire.HandoverOOB)
	// Go's ReadMsgUnix passes MSG_CMSG_CLOEXEC on Linux.
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if errors.Is(err, io.EOF) || err == nil && n == 0 && oobn == 0 {
		return wire.NoHandover, 0, nil
	}
	if err != nil {
		return wire.NoHandover, 0, fmt.Errorf("denial log: receive listener: %w", err)
	}
	h, pid, err := wire.DecodeHandover(buf[:n], oob[:oobn], flags)
	if err != nil {
		return h, 0, fmt.Errorf("denial log: %w", err)
	}
	return h, pid, nil
}

func closeHandover(h *wire.Handover) {
	for _, fd := range []*int{&h.Listener, &h.Agent, &h.DNS} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// prepare does what must be done before the process may exec (the
// resolver up, the agent holding its listener) and returns the answer.
func (s *server) prepare(h *wire.Handover, pid int, init bool) string {
	if h.Listener >= 0 && s.plan.Table == nil {
		return "denial log: a seccomp listener without its answer table"
	}
	if h.DNS >= 0 {
		fd := h.DNS
		h.DNS = -1 // serveDNS's now
		if !init {
			unix.Close(fd)
			return "denial log: a resolver socket from an exec'd process (the container's resolver serves it)"
		}
		if err := s.plan.serveDNS(fd, s.w); err != nil {
			return err.Error()
		}
	}
	if h.Agent >= 0 {
		switch {
		case s.plan.Agent == nil:
			return "a seccomp agent's listener without linux.seccomp.listenerPath"
		case pid <= 0:
			return "denial log: a seccomp agent's listener without its process's credentials"
		}
		if err := s.plan.Agent.send(h.Agent, pid); err != nil {
			return err.Error()
		}
	}
	return wire.HandoverOK
}

// listen answers the calls on one listener, in a broker session of its
// own (the broker's state is the container's).
func (s *server) listen(fd int) error {
	var opts seccomp.ListenOptions
	if b := s.plan.broker; b != nil {
		sess := b.Session()
		defer sess.Close()
		opts.Broker = sess.Handle
	}
	return seccomp.Listen(fd, s.plan.Table, s.w, opts)
}

// untilExit waits, without a timeout, until the process of pidfd has
// exited (nil: nothing to wait for).
func untilExit(pidfd *os.File) error {
	if pidfd == nil {
		return nil
	}
	pfd := []unix.PollFd{{Fd: int32(pidfd.Fd()), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(pfd, -1)
		if err == nil {
			return nil
		}
		if err != unix.EINTR {
			return fmt.Errorf("denial log: wait for the init: %w", err)
		}
	}
}

// runLogger serves the log in a goroutine of this process (foreground
// run); wait returns once the log is complete.
func (d *denialLog) runLogger(w io.Writer) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(d, w); err != nil {
			fmt.Fprintf(w, "zviz: %v\n", err)
		}
	}()
	return func() {
		select {
		case <-done:
			d.close()
		case <-time.After(5 * time.Second):
			// serve still uses d; the process is about to exit.
			fmt.Fprintln(w, "zviz: warning: denial log did not finish")
		}
	}
}

// spawnLogger starts zviz:[denials] with the denial log's descriptors and
// the plan, writing to our stderr, in a session of its own so that it
// outlives create. Its second argument is the container's id, for ps.
func (d *denialLog) spawnLogger(id string) error {
	b, err := json.Marshal(d.plan)
	if err != nil {
		return fmt.Errorf("denial log: encode table: %w", err)
	}
	tfd, err := unix.MemfdCreate("zviz-denials", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("denial log: memfd: %w", err)
	}
	table := os.NewFile(uintptr(tfd), "denials-table")
	defer table.Close()
	if _, err := table.Write(b); err != nil {
		return fmt.Errorf("denial log: write table: %w", err)
	}
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{denialsArg0, id}, Env: []string{envDenials + "=" + denialsFDs},
		Stderr: os.Stderr, ExtraFiles: []*os.File{d.ours, table, d.pidfd, d.execs, d.dir},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("denial log: start logger: %w", err)
	}
	return cmd.Process.Release()
}

// IsDenialLogger tells main whether this process is a zviz:[denials].
func IsDenialLogger() bool {
	return len(os.Args) == 2 && os.Args[0] == denialsArg0 && os.Getenv(envDenials) == denialsFDs
}

// DenialLoggerMain is zviz:[denials]: serve the log, then exit.
func DenialLoggerMain() int {
	d := &denialLog{ours: os.NewFile(3, "denials"), pidfd: os.NewFile(5, "init-pidfd"),
		execs: os.NewFile(6, denialsSock), dir: os.NewFile(7, "state-dir")}
	tableFile := os.NewFile(4, "denials-table")
	b, err := io.ReadAll(io.NewSectionReader(tableFile, 0, 1<<24))
	tableFile.Close()
	if err == nil {
		err = json.Unmarshal(b, &d.plan)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "zviz: denial log: read table: %v\n", err)
		return 1
	}
	if err := serve(d, os.Stderr); err != nil && !errors.Is(err, unix.EBADF) {
		fmt.Fprintf(os.Stderr, "zviz: %v\n", err)
		return 1
	}
	return 0
}
