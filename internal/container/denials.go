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

const (
	denialsArg0 = "zviz:[denials]"
	envDenials  = "_ZVIZ_DENIALS"
)

// denialLog is the parent's side of the socket the init sends the
// listener over.
type denialLog struct {
	table *seccomp.DenialTable // set once the policy is decided
	ours  *os.File             // receives the listener
	init  *os.File             // the init's end, passed as an ExtraFile
}

func newDenialLog() (*denialLog, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("denial log: socketpair: %w", err)
	}
	return &denialLog{ours: os.NewFile(uintptr(fds[0]), "denials"),
		init: os.NewFile(uintptr(fds[1]), "denials-init")}, nil
}

// serve receives the listener and answers and logs until the container's
// processes are gone; it returns at once if the init died before sending.
func serve(sock *os.File, table *seccomp.DenialTable, w io.Writer) error {
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("denial log: receive listener: %w", err)
	}
	if oobn == 0 {
		return nil // the init went away before start
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("denial log: bad control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("denial log: bad rights: %v", err)
	}
	defer unix.Close(fds[0])
	return seccomp.Listen(fds[0], table, w, seccomp.ListenOptions{})
}

// runLogger serves the log in a goroutine of this process (foreground
// run); wait returns once the log is complete.
func (d *denialLog) runLogger(w io.Writer) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(d.ours, d.table, w); err != nil {
			fmt.Fprintf(w, "zviz: %v\n", err)
		}
	}()
	return func() {
		defer d.ours.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			fmt.Fprintln(w, "zviz: warning: denial log did not finish")
		}
	}
}

// spawnLogger starts zviz:[denials] with our end of the socket and the
// answer table, writing to our stderr, in a session of its own so that it
// outlives create.
func (d *denialLog) spawnLogger() error {
	b, err := json.Marshal(d.table)
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
		Path: "/proc/self/exe", Args: []string{denialsArg0}, Env: []string{envDenials + "=3,4"},
		Stderr: os.Stderr, ExtraFiles: []*os.File{d.ours, table},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("denial log: start logger: %w", err)
	}
	return cmd.Process.Release()
}

// IsDenialLogger tells main whether this process is a zviz:[denials].
func IsDenialLogger() bool {
	return len(os.Args) == 1 && os.Args[0] == denialsArg0 && os.Getenv(envDenials) == "3,4"
}

// DenialLoggerMain is zviz:[denials]: serve the log, then exit.
func DenialLoggerMain() int {
	sock, tableFile := os.NewFile(3, "denials"), os.NewFile(4, "denials-table")
	b, err := io.ReadAll(io.NewSectionReader(tableFile, 0, 1<<24))
	tableFile.Close()
	var table seccomp.DenialTable
	if err == nil {
		err = json.Unmarshal(b, &table)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "zviz: denial log: read table: %v\n", err)
		return 1
	}
	if err := serve(sock, &table, os.Stderr); err != nil && !errors.Is(err, unix.EBADF) {
		fmt.Fprintf(os.Stderr, "zviz: %v\n", err)
		return 1
	}
	return 0
}
