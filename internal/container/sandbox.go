package container

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SandboxOptions are `zviz sandbox`'s flags.
type SandboxOptions struct {
	Args []string
	RW   []string // extra writable host paths
	RO   []string // extra read-only host paths (re-exposed, e.g. a hidden one)
	Env  []string // K=V added to the minimal environment
	Net  bool     // share the host's network namespace (announced)
	// Network and Publish are --network and -p (netmode.go); --net is
	// --network host.
	Network string
	Publish []string
	TTY     bool // allocate a pty wired to the caller's terminal
}

// nobody is the overflow id (65534) root's sandboxed command runs as.
const nobody = 65534

// credentialPaths are hidden from a sandbox unless named with --rw/--ro:
// what an agent could use to act as the user elsewhere.
var credentialPaths = []string{
	".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker",
	".netrc", ".git-credentials", ".config/gh", ".config/hub", ".npmrc", ".pypirc",
	".cargo/credentials", ".cargo/credentials.toml", ".password-store",
	".local/share/keyrings", ".vault-token", ".terraform.d/credentials.tfrc.json",
	".config/containers/auth.json",
}

// Sandbox runs a command on the host's own root, read-only, with fresh
// /proc, /dev, /tmp and /run, the current directory and --rw paths
// writable, no network unless asked, a minimal environment, and the
// caller's credential directories hidden. It gets every layer run gets.
func Sandbox(o *Options, so *SandboxOptions) (int, error) {
	if len(so.Args) == 0 {
		return 2, fmt.Errorf("sandbox: no command given (zviz sandbox [flags] -- CMD...)")
	}
	if err := o.store().open(true); err != nil {
		return 1, err
	}
	bundle, err := os.MkdirTemp(o.Root, ".sandbox-")
	if err != nil {
		return 1, fmt.Errorf("sandbox: create bundle: %w", unwrap(err))
	}
	defer os.RemoveAll(bundle)
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o700); err != nil {
		return 1, fmt.Errorf("sandbox: create rootfs: %w", unwrap(err))
	}
	if so.Net && so.Network != "" && so.Network != "host" {
		return 2, fmt.Errorf("sandbox: --net and --network %s contradict each other", so.Network)
	}
	so.Net = so.Net || so.Network == "host"
	s, err := sandboxSpec(so)
	if err != nil {
		return 1, err
	}
	if so.Net {
		o.warnf("sandbox --net: the sandbox shares the host's network namespace (loopback services, abstract unix sockets)")
	}
	if cwd, err := os.Getwd(); err == nil && holdsHome(cwd, so) {
		o.warnf("sandbox: the current directory %s holds your home directory (shell startup files, ~/.config): it is read-only in the sandbox; pass --rw %s to make it writable", cwd, cwd)
	}
	id := "sandbox-" + randomHex(6)
	c := &CreateOptions{ID: id, Bundle: bundle, Spec: s, Publish: so.Publish}
	if so.Network != "host" {
		c.Network = so.Network
	}
	return Run(o, c, false)
}

func sandboxSpec(so *SandboxOptions) (*specs.Spec, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("sandbox: current directory: %w", err)
	}
	home := os.Getenv("HOME")
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if uid == 0 {
		// Root's command runs as nobody: as uid 0, even with every
		// capability dropped, it would still own (and read) the host's
		// root-only files, /etc/shadow and host keys among them.
		uid, gid = nobody, nobody
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "zviz-sandbox",
		Process: &specs.Process{
			Terminal:        so.TTY,
			Args:            so.Args,
			Cwd:             cwd,
			User:            specs.User{UID: uid, GID: gid},
			Env:             sandboxEnv(envHome(home, uid), so.Env),
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths:   append(hiddenCredentials(home, so), runcMasked...),
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if !so.Net {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	if os.Geteuid() != 0 {
		// The caller stays themselves inside: files they own look theirs.
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: uid, HostID: uid, Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: gid, HostID: gid, Size: 1}}
	}
	mounts, err := sandboxMounts(cwd, so)
	if err != nil {
		return nil, err
	}
	s.Mounts = mounts
	return s, nil
}

// runcMasked are the /proc and /sys paths runc's default config masks.
var runcMasked = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

func sandboxMounts(cwd string, so *SandboxOptions) ([]specs.Mount, error) {
	ms := []specs.Mount{
		// The host's root, recursively read-only, becomes the sandbox's root.
		{Destination: "/", Type: "bind", Source: "/", Options: []string{"rbind", "rro", "nosuid", "nodev"}},
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		// Fresh /tmp, /var/tmp and /run: the host's hold other programs'
		// sockets (X11, D-Bus, the user's systemd), reachable even on a
		// read-only mount.
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/var/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}},
	}
	if so.Net {
		// sysfs shows the mounter's network namespace; in the host's, a new
		// read-only sysfs would share the host's read-write superblock
		// (mount(2): EBUSY), and a user namespace may not mount it at all
		// (EPERM). Bind the host's, read-only, as runc's rootless spec does.
		for i := range ms {
			if ms[i].Destination == "/sys" {
				ms[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "rro", "nosuid", "noexec", "nodev"}}
			}
		}
	}
	cwdMode := "rw"
	if holdsHome(cwd, so) {
		cwdMode = "ro"
	}
	ms = append(ms, specs.Mount{Destination: cwd, Type: "bind", Source: cwd, Options: []string{"rbind", cwdMode, "nosuid", "nodev"}})
	for _, flagPaths := range []struct {
		flag, mode string
		paths      []string
	}{{"--rw", "rw", so.RW}, {"--ro", "ro", so.RO}} {
		for _, p := range flagPaths.paths {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("sandbox %s %q: %w", flagPaths.flag, p, err)
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, fmt.Errorf("sandbox %s %q: %w", flagPaths.flag, p, unwrap(err))
			}
			ms = append(ms, specs.Mount{Destination: abs, Type: "bind", Source: abs,
				Options: []string{"rbind", flagPaths.mode, "nosuid", "nodev"}})
		}
	}
	return append(ms, gitGuards(cwd, cwdMode, so.RW)...), nil
}

// gitGuards keeps the hooks and config of git repositories at the top of
// writable paths read-only: git runs hooks, and config can name programs
// (core.fsmonitor, core.hooksPath), the next time the caller uses the
// repository outside the sandbox. Commits inside still work.
func gitGuards(cwd, cwdMode string, rw []string) []specs.Mount {
	var dirs []string
	if cwdMode == "rw" {
		dirs = append(dirs, cwd)
	}
	for _, p := range rw {
		if abs, err := filepath.Abs(p); err == nil {
			dirs = append(dirs, abs)
		}
	}
	var ms []specs.Mount
	for _, d := range dirs {
		for _, rel := range []string{".git/hooks", ".git/config"} {
			p := filepath.Join(d, rel)
			if _, err := os.Lstat(p); err == nil {
				ms = append(ms, specs.Mount{Destination: p, Type: "bind", Source: p,
					Options: []string{"rbind", "ro", "nosuid", "nodev"}})
			}
		}
	}
	return ms
}

// holdsHome says whether the current directory is the caller's home
// directory or above it, without --rw naming it. Writable there, the
// sandboxed code could write the caller's shell startup files, ~/.config
// (systemd user units, autostart, git hooks and config) or ~/.local/bin:
// code that later runs outside the sandbox. Such a cwd stays read-only.
func holdsHome(cwd string, so *SandboxOptions) bool {
	home := os.Getenv("HOME")
	if home == "" || home == "/" {
		return false
	}
	home = filepath.Clean(home)
	rel, err := filepath.Rel(cwd, home)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return false // home is not at or below cwd
	}
	for _, p := range so.RW {
		if abs, err := filepath.Abs(p); err == nil && abs == cwd {
			return false // asked for explicitly
		}
	}
	return true
}

// hiddenCredentials lists the credential paths that exist under home and
// that the caller did not explicitly expose.
func hiddenCredentials(home string, so *SandboxOptions) []string {
	if home == "" || home == "/" {
		return nil
	}
	exposed := map[string]bool{}
	for _, p := range append(append([]string{}, so.RW...), so.RO...) {
		if abs, err := filepath.Abs(p); err == nil {
			exposed[abs] = true
		}
	}
	var hidden []string
	for _, rel := range credentialPaths {
		p := filepath.Join(home, rel)
		if exposed[p] {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			hidden = append(hidden, p)
		}
	}
	return hidden
}

// envHome is the sandbox's HOME: the caller's, or for root's command
// (nobody) the fresh /tmp, since root's home is not nobody's.
func envHome(home string, uid uint32) string {
	if uid == nobody {
		return "/tmp"
	}
	return home
}

func sandboxEnv(home string, extra []string) []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if home != "" {
		env = append(env, "HOME="+home)
	}
	for _, k := range []string{"TERM", "LANG", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, kv := range extra {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
			env = append(env, kv)
		}
	}
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
