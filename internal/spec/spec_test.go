package spec

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func writeConfig(t *testing.T, bundle, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	valid, err := json.MarshalIndent(Example(false, 0, 0), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		config  string // "" = no config.json
		wantErr string // exact; BUNDLE replaced; "" = success
	}{
		{name: "valid", config: string(valid)},
		{name: "unknown top-level fields tolerated",
			config: strings.Replace(string(valid), "{", `{"zvizFuture": {"x": 1}, "vm": null,`, 1)},
		{name: "missing", wantErr: "bundle BUNDLE: config.json: no such file or directory"},
		{name: "syntax error", config: "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\"args\": [\"sh\",]}\n}",
			wantErr: "config.json: line 3 col 29: invalid character ']' looking for beginning of value"},
		{name: "type error", config: "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\"args\": \"sh\"}\n}",
			wantErr: "config.json: line 3 col " + typeErrCol() + ": process.args: cannot use JSON string as []string"},
		{name: "truncated", config: `{"ociVersion": "1.0.0"`,
			wantErr: "config.json: line 1 col " + eofCol() + ": unexpected end of JSON input"},
		{name: "validation failures", config: `{"ociVersion": "1.0.0", "root": {"path": "rootfs"}}`,
			wantErr: "config.json: process: must be present"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := testBundle(t)
			if tt.config != "" {
				writeConfig(t, bundle, tt.config)
			}
			s, err := Load(bundle)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load() error = %v", err)
				}
				if !reflect.DeepEqual(s, Example(false, 0, 0)) {
					t.Errorf("Load() = %+v, want the example back", s)
				}
				return
			}
			if s != nil {
				t.Errorf("Load() returned a spec with error %v", err)
			}
			if want := strings.ReplaceAll(tt.wantErr, "BUNDLE", bundle); err == nil || err.Error() != want {
				t.Fatalf("Load() error = %v, want %q", err, want)
			}
		})
	}
}

func TestLoadMissingKeepsErrno(t *testing.T) {
	_, err := Load(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load() error = %v, want errors.Is(fs.ErrNotExist)", err)
	}
}

func TestExample(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		s := Example(rootless, 1001, 1002)
		bundle := testBundle(t)
		// What `zviz spec` writes must load back and validate.
		data, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		writeConfig(t, bundle, string(data))
		if _, err := Load(bundle); err != nil {
			t.Fatalf("Example(rootless=%v) does not load: %v", rootless, err)
		}
		ns := Namespaces(s)
		for _, want := range []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount", "cgroup"} {
			if p, ok := ns[want]; !ok || p != "" {
				t.Errorf("Example(rootless=%v): no new %s namespace", rootless, want)
			}
		}
		if _, user := ns[specs.UserNamespace]; user != rootless {
			t.Errorf("Example(rootless=%v): user namespace = %v", rootless, user)
		}
		if got := s.Process.Capabilities.Bounding; !slices.Equal(got, []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}) {
			t.Errorf("Example(rootless=%v) capabilities = %v, want runc's default set", rootless, got)
		}
		sys := s.Mounts[slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" })]
		devpts := s.Mounts[slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/pts" })]
		if !rootless {
			if sys.Type != "sysfs" || !slices.Contains(devpts.Options, "gid=5") || s.Linux.Resources == nil {
				t.Errorf("Example(false): /sys %+v, devpts %v, resources %v: want sysfs, gid=5, device rules", sys, devpts.Options, s.Linux.Resources)
			}
			continue
		}
		if want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 1}}; !reflect.DeepEqual(s.Linux.UIDMappings, want) {
			t.Errorf("Example(true) uidMappings = %v, want %v", s.Linux.UIDMappings, want)
		}
		if want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1002, Size: 1}}; !reflect.DeepEqual(s.Linux.GIDMappings, want) {
			t.Errorf("Example(true) gidMappings = %v, want %v", s.Linux.GIDMappings, want)
		}
		if sys.Type != "none" || sys.Source != "/sys" || !slices.Equal(sys.Options, []string{"rbind", "nosuid", "noexec", "nodev", "ro"}) {
			t.Errorf("Example(true) /sys = %+v, want a read-only rbind of /sys", sys)
		}
		for _, m := range s.Mounts {
			for _, o := range m.Options {
				if strings.HasPrefix(o, "gid=") || strings.HasPrefix(o, "uid=") {
					t.Errorf("Example(true) mount %s keeps option %s", m.Destination, o)
				}
			}
		}
		if s.Linux.Resources != nil {
			t.Errorf("Example(true) resources = %+v, want none", s.Linux.Resources)
		}
	}
	// The rootless conversion must not alias the shared default slices.
	_ = Example(true, 1, 1)
	if d := Example(false, 0, 0).Mounts[2].Options; !slices.Contains(d, "gid=5") {
		t.Errorf("Example(false) devpts options after a rootless Example = %v", d)
	}
}

func TestRootfsPath(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		root, bundle, want string
	}{
		{"rootfs", "/b", "/b/rootfs"},
		{"/abs/root/", "/b", "/abs/root"},
		{"../shared/rootfs", "/b/c", "/b/shared/rootfs"},
		{"rootfs", "rel", filepath.Join(wd, "rel", "rootfs")},
	}
	for _, tt := range tests {
		s := &specs.Spec{Root: &specs.Root{Path: tt.root}}
		if got := RootfsPath(s, tt.bundle); got != tt.want {
			t.Errorf("RootfsPath(%q, %q) = %q, want %q", tt.root, tt.bundle, got, tt.want)
		}
	}
	if got := RootfsPath(&specs.Spec{}, "/b"); got != "" {
		t.Errorf("RootfsPath(no root) = %q, want empty", got)
	}
}

func TestNamespaces(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: "pid"}, {Type: "network", Path: "/run/netns/x"}, {Type: "pid", Path: "/ignored"},
	}}}
	want := map[specs.LinuxNamespaceType]string{"pid": "", "network": "/run/netns/x"}
	if got := Namespaces(s); !reflect.DeepEqual(got, want) {
		t.Errorf("Namespaces() = %v, want %v", got, want)
	}
	if got := Namespaces(&specs.Spec{}); len(got) != 0 {
		t.Errorf("Namespaces(no linux) = %v, want empty", got)
	}
}

// The JSON implementations place a type error differently: v1 just past
// the value (col 26), v2 at its start (col 23); and the end of input at
// the last byte (v1) or just past it (v2).
func typeErrCol() string {
	if offsetPast() == 0 {
		return "23"
	}
	return "26"
}

func eofCol() string {
	if offsetPast() == 0 {
		return "23"
	}
	return "22"
}
