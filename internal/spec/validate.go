package spec

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// check is one small, named validation step. Checks are independent: each
// reads the spec (and the host, for paths) and reports every problem it
// finds; none stops the others.
type check struct {
	name string
	run  func(c *checker)
}

// checks run in this order; the order only fixes the order of the errors.
var checks = []check{
	{"ociVersion", checkVersion},
	{"root", checkRoot},
	{"process", checkProcess},
	{"process.env", checkEnv},
	{"process.user", checkUser},
	{"process.rlimits", checkRlimits},
	{"process.oomScoreAdj", checkOOMScoreAdj},
	{"process.consoleSize", checkConsoleSize},
	{"hostname", checkHostname},
	{"linux.namespaces", checkNamespaces},
	{"linux.idMappings", checkMappings},
	{"linux.timeOffsets", checkTimeOffsets},
	{"mounts", checkMounts},
	{"linux.maskedPaths", checkMaskedPaths},
	{"linux.sysctl", checkSysctl},
	{"hooks", checkHooks},
}

// checker carries the spec and collects the failures.
type checker struct {
	s      *specs.Spec
	bundle string
	ns     map[specs.LinuxNamespaceType]string
	errs   []error
}

// Validate runs every check on s and returns all failures joined, one line
// each, or nil. Paths (root.path, bind sources, namespace paths) are checked
// on the host, relative ones against bundle.
func Validate(s *specs.Spec, bundle string) error {
	if s == nil {
		return errors.New("config.json: must not be empty")
	}
	c := &checker{s: s, bundle: bundle, ns: Namespaces(s)}
	for _, ch := range checks {
		ch.run(c)
	}
	return errors.Join(c.errs...)
}

// fail records "config.json: FIELD: MESSAGE"; format may use %w.
func (c *checker) fail(field, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("config.json: %s: %w", field, fmt.Errorf(format, args...)))
}

// failAll records each error joined in err as its own config.json line.
func (c *checker) failAll(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			c.errs = append(c.errs, fmt.Errorf("config.json: %w", e))
		}
		return
	}
	c.errs = append(c.errs, fmt.Errorf("config.json: %w", err))
}

// statErr strips the *PathError around a stat failure: the caller names the
// path itself, and the errno stays reachable.
func statErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hasNS reports whether the container gets a namespace of type t (new or
// joined); newNS whether it gets a new one.
func (c *checker) hasNS(t specs.LinuxNamespaceType) bool { _, ok := c.ns[t]; return ok }
func (c *checker) newNS(t specs.LinuxNamespaceType) bool { p, ok := c.ns[t]; return ok && p == "" }

var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^1\.[0-9]+(\.[0-9]+)?([-+][0-9A-Za-z.+-]*)?$`) })

func checkVersion(c *checker) {
	switch v := c.s.Version; {
	case v == "":
		c.fail("ociVersion", "must not be empty")
	case !versionRE().MatchString(v):
		c.fail(fmt.Sprintf("ociVersion %q", v), "unsupported (want 1.x)")
	}
}

func checkRoot(c *checker) {
	if c.s.Root == nil || c.s.Root.Path == "" {
		c.fail("root.path", "must not be empty")
		return
	}
	fi, err := os.Stat(RootfsPath(c.s, c.bundle))
	switch {
	case err != nil:
		err = statErr(err)
	case !fi.IsDir():
		err = errNotDir
	default:
		return
	}
	c.errs = append(c.errs, fmt.Errorf("bundle %s: rootfs %q: %w", c.bundle, c.s.Root.Path, err))
}

var errNotDir = errors.New("not a directory")

func checkProcess(c *checker) {
	p := c.s.Process
	if p == nil {
		c.fail("process", "must be present")
		return
	}
	if len(p.Args) == 0 {
		c.fail("process.args", "must not be empty")
	} else if p.Args[0] == "" {
		c.fail("process.args[0]", "must not be empty")
	}
	switch {
	case p.Cwd == "":
		c.fail("process.cwd", "must not be empty")
	case !filepath.IsAbs(p.Cwd):
		c.fail(fmt.Sprintf("process.cwd %q", p.Cwd), "must be an absolute path")
	}
}

// checkEnv applies runc's rules for process.env: NAME=VALUE, a non-empty
// name, and no NUL byte (execve(2) could not pass it).
func checkEnv(c *checker) {
	if c.s.Process == nil {
		return
	}
	for i, kv := range c.s.Process.Env {
		name, _, ok := strings.Cut(kv, "=")
		field := fmt.Sprintf("process.env[%d]", i)
		switch {
		case strings.IndexByte(kv, 0) >= 0:
			c.fail(field, "must not contain a NUL byte")
		case !ok:
			c.fail(fmt.Sprintf("%s %q", field, kv), "must be NAME=VALUE")
		case name == "":
			c.fail(fmt.Sprintf("%s %q", field, kv), "name must not be empty")
		}
	}
}

// checkUser checks process.user: no id is the invalid id -1, the umask has
// only permission bits, and with a new user namespace whose mappings are
// given every id is mapped (else setresuid/setgroups fail inside the init
// with a bare EINVAL).
func checkUser(c *checker) {
	if c.s.Process == nil {
		return
	}
	u := c.s.Process.User
	if u.UID == math.MaxUint32 {
		c.fail("process.user.uid", "4294967295 is the invalid id -1")
	}
	if u.GID == math.MaxUint32 {
		c.fail("process.user.gid", "4294967295 is the invalid id -1")
	}
	if u.Umask != nil && *u.Umask > 0o777 {
		c.fail("process.user.umask", "%#o has bits outside 0777", *u.Umask)
	}
	if !c.newNS(specs.UserNamespace) || c.s.Linux == nil {
		return
	}
	if m := c.s.Linux.UIDMappings; len(m) > 0 && !mapped(m, u.UID) {
		c.fail("process.user.uid", "%d is not mapped by linux.uidMappings", u.UID)
	}
	m := c.s.Linux.GIDMappings
	if len(m) == 0 {
		return
	}
	if !mapped(m, u.GID) {
		c.fail("process.user.gid", "%d is not mapped by linux.gidMappings", u.GID)
	}
	for i, g := range u.AdditionalGids {
		if !mapped(m, g) {
			c.fail(fmt.Sprintf("process.user.additionalGids[%d]", i), "%d is not mapped by linux.gidMappings", g)
		}
	}
}

func mapped(maps []specs.LinuxIDMapping, id uint32) bool {
	for _, m := range maps {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return true
		}
	}
	return false
}

// rlimits are the names setrlimit(2) knows, as the runtime spec spells them.
var rlimits = map[string]bool{
	"RLIMIT_AS": true, "RLIMIT_CORE": true, "RLIMIT_CPU": true, "RLIMIT_DATA": true,
	"RLIMIT_FSIZE": true, "RLIMIT_LOCKS": true, "RLIMIT_MEMLOCK": true, "RLIMIT_MSGQUEUE": true,
	"RLIMIT_NICE": true, "RLIMIT_NOFILE": true, "RLIMIT_NPROC": true, "RLIMIT_RSS": true,
	"RLIMIT_RTPRIO": true, "RLIMIT_RTTIME": true, "RLIMIT_SIGPENDING": true, "RLIMIT_STACK": true,
}

func checkRlimits(c *checker) {
	if c.s.Process == nil {
		return
	}
	seen := map[string]int{}
	for i, r := range c.s.Process.Rlimits {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		if !rlimits[r.Type] {
			c.fail(fmt.Sprintf("%s.type %q", field, r.Type), "unknown rlimit")
			continue
		}
		if j, dup := seen[r.Type]; dup {
			c.fail(field, "duplicate %s (also process.rlimits[%d])", r.Type, j)
			continue
		}
		seen[r.Type] = i
		if r.Soft > r.Hard {
			c.fail(field, "%s soft limit %d exceeds hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
}

// checkOOMScoreAdj applies the range of /proc/PID/oom_score_adj (proc(5)).
func checkOOMScoreAdj(c *checker) {
	if c.s.Process == nil || c.s.Process.OOMScoreAdj == nil {
		return
	}
	if v := *c.s.Process.OOMScoreAdj; v < -1000 || v > 1000 {
		c.fail("process.oomScoreAdj", "%d is outside -1000..1000", v)
	}
}

func checkConsoleSize(c *checker) {
	if p := c.s.Process; p != nil && p.ConsoleSize != nil && !p.Terminal {
		c.fail("process.consoleSize", "requires process.terminal")
	}
}

// hostNameMax is HOST_NAME_MAX (and the limit of setdomainname(2)).
const hostNameMax = 64

func checkHostname(c *checker) {
	for _, f := range []struct{ field, v string }{{"hostname", c.s.Hostname}, {"domainname", c.s.Domainname}} {
		if f.v == "" {
			continue
		}
		if !c.hasNS(specs.UTSNamespace) {
			c.fail(f.field, "requires a uts namespace in linux.namespaces")
		}
		if len(f.v) > hostNameMax {
			c.fail(f.field, "%d bytes exceed the limit of %d", len(f.v), hostNameMax)
		}
	}
}

// hookLists names every hook list in the order the runtime spec runs them.
func hookLists(h *specs.Hooks) []struct {
	name  string
	hooks []specs.Hook
} {
	return []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", h.Prestart}, //nolint:staticcheck // deprecated, still honoured
		{"createRuntime", h.CreateRuntime},
		{"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer},
		{"poststart", h.Poststart},
		{"poststop", h.Poststop},
	}
}

func checkHooks(c *checker) {
	if c.s.Hooks == nil {
		return
	}
	for _, l := range hookLists(c.s.Hooks) {
		for i, h := range l.hooks {
			field := fmt.Sprintf("hooks.%s[%d]", l.name, i)
			if !filepath.IsAbs(h.Path) {
				c.fail(fmt.Sprintf("%s.path %q", field, h.Path), "must be an absolute path")
			}
			if h.Timeout != nil && *h.Timeout <= 0 {
				c.fail(field+".timeout", "must be positive")
			}
		}
	}
}
