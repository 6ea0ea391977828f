package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/hooks"
)

// Start releases a created container's init to exec the user's process and
// returns at once (after the poststart hooks).
func Start(o *Options, id string) error {
	h, r, err := o.store().loadLocked(id)
	if err != nil {
		return err
	}
	defer h.unlock()
	return start(o, h, r)
}

// start is Start on a locked container whose record the caller has.
func start(o *Options, h *handle, r *record) error {
	id := r.ID
	switch st := r.status(h.dir); st {
	case StatusCreated:
	case StatusStopped:
		return fmt.Errorf("cannot start container %q: it has stopped", id)
	case StatusRunning:
		return fmt.Errorf("cannot start container %q: it is already running", id)
	default:
		return fmt.Errorf("cannot start container %q in status %s", id, st)
	}
	hk := r.Spec.Hooks
	poststart := hk != nil && len(hk.Poststart) > 0
	if err := releaseInit(h.dir, r, poststart); err != nil {
		return err
	}
	if poststart {
		// The state of the start event: the process was executed (it may
		// already have exited by the time the hook reads it, as `true`
		// does; that is no reason to tell the hook it never ran).
		st := r.state(h.dir)
		st.Status, st.Pid = StatusRunning, r.Pid
		state, _ := json.Marshal(st)
		// runtime-spec: a failing poststart hook is logged, the container
		// keeps running.
		if err := hooks.Run("poststart", hk.Poststart, state); err != nil {
			o.warnf("%v", err)
		}
	}
	return nil
}

// releaseInit opens the exec fifo for reading, which unblocks the init's
// open for writing, and waits for its byte. The open is non-blocking and
// the wait also watches the init, so a dead init is an error, not a hang.
// With waitExec it then waits for the init to let go of the fifo, which it
// holds close-on-exec: the user's process has been executed (runtime-spec
// config.md: poststart hooks run after that, startContainer hooks before).
func releaseInit(dir string, r *record, waitExec bool) error {
	// The pidfd first: once the fifo is open the init may exec and the
	// process exit at once, and a zombie no longer counts as the init.
	pidfd, err := r.pidfd()
	if err != nil {
		return fmt.Errorf("container init %d is gone: %w", r.Pid, err)
	}
	defer unix.Close(pidfd)
	fifo := filepath.Join(dir, fifoName)
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo %s: %w", fifo, err)
	}
	defer unix.Close(fd)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("wait for container init: %w", err)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			break
		}
		if fds[1].Revents != 0 {
			return fmt.Errorf("container init %d exited before start", r.Pid)
		}
		// POLLHUP on the fifo without data: the writer has not opened yet.
	}
	var b [1]byte
	if n, err := unix.Read(fd, b[:]); err != nil || n != 1 {
		return fmt.Errorf("read exec fifo: %v (%d bytes)", err, n)
	}
	if err := os.Remove(fifo); err != nil {
		return fmt.Errorf("remove exec fifo: %w", unwrap(err))
	}
	if waitExec {
		return waitFifoClosed(fd, pidfd)
	}
	return nil
}

// waitFifoClosed waits until the fifo has no writer left or the init is
// gone.
func waitFifoClosed(fd, pidfd int) error {
	var b [16]byte
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("wait for container init to exec: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			if n, err := unix.Read(fd, b[:]); n == 0 && err == nil {
				return nil
			}
			continue
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			return nil
		}
	}
}
