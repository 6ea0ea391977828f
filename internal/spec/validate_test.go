package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// testBundle makes a bundle directory with an empty rootfs and returns it.
func testBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"rootfs", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ptr[T any](v T) *T { return &v }

func addNS(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

func dropNS(s *specs.Spec, t specs.LinuxNamespaceType) {
	var keep []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != t {
			keep = append(keep, ns)
		}
	}
	s.Linux.Namespaces = keep
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		rootless bool
		mod      func(s *specs.Spec, bundle string)
		want     []string // exact error lines, BUNDLE replaced; nil = valid
	}{
		{name: "example is valid", mod: func(*specs.Spec, string) {}},
		{name: "rootless example is valid", rootless: true, mod: func(*specs.Spec, string) {}},

		// ociVersion
		{name: "ociVersion 1.0.2-dev", mod: func(s *specs.Spec, _ string) { s.Version = "1.0.2-dev" }},
		{name: "ociVersion 1.1", mod: func(s *specs.Spec, _ string) { s.Version = "1.1" }},
		{name: "ociVersion 0.1", mod: func(s *specs.Spec, _ string) { s.Version = "0.1" },
			want: []string{`config.json: ociVersion "0.1": unsupported (want 1.x)`}},
		{name: "ociVersion 2.0.0", mod: func(s *specs.Spec, _ string) { s.Version = "2.0.0" },
			want: []string{`config.json: ociVersion "2.0.0": unsupported (want 1.x)`}},
		{name: "ociVersion empty", mod: func(s *specs.Spec, _ string) { s.Version = "" },
			want: []string{`config.json: ociVersion: must not be empty`}},

		// root
		{name: "root absolute", mod: func(s *specs.Spec, b string) { s.Root.Path = filepath.Join(b, "rootfs") }},
		{name: "root via symlink", mod: func(s *specs.Spec, b string) {
			_ = os.Symlink("rootfs", filepath.Join(b, "link"))
			s.Root.Path = "link"
		}},
		{name: "root missing", mod: func(s *specs.Spec, _ string) { s.Root = nil },
			want: []string{`config.json: root.path: must not be empty`}},
		{name: "root does not exist", mod: func(s *specs.Spec, _ string) { s.Root.Path = "nope" },
			want: []string{`bundle BUNDLE: rootfs "nope": no such file or directory`}},
		{name: "root is a file", mod: func(s *specs.Spec, _ string) { s.Root.Path = "file" },
			want: []string{`bundle BUNDLE: rootfs "file": not a directory`}},

		// process
		{name: "process missing", mod: func(s *specs.Spec, _ string) { s.Process = nil },
			want: []string{`config.json: process: must be present`}},
		{name: "args empty", mod: func(s *specs.Spec, _ string) { s.Process.Args = nil },
			want: []string{`config.json: process.args: must not be empty`}},
		{name: "args[0] empty", mod: func(s *specs.Spec, _ string) { s.Process.Args = []string{"", "x"} },
			want: []string{`config.json: process.args[0]: must not be empty`}},
		{name: "cwd relative", mod: func(s *specs.Spec, _ string) { s.Process.Cwd = "tmp" },
			want: []string{`config.json: process.cwd "tmp": must be an absolute path`}},
		{name: "cwd empty", mod: func(s *specs.Spec, _ string) { s.Process.Cwd = "" },
			want: []string{`config.json: process.cwd: must not be empty`}},

		// process.env
		{name: "env empty value", mod: func(s *specs.Spec, _ string) { s.Process.Env = append(s.Process.Env, "A=") }},
		{name: "env without =", mod: func(s *specs.Spec, _ string) { s.Process.Env = append(s.Process.Env, "FOO") },
			want: []string{`config.json: process.env[2] "FOO": must be NAME=VALUE`}},
		{name: "env empty name", mod: func(s *specs.Spec, _ string) { s.Process.Env = []string{"=x"} },
			want: []string{`config.json: process.env[0] "=x": name must not be empty`}},
		{name: "env NUL", mod: func(s *specs.Spec, _ string) { s.Process.Env = []string{"A=b\x00c"} },
			want: []string{`config.json: process.env[0]: must not contain a NUL byte`}},

		// process.user
		{name: "user -1", mod: func(s *specs.Spec, _ string) { s.Process.User.UID, s.Process.User.GID = 1<<32-1, 1<<32-1 },
			want: []string{`config.json: process.user.uid: 4294967295 is the invalid id -1`,
				`config.json: process.user.gid: 4294967295 is the invalid id -1`}},
		{name: "umask", mod: func(s *specs.Spec, _ string) { s.Process.User.Umask = ptr[uint32](0o1022) },
			want: []string{`config.json: process.user.umask: 01022 has bits outside 0777`}},
		{name: "user not mapped", rootless: true, mod: func(s *specs.Spec, _ string) {
			s.Process.User = specs.User{UID: 5, GID: 0, AdditionalGids: []uint32{0, 7}}
		}, want: []string{`config.json: process.user.uid: 5 is not mapped by linux.uidMappings`,
			`config.json: process.user.additionalGids[1]: 7 is not mapped by linux.gidMappings`}},
		{name: "user mapped by ranges", rootless: true, mod: func(s *specs.Spec, _ string) {
			s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 1, HostID: 100000, Size: 65536})
			s.Linux.GIDMappings = append(s.Linux.GIDMappings, specs.LinuxIDMapping{ContainerID: 1, HostID: 100000, Size: 65536})
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5, 65536}}
		}},
		{name: "any user without userns", mod: func(s *specs.Spec, _ string) { s.Process.User = specs.User{UID: 5000, GID: 5000} }},

		// process.rlimits
		{name: "rlimits valid", mod: func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: 0, Hard: 0})
		}},
		{name: "rlimit unknown", mod: func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_FOO"})
		}, want: []string{`config.json: process.rlimits[1].type "RLIMIT_FOO": unknown rlimit`}},
		{name: "rlimit soft above hard", mod: func(s *specs.Spec, _ string) { s.Process.Rlimits[0].Soft = 2048 },
			want: []string{`config.json: process.rlimits[0]: RLIMIT_NOFILE soft limit 2048 exceeds hard limit 1024`}},
		{name: "rlimit duplicate", mod: func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, s.Process.Rlimits[0])
		}, want: []string{`config.json: process.rlimits[1]: duplicate RLIMIT_NOFILE (also process.rlimits[0])`}},

		// process.oomScoreAdj
		{name: "oom -1000", mod: func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = ptr(-1000) }},
		{name: "oom 1001", mod: func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = ptr(1001) },
			want: []string{`config.json: process.oomScoreAdj: 1001 is outside -1000..1000`}},

		// process.consoleSize
		{name: "console with terminal", mod: func(s *specs.Spec, _ string) { s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80} }},
		{name: "console without terminal", mod: func(s *specs.Spec, _ string) {
			s.Process.Terminal = false
			s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
		}, want: []string{`config.json: process.consoleSize: requires process.terminal`}},

		// hostname
		{name: "hostname in joined uts", mod: func(s *specs.Spec, _ string) {
			dropNS(s, specs.UTSNamespace)
			addNS(s, specs.UTSNamespace, "/proc/self/ns/uts")
		}},
		{name: "hostname without uts", mod: func(s *specs.Spec, _ string) {
			dropNS(s, specs.UTSNamespace)
			s.Domainname = "example.org"
		}, want: []string{`config.json: hostname: requires a uts namespace in linux.namespaces`,
			`config.json: domainname: requires a uts namespace in linux.namespaces`}},
		{name: "hostname too long", mod: func(s *specs.Spec, _ string) { s.Hostname = strings.Repeat("h", 65) },
			want: []string{`config.json: hostname: 65 bytes exceed the limit of 64`}},

		// linux.namespaces
		{name: "join existing namespace", mod: func(s *specs.Spec, _ string) {
			dropNS(s, specs.NetworkNamespace)
			addNS(s, specs.NetworkNamespace, "/proc/self/ns/net")
		}},
		{name: "no linux section", mod: func(s *specs.Spec, _ string) { s.Linux, s.Hostname = nil, "" }},
		{name: "namespace unknown type", mod: func(s *specs.Spec, _ string) { addNS(s, "foo", "") },
			want: []string{`config.json: linux.namespaces[6].type "foo": unknown namespace type`}},
		{name: "namespace duplicate", mod: func(s *specs.Spec, _ string) { addNS(s, specs.PIDNamespace, "") },
			want: []string{`config.json: linux.namespaces[6].type "pid": duplicate of linux.namespaces[0]`}},
		{name: "namespace path relative", mod: func(s *specs.Spec, _ string) {
			dropNS(s, specs.IPCNamespace)
			addNS(s, specs.IPCNamespace, "proc/1/ns/ipc")
		}, want: []string{`config.json: linux.namespaces[5].path "proc/1/ns/ipc": must be an absolute path`}},
		{name: "namespace path missing", mod: func(s *specs.Spec, _ string) {
			dropNS(s, specs.IPCNamespace)
			addNS(s, specs.IPCNamespace, "/proc/self/ns/nope")
		}, want: []string{`config.json: linux.namespaces[5].path "/proc/self/ns/nope": no such file or directory`}},

		// linux.uidMappings / gidMappings
		{name: "mappings without userns", mod: func(s *specs.Spec, _ string) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, want: []string{`config.json: linux.uidMappings: requires a user namespace in linux.namespaces`,
			`config.json: linux.gidMappings: requires a user namespace in linux.namespaces`}},
		{name: "userns without mappings", mod: func(s *specs.Spec, _ string) { addNS(s, specs.UserNamespace, "") }},
		{name: "mappings overlap", rootless: true, mod: func(s *specs.Spec, _ string) {
			s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 0, HostID: 100000, Size: 10})
		}, want: []string{`config.json: linux.uidMappings[1]: overlaps linux.uidMappings[0] (container ids)`}},
		{name: "gid mappings missing", rootless: true, mod: func(s *specs.Spec, _ string) {
			s.Linux.GIDMappings = nil
			s.Linux.UIDMappings[0].Size = 0
		}, want: []string{`config.json: process.user.uid: 0 is not mapped by linux.uidMappings`,
			`config.json: linux.gidMappings: must not be empty when linux.uidMappings is set`,
			`config.json: linux.uidMappings[0]: size must not be zero`}},
		{name: "idmapped mount", mod: func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "data",
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}})
		}, want: []string{`config.json: mounts[7].gidMappings: must not be empty when mounts[7].uidMappings is set`}},

		// linux.timeOffsets
		{name: "time offsets with time ns", mod: func(s *specs.Spec, _ string) {
			addNS(s, specs.TimeNamespace, "")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}},
		{name: "time offsets without time ns", mod: func(s *specs.Spec, _ string) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, want: []string{`config.json: linux.timeOffsets: requires a new time namespace in linux.namespaces`}},

		// mounts
		{name: "bind relative source and relative destination", mod: func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "data", Source: "data", Options: []string{"rbind", "ro"}})
		}},
		{name: "mount destination empty", mod: func(s *specs.Spec, _ string) { s.Mounts[0].Destination = "" },
			want: []string{`config.json: mounts[0].destination: must not be empty`}},
		{name: "bind source missing", mod: func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent/zviz"})
		}, want: []string{`config.json: mounts[7].source "/nonexistent/zviz": no such file or directory`}},
		{name: "bind source empty", mod: func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Options: []string{"bind"}})
		}, want: []string{`config.json: mounts[7].source: must not be empty for a bind mount`}},
		{name: "mount type empty", mod: func(s *specs.Spec, _ string) { s.Mounts[0].Type = "" },
			want: []string{`config.json: mounts[0].type: must not be empty (unless a bind mount)`}},

		// linux.maskedPaths / readonlyPaths
		{name: "masked path relative", mod: func(s *specs.Spec, _ string) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "proc/kcore")
			s.Linux.ReadonlyPaths[0] = "proc/bus"
		}, want: []string{`config.json: linux.maskedPaths[11] "proc/kcore": must be an absolute path`,
			`config.json: linux.readonlyPaths[0] "proc/bus": must be an absolute path`}},

		// linux.sysctl
		{name: "sysctl namespaced", mod: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1",
				"fs.mqueue.msg_max": "10", "net/ipv4/conf/eth0.100/forwarding": "0"}
		}},
		{name: "sysctl invalid", mod: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"net..ipv4": "1", "net.ipv4 .x": "1"}
		}, want: []string{`config.json: linux.sysctl "net..ipv4": invalid sysctl name`,
			`config.json: linux.sysctl "net.ipv4 .x": invalid sysctl name`}},
		{name: "sysctl host-wide", mod: func(s *specs.Spec, _ string) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} },
			want: []string{`config.json: linux.sysctl "vm.swappiness": not namespaced: setting it would change the host`}},
		{name: "sysctl net without netns", mod: func(s *specs.Spec, _ string) {
			dropNS(s, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, want: []string{`config.json: linux.sysctl "net.ipv4.ip_forward": requires a network namespace in linux.namespaces`}},

		// hooks
		{name: "hooks valid", mod: func(s *specs.Spec, _ string) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/true", Timeout: ptr(5)}}}
		}},
		{name: "hook relative and zero timeout", mod: func(s *specs.Spec, _ string) {
			s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/true"}, {Path: "true", Timeout: ptr(0)}}}
		}, want: []string{`config.json: hooks.poststart[1].path "true": must be an absolute path`,
			`config.json: hooks.poststart[1].timeout: must be positive`}},

		// all failures together
		{name: "every failure is reported", mod: func(s *specs.Spec, _ string) {
			s.Version = "0.1"
			s.Process.Args = nil
			s.Process.Cwd = "x"
			addNS(s, "foo", "")
		}, want: []string{`config.json: ociVersion "0.1": unsupported (want 1.x)`,
			`config.json: process.args: must not be empty`,
			`config.json: process.cwd "x": must be an absolute path`,
			`config.json: linux.namespaces[6].type "foo": unknown namespace type`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := testBundle(t)
			s := Example(tt.rootless, 1000, 1000)
			tt.mod(s, bundle)
			err := Validate(s, bundle)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
			for i, w := range tt.want {
				if w = strings.ReplaceAll(w, "BUNDLE", bundle); got[i] != w {
					t.Errorf("Validate() line %d = %q, want %q", i, got[i], w)
				}
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil, t.TempDir()); err == nil {
		t.Fatal("Validate(nil) = nil, want an error")
	}
}

func TestChecksHaveUniqueNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range checks {
		if c.name == "" || seen[c.name] || c.run == nil {
			t.Errorf("check %q: empty, duplicate or without a function", c.name)
		}
		seen[c.name] = true
	}
}
