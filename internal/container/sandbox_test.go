package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeHome makes a HOME with some credential paths and returns it.
func fakeHome(t *testing.T, present ...string) string {
	t.Helper()
	home := t.TempDir()
	for _, p := range present {
		// hiddenCredentials only looks for existence: files and
		// directories alike.
		if err := os.MkdirAll(filepath.Join(home, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", home)
	return home
}

func mountAt(ms []specs.Mount, dst string) *specs.Mount {
	for i := range ms {
		if ms[i].Destination == dst {
			return &ms[i]
		}
	}
	return nil
}

func TestSandboxHidesCredentials(t *testing.T) {
	home := fakeHome(t, ".ssh", ".aws", ".config/gcloud", ".netrc", ".docker", ".kube", ".config/gh", ".cargo/credentials.toml")
	os.Mkdir(filepath.Join(home, "projects"), 0o755)
	s, err := sandboxSpec(&SandboxOptions{Args: []string{"true"}, RO: []string{filepath.Join(home, ".kube")}})
	if err != nil {
		t.Fatal(err)
	}
	masked := s.Linux.MaskedPaths
	for _, p := range []string{".ssh", ".aws", ".config/gcloud", ".netrc", ".docker", ".config/gh", ".cargo/credentials.toml"} {
		if !slices.Contains(masked, filepath.Join(home, p)) {
			t.Errorf("%s is not masked: %v", p, masked)
		}
	}
	for _, p := range []string{".kube", ".gnupg", ".git-credentials", "projects"} {
		if slices.Contains(masked, filepath.Join(home, p)) {
			t.Errorf("%s is masked (exposed with --ro, or absent, or not a credential)", p)
		}
	}
	for _, p := range []string{"/proc/kcore", "/sys/firmware", "/proc/keys"} {
		if !slices.Contains(masked, p) {
			t.Errorf("runc's masked path %s missing", p)
		}
	}
	if m := mountAt(s.Mounts, filepath.Join(home, ".kube")); m == nil || !slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rw") {
		t.Errorf("--ro ~/.kube mount: %+v", m)
	}
}

func TestSandboxNoHome(t *testing.T) {
	for _, home := range []string{"", "/"} {
		t.Setenv("HOME", home)
		s, err := sandboxSpec(&SandboxOptions{Args: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range s.Linux.MaskedPaths {
			if !strings.HasPrefix(p, "/proc/") && !strings.HasPrefix(p, "/sys/") {
				t.Errorf("HOME=%q: masked %s", home, p)
			}
		}
		for _, e := range s.Process.Env {
			// Root's command runs as nobody, whose HOME is the fresh /tmp.
			if strings.HasPrefix(e, "HOME=") && home == "" && (os.Geteuid() != 0 || e != "HOME=/tmp") {
				t.Errorf("HOME unset, env has %s", e)
			}
		}
	}
}

func TestSandboxEnv(t *testing.T) {
	home := fakeHome(t)
	t.Setenv("TERM", "xterm-test")
	t.Setenv("USER", "alice")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "leak")
	t.Setenv("SSH_AUTH_SOCK", "/tmp/agent")
	s, err := sandboxSpec(&SandboxOptions{Args: []string{"env"}, Env: []string{"A=1", "B=x=y", "=bad", "noequals", "C="}})
	if err != nil {
		t.Fatal(err)
	}
	env := s.Process.Env
	wantHome := "HOME=" + home
	if os.Geteuid() == 0 {
		wantHome = "HOME=/tmp" // root's command runs as nobody
	}
	for _, want := range []string{wantHome, "TERM=xterm-test", "USER=alice", "A=1", "B=x=y", "C="} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %s: %v", want, env)
		}
	}
	if !strings.HasPrefix(env[0], "PATH=/") {
		t.Errorf("env[0] = %q, want PATH", env[0])
	}
	for _, e := range env {
		if strings.HasPrefix(e, "AWS_") || strings.HasPrefix(e, "SSH_AUTH_SOCK") || e == "=bad" || e == "noequals" {
			t.Errorf("env carries %q", e)
		}
	}
}

func TestSandboxMounts(t *testing.T) {
	fakeHome(t)
	cwd := t.TempDir()
	t.Chdir(cwd)
	rw, ro := t.TempDir(), t.TempDir()
	s, err := sandboxSpec(&SandboxOptions{Args: []string{"true"}, RW: []string{rw}, RO: []string{ro}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.Cwd != cwd || s.Root.Path != "rootfs" || !s.Process.NoNewPrivileges {
		t.Errorf("process: cwd %q root %q nnp %v", s.Process.Cwd, s.Root.Path, s.Process.NoNewPrivileges)
	}
	if c := s.Process.Capabilities; c == nil || len(c.Bounding)+len(c.Permitted)+len(c.Effective)+len(c.Ambient)+len(c.Inheritable) != 0 {
		t.Errorf("capabilities: %+v, want none", c)
	}
	root := mountAt(s.Mounts, "/")
	if root == nil || root.Source != "/" || !slices.Contains(root.Options, "rro") {
		t.Errorf("root mount: %+v, want / recursively read-only", root)
	}
	for _, tc := range []struct{ dst, mode string }{{cwd, "rw"}, {rw, "rw"}, {ro, "ro"}} {
		m := mountAt(s.Mounts, tc.dst)
		if m == nil || m.Source != tc.dst || m.Type != "bind" || !slices.Contains(m.Options, tc.mode) || !slices.Contains(m.Options, "nosuid") {
			t.Errorf("mount of %s: %+v, want a %s bind", tc.dst, m, tc.mode)
		}
	}
	for _, dst := range []string{"/proc", "/dev", "/tmp", "/var/tmp", "/run", "/sys"} {
		if mountAt(s.Mounts, dst) == nil {
			t.Errorf("no fresh %s", dst)
		}
	}
	if m := mountAt(s.Mounts, "/tmp"); m != nil && m.Type != "tmpfs" {
		t.Errorf("/tmp is %s, want a fresh tmpfs", m.Type)
	}
	// Order: the root first, the caller's paths after the fresh mounts that
	// would otherwise cover them.
	if s.Mounts[0].Destination != "/" || s.Mounts[len(s.Mounts)-1].Destination != ro {
		t.Errorf("mount order: first %s, last %s", s.Mounts[0].Destination, s.Mounts[len(s.Mounts)-1].Destination)
	}
	hasNet := func(s *specs.Spec) bool {
		return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	}
	if !hasNet(s) {
		t.Error("no network namespace without --net")
	}
	s2, err := sandboxSpec(&SandboxOptions{Args: []string{"true"}, Net: true})
	if err != nil {
		t.Fatal(err)
	}
	if hasNet(s2) {
		t.Error("network namespace with --net")
	}
	// A fresh sysfs needs a network namespace of one's own; with --net it
	// is the host's, bound read-only.
	if m := mountAt(s.Mounts, "/sys"); m == nil || m.Type != "sysfs" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys without --net: %+v, want a read-only sysfs", m)
	}
	if m := mountAt(s2.Mounts, "/sys"); m == nil || m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, "rro") {
		t.Errorf("/sys with --net: %+v, want a recursively read-only bind of the host's", m)
	}
	// Relative --rw paths are made absolute against the cwd.
	os.Mkdir(filepath.Join(cwd, "sub"), 0o755)
	s3, err := sandboxSpec(&SandboxOptions{Args: []string{"true"}, RW: []string{"sub"}})
	if err != nil || mountAt(s3.Mounts, filepath.Join(cwd, "sub")) == nil {
		t.Errorf("relative --rw: %v", err)
	}
}

func TestSandboxRefusesMissingPaths(t *testing.T) {
	fakeHome(t)
	t.Chdir(t.TempDir())
	for _, so := range []*SandboxOptions{
		{Args: []string{"true"}, RW: []string{"/no/such/rw"}},
		{Args: []string{"true"}, RO: []string{"/no/such/ro"}},
	} {
		_, err := sandboxSpec(so)
		flag, path := "--rw", "/no/such/rw"
		if len(so.RO) > 0 {
			flag, path = "--ro", "/no/such/ro"
		}
		if err == nil || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no such file or directory") {
			t.Errorf("%s %s: %v", flag, path, err)
		}
	}
}

func TestSandboxUserNamespace(t *testing.T) {
	fakeHome(t)
	s, err := sandboxSpec(&SandboxOptions{Args: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	uid := uint32(os.Geteuid())
	want := uid
	if uid == 0 {
		want = nobody // as root the host's root-only files must stay closed
	}
	if s.Process.User.UID != want || s.Process.User.GID != want && uid == 0 {
		t.Errorf("process uid %d, want %d for caller %d", s.Process.User.UID, want, uid)
	}
	hasUser := slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
	if hasUser != (uid != 0) {
		t.Errorf("user namespace %v for uid %d", hasUser, uid)
	}
	if uid != 0 && (len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0] != specs.LinuxIDMapping{ContainerID: uid, HostID: uid, Size: 1}) {
		t.Errorf("uid mappings %+v, want the caller as themselves", s.Linux.UIDMappings)
	}
}

func TestSandboxNoCommand(t *testing.T) {
	code, err := Sandbox(&Options{Root: filepath.Join(t.TempDir(), "r")}, &SandboxOptions{})
	if code != 2 || err == nil || !strings.Contains(err.Error(), "no command") {
		t.Errorf("sandbox without a command: %d, %v", code, err)
	}
}

func TestSandboxHomeReadOnly(t *testing.T) {
	home := fakeHome(t)
	for _, c := range []struct {
		cwd  string
		rw   []string
		mode string
	}{
		{home, nil, "ro"},                        // the home directory itself
		{filepath.Dir(home), nil, "ro"},          // above it
		{filepath.Join(home, "proj"), nil, "rw"}, // a project inside it
		{home, []string{home}, "rw"},             // asked for
		{"/", nil, "ro"},
	} {
		so := &SandboxOptions{Args: []string{"true"}, RW: c.rw}
		if c.rw != nil {
			// sandboxMounts checks --rw paths exist.
			os.MkdirAll(c.rw[0], 0o755)
		}
		ms, err := sandboxMounts(c.cwd, so)
		if err != nil {
			t.Fatal(err)
		}
		m := mountAt(ms, c.cwd)
		if c.cwd == "/" {
			// The cwd bind of "/" comes after the root: take the last one.
			for i := len(ms) - 1; i >= 0; i-- {
				if ms[i].Destination == "/" {
					m = &ms[i]
					break
				}
			}
		}
		if m == nil || !slices.Contains(m.Options, c.mode) {
			t.Errorf("cwd %s (--rw %v): mount %+v, want %s", c.cwd, c.rw, m, c.mode)
		}
	}
}
