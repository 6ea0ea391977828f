package testutil

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseAtLeast(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"landlock>=4", 4, true},
		{"landlock>=0", 0, true},
		{"landlock>=", 0, false},
		{"landlock>=x", 0, false},
		{"landlock>=-1", 0, false},
		{"landlock", 0, false},
		{"seccomp>=4", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseAtLeast(tt.in, "landlock")
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseAtLeast(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestLandlockAtLeast(t *testing.T) {
	abi := func(v int, err error) func() (int, error) { return func() (int, error) { return v, err } }
	errNo := errors.New("landlock_create_ruleset: operation not supported")
	tests := []struct {
		want    int
		abi     func() (int, error)
		missing bool
	}{
		{4, abi(7, nil), false},
		{7, abi(7, nil), false},
		{8, abi(7, nil), true},
		{1, abi(0, errNo), true},
	}
	for _, tt := range tests {
		err := landlockAtLeast(tt.want, tt.abi)
		if (err != nil) != tt.missing {
			t.Errorf("landlockAtLeast(%d) = %v, want missing=%v", tt.want, err, tt.missing)
		}
	}
}

func TestFeatureMissingUnknown(t *testing.T) {
	for _, f := range []string{"rooot", "landlock>4", ""} {
		if _, known := featureMissing(f); known {
			t.Errorf("featureMissing(%q) says known", f)
		}
	}
	for _, f := range []string{"root", "landlock>=1", "runc"} {
		if _, known := featureMissing(f); !known {
			t.Errorf("featureMissing(%q) says unknown", f)
		}
	}
}

func TestSubIDCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subuid")
	content := "alice:100000:65536\nzviztest:165536:65536\n1001:300000:1000\nbad line\nzviztest:1:x\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, uid string
		want      int64
	}{
		{"zviztest", "1001", 66536},
		{"alice", "1000", 65536},
		{"bob", "1002", 0},
	}
	for _, tt := range tests {
		got, err := subIDCount(path, tt.name, tt.uid)
		if err != nil || got != tt.want {
			t.Errorf("subIDCount(%s) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if _, err := subIDCount(filepath.Join(t.TempDir(), "missing"), "x", "1"); err == nil {
		t.Error("subIDCount of a missing file: no error")
	}
}

func TestIsModule(t *testing.T) {
	tests := []struct {
		gomod string
		want  bool
	}{
		{"module github.com/zviz/zviz\n\ngo 1.26\n", true},
		{"module \"github.com/zviz/zviz\"\n", true},
		{"module github.com/zviz/zviz/tests\n", false},
		{"// module github.com/zviz/zviz\n", false},
	}
	for _, tt := range tests {
		if got := isModule(tt.gomod, modulePath); got != tt.want {
			t.Errorf("isModule(%q) = %v, want %v", tt.gomod, got, tt.want)
		}
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "tests", "testutil")); err != nil {
		t.Errorf("ModuleRoot() = %s, which has no tests/testutil: %v", root, err)
	}
}

func TestDecodeOne(t *testing.T) {
	var v struct{ A int }
	if err := decodeOne([]byte("  {\"A\": 3}\n"), &v); err != nil || v.A != 3 {
		t.Errorf("decodeOne = %v, A=%d", err, v.A)
	}
	for _, bad := range []string{"", "{", "{\"A\":1} {\"A\":2}", "ready\n{}"} {
		if err := decodeOne([]byte(bad), &v); err == nil {
			t.Errorf("decodeOne(%q): no error", bad)
		}
	}
}

func TestDefaultSpec(t *testing.T) {
	s := DefaultSpec(true, 1001, 1002)
	if !hasNS(s, specs.UserNamespace) || !hasNS(s, specs.NetworkNamespace) {
		t.Errorf("rootless spec namespaces = %v, want user and network", s.Linux.Namespaces)
	}
	if m := s.Linux.UIDMappings; len(m) != 1 || m[0].HostID != 1001 || m[0].ContainerID != 0 || m[0].Size != 1 {
		t.Errorf("uid mappings = %+v", m)
	}
	if m := s.Linux.GIDMappings; len(m) != 1 || m[0].HostID != 1002 {
		t.Errorf("gid mappings = %+v", m)
	}
	if slices.Contains(s.Mounts[2].Options, "gid=5") {
		t.Error("rootless devpts has gid=5, which cannot be mapped")
	}
	r := DefaultSpec(false, 0, 0)
	if hasNS(r, specs.UserNamespace) || len(r.Linux.UIDMappings) != 0 {
		t.Error("root spec has a user namespace")
	}
	if !r.Root.Readonly || r.Process.Terminal || r.Process.Args[0] != "/probe" {
		t.Errorf("root spec: readonly=%v terminal=%v args=%v", r.Root.Readonly, r.Process.Terminal, r.Process.Args)
	}
}

func hasNS(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return true
		}
	}
	return false
}

func TestWriteBundle(t *testing.T) {
	Requires(t, "busybox")
	dir := t.TempDir()
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, DefaultSpec(false, 0, 0), probe, []string{"sh", "true"}); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{
		"":                       0o755 | os.ModeDir,
		"rootfs/usr/bin/busybox": 0o755,
		"rootfs/probe":           0o755,
		"rootfs/tmp":             0o777 | os.ModeDir | os.ModeSticky,
		"config.json":            0o644,
	} {
		st, err := os.Stat(filepath.Join(dir, path))
		if err != nil {
			t.Errorf("stat %s: %v", path, err)
		} else if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "rootfs/bin/sh")); err != nil || target != "/usr/bin/busybox" {
		t.Errorf("rootfs/bin/sh -> %q, %v", target, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	DecodeJSON(t, b, &s)
	if s.Root == nil || s.Root.Path != "rootfs" {
		t.Errorf("config.json root = %+v", s.Root)
	}
}

func TestUserEnv(t *testing.T) {
	u := &user.User{Username: "zviztest", HomeDir: "/home/zviztest"}
	env := strings.Join(userEnv(u, 1001), "\n")
	for _, want := range []string{"HOME=/home/zviztest", "USER=zviztest", "XDG_RUNTIME_DIR=/run/user/1001", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("userEnv lacks %s:\n%s", want, env)
		}
	}
	if env := strings.Join(userEnv(&user.User{Username: "root", HomeDir: "/root"}, 0), "\n"); strings.Contains(env, "XDG_RUNTIME_DIR") {
		t.Errorf("root's env has XDG_RUNTIME_DIR:\n%s", env)
	}
}
