package container

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/hostcheck"
	"github.com/zviz/zviz/seccomp"
)

func TestDecideIsolation(t *testing.T) {
	fail := hostcheck.ProbeResult{Step: "make-private", Errno: "EPERM"}
	newPlan := func() *nsPlan {
		return &nsPlan{cloneFlags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID, newUser: true, newNet: true,
			join: map[specs.LinuxNamespaceType]string{}}
	}
	// The probe can mount: full isolation, the plan untouched.
	p := newPlan()
	iso, err := decideIsolation(&Options{RequireFullIsolation: true}, p, hostcheck.ProbeResult{OK: true})
	if err != nil || iso.mode != IsolationFull || p.cloneFlags != newPlan().cloneFlags {
		t.Errorf("probe ok: %+v %v, plan %+v", iso, err, p)
	}
	// It cannot: the fallback, with no namespace at all.
	p = newPlan()
	iso, err = decideIsolation(&Options{}, p, fail)
	if err != nil || !iso.chdirOnly() || p.cloneFlags != 0 || p.newUser || p.newNet ||
		!strings.Contains(iso.why, "a new user namespace cannot mount (make-private: EPERM)") {
		t.Errorf("probe failed: %+v %v, plan %+v", iso, err, p)
	}
	// Refused when asked, and for a namespace to join.
	if _, err := decideIsolation(&Options{RequireFullIsolation: true}, newPlan(), fail); err == nil ||
		!strings.HasPrefix(err.Error(), "--require-full-isolation: full isolation is not available: a new user namespace") {
		t.Errorf("--require-full-isolation: %v", err)
	}
	p = newPlan()
	p.join[specs.NetworkNamespace] = "/run/netns/x"
	if _, err := decideIsolation(&Options{}, p, fail); err == nil || !strings.Contains(err.Error(), "joining the network namespace /run/netns/x needs full isolation") {
		t.Errorf("join: %v", err)
	}
	// A profile may require it.
	prof := &seccomp.Profile{Name: "strict", Required: []string{"seccomp", "isolation"}}
	if err := checkIsolationRequired(prof, iso); err == nil || !strings.HasPrefix(err.Error(), "profile strict requires isolation: ") {
		t.Errorf("profile requiring isolation: %v", err)
	}
	if err := checkIsolationRequired(prof, &isolation{mode: IsolationFull}); err != nil {
		t.Errorf("full isolation refused: %v", err)
	}
}

// TestChdirOnlyLandlockRules: the rootfs and the bind sources, host
// devices, no /proc and nothing else; a masked path is cut out of its
// grant, leaving its parents listable only.
func TestChdirOnlyLandlockRules(t *testing.T) {
	base := t.TempDir()
	rootfs := filepath.Join(base, "rootfs")
	data := filepath.Join(base, "data")
	home := filepath.Join(base, "home")
	for _, d := range []string{rootfs, data, filepath.Join(home, ".ssh"), filepath.Join(home, "src"), filepath.Join(home, ".config", "gcloud"), filepath.Join(home, ".config", "git")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, ".profile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: specs.NetworkNamespace}},
			MaskedPaths: []string{"/proc/kcore"},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "ro"}},
		},
	}
	iso := &isolation{mode: IsolationChdirOnly, root: rootfs}
	r := iso.landlockRules(s, &seccomp.Profile{Network: seccomp.Network{Allow: []string{"*:443"}}})
	if !slices.Equal(r.Writable, append([]string{"/dev/full", "/dev/null", "/dev/random", "/dev/tty", "/dev/urandom", "/dev/zero"}, rootfs)) ||
		!slices.Equal(r.ReadExec, []string{data}) || len(r.ListOnly) > 0 || !r.Scope ||
		!r.RestrictNetwork || !slices.Equal(r.TCPConnect, []uint16{443}) {
		t.Errorf("bundle rules: %+v", r)
	}

	// A host-root config (zviz sandbox): the system directories, the
	// home directory bound read-only with .ssh and .config/gcloud masked.
	s.Root.Readonly = true
	s.Mounts = []specs.Mount{
		{Destination: "/", Type: "bind", Source: "/", Options: []string{"rbind", "rro"}},
		{Destination: home, Type: "bind", Source: home, Options: []string{"rbind", "ro"}},
	}
	s.Linux.MaskedPaths = []string{filepath.Join(home, ".ssh"), filepath.Join(home, ".config", "gcloud")}
	s.Linux.Namespaces = nil
	iso = &isolation{mode: IsolationChdirOnly, root: "/"}
	r = iso.landlockRules(s, &seccomp.Profile{})
	want := append(slices.Clone(systemDirs), filepath.Join(home, ".config", "git"), filepath.Join(home, ".profile"), filepath.Join(home, "src"))
	slices.Sort(want)
	if !slices.Equal(r.ReadExec, want) || !slices.Equal(r.ListOnly, []string{home, filepath.Join(home, ".config")}) || r.RestrictNetwork {
		t.Errorf("host-root rules: read-exec %q, list-only %q, want %q and the two parents", r.ReadExec, r.ListOnly, want)
	}
	for _, p := range append(r.ReadExec, r.Writable...) {
		if p == "/" || p == "/proc" || p == "/home" || p == "/tmp" || strings.HasPrefix(p, filepath.Join(home, ".ssh")) {
			t.Errorf("granted %s", p)
		}
	}
}

// TestChdirOnlyAdapt: without a user namespace, an unprivileged caller's
// process runs as the caller without capabilities, root's as the host ids
// its user maps to; what is lost is said.
func TestChdirOnlyAdapt(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s := &specs.Spec{
		Process: &specs.Process{User: specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{5}},
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}},
		Linux:  &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace}}, UIDMappings: maps, GIDMappings: maps},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
	}
	iso := &isolation{mode: IsolationChdirOnly, why: "probe"}
	w := strings.Join(iso.adapt(s, "/b/rootfs"), "\n")
	u := s.Process.User
	want := []string{"isolation: chdir-only (probe)", "not mounted: /proc"}
	if os.Geteuid() == 0 {
		if u.UID != 100000 || u.GID != 100000 || !slices.Equal(u.AdditionalGids, []uint32{100005}) ||
			len(s.Process.Capabilities.Bounding) != 1 {
			t.Errorf("root's process: user %+v caps %+v, want the mapped host ids", u, s.Process.Capabilities)
		}
	} else {
		if u.UID != uint32(os.Geteuid()) || u.GID != uint32(os.Getegid()) || len(u.AdditionalGids) > 0 ||
			len(s.Process.Capabilities.Bounding) > 0 {
			t.Errorf("the caller's process: user %+v caps %+v", u, s.Process.Capabilities)
		}
		want = append(want, "runs as the caller", "process.capabilities: none")
	}
	if iso.root != "/b/rootfs" {
		t.Errorf("root %s", iso.root)
	}
	for _, sub := range want {
		if !strings.Contains(w, sub) {
			t.Errorf("warnings lack %q:\n%s", sub, w)
		}
	}
}

// TestMayRestrict: the probe runs where something could refuse a new
// namespace its mounts, and only there.
func TestMayRestrict(t *testing.T) {
	type files struct{ status, selinux, apparmor, label, restrict string }
	for _, c := range []struct {
		name string
		f    files
		want bool
		why  string
	}{
		{"plain host", files{status: "Seccomp:\t0\nNoNewPrivs:\t0\n"}, false, ""},
		{"seccomp filter", files{status: "NoNewPrivs:\t0\nSeccomp:\t2\n"}, true, "Seccomp 2"},
		{"no_new_privs", files{status: "NoNewPrivs:\t1\nSeccomp:\t0\n"}, true, "NoNewPrivs 1"},
		{"selinux", files{status: "Seccomp:\t0\n", selinux: "1"}, true, "SELinux"},
		{"apparmor, unconfined, no sysctl (trixie)", files{apparmor: "Y\n", label: "unconfined\n"}, false, ""},
		{"ubuntu restriction, unconfined", files{apparmor: "Y\n", label: "unconfined\n", restrict: "1\n"}, true, "restrict_unprivileged_userns=1"},
		{"ubuntu restriction off", files{apparmor: "Y\n", label: "unconfined\n", restrict: "0\n"}, false, ""},
		{"ubuntu, the shipped profile", files{apparmor: "Y\n", label: "zviz (unconfined)\n", restrict: "1\n"}, false, ""},
		{"another profile", files{apparmor: "Y\n", label: "zviz-restricted (enforce)\n"}, true, "zviz-restricted (enforce)"},
		{"apparmor disabled", files{apparmor: "N\n", label: "foo (enforce)\n", restrict: "1\n"}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, content string) string {
				p := filepath.Join(dir, name)
				if content != "" {
					if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return p
			}
			f := restrictFiles{
				write("status", c.f.status), write("enforce", c.f.selinux), write("enabled", c.f.apparmor),
				write("current", c.f.label), write("restrict", c.f.restrict),
			}
			got, why := mayRestrict(f)
			if got != c.want || !strings.Contains(why, c.why) {
				t.Errorf("mayRestrict = %v, %q; want %v, %q", got, why, c.want, c.why)
			}
		})
	}
}

// TestDescendants: the children and grandchildren of a process, not its
// parent or siblings (what kill --all reaches without a pid namespace or a
// cgroup).
func TestDescendants(t *testing.T) {
	c := exec.Command("/bin/sh", "-c", "sleep 30 & sh -c 'sleep 30 & wait' & wait")
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killed as a group below
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { unix.Kill(-c.Process.Pid, unix.SIGKILL); c.Process.Kill(); c.Wait() }()
	var got []int
	for range 100 {
		if got = descendants(c.Process.Pid); len(got) >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 3 || slices.Contains(got, os.Getpid()) || slices.Contains(got, c.Process.Pid) {
		t.Fatalf("descendants of sh %d: %v, want its 3 (sleep, sh, sleep)", c.Process.Pid, got)
	}
	for _, p := range got {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm")
		if s := strings.TrimSpace(string(comm)); s != "sleep" && s != "sh" {
			t.Errorf("descendant %d is %q", p, s)
		}
	}
	if d := descendants(os.Getpid()); !slices.Contains(d, c.Process.Pid) {
		t.Errorf("descendants of the test %v lack its child %d", d, c.Process.Pid)
	}
}
