package hostcheck

import (
	"fmt"
	"strings"

	"github.com/zviz/zviz/seccomp"
	"github.com/zviz/zviz/userns"
)

// checkLines grades what the host has, one line per item.
func (h *Host) checkLines(f *Facts) []Line {
	var ls []Line
	add := func(item string, s Status, format string, a ...any) {
		ls = append(ls, Line{Item: item, Status: s, Detail: fmt.Sprintf(format, a...)})
	}
	h.usernsLines(f, add)
	h.idLines(f, add)
	landlockLine(f, add)
	seccompLines(f, add)
	cgroupLines(f, add)
	busLine(f, add)
	return ls
}

type addFunc func(item string, s Status, format string, a ...any)

func sysctlValue(v *int64) string {
	if v == nil {
		return "absent"
	}
	return fmt.Sprint(*v)
}

func (h *Host) usernsLines(f *Facts, add addFunc) {
	switch {
	case f.MaxUserNamespaces != nil && *f.MaxUserNamespaces == 0:
		add("userns", Fail, "user.max_user_namespaces=0: no user namespaces at all")
	case f.UsernsProbe.OK:
		add("userns", OK, "clone(CLONE_NEWUSER|CLONE_NEWNS) and a tmpfs mount inside work (max_user_namespaces=%s)",
			sysctlValue(f.MaxUserNamespaces))
	default:
		add("userns", Fail, "new user+mount namespace: %s", f.UsernsProbe.describe())
	}
	if v := f.UnprivilegedUsernsClone; v != nil && *v == 0 {
		add("userns sysctl", Warn, "kernel.unprivileged_userns_clone=0: only privileged callers get user namespaces")
	}
	if f.MountnsProbe != nil {
		s := OK
		if !f.MountnsProbe.OK {
			s = Fail
		}
		add("mountns", s, "as euid 0, clone(CLONE_NEWNS) and a tmpfs mount: %s", f.MountnsProbe.describe())
	}
	ap := "disabled or not built in"
	if f.AppArmorEnabled {
		ap = "enabled"
	}
	switch v := f.AppArmorRestrictUserns; {
	case v == nil:
		add("apparmor", OK, "%s; kernel.apparmor_restrict_unprivileged_userns absent: no user-namespace restriction", ap)
	case *v != 0 && f.AppArmorEnabled:
		add("apparmor", Warn, "%s; kernel.apparmor_restrict_unprivileged_userns=%d: an unprivileged user namespace has no capabilities "+
			"unless an AppArmor profile grants userns to %s (zviz apparmor install)", ap, *v, h.exe())
	default:
		add("apparmor", OK, "%s; kernel.apparmor_restrict_unprivileged_userns=%d", ap, *v)
	}
}

func (h *Host) exe() string {
	if h.Exe == "" {
		return "zviz"
	}
	return h.Exe
}

func (h *Host) idLines(f *Facts, add addFunc) {
	who := h.User
	if who == "" {
		who = fmt.Sprintf("uid %d", h.UID)
	}
	for _, x := range []struct {
		item, file string
		rs         []uint32
	}{{"subuid", h.SubUID, counts(f.SubUID)}, {"subgid", h.SubGID, counts(f.SubGID)}} {
		switch {
		case f.SubIDErr != "":
			add(x.item, Warn, "%s", f.SubIDErr)
		case len(x.rs) > 0:
			add(x.item, OK, "%s has %d ids in %s", who, sum(x.rs), x.file)
		case h.EUID == 0:
			add(x.item, OK, "%s has no range in %s (not needed: euid 0 writes maps directly)", who, x.file)
		default:
			add(x.item, Warn, "%s has no range in %s: containers see the caller's id alone", who, x.file)
		}
	}
	for _, x := range []struct {
		name string
		h    Helper
	}{{"newuidmap", f.NewUIDMap}, {"newgidmap", f.NewGIDMap}} {
		switch {
		case x.h.usable():
			add(x.name, OK, "%s", x.h.describe())
		case h.EUID == 0:
			add(x.name, OK, "%s (not needed: euid 0 writes maps directly)", x.h.describe())
		default:
			add(x.name, Warn, "%s: subordinate ranges cannot be mapped", x.h.describe())
		}
	}
}

func counts(rs []userns.Range) []uint32 {
	var c []uint32
	for _, r := range rs {
		c = append(c, r.Count)
	}
	return c
}

func sum(xs []uint32) uint64 {
	var n uint64
	for _, x := range xs {
		n += uint64(x)
	}
	return n
}

// landlockLoss says what each ABI adds to what zviz asks for (landlock.rst,
// "Previous limitations"): below that ABI the protection is lost.
var landlockLoss = []struct {
	abi  int
	lost string
}{
	{1, "no filesystem barrier at all"},
	{2, "cross-directory rename/link (refer) refused with EXDEV even where writable"},
	{3, "truncate(2) not restricted"},
	{4, "TCP bind/connect port rules"},
	{5, "ioctl on device files not restricted"},
	{6, "abstract unix socket and signal scoping"},
}

// landlockMissing lists the protections zviz asks for that ABI abi lacks.
func landlockMissing(abi int) []string {
	var m []string
	for _, l := range landlockLoss {
		if abi < l.abi && (abi > 0 || l.abi == 1) {
			m = append(m, fmt.Sprintf("%s (ABI %d)", l.lost, l.abi))
		}
	}
	return m
}

func landlockLine(f *Facts, add addFunc) {
	switch m := landlockMissing(f.LandlockABI); {
	case f.LandlockABI == 0:
		add("landlock", Fail, "unavailable (not built in or not in the lsm= boot list)")
	case len(m) == 0:
		add("landlock", OK, "ABI %d: everything zviz asks for (filesystem, TCP ports, scoping)", f.LandlockABI)
	default:
		add("landlock", Warn, "ABI %d; missing: %s", f.LandlockABI, strings.Join(m, "; "))
	}
}

func seccompLines(f *Facts, add addFunc) {
	s := f.Seccomp
	if !s.Filter {
		add("seccomp", Fail, "%s", s.FilterErr)
		return
	}
	extra := ""
	if s.Mode == 2 {
		extra = "; this process already runs under a filter (zviz's is added: the kernel applies both)"
	}
	if !s.KillProcess {
		add("seccomp", Warn, "filters work, but SECCOMP_RET_KILL_PROCESS is unavailable (Linux < 4.14)%s", extra)
	} else {
		add("seccomp", OK, "filters with SECCOMP_RET_KILL_PROCESS%s", extra)
	}
	if !s.UserNotif {
		add("seccomp notify", Warn, "SECCOMP_RET_USER_NOTIF unavailable (Linux < 5.0): no broker, no --log-denials")
		return
	}
	add("seccomp notify", OK, "SECCOMP_RET_USER_NOTIF and NEW_LISTENER available")
	var missing, have []string
	for _, x := range []struct {
		ok   bool
		name string
	}{
		{s.TSyncESRCH, "TSYNC_ESRCH (5.7)"},
		{s.WaitKillableRecv, "WAIT_KILLABLE_RECV (5.19)"},
		{s.SyncWakeUp, "SYNC_WAKE_UP (6.6)"},
	} {
		if x.ok {
			have = append(have, x.name)
		} else {
			missing = append(missing, x.name)
		}
	}
	if len(missing) == 0 {
		add("seccomp notify flags", OK, "%s", strings.Join(have, ", "))
	} else {
		detail := "missing " + strings.Join(missing, ", ")
		if s.SyncWakeUpErr != "" {
			detail += " (sync wake-up probe: " + s.SyncWakeUpErr + ")"
		}
		add("seccomp notify flags", Warn, "%s: --log-denials (and the broker to come) work, slower or less robustly", detail)
	}
}

func cgroupLines(f *Facts, add addFunc) {
	c := f.Cgroup
	switch {
	case c.V2Mount == "":
		add("cgroup v2", Fail, "%s", c.Err)
		return
	case c.Hybrid:
		add("cgroup v2", Warn, "hybrid: cgroup2 at %s, v1 hierarchies %s keep their controllers", c.V2Mount, strings.Join(c.V1, " "))
	default:
		add("cgroup v2", OK, "unified at %s", c.V2Mount)
	}
	if c.Dir == "" {
		add("cgroup delegation", Warn, "%s", c.Err)
		return
	}
	ctl := strings.Join(c.Controllers, " ")
	if ctl == "" {
		ctl = "none"
	}
	if c.Writable {
		add("cgroup delegation", OK, "%s writable by the caller; controllers: %s", c.Dir, ctl)
	} else {
		add("cgroup delegation", Warn, "%s not writable (%s); controllers: %s", c.Dir, c.NotWritable, ctl)
	}
}

func busLine(f *Facts, add addFunc) {
	b := f.Bus
	item := "systemd " + b.Kind + " bus"
	switch {
	case !b.Present:
		add(item, Warn, "%s", b.Why)
	case !b.Systemd:
		add(item, Warn, "socket %s exists, but systemd is not running (no /run/systemd/system)", b.Socket)
	default:
		add(item, OK, "socket %s (not connected)", b.Socket)
	}
}

// layerAvailable says whether a layer a profile may mark required can be
// applied here (seccomp's layer names, see seccomp.Features().Layers);
// unknown names are assumed available rather than guessed at.
func (r *Report) layerAvailable(layer string) (bool, string) {
	f := &r.Facts
	switch layer {
	case "seccomp":
		return f.Seccomp.Filter, "no seccomp filters"
	case "landlock":
		return f.LandlockABI >= 1, "no Landlock"
	case "landlock-net":
		return f.LandlockABI >= 4, fmt.Sprintf("Landlock ABI %d < 4", f.LandlockABI)
	case "landlock-scope":
		return f.LandlockABI >= 6, fmt.Sprintf("Landlock ABI %d < 6", f.LandlockABI)
	case "limits":
		return r.Limits != "none", "no cgroup limits"
	case "notify":
		return f.Seccomp.UserNotif, "no seccomp user notification"
	case "isolation":
		return r.Isolation == "full", "isolation " + r.Isolation
	}
	return true, ""
}

// refusingProfiles names the built-in profiles that require a layer this
// host cannot give, with the reason.
func (r *Report) refusingProfiles() []string {
	var out []string
	for _, name := range seccomp.Builtins() {
		p, err := seccomp.Load(name)
		if err != nil {
			out = append(out, fmt.Sprintf("%s (does not load: %v)", name, err))
			continue
		}
		var why []string
		for _, l := range p.Required {
			if ok, reason := r.layerAvailable(l); !ok {
				why = append(why, l+": "+reason)
			}
		}
		if len(why) > 0 {
			out = append(out, fmt.Sprintf("%s (requires %s)", name, strings.Join(why, ", ")))
		}
	}
	return out
}
