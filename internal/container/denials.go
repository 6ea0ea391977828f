package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// listener, and hands the listener's descriptor over a socket to a process
// outside the container that answers each call with the errno the plain
// program gives and logs it (seccomp.Listen). That process is the
// foreground `zviz run` itself, or for create/start a per-container helper,
// zviz:[denials], that exits when no process of the container uses the
// filter any more. Never a daemon. If the logger dies the kernel answers
// ENOSYS to the calls it would have answered: still refused.
//
// The same process is the network broker when the profile has an egress
// allow-list (network.go, package broker): the program then sends the
// calls that carry destination addresses to the listener too, and the
// broker answers them. If it dies they fail with ENOSYS: closed.

const (
	denialsArg0 = "zviz:[denials]"
	envDenials  = "_ZVIZ_DENIALS"
)

// denialLog is the parent's side of the socket the init announces the
// listener over.
//
// The init cannot pass the listener with SCM_RIGHTS: once its filter is
// installed, sendmsg(2) may be one of the calls the filter sends to the
// very listener it would be passing (the network broker), and the init
// would wait on itself. So the init writes the listener's descriptor
// number (write(2) is a plain call), the listener's process takes it with
// pidfd_getfd(2) from a pidfd of the init opened while it was surely
// alive (our child, not yet waited for), and answers; only then does the
// init close its copy and exec.
type denialLog struct {
	plan  *listenerPlan // set once the policy is decided, if the program notifies
	ours  *os.File      // receives the announcement
	init  *os.File      // the init's end, passed as an ExtraFile
	pidfd *os.File      // the init's pidfd
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

func (d *denialLog) close() {
	d.ours.Close()
	if d.pidfd != nil {
		d.pidfd.Close()
	}
}

// serve takes the listeners and answers and logs until the container's
// processes are gone; it returns at once if the init died before sending.
func serve(sock, pidfd *os.File, plan *listenerPlan, w io.Writer) error {
	opts, err := plan.listenOptions(w)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	buf := make([]byte, 128)
	n, err := unix.Read(int(sock.Fd()), buf)
	if err != nil {
		return fmt.Errorf("denial log: receive listener: %w", err)
	}
	if n == 0 {
		return nil // the init went away before start
	}
	h, err := wire.ParseHandover(string(buf[:n]))
	if err != nil {
		return fmt.Errorf("denial log: %w", err)
	}
	lfd, answer := -1, "ok"
	if h.Listener >= 0 {
		if lfd, err = takeFD(pidfd, h.Listener, "seccomp listener"); err != nil {
			return err
		}
		defer unix.Close(lfd)
	}
	// The resolver is up, and the agent has its listener, before the init
	// may exec: the answer releases it.
	if h.DNS >= 0 {
		fd, err := takeFD(pidfd, h.DNS, "resolver socket")
		if err == nil {
			err = plan.serveDNS(fd, w)
		}
		if err != nil {
			return err
		}
	}
	if h.Agent >= 0 {
		fd, err := takeFD(pidfd, h.Agent, "agent's seccomp listener")
		if err == nil {
			if plan.Agent == nil {
				err = errors.New("a seccomp agent's listener without linux.seccomp.listenerPath")
			} else {
				err = plan.Agent.send(fd)
			}
			unix.Close(fd)
		}
		if err != nil {
			answer = err.Error()
		}
	}
	if _, err := unix.Write(int(sock.Fd()), []byte(answer)); err != nil {
		return fmt.Errorf("denial log: answer the init: %w", err)
	}
	if lfd < 0 || answer != "ok" {
		return nil
	}
	if plan.Table == nil {
		return errors.New("denial log: a seccomp listener without its answer table")
	}
	return seccomp.Listen(lfd, plan.Table, w, opts)
}

// runLogger serves the log in a goroutine of this process (foreground
// run); wait returns once the log is complete.
func (d *denialLog) runLogger(w io.Writer) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(d.ours, d.pidfd, d.plan, w); err != nil {
			fmt.Fprintf(w, "zviz: %v\n", err)
		}
	}()
	return func() {
		defer d.close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			fmt.Fprintln(w, "zviz: warning: denial log did not finish")
		}
	}
}

// spawnLogger starts zviz:[denials] with our end of the socket and the
// answer table, writing to our stderr, in a session of its own so that it
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
		Path: "/proc/self/exe", Args: []string{denialsArg0, id}, Env: []string{envDenials + "=3,4,5"},
		Stderr: os.Stderr, ExtraFiles: []*os.File{d.ours, table, d.pidfd},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("denial log: start logger: %w", err)
	}
	return cmd.Process.Release()
}

// IsDenialLogger tells main whether this process is a zviz:[denials].
func IsDenialLogger() bool {
	return len(os.Args) == 2 && os.Args[0] == denialsArg0 && os.Getenv(envDenials) == "3,4,5"
}

// DenialLoggerMain is zviz:[denials]: serve the log, then exit.
func DenialLoggerMain() int {
	sock, tableFile, pidfd := os.NewFile(3, "denials"), os.NewFile(4, "denials-table"), os.NewFile(5, "init-pidfd")
	b, err := io.ReadAll(io.NewSectionReader(tableFile, 0, 1<<24))
	tableFile.Close()
	var plan listenerPlan
	if err == nil {
		err = json.Unmarshal(b, &plan)
	}

	if err != nil {
		fmt.Fprintf(os.Stderr, "zviz: denial log: read table: %v\n", err)
		return 1
	}
	if err := serve(sock, pidfd, &plan, os.Stderr); err != nil && !errors.Is(err, unix.EBADF) {
		fmt.Fprintf(os.Stderr, "zviz: %v\n", err)
		return 1
	}
	return 0
}
