package hostcheck

import (
	"fmt"
	"strings"
)

// decide turns the facts into what zviz will do, one conclusion per
// layer, and whether any mode can run at all (doc.go, "Exit status").
func (r *Report) decide(h *Host) {
	f := &r.Facts
	r.Runnable = true
	add := func(item string, s Status, format string, a ...any) {
		r.Conclusions = append(r.Conclusions, Line{Item: item, Status: s, Detail: fmt.Sprintf(format, a...)})
		if s == Fail {
			r.Runnable = false
		}
	}
	r.decideIsolation(h, add)
	r.decideMapping(h, add)
	r.decideCgroup(add)
	r.decideLimits(add)
	switch m := landlockMissing(f.LandlockABI); {
	case f.LandlockABI == 0:
		add("landlock", Warn, "unavailable: no filesystem barrier beyond the mount namespace, no TCP port rules, no scoping")
	case len(m) == 0:
		add("landlock", OK, "ABI %d (everything zviz asks for)", f.LandlockABI)
	default:
		add("landlock", Warn, "ABI %d (%s missing)", f.LandlockABI, strings.Join(m, "; "))
	}
	switch {
	case !f.Seccomp.Filter:
		add("seccomp", Fail, "cannot install filters: every mode of zviz needs one")
	case !f.Seccomp.UserNotif:
		add("seccomp", Warn, "profile filter installed last; no --log-denials (no user notification)")
	default:
		add("seccomp", OK, "profile filter installed last; --log-denials available (user notification)")
	}
	if refusing := r.refusingProfiles(); len(refusing) > 0 {
		add("profiles", Warn, "refused on this host: %s", strings.Join(refusing, "; "))
	} else {
		add("profiles", OK, "every built-in profile can run")
	}
}

// decideIsolation: an unprivileged caller needs a user namespace that can
// mount; euid 0 (root, or inside rootless podman's user namespace) makes a
// mount namespace alone (SPEC.md, "Rootless, user namespaces"). Without it
// the chdir-only fallback of issue 6 keeps the workload in the rootfs with
// Landlock, so it needs Landlock.
func (r *Report) decideIsolation(h *Host, add addFunc) {
	f := &r.Facts
	probe, how := f.UsernsProbe, "full (user+mount namespaces)"
	if f.MountnsProbe != nil {
		probe, how = *f.MountnsProbe, "full (mount namespace as euid 0; a user namespace only when the config asks)"
	}
	if probe.OK {
		r.Isolation = "full"
		add("isolation", OK, "%s", how)
		return
	}
	why := r.isolationBlocker(h, probe)
	if f.LandlockABI == 0 {
		r.Isolation = "none"
		add("isolation", Fail, "none: %s, and no Landlock for the chdir-only fallback", why)
		return
	}
	r.Isolation = "chdir-only"
	add("isolation", Warn, "chdir-only fallback (%s): no namespaces, Landlock keeps the workload in its rootfs; "+
		"refused with --require-full-isolation or a profile's required: [isolation]", why)
}

func (r *Report) isolationBlocker(h *Host, probe ProbeResult) string {
	f := &r.Facts
	switch {
	case f.MountnsProbe != nil:
		return "no mount namespace: " + probe.describe()
	case f.AppArmorEnabled && f.AppArmorRestrictUserns != nil && *f.AppArmorRestrictUserns != 0:
		return fmt.Sprintf("kernel.apparmor_restrict_unprivileged_userns=%d and no AppArmor profile grants userns to %s "+
			"(sudo zviz apparmor install); probe: %s", *f.AppArmorRestrictUserns, h.exe(), probe.describe())
	case f.MaxUserNamespaces != nil && *f.MaxUserNamespaces == 0:
		return "user.max_user_namespaces=0"
	case f.UnprivilegedUsernsClone != nil && *f.UnprivilegedUsernsClone == 0:
		return "kernel.unprivileged_userns_clone=0"
	}
	return "new user namespace cannot mount: " + probe.describe()
}

func (r *Report) decideMapping(h *Host, add addFunc) {
	f := &r.Facts
	switch {
	case h.EUID == 0:
		r.Mapping = "privileged"
		add("id mapping", OK, "euid 0: maps are written directly when a user namespace is asked for")
	case len(f.SubUID) > 0 && len(f.SubGID) > 0 && f.NewUIDMap.usable() && f.NewGIDMap.usable():
		r.Mapping = "subids"
		add("id mapping", OK, "container root is uid %d, ids 1..%d come from the subordinate ranges (newuidmap/newgidmap)",
			h.UID, min(sum(counts(f.SubUID)), sum(counts(f.SubGID))))
	default:
		r.Mapping = "single"
		why := "no subordinate ranges"
		if len(f.SubUID) > 0 && len(f.SubGID) > 0 {
			why = "newuidmap/newgidmap missing or not privileged"
		}
		add("id mapping", Warn, "the caller's uid %d and gid %d alone (%s): images with other owners show them as nobody",
			h.UID, h.GID, why)
	}
}

// decideCgroup says where a container's cgroup comes from by default
// (internal/container's planCgroup): real root uses cgroupfs; everyone
// else asks the user manager on the bus, then a delegated subtree, then
// runs without one.
func (r *Report) decideCgroup(add addFunc) {
	c, b, f := &r.Facts.Cgroup, &r.Facts.Bus, r.Facts
	switch {
	case c.V2Mount == "":
		add("cgroup", Warn, "none (no cgroup v2 hierarchy): pause and update refused; ps and kill --all use the pid namespace")
	case f.EUID == 0 && f.InitialUserns:
		add("cgroup", OK, "cgroupfs: zviz-ID below %s, or linux.cgroupsPath; --systemd-cgroup asks the system manager", c.Dir)
	case b.Present && b.Systemd:
		add("cgroup", OK, "a delegated scope from the systemd user manager over %s", b.Socket)
	case c.Writable:
		add("cgroup", OK, "cgroupfs: zviz-ID below %s (delegated; no systemd user manager on the bus)", c.Dir)
	default:
		add("cgroup", Warn, "none (no systemd user manager on the bus, and %s is not delegated): pause and update refused; ps and kill --all use the pid namespace", c.Dir)
	}
}

// decideLimits follows SPEC.md "cgroups v2 through systemd": a transient
// scope from systemd over D-Bus, else a delegated cgroupfs subtree, else
// none after a warning.
func (r *Report) decideLimits(add addFunc) {
	c, b := &r.Facts.Cgroup, &r.Facts.Bus
	var why string
	switch {
	case c.V2Mount == "":
		why = "no cgroup v2 hierarchy"
	case !hasAny(c.Controllers, "memory", "pids", "cpu"):
		ctl := strings.Join(c.Controllers, " ")
		if ctl == "" {
			ctl = "none"
		}
		why = fmt.Sprintf("the caller's v2 cgroup %s offers no memory, pids or cpu controller (has: %s)", c.Dir, ctl)
		if c.Hybrid {
			why += "; hybrid host: they are bound to cgroup v1"
		}
	case b.Present && b.Systemd:
		r.Limits = "systemd"
		add("limits", OK, "systemd (transient scope with Delegate=yes over the %s bus %s; controllers %s)",
			b.Kind, b.Socket, strings.Join(c.Controllers, " "))
		return
	case c.Writable:
		r.Limits = "cgroupfs"
		add("limits", OK, "cgroupfs (delegated subtree %s; controllers %s)", c.Dir, strings.Join(c.Controllers, " "))
		return
	default:
		why = fmt.Sprintf("no systemd %s bus (%s) and %s is not writable (%s)", b.Kind, busWhy(b), c.Dir, c.NotWritable)
	}
	r.Limits = "none"
	add("limits", Warn, "none (%s): containers run without memory/pids/cpu limits", why)
}

func busWhy(b *BusInfo) string {
	if b.Why != "" {
		return b.Why
	}
	if !b.Systemd {
		return "systemd not running"
	}
	return "present"
}

func hasAny(list []string, want ...string) bool {
	for _, x := range list {
		for _, w := range want {
			if x == w {
				return true
			}
		}
	}
	return false
}
