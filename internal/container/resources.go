package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/internal/cgroups"
	"golang.org/x/sys/unix"
)

// StatusPaused is a running container whose cgroup is frozen.
const StatusPaused = specs.ContainerState("paused")

// cgroupDir is the container's cgroup directory, or "" without one.
func cgroupDir(r *record) string {
	if r.Cgroup == nil || r.Cgroup.Manager == managerNone {
		return ""
	}
	return r.Cgroup.Dir
}

// frozen says whether the container's cgroup is frozen (cgroup.events).
func frozen(r *record) bool {
	dir := cgroupDir(r)
	if dir == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze"))
	return err == nil && len(b) > 0 && b[0] == '1'
}

// oomKills is the number of processes of the container the OOM killer
// took (memory.events oom_kill), 0 without a memory controller.
func oomKills(r *record) uint64 {
	dir := cgroupDir(r)
	if dir == "" {
		return 0
	}
	n, err := cgroups.OOMKills(dir)
	if err != nil {
		return 0
	}
	return n
}

// withCgroup loads container id and runs f on its record and cgroup
// directory, refusing a container without a cgroup or not running.
func withCgroup(o *Options, id, verb string, f func(h *handle, r *record, dir string) error) error {
	h, r, err := o.store().loadLocked(id)
	if err != nil {
		return err
	}
	defer h.unlock()
	st := r.status(h.dir)
	if st == StatusStopped {
		return fmt.Errorf("cannot %s container %q: container not running", verb, id)
	}
	dir := cgroupDir(r)
	if dir == "" {
		reason := "no cgroup was made at create"
		if r.Cgroup != nil && r.Cgroup.Reason != "" {
			reason = r.Cgroup.Reason
		}
		return fmt.Errorf("cannot %s container %q: it has no cgroup: %s", verb, id, reason)
	}
	return f(h, r, dir)
}

// Pause freezes every process of the container (cgroup.freeze).
func Pause(o *Options, id string) error {
	return withCgroup(o, id, "pause", func(h *handle, r *record, dir string) error {
		if st := r.status(h.dir); st != StatusRunning && st != StatusCreated {
			return fmt.Errorf("cannot pause container %q: it is %s", id, st)
		}
		return cgroups.Freeze(dir, freezeTimeout)
	})
}

// Resume thaws a paused container.
func Resume(o *Options, id string) error {
	return withCgroup(o, id, "resume", func(h *handle, r *record, dir string) error {
		if st := r.status(h.dir); st != StatusPaused {
			return fmt.Errorf("cannot resume container %q: it is %s, not paused", id, st)
		}
		return cgroups.Thaw(dir, freezeTimeout)
	})
}

// Pids lists the host pids of the container's processes: from its cgroup,
// or without one from its pid namespace.
func Pids(o *Options, id string) ([]int, error) {
	h, r, err := o.store().loadLocked(id)
	if err != nil {
		return nil, err
	}
	defer h.unlock()
	if r.status(h.dir) == StatusStopped {
		return nil, nil
	}
	if dir := cgroupDir(r); dir != "" {
		return cgroups.Procs(dir)
	}
	return append([]int{r.Pid}, members(r)...), nil
}

// Update applies new limits to a running container: res replaces the
// config's linux.resources (fields left out keep their value, as runc
// does), the profile's ceilings still apply, and the result is recorded.
func Update(o *Options, id string, res *specs.LinuxResources) error {
	return withCgroup(o, id, "update", func(h *handle, r *record, dir string) error {
		merged := mergeResources(r.Spec.Linux.Resources, res)
		eff, notes := withCeiling(merged, r.Cgroup.Ceiling, r.Profile)
		for _, n := range notes {
			o.warnf("%s", n)
		}
		warnings, err := writeLimits(dir, eff, r.Cgroup.Required, r.Profile)
		if err != nil {
			return fmt.Errorf("update container %q: %w", id, err)
		}
		for _, w := range warnings {
			o.warnf("%s", w)
		}
		if r.Cgroup.Manager == managerSystemd {
			if err := setUnitProperties(r.Cgroup, eff); err != nil {
				o.warnf("update container %q: %v", id, err)
			}
		}
		r.Spec.Linux.Resources = eff
		return h.save(r)
	})
}

// setUnitProperties tells systemd the scope's new limits, so that its
// own view (systemctl status, a daemon-reload) matches the files.
func setUnitProperties(rec *cgroupRecord, res *specs.LinuxResources) error {
	props := unitProperties(res)
	if len(props) == 0 {
		return nil
	}
	conn, err := connectBus(rec.Bus)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), systemdTimeout)
	defer cancel()
	return conn.SetProperties(ctx, rec.Unit, props...)
}

// mergeResources is have with the fields upd sets replaced.
func mergeResources(have, upd *specs.LinuxResources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if have != nil {
		*out = *have
	}
	if upd == nil {
		return out
	}
	if upd.Memory != nil {
		m := valueOf(out.Memory)
		setIf(&m.Limit, upd.Memory.Limit)
		setIf(&m.Reservation, upd.Memory.Reservation)
		setIf(&m.Swap, upd.Memory.Swap)
		out.Memory = &m
	}
	if upd.Pids != nil {
		out.Pids = upd.Pids
	}
	if upd.CPU != nil {
		c := valueOf(out.CPU)
		setIf(&c.Shares, upd.CPU.Shares)
		setIf(&c.Quota, upd.CPU.Quota)
		setIf(&c.Period, upd.CPU.Period)
		if upd.CPU.Cpus != "" {
			c.Cpus = upd.CPU.Cpus
		}
		if upd.CPU.Mems != "" {
			c.Mems = upd.CPU.Mems
		}
		out.CPU = &c
	}
	if upd.BlockIO != nil {
		out.BlockIO = upd.BlockIO
	}
	if len(upd.HugepageLimits) > 0 {
		out.HugepageLimits = upd.HugepageLimits
	}
	if len(upd.Unified) > 0 {
		out.Unified = upd.Unified
	}
	return out
}

func setIf[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

// watchOOM follows the container's memory.events while run waits for
// it: the kernel signals every change to that file (cgroup-v2.rst), and a
// systemd scope's cgroup is removed as soon as its last process exits, so
// reading it only afterwards could miss the kill. The returned function
// stops watching and says how many processes the OOM killer took.
func watchOOM(r *record) func() uint64 {
	dir := cgroupDir(r)
	if dir == "" {
		return func() uint64 { return 0 }
	}
	file := filepath.Join(dir, "memory.events")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return func() uint64 { return oomKills(r) }
	}
	if _, err := unix.InotifyAddWatch(fd, file, unix.IN_MODIFY); err != nil {
		unix.Close(fd) // no memory controller: nothing to watch
		return func() uint64 { return 0 }
	}
	var seen atomic.Uint64
	update := func() {
		if n, err := cgroups.OOMKills(dir); err == nil && n > seen.Load() {
			seen.Store(n)
		}
	}
	update()
	f := os.NewFile(uintptr(fd), "inotify")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			update()
		}
	}()
	return func() uint64 {
		update()
		f.Close()
		return seen.Load()
	}
}

// oomNote is run's line when the OOM killer ended the container.
func oomNote(r *record, n, before uint64) error {
	if n <= before {
		return nil
	}
	limit := "its memory limit"
	if m := r.Spec.Linux.Resources; m != nil && m.Memory != nil && m.Memory.Limit != nil {
		limit = "memory.max " + strconv.FormatInt(*m.Memory.Limit, 10)
	}
	return errors.New("container " + r.ID + ": the OOM killer killed " + strconv.FormatUint(n-before, 10) + " process(es) (" + limit + ")")
}

// valueOf is *p, or the zero value when p is nil: a copy to edit.
func valueOf[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
