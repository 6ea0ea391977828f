package container

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// State is the OCI state document (runtime-spec runtime.md) plus the fields
// runc adds and podman reads (rootfs, created, owner), and zviz's warnings
// about layers that could not be applied as asked.
type State struct {
	specs.State
	Rootfs   string    `json:"rootfs"`
	Created  time.Time `json:"created"`
	Owner    string    `json:"owner"`
	Profile  string    `json:"profile,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	// Cgroup says how the container's cgroup was made, and OOMKills how
	// many of its processes the OOM killer took.
	Cgroup   *CgroupState `json:"cgroup,omitempty"`
	OOMKills uint64       `json:"oomKills,omitempty"`
	// Isolation: full, or chdir-only (no mount namespace, Landlock as the
	// barrier; issue 6).
	Isolation string `json:"isolation,omitempty"`
}

// CgroupState is the cgroup part of State.
type CgroupState struct {
	Manager string `json:"manager"` // systemd, cgroupfs or none
	Unit    string `json:"unit,omitempty"`
	Path    string `json:"path,omitempty"`
	Reason  string `json:"reason,omitempty"` // why there is none
}

// startTime reads field 22 of /proc/PID/stat (start time in clock ticks).
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// comm (field 2) may contain spaces and parentheses: skip to the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if fields[0][0] == 'Z' || fields[0][0] == 'X' {
		return 0, os.ErrNotExist
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// alive says whether the record's init is still the same live process.
func (r *record) alive() bool {
	if r.Pid <= 0 {
		return false
	}
	st, err := startTime(r.Pid)
	return err == nil && st == r.Start
}

// status derives the container's status from its record and the process:
// a create still in progress is creating; a live init blocked on the exec
// fifo is created; a live process without the fifo is running; anything
// else is stopped.
func (r *record) status(dir string) specs.ContainerState {
	if !r.alive() {
		if !r.Ready && r.Pid == 0 {
			return StatusCreating
		}
		return StatusStopped
	}
	if !r.Ready {
		return StatusCreating
	}
	if frozen(r) {
		return StatusPaused
	}
	if _, err := os.Lstat(filepath.Join(dir, fifoName)); err == nil {
		return StatusCreated
	}
	return StatusRunning
}

func (r *record) state(dir string) *State {
	st := &State{
		State: specs.State{
			Version:     specs.Version,
			ID:          r.ID,
			Status:      r.status(dir),
			Bundle:      r.Bundle,
			Annotations: r.Annotations,
		},
		Rootfs:   r.Rootfs,
		Created:  r.Created,
		Owner:    r.Owner,
		Profile:  r.Profile,
		Warnings: r.Warnings, Isolation: r.Isolation,
	}
	if st.Status == StatusCreated || st.Status == StatusRunning || st.Status == StatusCreating || st.Status == StatusPaused {
		st.Pid = r.Pid
	}
	if c := r.Cgroup; c != nil {
		st.Cgroup = &CgroupState{Manager: c.Manager, Unit: c.Unit, Path: c.Dir, Reason: c.Reason}
		st.OOMKills = oomKills(r)
	}
	return st
}

// pidfd opens a descriptor on the record's init, verifying afterwards that
// the pid still names the same process (so a reused pid is never
// signalled).
func (r *record) pidfd() (int, error) {
	if r.Pid <= 0 {
		return -1, unix.ESRCH
	}
	fd, err := unix.PidfdOpen(r.Pid, 0)
	if err != nil {
		return -1, err
	}
	if !r.alive() {
		unix.Close(fd)
		return -1, unix.ESRCH
	}
	return fd, nil
}

// waitExit waits until the process behind pidfd has exited, or timeout.
func waitExit(pidfd int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("timed out waiting for the container's init to exit")
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for the container's init: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// StateOf returns the OCI state of container id.
func StateOf(o *Options, id string) (*State, error) {
	h, r, err := o.store().loadLocked(id)
	if err != nil {
		return nil, err
	}
	defer h.unlock()
	return r.state(h.dir), nil
}

// List returns the state of every container in the store.
func List(o *Options) ([]*State, error) {
	s := o.store()
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, id := range ids {
		st, err := StateOf(o, id)
		if errors.Is(err, ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
