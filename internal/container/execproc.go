package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/initproc"
	"github.com/zviz/zviz/internal/wire"
)

// startExec starts the exec process in the init's namespaces (package
// nsenter does the joining), puts it in the init's cgroup and drives the
// exec protocol (see package wire) until the process has been executed.
// denials, when the policy has listeners, is the connection to the
// container's denial logger they are handed over on.
func startExec(o *Options, r *record, proc *specs.Process, ep *execPolicy, e *ExecOptions, denials *os.File) (_ *execd, err error) {
	pidfd, err := r.pidfd()
	if err != nil {
		return nil, fmt.Errorf("cannot exec in container %q: container not running", r.ID)
	}
	defer unix.Close(pidfd)
	flags, err := nsFlags(r.Pid)
	if err != nil {
		return nil, err
	}
	parent, child, err := wire.Pair()
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	cmd, denialFD, err := execCommand(r, proc, pidfd, flags, child, e.PreserveFDs, denials)
	child.Close()
	if denials != nil {
		// The process's copy only: the logger sees the connection close
		// if the process dies before its handover.
		denials.Close()
	}
	if err != nil {
		return nil, err
	}
	x := &execd{cmd: cmd, pidfd: -1}
	defer func() {
		if err != nil {
			x.kill()
		}
	}()
	var pid wire.Pid
	if _, err := parent.Expect(wire.KindPid, &pid); err != nil {
		return nil, execError(err, cmd)
	}
	if x.pidfd, err = unix.PidfdOpen(pid.Pid, 0); err != nil {
		return nil, fmt.Errorf("open exec process %d: %w", pid.Pid, err)
	}
	x.pid = pid.Pid
	o.debugf("exec process %d in the namespaces (flags %#x)", x.pid, flags)
	if err := joinCgroup(r, x.pid); err != nil {
		return nil, err
	}
	msg := &wire.Exec{Process: proc, UserNS: flags&unix.CLONE_NEWUSER != 0 || !initialUserNS(),
		PreserveFDs: e.PreserveFDs, Policy: ep.Policy}
	msg.Policy.DenialFD = denialFD
	if err := parent.Send(wire.KindExec, msg); err != nil {
		return nil, err
	}
	if err := x.ready(parent, proc.Terminal, e.ConsoleSocket); err != nil {
		return nil, err
	}
	// The socket closes (close-on-exec) when the process is executed; an
	// Error instead is the launch's root cause.
	if _, _, err := parent.Recv(); !errors.Is(err, wire.ErrClosed) {
		if err == nil {
			err = errors.New("protocol: unexpected message after ready")
		}
		return nil, execError(err, cmd)
	}
	return x, nil
}

// ready waits for the process's Ready and takes its pty master: to the
// console socket, or kept for the foreground relay.
func (x *execd) ready(conn *wire.Conn, tty bool, socket string) error {
	fds, err := conn.Expect(wire.KindReady, nil)
	if err != nil {
		return execError(err, x.cmd)
	}
	if !tty {
		return nil
	}
	if len(fds) != 1 {
		return fmt.Errorf("protocol: ready without the console's master (%d fds)", len(fds))
	}
	master := os.NewFile(uintptr(fds[0]), "pty-master")
	if socket == "" {
		x.master = master
		return nil
	}
	defer master.Close()
	return sendConsole(socket, master)
}

// execCommand starts the exec process: this binary (or its sealed copy),
// with the preserved descriptors, then the init's pidfd, the sync socket,
// and the connection to the denial logger when there is one, whose
// number in the process it returns (else 0).
func execCommand(r *record, proc *specs.Process, pidfd, flags int, child *wire.Conn, preserve int, denials *os.File) (*exec.Cmd, int, error) {
	path, copied, err := initExecutable(r.Spec, &nsPlan{newUser: flags&unix.CLONE_NEWUSER != 0})
	if err != nil {
		return nil, 0, err
	}
	if copied != nil {
		defer copied.Close()
	}
	cmd := &exec.Cmd{Args: []string{execArg0}, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	for i := 0; i < preserve; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd"))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(pidfd), "init-pidfd"), child.File())
	if copied != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, copied)
		path = memfdPath(3 + len(cmd.ExtraFiles) - 1)
	}
	denialFD := 0
	if denials != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, denials)
		denialFD = 3 + len(cmd.ExtraFiles) - 1
	}
	cmd.Path = path
	cmd.Env = append([]string{fmt.Sprintf("%s=%d,%d,%d", initproc.EnvNsenter, 3+preserve, flags, 4+preserve)}, oomEnv(proc)...)
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start exec process: %w", err)
	}
	return cmd, denialFD, nil
}

// execError is the root cause of a failed exec: the process's own message
// when it sent one, else how it died.
func execError(err error, cmd *exec.Cmd) error {
	var pe *wire.PeerError
	if errors.As(err, &pe) {
		return errors.New(pe.Message)
	}
	if errors.Is(err, wire.ErrClosed) {
		if werr := cmd.Wait(); werr != nil {
			return fmt.Errorf("exec process died during setup: %v", werr)
		}
		return errors.New("exec process exited during setup")
	}
	return err
}

// kill ends a process whose setup failed, and returns once it is gone: a
// failed exec leaves nothing running in the container.
func (x *execd) kill() {
	if x.pidfd >= 0 {
		_ = unix.PidfdSendSignal(x.pidfd, unix.SIGKILL, nil, 0)
		// A pidfd is readable once its process has exited (pidfd_open(2));
		// in the foreground it is our child (we are its subreaper): reap it.
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(x.pidfd), Events: unix.POLLIN}}, 5000)
		_ = unix.Waitid(unix.P_PIDFD, x.pidfd, nil, unix.WEXITED|unix.WNOHANG, nil)
		unix.Close(x.pidfd)
		x.pidfd = -1
	}
	_ = x.cmd.Process.Kill()
	_ = x.cmd.Wait()
	if x.master != nil {
		x.master.Close()
	}
}

// waitExec relays the terminal and forwards signals until the process
// exits, and returns its status.
func waitExec(o *Options, x *execd, sigs chan os.Signal) int {
	var rl *relay
	if x.master != nil {
		var err error
		if rl, err = startRelay(x.master); err != nil {
			o.warnf("%v", err)
		} else {
			defer rl.restore()
		}
	}
	done := make(chan int, 1)
	go func() { done <- x.wait() }()
	code := forwardSignals(sigs, done, rl, func(sig syscall.Signal) { _ = unix.PidfdSendSignal(x.pidfd, sig, nil, 0) })
	if rl != nil {
		rl.finish()
	}
	return code
}

// wait reaps the intermediate (when there was a fork, the process is
// reparented to us once it has exited), then the process.
func (x *execd) wait() int {
	if x.cmd.Process.Pid == x.pid {
		_ = x.cmd.Wait()
		return statusCode(x.cmd.ProcessState)
	}
	_ = x.cmd.Wait()
	// Our child now; its pid cannot be reused before we reap it.
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(x.pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "zviz: wait for exec process %d: %v\n", x.pid, err)
			return 1
		}
		return waitCode(ws)
	}
}
