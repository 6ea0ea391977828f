package container

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/internal/hostcheck"
	"github.com/zviz/zviz/internal/wire"
	"github.com/zviz/zviz/landlock"
	"github.com/zviz/zviz/seccomp"
)

// Isolation modes, as `zviz state` records them (issue 6).
const (
	// IsolationFull: the mount namespace, the rootfs and pivot_root.
	IsolationFull = "full"
	// IsolationChdirOnly: no namespaces at all (a new user namespace that
	// cannot mount gives none of the others either: each needs
	// CAP_SYS_ADMIN in it); the workload's paths resolve under the rootfs
	// directory, and Landlock is the filesystem barrier.
	IsolationChdirOnly = "chdir-only"
)

// isolation is the mode create chose, and why.
type isolation struct {
	mode string
	why  string // the failed probe, for chdir-only
	// warnings say what the fallback loses, for stderr and state.
	warnings []string
	root     string // chdir-only: the host directory the process's paths resolve under
	tmp      string // chdir-only with the host's root: the private TMPDIR
}

func (i *isolation) chdirOnly() bool { return i != nil && i.mode == IsolationChdirOnly }

// noSetgroups: an unprivileged caller without a user namespace may not
// call setgroups(2) at all, not even to keep its groups.
func (i *isolation) noSetgroups() bool { return i.chdirOnly() && os.Geteuid() != 0 }

// probeIsolation runs the probe of hostcheck in a child: can a new user
// namespace (or, for euid 0, a new mount namespace) really mount? The
// child is this binary (`zviz check --probe-userns`), started with the
// clone flags under test; nothing is cached, since a profile may be loaded
// or the sysctl flipped between two commands. A variable for tests.
var probeIsolation = func(newUser bool) hostcheck.ProbeResult {
	kind := hostcheck.ProbeMountns
	if newUser {
		kind = hostcheck.ProbeUserns
	}
	return hostcheck.NewProber("/proc/self/exe", os.Geteuid(), os.Getegid())(kind)
}

// restrictSysctl is Ubuntu's switch (absent elsewhere).
var restrictSysctl = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"

// launchIsolated starts the init for full isolation while the probe runs
// beside it (their start-ups overlap), and waits for the probe before
// anything is set up: the init does nothing before its bootstrap. When
// the probe fails, that init is killed and another one is started for
// the fallback. Under the restriction the first start may itself fail
// (clone(2) needs CAP_SYS_ADMIN in the new user namespace for the other
// namespaces), which the fallback then makes moot.
func launchIsolated(o *Options, h *handle, early *specs.Spec, plan *nsPlan, c *CreateOptions, dl *denialLog, undo *cleanup) (*launched, error) {
	probe := make(chan hostcheck.ProbeResult, 1)
	suspect, why := mayRestrict(hostFiles)
	if suspect {
		go func() { probe <- probeIsolation(plan.newUser) }()
	}
	l, lerr := launchInit(o, h, early, plan, c, dl, undo)
	if !suspect {
		if lerr == nil {
			o.debugf("isolation: full, not probed (nothing here refuses a new namespace its mounts)")
			l.iso = &isolation{mode: IsolationFull}
			return l, nil
		}
		// The clone itself failed: the probe says whether the fallback
		// can do without it.
		probe <- probeIsolation(plan.newUser)
	}
	iso, err := decideIsolation(o, plan, <-probe)
	o.debugf("isolation probed (%s): %s", why, iso.describe())
	if err != nil {
		return nil, err // the undo stack kills the init
	}
	if !iso.chdirOnly() {
		if lerr != nil {
			return nil, lerr
		}
		l.iso = iso
		return l, nil
	}
	if l != nil {
		l.proc.Kill()
		l.proc.Wait()
		l.conn.Close()
	}
	if err := os.Remove(filepath.Join(h.dir, fifoName)); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove exec fifo: %w", err)
	}
	if l, err = launchInit(o, h, early, plan, c, dl, undo); err != nil {
		return nil, err
	}
	l.iso = iso
	return l, nil
}

// descendants lists the processes below pid (children, grandchildren, ...)
// from /proc/PID/stat's ppid field. A process that was reparented (its
// parent died) is no longer found: without a pid namespace or a cgroup,
// nothing else tells the container's processes from the host's.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// comm (field 2) may hold spaces and parentheses: ppid is the
		// second field after the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, children[p]...)
	}
	return out
}

// restrictFiles are where mayRestrict looks.
type restrictFiles struct{ status, selinux, apparmor, label, restrict string }

// hostFiles are the running system's; label is AppArmor's own attr file
// (Linux 5.8+, beside other LSMs' labels), else the shared one.
var hostFiles = restrictFiles{
	status:   "/proc/self/status",
	selinux:  "/sys/fs/selinux/enforce",
	apparmor: "/sys/module/apparmor/parameters/enabled",
	label:    "/proc/self/attr/apparmor/current",
	restrict: restrictSysctl,
}

// mayRestrict says whether anything could let a new namespace be created
// and then refuse it mounts, i.e. whether the probe must run, and why:
// Ubuntu's AppArmor restriction (the sysctl, unless zviz runs under its
// own profile), any other AppArmor profile zviz runs under, SELinux
// (user_namespace and mount permissions), a seccomp filter on zviz (a
// container runtime's, or tests/nomount), or no_new_privs, which a
// Landlock domain implies for an unprivileged process (a Landlocked
// process may not mount). Read afresh every time: nothing is cached. A
// BPF LSM program refusing mounts is not detected: create then fails
// with the mount's error.
func mayRestrict(f restrictFiles) (bool, string) {
	if b, err := os.ReadFile(f.status); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if v = strings.TrimSpace(v); (k == "Seccomp" || k == "NoNewPrivs") && v != "0" {
				return true, "zviz runs with " + k + " " + v
			}
		}
	}
	if _, err := os.Stat(f.selinux); err == nil {
		return true, "SELinux is enabled"
	}
	if b, _ := os.ReadFile(f.apparmor); strings.TrimSpace(string(b)) != "Y" {
		return false, ""
	}
	b, err := os.ReadFile(f.label)
	if err != nil {
		b, _ = os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(f.label)), "current"))
	}
	label := strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
	r, _ := os.ReadFile(f.restrict)
	restricted := strings.TrimSpace(string(r)) != "" && strings.TrimSpace(string(r)) != "0"
	switch {
	case label == "zviz (unconfined)":
		return false, "" // the shipped profile: userns granted
	case restricted:
		return true, "kernel.apparmor_restrict_unprivileged_userns=" + strings.TrimSpace(string(r))
	case label != "unconfined" && label != "":
		return true, "zviz runs under the AppArmor profile " + label
	}
	return false, ""
}

func (i *isolation) describe() string {
	if i == nil {
		return "refused"
	}
	return i.mode
}

// decideIsolation chooses full isolation when the probe can mount, else
// the chdir-only fallback, unless full isolation is required
// (--require-full-isolation; a profile's `required: [isolation]` is
// checked with the policy) or Landlock, the fallback's barrier, is
// missing. It adjusts plan for the fallback: no namespace is created or
// joined.
func decideIsolation(o *Options, plan *nsPlan, p hostcheck.ProbeResult) (*isolation, error) {
	if p.OK {
		return &isolation{mode: IsolationFull}, nil
	}
	why := probeWhy(plan.newUser, p)
	if o.RequireFullIsolation {
		return nil, fmt.Errorf("--require-full-isolation: full isolation is not available: %s", why)
	}
	if landlock.ABI() == 0 {
		return nil, fmt.Errorf("no isolation possible: %s, and no Landlock for the chdir-only fallback", why)
	}
	for _, e := range plan.enter {
		return nil, fmt.Errorf("%s: joining the %s namespace %s needs full isolation, which is not available: %s", e.field, e.typ, e.path, why)
	}
	for t, p := range plan.join {
		return nil, fmt.Errorf("linux.namespaces: joining the %s namespace %s needs full isolation, which is not available: %s", t, p, why)
	}
	*plan = nsPlan{join: plan.join, inUserNS: !initialUserNS(), chdirOnly: true}
	return &isolation{mode: IsolationChdirOnly, why: why}, nil
}

// probeWhy says in one phrase why the probe failed.
func probeWhy(newUser bool, p hostcheck.ProbeResult) string {
	what := "a new mount namespace cannot mount"
	if newUser {
		what = "a new user namespace cannot mount"
	}
	if p.Step == "clone" {
		// The clone, or the id map the probe's parent writes, was refused.
		what = strings.Replace(what, "cannot mount", "cannot be made", 1)
	}
	why := fmt.Sprintf("%s (%s: %s)", what, p.Step, p.Errno)
	if p.Errno == "" {
		why = fmt.Sprintf("%s (%s: %s)", what, p.Step, p.Error)
	}
	if b, err := os.ReadFile(restrictSysctl); err == nil && strings.TrimSpace(string(b)) != "0" {
		why += "; kernel.apparmor_restrict_unprivileged_userns=" + strings.TrimSpace(string(b)) +
			" and no AppArmor profile grants zviz userns (sudo zviz apparmor install)"
	}
	return why
}

// hostRoot says whether the config's root is the host's own "/", bound
// read-only (zviz sandbox): then the process's paths are the host's.
func hostRoot(s *specs.Spec) bool {
	for _, m := range s.Mounts {
		if path.Clean(m.Destination) == "/" && m.Source == "/" && isBind(m) {
			return true
		}
	}
	return false
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || m.Type == "rbind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// chdirOnlySpec adapts the config to the fallback and returns what is lost,
// one line each, for stderr and state. The process runs as the caller
// (unprivileged: no other id is reachable without a user namespace) or,
// for root, as the host id its user maps to; an unprivileged caller keeps
// no capabilities.
func (i *isolation) adapt(s *specs.Spec, rootfs string) []string {
	i.root = rootfs
	if hostRoot(s) {
		i.root = "/"
	}
	w := []string{fmt.Sprintf("isolation: chdir-only (%s): no mount, pid, ipc, uts, network or cgroup namespace; "+
		"the process's paths resolve under %s and Landlock keeps it there (refuse this with --require-full-isolation)", i.why, i.root)}
	var skipped []string
	for _, m := range s.Mounts {
		if !isBind(m) || path.Clean(m.Destination) == "/" && m.Source != "/" {
			skipped = append(skipped, m.Destination)
		}
	}
	if i.root == "/" {
		// The host's /tmp holds other programs' sockets: a host-root
		// config gets a private one in its (otherwise unused) rootfs, which
		// is in the caller's state directory. Root's process (nobody)
		// cannot reach root's state directory, so it gets none.
		i.tmp = filepath.Join(rootfs, "tmp")
		if os.Geteuid() == 0 || os.Mkdir(i.tmp, 0o700) != nil {
			i.tmp = ""
			w = append(w, "isolation: chdir-only: no /tmp and no TMPDIR")
		} else {
			s.Process.Env = append(s.Process.Env, "TMPDIR="+i.tmp)
			w = append(w, "isolation: chdir-only: TMPDIR="+i.tmp+" instead of a private /tmp")
		}
	}
	if len(skipped) > 0 {
		w = append(w, "isolation: chdir-only: not mounted: "+strings.Join(skipped, ", ")+
			"; bind mounts are reached at their host source path")
	}
	u := &s.Process.User
	if euid := os.Geteuid(); euid != 0 {
		if u.UID != uint32(euid) || u.GID != uint32(os.Getegid()) || len(u.AdditionalGids) > 0 {
			w = append(w, fmt.Sprintf("isolation: chdir-only: process.user %d:%d runs as the caller %d:%d", u.UID, u.GID, euid, os.Getegid()))
		}
		u.UID, u.GID, u.AdditionalGids = uint32(euid), uint32(os.Getegid()), nil
		if c := s.Process.Capabilities; c != nil && len(c.Bounding)+len(c.Permitted)+len(c.Effective)+len(c.Ambient) > 0 {
			w = append(w, "isolation: chdir-only: process.capabilities: none for an unprivileged caller without a user namespace")
		}
		s.Process.Capabilities = &specs.LinuxCapabilities{}
	} else if hasNamespace(s, specs.UserNamespace) {
		// Root with a user namespace: its ids map to unprivileged host ids,
		// which the process keeps.
		uid, okU := hostID(s.Linux.UIDMappings, u.UID)
		gid, okG := hostID(s.Linux.GIDMappings, u.GID)
		if okU && okG {
			u.UID, u.GID = uid, gid
		}
		var gids []uint32
		for _, g := range u.AdditionalGids {
			if h, ok := hostID(s.Linux.GIDMappings, g); ok {
				gids = append(gids, h)
			}
		}
		u.AdditionalGids = gids
	}
	if hasNamespace(s, specs.NetworkNamespace) {
		w = append(w, "isolation: chdir-only: the host's network is shared; Landlock refuses TCP bind and connect "+
			"(ABI 4+), UDP and unix sockets are not restricted")
	}
	return w
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// hostDevices are the host's device nodes a chdir-only process may use:
// the data sinks and sources and its terminal.
var hostDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// systemDirs are what a host-root config (zviz sandbox) may read and
// execute in chdir-only mode: the programs and their libraries and
// configuration, never /home, /root, /tmp, /run, /var or /proc.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// chdirLandlockRules is the filesystem barrier of the fallback, in host
// paths: read and execute under the root (the rootfs, or for a host-root
// config the system directories), write there only when the root is
// writable; bind mounts grant their host source, read-only or writable as
// mounted; nothing else on the host. A masked path beneath a grant is cut
// out of it (grantExcept), at the price of the directories above it being
// listable only. TCP is refused when the config asked for a network
// namespace (the profile's allowed ports stay allowed).
func (i *isolation) landlockRules(s *specs.Spec, p *seccomp.Profile) *wire.LandlockRules {
	r := &wire.LandlockRules{Scope: true, Required: slices.Contains(p.Required, "landlock")}
	g := &grants{r: r}
	for _, m := range s.Linux.MaskedPaths {
		g.masked = append(g.masked, filepath.Join(i.root, m))
	}
	if i.root == "/" {
		for _, d := range systemDirs {
			g.add(d, false, true)
		}
	} else {
		g.add(i.root, s.Root == nil || !s.Root.Readonly, true)
	}
	for _, m := range s.Mounts {
		if !isBind(m) || path.Clean(m.Destination) == "/" || !filepath.IsAbs(m.Source) {
			continue
		}
		g.add(filepath.Clean(m.Source), mountWritable(m), true)
	}
	if i.tmp != "" {
		r.Writable = append(r.Writable, i.tmp)
	}
	r.Writable = append(r.Writable, hostDevices...)
	if s.Process.Terminal {
		r.Writable = append(r.Writable, "/dev/ptmx", "/dev/pts")
	}
	for _, list := range []*[]string{&r.ReadExec, &r.ReadOnly, &r.Writable} {
		slices.Sort(*list)
		*list = slices.Compact(*list)
	}
	if hasNamespace(s, specs.NetworkNamespace) {
		r.RestrictNetwork = true
		r.TCPConnect, _ = allowPorts(p.Network.Allow)
	}
	return r
}

// grants collects Landlock grants while keeping masked paths out of them.
type grants struct {
	r      *wire.LandlockRules
	masked []string
}

// add grants dir (read-exec, or writable), except the masked paths beneath
// it: Landlock rights are inherited by a whole hierarchy and cannot be
// taken back below, so a directory above a masked path gets only read-dir
// (listing) and its other entries are granted one by one.
func (g *grants) add(dir string, writable, top bool) {
	var inside []string
	for _, m := range g.masked {
		if _, err := os.Lstat(m); err != nil {
			continue // nothing there to hide (the rootfs's empty /proc)
		}
		if m == dir {
			return
		}
		if under(m, dir) {
			inside = append(inside, m)
		}
	}
	if len(inside) == 0 {
		if writable {
			g.r.Writable = append(g.r.Writable, dir)
		} else {
			g.r.ReadExec = append(g.r.ReadExec, dir)
		}
		return
	}
	g.r.ListOnly = append(g.r.ListOnly, dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // nothing granted below an unreadable directory
	}
	for _, e := range entries {
		g.add(filepath.Join(dir, e.Name()), writable, false)
	}
}

// checkIsolationRequired refuses the fallback for a profile that requires
// full isolation.
func checkIsolationRequired(p *seccomp.Profile, iso *isolation) error {
	if iso.chdirOnly() && slices.Contains(p.Required, "isolation") {
		return fmt.Errorf("profile %s requires isolation: full isolation is not available: %s", p.Name, iso.why)
	}
	return nil
}
