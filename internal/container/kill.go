package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/cgroups"
	"github.com/zviz/zviz/internal/hooks"
)

// ParseSignal accepts "KILL", "SIGKILL", "sigkill" and "9".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: unknown signal name", s)
}

// Kill sends sig to the container's init, or with all to every process of
// the container.
func Kill(o *Options, id string, sig unix.Signal, all bool) error {
	h, r, err := o.store().loadLocked(id)
	if err != nil {
		return err
	}
	defer h.unlock()
	st := r.status(h.dir)
	if st != StatusCreated && st != StatusRunning && st != StatusCreating && st != StatusPaused {
		return fmt.Errorf("cannot kill container %q: container not running", id)
	}
	return signalContainer(r, sig, all)
}

func signalContainer(r *record, sig unix.Signal, all bool) error {
	pidfd, err := r.pidfd()
	if err != nil {
		return fmt.Errorf("cannot kill container %q: container not running", r.ID)
	}
	defer unix.Close(pidfd)
	if all {
		if err := signalAll(r, sig); err != nil {
			return err
		}
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("send %s to container %q (pid %d): %w", unix.SignalName(sig), r.ID, r.Pid, err)
	}
	return nil
}

// signalAll sends sig to every process of the container: SIGKILL through
// cgroup.kill when it has a cgroup (nothing escapes by forking, exec'd
// processes included), other signals to each pid the cgroup lists, or
// without a cgroup to each member of its pid namespace.
func signalAll(r *record, sig unix.Signal) error {
	dir := cgroupDir(r)
	if dir != "" && sig == unix.SIGKILL {
		if err := cgroups.Kill(dir); err != nil {
			return fmt.Errorf("kill container %q: %w", r.ID, err)
		}
		return nil
	}
	pids := members(r)
	if dir != "" {
		var err error
		if pids, err = cgroups.Procs(dir); err != nil {
			return fmt.Errorf("signal container %q: %w", r.ID, err)
		}
	}
	for _, pid := range pids {
		if pid != r.Pid {
			_ = unix.Kill(pid, sig)
		}
	}
	return nil
}

// members lists the pids in the container's pid namespace (other than the
// init), by comparing /proc/PID/ns/pid with the init's.
func members(r *record) []int {
	own, err := os.Readlink("/proc/" + strconv.Itoa(r.Pid) + "/ns/pid")
	if err != nil {
		return nil
	}
	if self, err := os.Readlink("/proc/self/ns/pid"); err == nil && self == own {
		// No pid namespace of its own (chdir-only isolation, or a config
		// without one): that namespace is ours, the host's; only the
		// init's descendants belong to the container.
		return descendants(r.Pid)
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == r.Pid {
			continue
		}
		if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && ns == own {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Delete removes a stopped (or created) container; force kills a running
// one first. An unknown id with force is not an error (runc).
func Delete(o *Options, id string, force bool) error {
	h, err := o.store().lookup(id)
	if errors.Is(err, ErrNotExist) && force {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.unlock()
	r, err := h.load()
	if errors.Is(err, ErrNotExist) {
		// A create that died before writing its state: nothing else exists.
		return h.remove()
	}
	if err != nil {
		return err
	}
	return destroy(o, h, r, force)
}

func destroy(o *Options, h *handle, r *record, force bool) error {
	switch st := r.status(h.dir); st {
	case StatusStopped:
	case StatusCreated, StatusCreating:
		if err := killAndWait(r); err != nil {
			return err
		}
	default:
		if !force {
			return fmt.Errorf("cannot delete container %q that is not stopped: %s (use --force)", r.ID, st)
		}
		if err := killAndWait(r); err != nil {
			return err
		}
	}
	state, _ := jsonState(r, h.dir)
	if err := removeCgroup(r.Cgroup); err != nil {
		if !force {
			return fmt.Errorf("delete container %q: %w", r.ID, err)
		}
		o.warnf("delete container %q: %v", r.ID, err)
	}
	if err := h.remove(); err != nil {
		return err
	}
	if r.Spec != nil && r.Spec.Hooks != nil {
		// runtime-spec: poststop failures are logged, delete succeeds.
		if err := hooks.Run("poststop", r.Spec.Hooks.Poststop, state); err != nil {
			o.warnf("%v", err)
		}
	}
	return nil
}

func killAndWait(r *record) error {
	pidfd, err := r.pidfd()
	if err != nil {
		return nil // already gone
	}
	defer unix.Close(pidfd)
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill container %q (pid %d): %w", r.ID, r.Pid, err)
	}
	return waitExit(pidfd, 10*time.Second)
}

func jsonState(r *record, dir string) ([]byte, error) {
	st := r.state(dir)
	if st.Status == StatusStopped {
		st.Pid = 0
	}
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(st)
	return bytes.TrimSpace(buf.Bytes()), err
}
