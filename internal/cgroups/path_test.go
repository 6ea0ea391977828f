package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	const (
		hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
		unified = `25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
		// A bind mount of a sub-cgroup (root is not "/") comes first, then
		// a second mount of the whole hierarchy elsewhere.
		elsewhere = `50 22 0:22 /user.slice /mnt/x rw - cgroup2 cgroup2 rw
51 22 0:22 / /mnt/my\040cgroup rw - cgroup2 cgroup2 rw
`
		v1only = `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`
	)
	tests := []struct {
		name, in, want, err string
	}{
		{"hybrid", hybrid, "/sys/fs/cgroup/unified", ""},
		{"unified", unified, "/sys/fs/cgroup", ""},
		{"prefers /sys/fs/cgroup", elsewhere + unified, "/sys/fs/cgroup", ""},
		{"escaped, not a sub-cgroup", elsewhere, "/mnt/my cgroup", ""},
		{"v1 only", v1only, "", "no cgroup2 file system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(tt.in))
			if !errContains(err, tt.err) || got != tt.want {
				t.Errorf("parseMountinfo = %q, %v; want %q, error %q", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestMountOnThisHost(t *testing.T) {
	m, err := Mount()
	if err != nil {
		t.Skipf("requires cgroup2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m, "cgroup.controllers")); err != nil {
		t.Errorf("Mount() = %s, which has no cgroup.controllers: %v", m, err)
	}
}

func TestOwn(t *testing.T) {
	tests := []struct{ name, in, want, err string }{
		{"hybrid", "9:name=systemd:/\n4:memory:/process_api/x\n0::/user.slice/u.scope\n", "/user.slice/u.scope", ""},
		{"root", "0::/\n", "/", ""},
		{"outside namespace", "0::/../../x\n", "", "outside this cgroup namespace"},
		{"v1 only", "4:memory:/x\n", "", "no cgroup v2 (0::) line"},
		{"relative", "0::x\n", "", "bad cgroup v2 path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cgroup")
			if err := os.WriteFile(file, []byte(tt.in), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ownFrom(file)
			if !errContains(err, tt.err) || got != tt.want {
				t.Errorf("ownFrom = %q, %v; want %q, error %q", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	const mount, own = "/sys/fs/cgroup", "/user.slice/user-1000.slice/user@1000.service/app.slice/zviz.scope"
	tests := []struct{ in, want, err string }{
		{"/zviz/c1", "/sys/fs/cgroup/zviz/c1", ""},
		{"/libpod_parent/libpod-abc", "/sys/fs/cgroup/libpod_parent/libpod-abc", ""},
		{"c1", "/sys/fs/cgroup" + own + "/c1", ""},
		{"a/b", "/sys/fs/cgroup" + own + "/a/b", ""},
		{"", "", `linux.cgroupsPath "": empty`},
		{"/", "", `linux.cgroupsPath "/": the root cgroup`},
		{"../x", "", `linux.cgroupsPath "../x": ".." component`},
		{"/a/../b", "", `".." component`},
		{"/a/./b", "", `"." component`},
		{"/a//b", "", "empty path component"},
		{"/a/b/", "", "empty path component"},
		{"/a\nb", "", "newline"},
		{"user.slice:libpod:abc", "", "needs --systemd-cgroup"},
	}
	for _, tt := range tests {
		got, err := Resolve(mount, own, tt.in)
		if !errContains(err, tt.err) || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q, error %q", tt.in, got, err, tt.want, tt.err)
		}
	}
	if _, err := Resolve(mount, "", "c1"); !errContains(err, "not an absolute path") {
		t.Errorf("relative path without own cgroup: %v", err)
	}
}

// Delegated's refusals are checked as an unprivileged user on the real
// hierarchy (TestRealDelegated): root passes every access(2) check.
func TestDelegatedFake(t *testing.T) {
	f := newFake(t, "memory", "pids")
	f.mkCgroup("deleg")
	if err := Delegated(filepath.Join(f.root, "deleg", "a", "b")); err != nil {
		t.Errorf("below an existing cgroup: %v", err)
	}
	if err := Delegated(filepath.Join(f.root, "deleg")); err != nil {
		t.Errorf("an existing cgroup: %v", err)
	}
	plain := t.TempDir()
	if err := Delegated(filepath.Join(plain, "x")); !errContains(err, "not in a cgroup v2 hierarchy") {
		t.Errorf("outside a hierarchy: %v", err)
	}
	if err := Delegated(filepath.Join(f.root, "cgroup.procs", "x")); !errContains(err, "not a directory") {
		t.Errorf("below a file: %v", err)
	}
}

// errContains reports whether err matches want: nil for "", else an error
// whose text contains want.
func errContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}

// TestMissing: the topmost directory Create would make.
func TestMissing(t *testing.T) {
	f := newFake(t, "pids")
	if got, want := Missing(filepath.Join(f.root, "a", "b")), filepath.Join(f.root, "a"); got != want {
		t.Errorf("Missing(root/a/b) = %q, want %q", got, want)
	}
	if got := Missing(f.root); got != "" {
		t.Errorf("Missing(an existing cgroup) = %q, want \"\"", got)
	}
	if _, err := Create(filepath.Join(f.root, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if got := Missing(filepath.Join(f.root, "a", "b", "c")); got != filepath.Join(f.root, "a", "b", "c") {
		t.Errorf("Missing(root/a/b/c) after Create(root/a/b) = %q", got)
	}
}
