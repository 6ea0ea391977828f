package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostMounts returns the lines of the test process's mountinfo that
// mention one of paths (the bundle, the state root): a failed create must
// leave the host's mount table as it found it. Other lines are left out:
// tests running at the same time on the host (ip netns add) change them.
func hostMounts(t *testing.T, paths ...string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, p := range paths {
			if p != "" && strings.Contains(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// ensureUserNS adds a user namespace to s if it has none.
func ensureUserNS(s *specs.Spec) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
}

// TestBadInput: every bad input gets one line naming the field or path, a
// non-zero exit, and leaves no state, process or mount behind; run fails
// the same way as create.
func TestBadInput(t *testing.T) {
	cases := badInputs()
	forEachUser(t, func(t *testing.T, r *rt) {
		for _, tc := range cases {
			checkBadInput(t, r, tc)
		}
	})
}

type badInput struct {
	name string
	edit func(s *specs.Spec)
	// fix adjusts the written bundle.
	fix        func(t *testing.T, bundle string)
	args       []string // extra create flags
	id         string
	want       []string
	createOnly bool
}

func badInputs() []badInput {
	return []badInput{
		{name: "missing config.json", fix: func(t *testing.T, b string) { os.Remove(filepath.Join(b, "config.json")) },
			want: []string{"config.json", "no such file or directory"}},
		{name: "malformed JSON", fix: func(t *testing.T, b string) {
			os.WriteFile(filepath.Join(b, "config.json"), []byte("{\"ociVersion\": \"1.0.0\",\n \"process\": {,}}"), 0o644)
		}, want: []string{"config.json", "line 2 col"}},
		{name: "missing rootfs", edit: func(s *specs.Spec) { s.Root.Path = "no-such-rootfs" },
			want: []string{`"no-such-rootfs"`, "no such file or directory"}},
		{name: "bad ociVersion", edit: func(s *specs.Spec) { s.Version = "0.1.0" },
			want: []string{`ociVersion "0.1.0"`}},
		{name: "unknown namespace type", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, want: []string{"linux.namespaces[", `"bogus"`, "unknown namespace type"}},
		{name: "overlapping uid mappings", edit: func(s *specs.Spec) {
			ensureUserNS(s)
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 10}, {ContainerID: 5, HostID: 200000, Size: 10}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 10}}
		}, want: []string{"linux.uidMappings[1]", "overlaps"}},
		{name: "zero-size uid mapping", edit: func(s *specs.Spec) {
			ensureUserNS(s)
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 0}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 10}}
		}, want: []string{"linux.uidMappings[0]", "size"}},
		{name: "missing cwd", edit: func(s *specs.Spec) { s.Process.Cwd = "/no/such/dir" },
			want: []string{`"/no/such/dir"`, "no such file or directory"}},
		{name: "binary not on PATH", edit: func(s *specs.Spec) { s.Process.Args = []string{"no-such-binary"} },
			want: []string{`"no-such-binary"`, "executable file not found in $PATH"}},
		{name: "absolute binary missing", edit: func(s *specs.Spec) { s.Process.Args = []string{"/no/such/binary"} },
			want: []string{`"/no/such/binary"`, "no such file or directory"}},
		{name: "not executable", edit: func(s *specs.Spec) { s.Process.Args = []string{"/etc/passwd"} },
			want: []string{`"/etc/passwd"`, "permission denied"}},
		{name: "malformed id", id: "../escape", want: []string{"container id", `"../escape"`}},
		{name: "preserve-fds beyond open fds", args: []string{"--preserve-fds", "4"},
			want: []string{"--preserve-fds 4", "fd 3 is not open"}},
		{name: "terminal without console socket", edit: func(s *specs.Spec) { s.Process.Terminal = true },
			want: []string{"process.terminal", "--console-socket"}, createOnly: true},
	}
}

// checkBadInput runs create (and run) on the bad input tc.
func checkBadInput(t *testing.T, r *rt, tc badInput) {
	b := r.bundle(tc.edit)
	if tc.fix != nil {
		tc.fix(t, b)
	}
	id := tc.id
	if id == "" {
		id = "bad"
	}
	verbs := []string{"create", "run"}
	if tc.createOnly {
		verbs = verbs[:1]
	}
	for _, verb := range verbs {
		mounts := hostMounts(t, b, r.root)
		args := append(append([]string{verb, "--bundle", b}, tc.args...), id)
		res := r.runIO(args...)
		stderr := strings.TrimRight(res.stderr, "\n")
		if res.code == 0 || res.stdout != "" || stderr == "" || strings.Contains(stderr, "\n") {
			t.Errorf("%s: %s: want exit != 0 and one line on stderr, got %v", tc.name, verb, res)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: %s: stderr %q lacks %q", tc.name, verb, stderr, w)
			}
		}
		if ents, _ := os.ReadDir(r.root); len(ents) != 0 {
			t.Errorf("%s: %s left state: %v", tc.name, verb, ents)
			r.run("delete", "--force", id)
		}
		if pids := initsUnder(r.root); len(pids) != 0 {
			t.Errorf("%s: %s left zviz:[init] processes %v", tc.name, verb, pids)
		}
		if now := hostMounts(t, b, r.root); !slices.Equal(now, mounts) {
			t.Errorf("%s: %s changed the host's mount table: %q, was %q", tc.name, verb, now, mounts)
		}
	}
}
