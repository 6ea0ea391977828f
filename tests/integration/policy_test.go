package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/testutil"
)

// statusField returns a field of /proc/self/status as printed by grep.
func statusField(out, field string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestPolicyBothFilters: the config's own linux.seccomp (podman's) and the
// zviz profile are both installed; each refuses what it refuses.
func TestPolicyBothFilters(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		eacces := uint(unix.EACCES)
		b := r.shBundle(`grep Seccomp_filters /proc/self/status; mkdir /tmp/d 2>&1; /probe try ptrace`, func(s *specs.Spec) {
			s.Root.Readonly = false
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
			// The config allows everything but mkdir, which it answers EACCES.
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eacces}}}
		})
		res := r.ok("run", "--bundle", b, "both-"+randID())
		if got := statusField(res.stdout, "Seccomp_filters"); got != "2" {
			t.Errorf("Seccomp_filters %q, want 2 (the config's and the profile's)\n%s", got, res.stdout)
		}
		if !strings.Contains(res.stdout, "Permission denied") {
			t.Errorf("mkdir should be refused by the config's filter with EACCES:\n%s", res.stdout)
		}
		// ptrace is allowed by the config's filter, denied by the profile.
		if !strings.Contains(res.stdout, `"name":"ptrace","errno":"EPERM"`) {
			t.Errorf("ptrace should be refused by the default profile with EPERM:\n%s", res.stdout)
		}
	})
}

// TestPolicyCapabilities: the config's capabilities are intersected with
// the profile's: none under default, the server ones under web-server,
// never one the config did not grant. The profile comes from --profile or
// the run.zviz.profile annotation, and state records it.
func TestPolicyCapabilities(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		script := `grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs)' /proc/self/status`
		edit := func(s *specs.Spec) {
			s.Process.NoNewPrivileges = false
			c := []string{"CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
		}
		res := r.ok("run", "--bundle", r.shBundle(script, edit), "caps-"+randID())
		for _, f := range []string{"CapEff", "CapBnd", "CapPrm"} {
			if got := statusField(res.stdout, f); got != "0000000000000000" {
				t.Errorf("default profile: %s %s, want none", f, got)
			}
		}
		if got := statusField(res.stdout, "NoNewPrivs"); got != "1" {
			t.Errorf("NoNewPrivs %q, want 1 even when the config leaves it off", got)
		}
		// web-server keeps NET_BIND_SERVICE, SETUID, SETGID; the config
		// grants NET_BIND_SERVICE of those: only bit 10 remains.
		res = r.ok("--profile", "web-server", "run", "--bundle", r.shBundle(script, edit), "caps-"+randID())
		if got := statusField(res.stdout, "CapEff"); got != "0000000000000400" {
			t.Errorf("web-server profile: CapEff %s, want 0000000000000400 (CAP_NET_BIND_SERVICE only)", got)
		}
		// The same through the annotation, with state recording the profile.
		b := r.shBundle(`exec sleep 30 </dev/null >/dev/null 2>&1`, func(s *specs.Spec) {
			edit(s)
			s.Annotations = map[string]string{"run.zviz.profile": "web-server"}
		})
		id := "ann-" + randID()
		r.ok("run", "--detach", "--bundle", b, id)
		defer r.run("delete", "--force", id)
		var st struct {
			Profile string `json:"profile"`
		}
		if err := json.Unmarshal([]byte(r.ok("state", id).stdout), &st); err != nil || st.Profile != "web-server" {
			t.Errorf("state profile %q (%v), want web-server", st.Profile, err)
		}
		if res := r.run("--profile", "no-such-profile", "run", "--bundle", b, "bad-"+randID()); res.code == 0 ||
			!strings.Contains(res.stderr, "no-such-profile") {
			t.Errorf("an unknown profile must be refused by name: %v", res)
		}
	})
}

// TestPolicyLandlock: writes outside writable mounts are refused by
// Landlock even where the mount itself is writable, e.g. /dev, while
// writable mounts and the safe nodes work.
func TestPolicyLandlock(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		script := `/probe write /dev/zviz-x; /probe write /tmp/ok; /probe write /dev/null; /probe write /data/f`
		b := r.shBundle(script, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro"}})
		})
		res := r.ok("run", "--bundle", b, "ll-"+randID())
		ops := fileOps(t, res.stdout)
		want := map[string]string{
			"write /dev/zviz-x": "EACCES", // /dev is a writable tmpfs, but not to the workload
			"write /tmp/ok":     "OK",
			"write /dev/null":   "OK",
			"write /data/f":     "EROFS",
		}
		for k, w := range want {
			if got := ops[k].Errno; got != w {
				t.Errorf("%s: %s, want %s", k, got, w)
			}
		}
	})
}

// TestPolicyLogDenials: --log-denials reports each refused call with its
// name and errno, changes nothing about what is refused, and reports
// nothing for a workload that needs no refused call; the per-container
// logger of a detached container goes away with it.
func TestPolicyLogDenials(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.shBundle(`/probe try ptrace clone3; true`, nil)
		res := r.ok("--log-denials", "run", "--bundle", b, "ld-"+randID())
		for _, want := range []string{"zviz: denied: ptrace(", ") = EPERM", "zviz: denied: clone3(", ") = ENOSYS"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("denial log lacks %q:\n%s", want, res.stderr)
			}
		}
		// The errnos the workload sees are the plain filter's.
		if !strings.Contains(res.stdout, `"name":"ptrace","errno":"EPERM"`) || !strings.Contains(res.stdout, `"name":"clone3","errno":"ENOSYS"`) {
			t.Errorf("errnos changed under --log-denials:\n%s", res.stdout)
		}
		quiet := r.ok("--verbose", "run", "--bundle", r.shBundle(`true`, nil), "ld-"+randID())
		if strings.Contains(withoutCgroupNotes(quiet.stderr), "denied") {
			t.Errorf("true needs no refused call, got:\n%s", quiet.stderr)
		}
		// Detached: a zviz:[denials] helper serves the container and exits
		// with it.
		id := "ldd-" + randID()
		errFile := filepath.Join(t.TempDir(), "stderr")
		ef, err := os.Create(errFile)
		if err != nil {
			t.Fatal(err)
		}
		c := r.cmd("--log-denials", "create", "--bundle", r.shBundle(`/probe try ptrace >/dev/null; sleep 0.2`, nil), id)
		c.Stdout, c.Stderr = ef, ef
		if res := r.runCmd(c); res.code != 0 {
			t.Fatalf("create: %v", res)
		}
		ef.Close()
		if n := countProcs("zviz:[denials]"); n == 0 {
			t.Errorf("no zviz:[denials] helper while the container exists")
		}
		r.ok("start", id)
		deadline := time.Now().Add(10 * time.Second)
		for countProcs("zviz:[denials]") > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := countProcs("zviz:[denials]"); n > 0 {
			t.Errorf("%d zviz:[denials] helpers left after the container stopped", n)
		}
		// The helper may see the filter unused a moment before the init's
		// exit is visible: wait for the container to be stopped.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if strings.Contains(r.ok("state", id).stdout, `"status": "stopped"`) {
				break
			}
		}
		r.ok("delete", id)
		if b, _ := os.ReadFile(errFile); !strings.Contains(string(b), "zviz: denied: ptrace(") {
			t.Errorf("the detached container's denial log lacks ptrace:\n%s", b)
		}
	})
}

// countProcs counts processes whose command line starts with name.
func countProcs(name string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.HasPrefix(string(b), name) {
			n++
		}
	}
	return n
}

// TestPolicyLandlockPorts: a profile whose egress allow-list names ports
// restricts TCP connect to them through Landlock (ABI 4+). The container
// shares the host's network (the profile's mode host) and connects to two
// listeners of the test's.
func TestPolicyLandlockPorts(t *testing.T) {
	testutil.Requires(t, "landlock>=4")
	forEachUser(t, func(t *testing.T, r *rt) {
		allowed, other := listen(t), listen(t)
		dir := hostTempDir(t, r.user)
		prof := filepath.Join(dir, "ports.yaml")
		body := fmt.Sprintf("extends: default\nnetwork:\n  mode: host\n  allow: [\"127.0.0.1:%d\"]\n", allowed)
		if err := os.WriteFile(prof, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf(`echo x | nc -w 1 127.0.0.1 %d && echo "allowed=OK" || echo "allowed=refused"
echo x | nc -w 1 127.0.0.1 %d 2>&1 && echo "other=OK" || echo "other=refused"`, allowed, other)
		b := r.shBundle(script, func(s *specs.Spec) { withoutNS(s, specs.NetworkNamespace) })
		res := r.run("--profile", prof, "run", "--bundle", b, "ports-"+randID())
		if !strings.Contains(res.stdout, "allowed=OK") || !strings.Contains(res.stdout, "other=refused") ||
			!strings.Contains(res.stdout, "Permission denied") {
			t.Errorf("want port %d allowed and %d refused with EACCES:\n%v", allowed, other, res)
		}
		if strings.Contains(res.stderr, "network mode") {
			t.Errorf("mode host with the host's network needs no warning:\n%s", res.stderr)
		}
	})
}

// listen accepts (and closes) connections on a loopback port until the
// test ends, and returns the port.
func listen(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}
