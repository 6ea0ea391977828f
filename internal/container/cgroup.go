package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/internal/cgroups"
	"github.com/zviz/zviz/seccomp"
	"github.com/zviz/zviz/systemd"
)

// Cgroup managers, as recorded in state.
const (
	managerSystemd  = "systemd"
	managerCgroupfs = "cgroupfs"
	managerNone     = "none"
)

// systemdTimeout bounds each conversation with a systemd manager.
const systemdTimeout = 30 * time.Second

// freezeTimeout bounds pause and resume.
const freezeTimeout = 10 * time.Second

// cgroupRecord is how the container's cgroup was made, recorded at create:
// later commands (pause, update, kill --all, delete) act on it without
// being given --systemd-cgroup again.
type cgroupRecord struct {
	Manager string `json:"manager"`
	// Bus is "user" or "system": the manager that owns Unit.
	Bus  string `json:"bus,omitempty"`
	Unit string `json:"unit,omitempty"`
	// Dir is the container's cgroup on the host (limits are written here;
	// its processes live in Dir/container).
	Dir string `json:"dir,omitempty"`
	// Created is the topmost directory the cgroupfs manager made, which
	// delete removes.
	Created string `json:"created,omitempty"`
	// Reason says why there is no cgroup.
	Reason string `json:"reason,omitempty"`
	// Ceiling is the profile's limits: update may not go above them.
	Ceiling seccomp.Limits `json:"ceiling"`
	// Required is set when the profile requires limits.
	Required bool   `json:"required,omitempty"`
	profile  string // its name, for errors
}

// cgroupPlan is what create decides before the init is placed.
type cgroupPlan struct {
	rec *cgroupRecord
	// mount is the cgroup2 mount point; slice is systemd's.
	mount, slice string
	// fallback is the cgroupfs directory used when the systemd manager
	// cannot be reached, or "" (then there is no cgroup, and why says why).
	fallback, why string
}

// planCgroup decides which manager makes the container's cgroup:
// --systemd-cgroup asks systemd (the system manager for real root, the
// user manager otherwise); a cgroupsPath without it is a cgroupfs path; with
// neither, real root uses cgroupfs and everyone else tries the user manager
// first (found by asking the bus, not by PID 1's name). When no systemd
// manager answers on the bus, a delegated cgroupfs subtree is used, else
// none; both are announced.
func planCgroup(o *Options, s *specs.Spec, id string, p *seccomp.Profile) (*cgroupPlan, error) {
	path := s.Linux.CgroupsPath
	rec := &cgroupRecord{Ceiling: p.Limits, Required: slices.Contains(p.Required, "limits"), profile: p.Name}
	plan := &cgroupPlan{rec: rec}
	rootless := os.Geteuid() != 0 || !initialUserNS()
	useSystemd := o.SystemdCgroup || (path == "" && rootless)
	slice, prefix, name := "", "zviz", id
	if o.SystemdCgroup && path != "" {
		var err error
		if slice, prefix, name, err = systemd.ParseCgroupsPath(path); err != nil {
			return nil, fmt.Errorf("--systemd-cgroup: linux.%w", err)
		}
	}
	fsPath := path
	if useSystemd {
		fsPath = "" // the fallback's default place
	}
	mount, err := cgroups.Mount()
	if err == nil {
		var dir string
		if dir, err = cgroupfsDir(mount, fsPath, id); err != nil {
			return nil, err
		}
		if err = cgroups.Delegated(dir); err == nil {
			plan.fallback = dir
		}
	}
	if err != nil {
		plan.why = err.Error()
	}
	plan.mount = mount
	switch {
	case useSystemd && mount != "":
		rec.Manager, rec.Unit, rec.Bus, plan.slice = managerSystemd, systemd.UnitName(prefix, name), busFor(), slice
	case plan.fallback != "":
		rec.Manager, rec.Dir, rec.Created = managerCgroupfs, plan.fallback, cgroups.Missing(plan.fallback)
	default:
		rec.Manager, rec.Reason = managerNone, plan.why
	}
	return plan, nil
}

// cgroupfsDir is the directory the cgroupfs manager uses: cgroupsPath, or
// zviz-ID below the caller's own cgroup.
func cgroupfsDir(mount, path, id string) (string, error) {
	own, err := cgroups.Own()
	if err != nil {
		return "", err
	}
	if path == "" {
		path = "zviz-" + id
	}
	return cgroups.Resolve(mount, own, path)
}

// busFor is the systemd manager a --systemd-cgroup container asks: the
// system manager for real root, the user's own otherwise (rootless, or
// root inside rootless podman's user namespace).
func busFor() string {
	if os.Geteuid() == 0 && initialUserNS() {
		return "system"
	}
	return "user"
}

// placeCgroup puts the init (pid) into the container's cgroup and writes
// its limits. It returns the warnings to announce; undo gets the steps
// that remove what it made.
func placeCgroup(o *Options, plan *cgroupPlan, pid int, res *specs.LinuxResources, undo *cleanup) ([]string, error) {
	rec := plan.rec
	if rec.Manager == managerSystemd {
		err := startScope(plan, pid, res, undo)
		if err == nil {
			return limitCgroup(rec, pid, res)
		}
		if !errors.Is(err, systemd.ErrUnreachable) {
			return nil, err
		}
		// No systemd manager to ask: cgroupfs where delegated, else none.
		o.debugf("%v", err)
		rec.Unit, rec.Bus = "", ""
		reason := "no systemd manager answers on the bus"
		if o.SystemdCgroup {
			reason = "--systemd-cgroup: " + reason
		}
		if plan.fallback == "" {
			rec.Manager, rec.Reason = managerNone, reason+", and "+plan.why
		} else {
			rec.Manager, rec.Dir, rec.Reason = managerCgroupfs, plan.fallback, reason+": using cgroupfs"
			rec.Created = cgroups.Missing(rec.Dir)
		}
	}
	if rec.Manager == managerNone {
		return noCgroup(rec, res)
	}
	var warnings []string
	if o.SystemdCgroup && rec.Reason != "" {
		warnings = append(warnings, rec.Reason+" "+rec.Dir)
	}
	// rec.Created was recorded in state before this, so that a create
	// killed from here on leaves delete --force what to remove.
	created, err := cgroups.Create(rec.Dir)
	if err != nil {
		return nil, err
	}
	rec.Created = created
	undo.add(func() { removeCgroup(rec) })
	w, err := limitCgroup(rec, pid, res)
	return append(warnings, w...), err
}

// startScope asks systemd for the container's delegated scope.
func startScope(plan *cgroupPlan, pid int, res *specs.LinuxResources, undo *cleanup) error {
	rec := plan.rec
	conn, err := connectBus(rec.Bus)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), systemdTimeout)
	defer cancel()
	cg, err := conn.StartScope(ctx, rec.Unit, plan.slice, pid, unitProperties(res)...)
	if err != nil {
		return fmt.Errorf("--systemd-cgroup: %w", err)
	}
	rec.Dir = filepath.Join(plan.mount, cg)
	undo.add(func() { removeCgroup(rec) })
	return nil
}

// connections are this process's connections to the systemd managers,
// made once: `run` creates and deletes over one, and create starts
// connecting while the init starts (preconnect).
var connections = map[string]func() (*systemd.Conn, error){
	"user":   sync.OnceValues(systemd.ConnectUser),
	"system": sync.OnceValues(systemd.ConnectSystem),
}

// connectBus returns the connection to bus ("user" or "system"); callers
// do not close it.
func connectBus(bus string) (*systemd.Conn, error) {
	connect, ok := connections[bus]
	if !ok {
		return nil, fmt.Errorf("unknown systemd bus %q in state", bus)
	}
	return connect()
}

// preconnect starts connecting to the systemd manager create will
// probably ask (--systemd-cgroup, or a rootless caller), in the
// background: connecting is most of a scope's cost.
func preconnect(o *Options) {
	if o.SystemdCgroup || os.Geteuid() != 0 || !initialUserNS() {
		go connectBus(busFor())
	}
}

// limitCgroup moves the init into the leaf, enables controllers and
// writes the limits: what the cgroup cannot take is a warning, or a
// refusal when the profile requires limits.
func limitCgroup(rec *cgroupRecord, pid int, res *specs.LinuxResources) ([]string, error) {
	if _, err := cgroups.PrepareLeaf(rec.Dir, pid); err != nil {
		return nil, err
	}
	return writeLimits(rec.Dir, res, rec.Required, rec.profile)
}

// writeLimits writes res into the cgroup dir (create and update): what
// dir cannot take comes back as warnings, or refuses when the profile
// requires limits.
func writeLimits(dir string, res *specs.LinuxResources, required bool, profile string) ([]string, error) {
	settings, unsupported, err := cgroups.Settings(res)
	if err != nil {
		return nil, err
	}
	ok, missing, err := cgroups.Available(dir, settings)
	if err != nil {
		return nil, err
	}
	var warnings []string
	if len(missing) > 0 {
		w := notApplied(dir, settings, ok)
		if required {
			return nil, fmt.Errorf("profile %s requires limits: %s", profile, w)
		}
		warnings = append(warnings, w)
	}
	for _, u := range unsupported {
		warnings = append(warnings, u+": not applied (no cgroup v2 equivalent)")
	}
	if err := cgroups.Set(dir, ok); err != nil {
		return nil, err
	}
	return warnings, nil
}

// notApplied is the one-line announcement of the limits a cgroup cannot
// take.
func notApplied(dir string, all, ok []cgroups.Setting) string {
	var files, ctrls []string
	for _, s := range all {
		if slices.Contains(ok, s) {
			continue
		}
		files = append(files, s.File+"="+s.Value)
		c, _, _ := strings.Cut(s.File, ".")
		if !slices.Contains(ctrls, c) {
			ctrls = append(ctrls, c)
		}
	}
	return fmt.Sprintf("cgroup %s: limits not applied: %s (controllers %s not delegated to it)",
		dir, strings.Join(files, " "), strings.Join(ctrls, ", "))
}

// noCgroup announces that the container runs without a cgroup, or refuses
// when the profile requires limits.
func noCgroup(rec *cgroupRecord, res *specs.LinuxResources) ([]string, error) {
	settings, _, err := cgroups.Settings(res)
	if err != nil {
		return nil, err
	}
	if rec.Required {
		return nil, fmt.Errorf("profile %s requires limits, and there is no cgroup to apply them: %s", rec.profile, rec.Reason)
	}
	w := "no cgroup (" + rec.Reason + ")"
	if len(settings) > 0 {
		var files []string
		for _, s := range settings {
			files = append(files, s.File+"="+s.Value)
		}
		w += ": limits not applied: " + strings.Join(files, " ")
	}
	return []string{w}, nil
}

// removeCgroup kills what is left in the container's cgroup and removes
// it: systemd stops the scope, cgroupfs removes the directories create
// made. Errors are for delete to report.
func removeCgroup(rec *cgroupRecord) error {
	if rec == nil {
		return nil
	}
	switch rec.Manager {
	case managerSystemd:
		if rec.Dir != "" {
			_ = cgroups.Kill(rec.Dir)
		}
		conn, err := connectBus(rec.Bus)
		if err != nil {
			if rec.Dir != "" {
				// The scope's cgroup is ours to empty (Delegate=yes); systemd
				// collects the scope once it is empty.
				return cgroups.Remove(filepath.Join(rec.Dir, cgroups.LeafName))
			}
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), systemdTimeout)
		defer cancel()
		return conn.StopUnit(ctx, rec.Unit)
	case managerCgroupfs:
		if rec.Dir == "" {
			return nil
		}
		if err := cgroups.Kill(rec.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if rec.Created == "" {
			// It existed before: only our leaf goes.
			return cgroups.Remove(filepath.Join(rec.Dir, cgroups.LeafName))
		}
		if err := cgroups.Remove(rec.Dir); err != nil {
			return err
		}
		// The parents create made too, while nobody else uses them.
		for d := filepath.Dir(rec.Dir); strings.HasPrefix(d+"/", rec.Created+"/"); d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break
			}
		}
	}
	return nil
}

// unitProperties are the limits systemd should know of too (runc and crun
// set them on the scope as well as in the files): MemoryMax, TasksMax,
// CPUQuotaPerSecUSec.
func unitProperties(r *specs.LinuxResources) []systemd.Property {
	if r == nil {
		return nil
	}
	var props []systemd.Property
	if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
		props = append(props, systemd.Property{Name: "MemoryMax", Value: uint64(*r.Memory.Limit)})
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		props = append(props, systemd.Property{Name: "TasksMax", Value: uint64(*r.Pids.Limit)})
	}
	if r.CPU != nil && r.CPU.Quota != nil && *r.CPU.Quota > 0 {
		period := uint64(100000)
		if r.CPU.Period != nil && *r.CPU.Period > 0 {
			period = *r.CPU.Period
		}
		// systemd wants CPU time per second, rounded up to 10 ms.
		perSec := uint64(*r.CPU.Quota) * 1000000 / period
		perSec = (perSec + 9999) / 10000 * 10000
		props = append(props, systemd.Property{Name: "CPUQuotaPerSecUSec", Value: perSec})
	}
	return props
}

// withCeiling is linux.resources with the profile's limits as ceilings:
// a limit the config leaves out, or sets higher, is the profile's. notes
// say where the config was lowered.
func withCeiling(r *specs.LinuxResources, lim seccomp.Limits, profile string) (*specs.LinuxResources, []string) {
	out := &specs.LinuxResources{}
	if r != nil {
		*out = *r
	}
	var notes []string
	lower := func(field string, have *int64, ceiling int64) *int64 {
		if ceiling <= 0 {
			return have
		}
		if have != nil && *have > 0 && *have <= ceiling {
			return have
		}
		if have != nil && *have != 0 {
			notes = append(notes, fmt.Sprintf("linux.resources.%s %d is above profile %s's ceiling %d: the ceiling applies", field, *have, profile, ceiling))
		}
		return &ceiling
	}
	if lim.Memory > 0 {
		m := valueOf(out.Memory)
		m.Limit = lower("memory.limit", m.Limit, lim.Memory)
		out.Memory = &m
	}
	if lim.Pids > 0 {
		p := valueOf(out.Pids)
		p.Limit = lower("pids.limit", p.Limit, lim.Pids)
		out.Pids = &p
	}
	if lim.CPU > 0 {
		c := valueOf(out.CPU)
		period := uint64(100000)
		quota := int64(lim.CPU * float64(period))
		if c.Quota != nil && *c.Quota > 0 {
			have := period
			if c.Period != nil && *c.Period > 0 {
				have = *c.Period
			}
			if float64(*c.Quota)/float64(have) <= lim.CPU {
				quota, period = *c.Quota, have
			} else {
				notes = append(notes, fmt.Sprintf("linux.resources.cpu.quota %d per %d µs is above profile %s's ceiling of %g CPUs: the ceiling applies", *c.Quota, have, profile, lim.CPU))
			}
		}
		c.Quota, c.Period = &quota, &period
		out.CPU = &c
	}
	return out, notes
}
