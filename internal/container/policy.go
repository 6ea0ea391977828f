package container

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
	"github.com/zviz/zviz/landlock"
	"github.com/zviz/zviz/seccomp"
)

// ProfileAnnotation selects a profile from config.json (podman's
// --annotation run.zviz.profile=NAME).
const ProfileAnnotation = "run.zviz.profile"

// decision is what decidePolicy resolved.
type decision struct {
	policy   *wire.Policy
	denials  *listenerPlan // nil: nothing notifies
	warnings []string      // every layer weaker than asked
	profile  *seccomp.Profile
}

// decidePolicy resolves the security layers of SPEC.md for one container:
// the profile (--profile, else the annotation, else default), its seccomp
// program compiled here in the parent (cached by content hash under the
// state root), the capabilities (the config's set intersected with the
// profile's, which keeps none by default), no_new_privs (always), and the
// Landlock rules derived from the rootfs and the mounts. It edits s to the
// capabilities and flags the init will apply, and returns what the init
// needs plus the warnings for every layer weaker than asked.
func decidePolicy(o *Options, s *specs.Spec, iso *isolation) (*decision, error) {
	ref := o.Profile
	if ref == "" {
		ref = s.Annotations[ProfileAnnotation]
	}
	if ref == "" {
		ref = "default"
	}
	p, prog, err := profileProgram(ref, o.Root, o.LogDenials)
	if err != nil {
		return nil, err
	}
	bc := networkBroker(p, s, o.LogDenials)
	if prog.Notify && !o.LogDenials && bc == nil {
		return nil, fmt.Errorf("profile %s: broker rules without network.allow: this zviz build brokers only the network calls of an egress allow-list", p.Name)
	}
	if err := checkRequired(p); err != nil {
		return nil, err
	}
	if err := checkIsolationRequired(p, iso); err != nil {
		return nil, err
	}
	if p.Filesystem.ReadonlyRoot {
		s.Root.Readonly = true
	}
	s.Process.NoNewPrivileges = true
	s.Process.Capabilities = keepCaps(s.Process.Capabilities, p.Capabilities)
	pol := &wire.Policy{Profile: p.Name, Landlock: landlockRules(s, p)}
	if iso.chdirOnly() {
		pol.Landlock = iso.landlockRules(s, p)
	}
	// The config's own filter (podman's) is installed too: the kernel runs
	// both and the strictest answer wins.
	if s.Linux.Seccomp != nil {
		own, err := configSeccomp(s.Linux.Seccomp, runtime.GOARCH, cacheDir(o.Root))
		if err != nil {
			return nil, err
		}
		pol.Seccomp = append(pol.Seccomp, *own)
	}
	pol.Seccomp = append(pol.Seccomp, wire.BPF{Name: p.Name, Arch: prog.Arch, Program: prog.BPF, Notify: prog.Notify})
	warnings, err := landlockWarnings(pol.Landlock)
	if err != nil {
		return nil, err
	}
	if w := networkWarning(p, s); w != "" {
		warnings = append(warnings, w)
	}
	var lp *listenerPlan
	if prog.Notify {
		lp = &listenerPlan{Table: prog.Denials, Broker: bc}
	}
	if len(pol.Seccomp) > 1 && pol.Seccomp[0].Agent {
		if lp == nil {
			lp = &listenerPlan{}
		}
		lp.Agent = &agentConfig{Path: s.Linux.Seccomp.ListenerPath, Metadata: s.Linux.Seccomp.ListenerMetadata}
	}
	return &decision{policy: pol, denials: lp, warnings: warnings, profile: p}, nil
}

// profileProgram loads and compiles the profile; with logDenials, the
// variant whose refusals go to a listener that logs them (the syscall
// lists are needed then for its answer table, so the resolved-profile
// cache is not used).
//
// A profile with an egress allow-list is compiled with its network calls
// brokered (seccomp.Profile.WithNetworkBroker); the program carries the
// answer table the broker's listener needs, so that path is not cached
// as a resolved profile either.
func profileProgram(ref, root string, logDenials bool) (*seccomp.Profile, *seccomp.Program, error) {
	if !logDenials {
		p, prog, err := loadProfile(ref, runtime.GOARCH, cacheDir(root))
		if err != nil || !p.NeedsNetworkBroker() {
			return p, prog, err
		}
	}
	p, err := seccomp.Load(ref)
	if err != nil {
		return nil, nil, err
	}
	p = p.WithNetworkBroker()
	prog, err := seccomp.CompileCachedWith(p, runtime.GOARCH, cacheDir(root), seccomp.CompileOptions{LogDenials: logDenials})
	if err != nil {
		return nil, nil, fmt.Errorf("compile seccomp profile %s: %w", p.Name, err)
	}
	return p, prog, nil
}

// cacheDir is where compiled profiles are kept between commands: beside
// the state directory, in the runtime directory (/run/zviz-cache for root,
// $XDG_RUNTIME_DIR/zviz-cache otherwise), private to the caller, or none
// (compile every time) when there is no usable one. Not in the home
// directory: a cache entry decides a container's filter and capabilities,
// and a container or sandbox that can write the home directory (zviz
// sandbox run from it) could otherwise rewrite the policy of the next one.
// The runtime directory is a tmpfs no container gets unless its config
// binds it, and zviz sandbox covers /run with a fresh one.
func cacheDir(stateRoot string) string {
	if stateRoot == "" {
		return ""
	}
	dir := filepath.Join(filepath.Dir(filepath.Clean(stateRoot)), "zviz-cache")
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return ""
	}
	if checkPrivate(dir) != nil {
		return ""
	}
	return dir
}

// cachedProfile is what create needs of a resolved profile and its
// program, as kept on disk (not the syscall lists: decoding those again
// would cost most of what the cache saves).
type cachedProfile struct {
	// Profile is the resolved profile without its syscall lists (the BPF
	// is what the container needs of them): every other layer is kept, so
	// a field added to seccomp.Profile is cached without anyone
	// remembering to.
	Profile seccomp.Profile `json:"profile"`
	Arch    string          `json:"arch"`
	Key     string          `json:"key"`
	Notify  bool            `json:"notify"`
	BPF     []byte          `json:"bpf"`
}

// loadProfile loads and compiles a profile. Parsing and validating the
// YAML costs more than a millisecond on every create, so the result is
// cached too, keyed by the reference, the file's content for a user
// profile, the arch and the identity of this zviz binary (its built-in
// profiles and compiler). The cache directory is private to the caller.
func loadProfile(ref, arch, dir string) (*seccomp.Profile, *seccomp.Program, error) {
	key, ok := profileKey(ref, arch)
	file := filepath.Join(dir, "profile-"+key+".json")
	if ok && dir != "" {
		if b, err := os.ReadFile(file); err == nil {
			var c cachedProfile
			if json.Unmarshal(b, &c) == nil && c.Profile.Name != "" && len(c.BPF) > 0 {
				return &c.Profile, &seccomp.Program{Profile: c.Profile.Name, Arch: c.Arch, Key: c.Key, Notify: c.Notify, BPF: c.BPF}, nil
			}
		}
	}
	p, err := seccomp.Load(ref)
	if err != nil {
		return nil, nil, err
	}
	prog, err := seccomp.CompileCached(p, arch, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("compile seccomp profile %s: %w", p.Name, err)
	}
	if ok && dir != "" {
		c := cachedProfile{Profile: *p, Arch: prog.Arch, Key: prog.Key, Notify: prog.Notify, BPF: prog.BPF}
		c.Profile.Allow, c.Profile.Deny, c.Profile.ENOSYS, c.Profile.Filter, c.Profile.Broker = nil, nil, nil, nil, nil
		if b, err := json.Marshal(c); err == nil {
			_ = writeAtomic(file, b, 0o600)
		}
	}
	return p, prog, nil
}

// configSeccomp compiles config.json's linux.seccomp, cached like the
// profiles (podman's is ~300 rules: a few milliseconds to compile).
func configSeccomp(sc *specs.LinuxSeccomp, arch, dir string) (*wire.BPF, error) {
	src, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	id, ok := profileKey("config.json", arch)
	sum := sha256.Sum256(append([]byte(id+"\x00"), src...))
	key := hex.EncodeToString(sum[:])[:32]
	file := filepath.Join(dir, "config-"+key+".json")
	if ok && dir != "" {
		var c wire.BPF
		if b, err := os.ReadFile(file); err == nil && json.Unmarshal(b, &c) == nil && len(c.Program) > 0 {
			return &c, nil
		}
	}
	prog, flags, err := seccomp.CompileOCI(sc, arch)
	if err != nil {
		return nil, err
	}
	c := &wire.BPF{Name: "config.json", Arch: prog.Arch, Program: prog.BPF, Flags: flags, Notify: prog.Notify, Agent: prog.Notify}
	if ok && dir != "" {
		if b, err := json.Marshal(c); err == nil {
			_ = writeAtomic(file, b, 0o600)
		}
	}
	return c, nil
}

// profileKey names a profile's cache entry; ok is false when the profile
// cannot be identified cheaply (then it is not cached).
func profileKey(ref, arch string) (string, bool) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "zviz-profile-v3\x00%s\x00%s\x00%d:%d:%d:%d.%d\x00", ref, arch,
		st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	if strings.Contains(ref, "/") || strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml") {
		b, err := os.ReadFile(ref)
		if err != nil {
			return "", false
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], true
}

// keepCaps intersects every set of the config's capabilities with the
// profile's kept ones: choosing zviz never adds a capability the config
// (podman's policy) did not grant, and drops all that the profile does not
// keep (SPEC.md layer 3).
func keepCaps(c *specs.LinuxCapabilities, keep []string) *specs.LinuxCapabilities {
	if c == nil {
		return &specs.LinuxCapabilities{}
	}
	in := func(set []string) []string {
		var out []string
		for _, n := range set {
			if slices.Contains(keep, n) {
				out = append(out, n)
			}
		}
		return out
	}
	return &specs.LinuxCapabilities{
		Bounding: in(c.Bounding), Effective: in(c.Effective), Permitted: in(c.Permitted),
		Inheritable: in(c.Inheritable), Ambient: in(c.Ambient),
	}
}

// devNodes are the /dev entries a process may write (its own terminal and
// the data sinks and sources), while /dev itself stays read-only to it.
var devNodes = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	"/dev/tty", "/dev/ptmx", "/dev/pts", "/dev/console"}

// landlockRules derives the filesystem barrier from the mounts: read and
// execute everywhere in the container's tree, write only where a mount (or
// the root) is writable, plus the profile's extra writable paths. procfs
// and sysfs are never writable through Landlock: their writable files are
// kernel knobs.
func landlockRules(s *specs.Spec, p *seccomp.Profile) *wire.LandlockRules {
	r := &wire.LandlockRules{ReadExec: []string{"/"}, Scope: true,
		Required: slices.Contains(p.Required, "landlock")}
	if s.Root == nil || !s.Root.Readonly {
		r.Writable = append(r.Writable, "/")
	}
	for _, m := range s.Mounts {
		dst := path.Clean("/" + m.Destination)
		if dst == "/dev" || !mountWritable(m) || under(dst, "/proc") || under(dst, "/sys") {
			continue
		}
		r.Writable = append(r.Writable, dst)
	}
	r.Writable = append(r.Writable, devNodes...)
	r.Writable = append(r.Writable, "/dev/shm", "/dev/mqueue")
	r.Writable = append(r.Writable, p.Filesystem.Writable...)
	slices.Sort(r.Writable)
	r.Writable = slices.Compact(r.Writable)
	// A profile whose egress allow-list names ports restricts TCP connect
	// (never bind: servers listen on any port) to them with Landlock too
	// (ABI 4+), a second layer under the broker's address checks.
	if ports, ok := allowPorts(p.Network.Allow); ok {
		r.RestrictConnect, r.TCPConnect = true, ports
	}
	return r
}

// networkWarning announces that the profile's network mode is not what
// the container gets. The config's network namespace is used as given
// (podman's; --network edits it before this); mode nat on a new one is
// user-mode networking (netmode.go), which warns itself when it cannot be
// had.
func networkWarning(p *seccomp.Profile, s *specs.Spec) string {
	own := false
	for _, ns := range s.Linux.Namespaces {
		own = own || ns.Type == specs.NetworkNamespace
	}
	switch mode := p.Network.Mode; {
	case mode == "none" && !own:
		return fmt.Sprintf("profile %s: network mode none, but the config shares the host's network namespace, which is used as given", p.Name)
	case mode == "host" && own:
		return fmt.Sprintf("profile %s: network mode host, but the config asks for a network namespace of its own, which is used", p.Name)
	case mode == "nat" && !own:
		return fmt.Sprintf("profile %s: network mode nat, but the config shares the host's network namespace, which is used as given", p.Name)
	}
	return ""
}

// allowPorts returns the ports of network.allow entries (ADDR:PORT,
// PREFIX:PORT, [IPv6]:PORT, *:PORT); ok is false when the list is empty or
// an entry allows every port, which leaves nothing for port rules to do.
func allowPorts(allow []string) ([]uint16, bool) {
	var ports []uint16
	for _, a := range allow {
		var port string
		if strings.HasPrefix(a, "[") {
			_, port, _ = strings.Cut(a, "]:")
		} else if strings.Count(a, ":") == 1 {
			_, port, _ = strings.Cut(a, ":")
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return nil, false
		}
		ports = append(ports, uint16(n))
	}
	slices.Sort(ports)
	return slices.Compact(ports), len(ports) > 0
}

func mountWritable(m specs.Mount) bool {
	switch m.Type {
	case "bind", "rbind", "tmpfs", "devpts", "mqueue", "":
	default:
		return false
	}
	for _, o := range m.Options {
		if o == "ro" || o == "rro" {
			return false
		}
	}
	return true
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// checkRequired refuses a profile that requires a layer this host or this
// build cannot apply (SPEC.md: "a profile can mark a layer required, and
// then zviz refuses to start without it").
func checkRequired(p *seccomp.Profile) error {
	abi := landlock.ABI()
	for _, layer := range p.Required {
		var missing string
		switch layer {
		case "landlock":
			if abi == 0 {
				missing = "Landlock is not available in this kernel"
			}
		case "landlock-net":
			if abi < 4 {
				missing = fmt.Sprintf("Landlock ABI %d < 4 has no TCP port rules", abi)
			}
		case "landlock-scope":
			if abi < 6 {
				missing = fmt.Sprintf("Landlock ABI %d < 6 cannot scope abstract unix sockets and signals", abi)
			}
		case "limits":
			// Decided with the container's cgroup (planCgroup, placeCgroup).
		case "notify":
			if !userNotifAvailable() {
				missing = "the kernel has no seccomp user notification"
			}
		}
		if missing != "" {
			return fmt.Errorf("profile %s requires %s: %s", p.Name, layer, missing)
		}
	}
	return nil
}

// userNotifAvailable asks the kernel whether SECCOMP_RET_USER_NOTIF exists
// (seccomp(2), SECCOMP_GET_ACTION_AVAIL).
func userNotifAvailable() bool {
	action := uint32(unix.SECCOMP_RET_USER_NOTIF)
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	return errno == 0
}

// landlockWarnings says what this kernel's Landlock cannot enforce of r
// (landlock.Plan: the tables landlock.Apply itself uses), and refuses when
// the profile requires Landlock and something is missing. The init
// enforces the same decision again (landlock.Apply with required).
func landlockWarnings(r *wire.LandlockRules) ([]string, error) {
	rep, err := landlock.Plan(landlockRulesOf(r))
	if err != nil {
		return nil, err
	}
	var w []string
	for _, d := range rep.Downgrades {
		w = append(w, "landlock: "+strings.TrimPrefix(d, "landlock: "))
	}
	if r.Required && len(w) > 0 {
		return nil, fmt.Errorf("the profile requires landlock: %s", strings.Join(w, "; "))
	}
	return w, nil
}

// landlockRulesOf is the landlock package's form of the rules the init
// gets.
func landlockRulesOf(r *wire.LandlockRules) *landlock.Rules {
	return &landlock.Rules{
		ReadExec: r.ReadExec, ReadOnly: r.ReadOnly, ListOnly: r.ListOnly, Writable: r.Writable,
		RestrictNetwork: r.RestrictNetwork, RestrictConnect: r.RestrictConnect, TCPBind: r.TCPBind, TCPConnect: r.TCPConnect,
		Scope: r.Scope,
	}
}

// layerWarnings names what the config asks for that this build does not
// apply yet; nothing is skipped silently.
func layerWarnings(s *specs.Spec) []string {
	var w []string
	if s.Process != nil && s.Process.ApparmorProfile != "" {
		w = append(w, "process.apparmorProfile: AppArmor profiles are not applied by this zviz build")
	}
	if s.Process != nil && s.Process.SelinuxLabel != "" {
		w = append(w, "process.selinuxLabel: SELinux labels are not supported")
	}
	return w
}

// capabilityNotes says which ambient capabilities cannot be raised.
func capabilityNotes(s *specs.Spec) []string {
	c := s.Process.Capabilities
	if c == nil {
		return nil
	}
	if lost := notIn(c.Ambient, c.Inheritable, c.Permitted); len(lost) > 0 {
		return []string{fmt.Sprintf("process.capabilities.ambient: %s not both permitted and inheritable, so not raised (capabilities(7))", strings.Join(lost, ", "))}
	}
	return nil
}

// notIn lists the names of want missing from any of the sets.
func notIn(want []string, sets ...[]string) []string {
	var out []string
	for _, n := range want {
		for _, set := range sets {
			found := false
			for _, x := range set {
				found = found || x == n
			}
			if !found {
				out = append(out, n)
				break
			}
		}
	}
	return out
}
