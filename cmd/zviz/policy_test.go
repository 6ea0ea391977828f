package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/hostcheck"
	"github.com/zviz/zviz/seccomp"
	"github.com/zviz/zviz/tests/testutil"
)

// TestMain removes the binary testutil.BuildZviz built.
func TestMain(m *testing.M) { testutil.Main(m) }

func TestProfileArg(t *testing.T) {
	g := &globals{}
	if got := profileArg(g, nil); got != "default" {
		t.Errorf("no profile: %q", got)
	}
	g.profile = "web-server"
	if got := profileArg(g, nil); got != "web-server" {
		t.Errorf("global --profile: %q", got)
	}
	if got := profileArg(g, []string{"./mine.yaml"}); got != "./mine.yaml" {
		t.Errorf("positional: %q", got)
	}
}

// result is one run of the built binary.
type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return r
}

// TestBinaryPolicyShow drives `zviz policy show` in the built (static)
// binary: the JSON counts are seccomp.Show's, the text has its header.
func TestBinaryPolicyShow(t *testing.T) {
	zviz := testutil.BuildZviz(t)
	t.Run("json", func(t *testing.T) {
		for _, arch := range []string{"", "aarch64"} {
			args := []string{"policy", "show", "default", "--json"}
			if arch != "" {
				args = append(args, "--arch", arch)
			}
			r := run(t, exec.Command(zviz, args...))
			if r.code != 0 {
				t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
			}
			var got hostcheck.Shown
			testutil.DecodeJSON(t, []byte(r.stdout), &got)
			p, _ := seccomp.Load("default")
			want, err := seccomp.Show(p, orHost(arch))
			if err != nil {
				t.Fatal(err)
			}
			c := got.Counts
			if got.Arch != want.Arch || c.Allow != len(want.Allow) || c.Deny != len(want.Deny) || c.Filter != len(want.Filter) ||
				c.ENOSYS != len(want.ENOSYS) || c.Broker != len(want.Broker) || c.Unlisted != want.Unlisted {
				t.Errorf("%s: %+v on %s; seccomp.Show: %d allow %d deny %d filter %d enosys %d unlisted",
					orHost(arch), c, got.Arch, len(want.Allow), len(want.Deny), len(want.Filter), len(want.ENOSYS), want.Unlisted)
			}
			if len(got.Allow) != c.Allow || got.Deny[0].Why == "" || got.Effects["socket"] == "" {
				t.Errorf("lists: %d allow rules, first deny %+v, socket effect %q", len(got.Allow), got.Deny[0], got.Effects["socket"])
			}
		}
	})
	t.Run("text", func(t *testing.T) {
		r := run(t, exec.Command(zviz, "policy", "show"))
		s, err := hostcheck.Show("default", runtime.GOARCH, false)
		if r.code != 0 || err != nil {
			t.Fatalf("exit %d: %s %v", r.code, r.stderr, err)
		}
		lines := strings.Split(r.stdout, "\n")
		if lines[0] != "profile default (builtin:default) on "+s.Arch {
			t.Errorf("first line %q", lines[0])
		}
		want := fmt.Sprintf("counts: %d allowed, %d denied (EPERM), %d filtered, %d enosys, %d brokered, %d unlisted → ENOSYS",
			s.Counts.Allow, s.Counts.Deny, s.Counts.Filter, s.Counts.ENOSYS, s.Counts.Broker, s.Counts.Unlisted)
		if !strings.Contains(r.stdout, "\n"+want+"\n") {
			t.Errorf("no line %q in\n%s", want, strings.Join(lines[:5], "\n"))
		}
	})
}

// TestBinaryPolicyOthers: explain, bpf and list in the built binary.
func TestBinaryPolicyOthers(t *testing.T) {
	zviz := testutil.BuildZviz(t)
	t.Run("explain", func(t *testing.T) {
		r := run(t, exec.Command(zviz, "policy", "explain", "socket", "--profile", "default"))
		if r.code != 0 || !strings.Contains(r.stdout, "AF_UNIX, AF_INET, AF_INET6") || !strings.Contains(r.stdout, "why: ") {
			t.Errorf("explain socket: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = run(t, exec.Command(zviz, "--profile", "development", "policy", "explain", "ptrace"))
		if r.code != 0 || !strings.Contains(r.stdout, "under profile development") {
			t.Errorf("explain with the global --profile: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("bpf", func(t *testing.T) {
		r := run(t, exec.Command(zviz, "policy", "bpf", "default", "--json", "--dump"))
		var got hostcheck.Compiled
		testutil.DecodeJSON(t, []byte(r.stdout), &got)
		p, _ := seccomp.Load("default")
		want, err := seccomp.Compile(p, runtime.GOARCH)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != 0 || got.Instructions != want.Instructions || got.Key != want.Key || len(got.Disassembly) != want.Instructions {
			t.Errorf("bpf: exit %d, %d instructions key %s, %d lines; want %d %s", r.code, got.Instructions, got.Key,
				len(got.Disassembly), want.Instructions, want.Key)
		}
	})
	t.Run("list", func(t *testing.T) {
		r := run(t, exec.Command(zviz, "policy", "list"))
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) != len(seccomp.Builtins()) || !strings.HasPrefix(lines[0], "batch-job ") {
			t.Errorf("list: exit %d\n%s", r.code, r.stdout)
		}
	})
}

// TestBinaryPolicyErrors: every mistake is one line on stderr and exit 1.
func TestBinaryPolicyErrors(t *testing.T) {
	zviz := testutil.BuildZviz(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "show", "nosuch"}, `zviz: load profile "nosuch": no such built-in profile`},
		{[]string{"policy", "show", "./nosuch.yaml"}, "no such file or directory"},
		{[]string{"policy", "explain", "frobnicate"}, `zviz: explain "frobnicate": not a syscall on x86_64 or aarch64`},
		{[]string{"policy", "explain", "read", "--profile", "nosuch"}, "no such built-in profile"},
		{[]string{"policy", "bpf", "--arch", "mips"}, "unsupported architecture"},
		{[]string{"policy", "frob"}, `zviz: policy: unknown subcommand "frob"`},
		{[]string{"policy"}, "zviz: policy: usage: zviz policy show"},
		{[]string{"check", "extra"}, "zviz: check: usage: zviz check [--json]"},
	} {
		r := run(t, exec.Command(zviz, tc.args...))
		if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

func orHost(arch string) string {
	if arch == "" {
		return runtime.GOARCH
	}
	return arch
}

// TestBinaryCheck runs `zviz check --json` as root and as the unprivileged
// test user and compares it with what this host really has.
func TestBinaryCheck(t *testing.T) {
	testutil.Requires(t, "userns")
	zviz := testutil.BuildZviz(t)
	abi := landlockABI(t)
	for _, who := range []string{"root", testutil.TestUser} {
		t.Run(who, func(t *testing.T) {
			if who != "root" || os.Geteuid() != 0 {
				testutil.Requires(t, "unprivileged-user")
			}
			r := run(t, testutil.RunAs(t, who, nil, zviz, "check", "--json"))
			if r.code != 0 {
				t.Fatalf("exit %d: %s\n%s", r.code, r.stderr, r.stdout)
			}
			var rep hostcheck.Report
			testutil.DecodeJSON(t, []byte(r.stdout), &rep)
			f := rep.Facts
			if !rep.Runnable || rep.Isolation != "full" || !f.UsernsProbe.OK {
				t.Errorf("runnable %v isolation %s userns probe %+v; want a full-isolation host", rep.Runnable, rep.Isolation, f.UsernsProbe)
			}
			if f.LandlockABI != abi {
				t.Errorf("landlock_abi %d, landlock_create_ruleset says %d", f.LandlockABI, abi)
			}
			if !f.Seccomp.Filter || !f.Seccomp.UserNotif {
				t.Errorf("seccomp: %+v", f.Seccomp)
			}
			if v := readInt(t, "/proc/sys/user/max_user_namespaces"); f.MaxUserNamespaces == nil || *f.MaxUserNamespaces != v {
				t.Errorf("max_user_namespaces %v, file says %d", f.MaxUserNamespaces, v)
			}
			if m := cgroup2Mount(t); f.Cgroup.V2Mount != m {
				t.Errorf("cgroup v2 at %q, mountinfo says %q", f.Cgroup.V2Mount, m)
			}
			if who == "root" {
				if f.UID != 0 || f.MountnsProbe == nil || !f.MountnsProbe.OK || rep.Mapping != "privileged" {
					t.Errorf("as root: uid %d, mountns probe %+v, mapping %s", f.UID, f.MountnsProbe, rep.Mapping)
				}
				return
			}
			uid, _ := testutil.LookupUser(who)
			if f.UID != uint32(uid) || f.MountnsProbe != nil {
				t.Errorf("as %s: uid %d, mountns probe %+v", who, f.UID, f.MountnsProbe)
			}
			if rep.Mapping != "subids" && hasSubIDs(t) {
				t.Errorf("mapping %s, but %s has subordinate ranges and setuid helpers", rep.Mapping, who)
			}
		})
	}
}

// TestBinaryCheckText: every line is "ok|warn|fail: item: detail".
func TestBinaryCheckText(t *testing.T) {
	zviz := testutil.BuildZviz(t)
	r := run(t, exec.Command(zviz, "check"))
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" || l == "zviz will use:" {
			continue
		}
		st, rest, ok := strings.Cut(l, ": ")
		if !ok || (st != "ok" && st != "warn" && st != "fail") || !strings.Contains(rest, ": ") {
			t.Errorf("malformed line %q", l)
		}
	}
	for _, item := range []string{"ok: userns:", "landlock: ABI", "isolation:", "limits:"} {
		if !strings.Contains(r.stdout, item) {
			t.Errorf("no %q in\n%s", item, r.stdout)
		}
	}
}

// landlockABI asks the kernel directly (landlock_create_ruleset(2) with
// LANDLOCK_CREATE_RULESET_VERSION), not through the landlock package.
func landlockABI(t *testing.T) int {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(v)
}

func readInt(t *testing.T, path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func cgroup2Mount(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " - cgroup2 ") {
			return strings.Fields(l)[4]
		}
	}
	return ""
}

func hasSubIDs(t *testing.T) bool {
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), testutil.TestUser+":") {
			return false
		}
	}
	st, err := os.Stat(filepath.Join("/usr/bin", "newuidmap"))
	return err == nil && st.Mode()&os.ModeSetuid != 0
}
