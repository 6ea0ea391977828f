package landlock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	gll "github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Access rights granted by each kind of rule (doc.go, "What the rules mean").
const (
	rightsReadExec gll.AccessFSSet = llsys.AccessFSExecute | llsys.AccessFSReadFile | llsys.AccessFSReadDir
	rightsReadOnly gll.AccessFSSet = llsys.AccessFSReadFile | llsys.AccessFSReadDir
	rightsListOnly gll.AccessFSSet = llsys.AccessFSReadDir
	rightsWritable gll.AccessFSSet = rightsReadExec | llsys.AccessFSWriteFile | llsys.AccessFSTruncate |
		llsys.AccessFSRemoveFile | llsys.AccessFSRemoveDir | llsys.AccessFSMakeReg | llsys.AccessFSMakeDir |
		llsys.AccessFSMakeSym | llsys.AccessFSMakeFifo | llsys.AccessFSMakeSock | llsys.AccessFSRefer |
		llsys.AccessFSIoctlDev

	// rightsFile are the only rights the kernel accepts on a path that is
	// not a directory (ACCESS_FILE in security/landlock/access.h).
	rightsFile gll.AccessFSSet = llsys.AccessFSExecute | llsys.AccessFSWriteFile | llsys.AccessFSReadFile |
		llsys.AccessFSTruncate | llsys.AccessFSIoctlDev
)

// presets are go-landlock's per-ABI configs: presets[n] holds everything
// ABI n can restrict. presets[0] restricts nothing.
var presets = []gll.Config{{}, gll.V1, gll.V2, gll.V3, gll.V4, gll.V5, gll.V6, gll.V7, gll.V8, gll.V9, gll.V10, gll.V11}

// erratumScopedSignal is Landlock erratum 2 (security/landlock/errata/
// abi-6.h): before the fix, signal scoping was wrong for some threads, and
// go-landlock treats such an ABI 6+ kernel as ABI 5 (its internal/abi.go).
// The plan must agree with go-landlock, or the strict config is refused.
const erratumScopedSignal = 1 << 1

// plan is everything Apply enforces, computed before any side effect.
type plan struct {
	cfg    gll.Config // already downgraded to the usable ABI; strict
	rules  []gll.Rule
	report Report
}

// wanted is the ruleset zviz asks for before any downgrade.
func wanted(r *Rules) gll.Config {
	c := gll.Config{HandledAccessFS: gll.V5.HandledAccessFS}
	switch {
	case r.RestrictNetwork:
		c.HandledAccessNet = llsys.AccessNetBindTCP | llsys.AccessNetConnectTCP
	case r.RestrictConnect:
		c.HandledAccessNet = llsys.AccessNetConnectTCP
	}
	if r.Scope {
		c.Scoped = gll.V6.Scoped
	}
	return c
}

// makePlan validates r and computes the ruleset for a kernel with the given
// Landlock ABI version and errata bits. It only reads the filesystem (to
// tell missing paths, files and directories apart).
func makePlan(r *Rules, kernelABI, errata int) (*plan, error) {
	if r == nil {
		return nil, errors.New("landlock: no rules")
	}
	if !r.RestrictNetwork && (len(r.TCPBind) > 0 || !r.RestrictConnect && len(r.TCPConnect) > 0) {
		// Ports without the switch would silently restrict nothing.
		return nil, errors.New("landlock: TCP port rules given without RestrictNetwork")
	}
	want := wanted(r)
	usable, why := usableABI(kernelABI, errata)
	eff := intersect(want, presets[usable])
	p := &plan{cfg: eff}
	p.report = Report{
		ABI:        kernelABI,
		Requested:  minABI(want),
		Downgrades: downgrades(want, eff, usable, why),
	}
	p.report.Applied = min(p.report.Requested, usable)
	var err error
	p.rules, p.report.Notes, err = pathRules(r, eff.HandledAccessFS)
	if err != nil {
		return nil, err
	}
	p.rules = append(p.rules, portRules(r, eff.HandledAccessNet)...)
	return p, nil
}

// usableABI is the ABI version the plan may rely on, and why it is lower
// than the kernel's when it is.
func usableABI(kernelABI, errata int) (int, string) {
	v := max(0, min(kernelABI, len(presets)-1))
	if v >= 6 && errata&erratumScopedSignal == 0 {
		return 5, fmt.Sprintf("; kernel ABI %d lacks the signal scoping fix (Landlock erratum 2) and counts as ABI 5", kernelABI)
	}
	return v, ""
}

func intersect(a, b gll.Config) gll.Config {
	return gll.Config{
		HandledAccessFS:  a.HandledAccessFS & b.HandledAccessFS,
		HandledAccessNet: a.HandledAccessNet & b.HandledAccessNet,
		Scoped:           a.Scoped & b.Scoped,
	}
}

// minABI is the lowest ABI version that can enforce all of c.
func minABI(c gll.Config) int {
	for v, p := range presets {
		if intersect(c, p) == c {
			return v
		}
	}
	return len(presets) // beyond go-landlock: not reachable with wanted()
}

// feature is a protection that older ABIs lack, with what losing it means.
type feature struct {
	fs    gll.AccessFSSet
	net   gll.AccessNetSet
	scope gll.ScopedSet
	lost  string
}

// fsBase is what ABI 1 handles; without it there is no filesystem barrier
// at all and the finer filesystem features below are moot.
var fsBase = feature{fs: gll.V1.HandledAccessFS,
	lost: "filesystem not restricted: the container can read and write wherever file permissions allow"}

var finer = []feature{
	{fs: llsys.AccessFSRefer,
		lost: "cross-directory rename and link refused everywhere, even inside writable paths (LANDLOCK_ACCESS_FS_REFER)"},
	{fs: llsys.AccessFSTruncate,
		lost: "truncate(2) and O_TRUNC not restricted: files outside writable paths can be emptied (LANDLOCK_ACCESS_FS_TRUNCATE)"},
	{fs: llsys.AccessFSIoctlDev,
		lost: "ioctl(2) on device files not restricted (LANDLOCK_ACCESS_FS_IOCTL_DEV)"},
	// One line for the TCP rights wanted (the net features match exactly).
	{net: llsys.AccessNetBindTCP | llsys.AccessNetConnectTCP,
		lost: "TCP bind(2) and connect(2) not restricted to the allowed ports"},
	{net: llsys.AccessNetConnectTCP,
		lost: "TCP connect(2) not restricted to the allowed ports"},
	{scope: llsys.ScopeAbstractUnixSocket,
		lost: "abstract unix sockets outside the container reachable (LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET)"},
	{scope: llsys.ScopeSignal,
		lost: "processes outside the container can be signalled (LANDLOCK_SCOPE_SIGNAL)"},
}

// downgrades lists, one human-readable line each, the wanted protections
// that the effective config lacks.
func downgrades(want, eff gll.Config, usable int, why string) []string {
	var lines []string
	add := func(f feature) {
		if f.net != 0 && want.HandledAccessNet != f.net {
			return
		}
		c := gll.Config{HandledAccessFS: f.fs, HandledAccessNet: f.net, Scoped: f.scope}
		if w := intersect(c, want); w != (gll.Config{}) && intersect(w, eff) != w {
			lines = append(lines, fmt.Sprintf("%s: needs Landlock ABI %d, have %d%s", f.lost, minABI(w), usable, why))
		}
	}
	add(fsBase)
	for _, f := range finer {
		if f.fs != 0 && eff.HandledAccessFS == 0 {
			continue // covered by the fsBase line
		}
		add(f)
	}
	return lines
}

// pathRules turns r's paths into go-landlock rules limited to the
// effective rights, with a note for each skipped or symlinked path.
func pathRules(r *Rules, effFS gll.AccessFSSet) ([]gll.Rule, []string, error) {
	groups := []struct {
		name   string
		paths  []string
		rights gll.AccessFSSet
	}{
		{"read-exec", r.ReadExec, rightsReadExec},
		{"read-only", r.ReadOnly, rightsReadOnly},
		{"list-only", r.ListOnly, rightsListOnly},
		{"writable", r.Writable, rightsWritable},
	}
	var rules []gll.Rule
	var notes []string
	for _, g := range groups {
		for _, path := range g.paths {
			if !filepath.IsAbs(path) {
				return nil, nil, fmt.Errorf("landlock: %s path %q: not absolute", g.name, path)
			}
			path = filepath.Clean(path)
			fi, err := os.Stat(path)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				notes = append(notes, fmt.Sprintf("%s path %s does not exist: skipped, no access granted", g.name, path))
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("landlock: stat %s path: %w", g.name, err)
			}
			if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
				notes = append(notes, fmt.Sprintf("%s path %s resolves to %s: the rule applies there", g.name, path, real))
			}
			rights := g.rights & effFS
			if !fi.IsDir() {
				rights &= rightsFile
			}
			if rights != 0 {
				rules = append(rules, gll.PathAccess(rights, path))
			}
		}
	}
	return rules, notes, nil
}

// portRules grants the listed TCP ports, when the effective config handles
// TCP at all (a rule for an unhandled right is invalid).
func portRules(r *Rules, effNet gll.AccessNetSet) []gll.Rule {
	var rules []gll.Rule
	if effNet&llsys.AccessNetBindTCP != 0 {
		for _, port := range r.TCPBind {
			rules = append(rules, gll.BindTCP(port))
		}
	}
	if effNet&llsys.AccessNetConnectTCP != 0 {
		for _, port := range r.TCPConnect {
			rules = append(rules, gll.ConnectTCP(port))
		}
	}
	return rules
}
