package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// Issue 6: where a new namespace cannot mount (Ubuntu 24.04's AppArmor
// restriction), zviz falls back to chdir-only isolation. tests/nomount
// reproduces the restriction for real: zviz runs under a seccomp filter
// that fails mount, pivot_root and the new mount API with EPERM, so its
// probe and any init it would start see what the restricted namespace
// does.

// via runs `nomount zviz --root R ARGS...` as the runtime's user in dir,
// with output to files (as runIO: a detached init inherits them).
func (r *rt) via(dir string, args ...string) result {
	r.t.Helper()
	c := testutil.RunAs(r.t, r.user, nil, testutil.BuildNoMount(r.t), append([]string{r.zviz, "--root", r.root}, args...)...)
	c.Dir = dir
	out, errf := lcTempFile(r.t), lcTempFile(r.t)
	c.Stdout, c.Stderr = out, errf
	res := lcWait(r.t, c, args)
	res.stdout, res.stderr = lcRead(r.t, out), lcRead(r.t, errf)
	return res
}

// outsideFile is a file outside every rootfs that the runtime's user may
// read by file permissions: only Landlock can keep the container from it.
func outsideFile(t *testing.T, r *rt) string {
	t.Helper()
	p := filepath.Join(hostTempDir(t, r.user), "secret")
	if err := os.WriteFile(p, []byte("HOST-SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// probeRead decodes the probe's answer to `read PATH`.
func probeRead(t *testing.T, out string) (errno, data string) {
	t.Helper()
	var v struct{ Errno, Data string }
	testutil.DecodeJSON(t, []byte(out), &v)
	return v.Errno, v.Data
}

func stateOf(t *testing.T, r *rt, id string) map[string]any {
	t.Helper()
	var st map[string]any
	testutil.DecodeJSON(t, []byte(r.ok("state", id).stdout), &st)
	return st
}

// TestChdirOnlyFallback: under the restriction, run falls back, says so,
// runs the workload from its rootfs, and Landlock refuses a host file
// that file permissions allow; create records the mode in state; without
// the restriction the same bundle gets full isolation.
func TestChdirOnlyFallback(t *testing.T) {
	testutil.Requires(t, "landlock>=6")
	forEachUser(t, func(t *testing.T, r *rt) {
		secret := outsideFile(t, r)
		// Control: the probe itself may read the file outside zviz.
		out, err := testutil.RunAs(t, r.user, nil, testutil.BuildProbe(t), "read", secret).Output()
		if e, d := probeRead(t, string(out)); err != nil || e != "OK" || d != "HOST-SECRET" {
			t.Fatalf("control: probe read %s outside zviz: %v errno %q data %q", secret, err, e, d)
		}
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "read", secret} })
		res := r.via("/", "run", "--bundle", b, "fallback")
		if res.code != 0 {
			t.Fatalf("run under the restriction: %v", res)
		}
		if !strings.Contains(res.stderr, "zviz: warning: isolation: chdir-only (a new ") ||
			!strings.Contains(res.stderr, "cannot mount (make-private: EPERM)") {
			t.Errorf("the fallback is not announced on stderr:\n%s", res.stderr)
		}
		if e, d := probeRead(t, res.stdout); e != "EACCES" || d != "" {
			t.Errorf("read %s from the container: errno %q data %q, want EACCES from Landlock", secret, e, d)
		}
		// The workload's own files, by rootfs-relative path (cwd is "/").
		b2 := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "read", "etc/passwd"} })
		res = r.via("/", "run", "--bundle", b2, "relative")
		if e, d := probeRead(t, res.stdout); res.code != 0 || e != "OK" || !strings.HasPrefix(d, "root:x:0:0:") {
			t.Errorf("read etc/passwd inside the rootfs: %v (errno %q data %q)", res, e, d)
		}
		// Detached, the mode is in state.
		r.via("/", "create", "--bundle", b, "detached")
		if st := stateOf(t, r, "detached"); st["isolation"] != "chdir-only" || !hasWarning(st, "isolation: chdir-only (") {
			t.Errorf("state under the restriction: isolation %v, warnings %v", st["isolation"], st["warnings"])
		}
		r.ok("delete", "--force", "detached")
		r.okIO("create", "--bundle", b, "full")
		if st := stateOf(t, r, "full"); st["isolation"] != "full" || hasWarning(st, "isolation") {
			t.Errorf("state without the restriction: isolation %v, warnings %v", st["isolation"], st["warnings"])
		}
		r.ok("delete", "--force", "full")
	})
}

func hasWarning(st map[string]any, sub string) bool {
	ws, _ := st["warnings"].([]any)
	for _, w := range ws {
		if s, _ := w.(string); strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestChdirOnlyScopesSignals: a process of the same user outside the
// container cannot be signalled from it (Landlock ABI 6 scoping), while
// the same kill works outside zviz.
func TestChdirOnlyScopesSignals(t *testing.T) {
	testutil.Requires(t, "landlock>=6")
	forEachUser(t, func(t *testing.T, r *rt) {
		victim := testutil.RunAs(t, r.user, nil, "sleep", "60")
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { victim.Process.Kill(); victim.Wait() }()
		pid := strconv.Itoa(victim.Process.Pid)
		script := "kill -0 " + pid + " && echo signalled || echo refused"
		if out, err := testutil.RunAs(t, r.user, nil, "/bin/sh", "-c", script).Output(); err != nil || string(out) != "signalled\n" {
			t.Fatalf("control: kill -0 %s outside zviz: %q %v", pid, out, err)
		}
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c", script} })
		res := r.via("/", "run", "--bundle", b, "signals")
		if res.code != 0 || res.stdout != "refused\n" || !strings.Contains(res.stderr, "Operation not permitted") {
			t.Errorf("kill -0 of an outside process from chdir-only isolation: %v, want refused with EPERM", res)
		}
	})
}

// TestChdirOnlyScopesAbstractSockets: an abstract unix socket of the host
// (the container shares its network namespace) cannot be connected to
// from the container (Landlock ABI 6 scoping); the same connect works
// outside zviz.
func TestChdirOnlyScopesAbstractSockets(t *testing.T) {
	testutil.Requires(t, "landlock>=6")
	forEachUser(t, func(t *testing.T, r *rt) {
		name := fmt.Sprintf("zviz-test-%d-%s", os.Getpid(), r.user)
		ln, err := net.Listen("unix", "@"+name)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		out, err := testutil.RunAs(t, r.user, nil, testutil.BuildProbe(t), "try", "connect-abstract:"+name).Output()
		if e := tryErrno(t, out); err != nil || e != "OK" {
			t.Fatalf("control: connect to @%s outside zviz: %v %q", name, err, e)
		}
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "try", "connect-abstract:" + name} })
		res := r.via("/", "run", "--bundle", b, "abstract")
		if e := tryErrno(t, []byte(res.stdout)); res.code != 0 || e != "EPERM" {
			t.Errorf("connect to the host's @%s from chdir-only isolation: %q (%v), want EPERM from Landlock", name, e, res)
		}
	})
}

func tryErrno(t *testing.T, out []byte) string {
	t.Helper()
	var rep struct{ Results []struct{ Errno string } }
	testutil.DecodeJSON(t, out, &rep)
	if len(rep.Results) != 1 {
		t.Fatalf("probe try: %s", out)
	}
	return rep.Results[0].Errno
}

// TestChdirOnlyKillAll: without a pid namespace, kill --all reaches the
// container's processes and not another process of the same user.
func TestChdirOnlyKillAll(t *testing.T) {
	testutil.Requires(t, "landlock>=1")
	forEachUser(t, func(t *testing.T, r *rt) {
		victim := testutil.RunAs(t, r.user, nil, "sleep", "60")
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { victim.Process.Kill(); victim.Wait() }()
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c", "sleep 60 & sleep 60 & wait"} })
		if res := r.via("/", "run", "--detach", "--bundle", b, "killall"); res.code != 0 {
			t.Fatalf("run --detach under the restriction: %v", res)
		}
		// exec cannot join namespaces that are the host's: refused.
		if res := r.run("exec", "killall", "true"); res.code == 0 || !strings.Contains(res.stderr, "chdir-only isolation") {
			t.Errorf("exec into a chdir-only container: %v", res)
		}
		r.ok("kill", "--all", "killall", "TERM")
		for range 100 {
			if stateOf(t, r, "killall")["status"] == "stopped" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st := stateOf(t, r, "killall")["status"]; st != "stopped" {
			t.Errorf("after kill --all TERM the container is %v", st)
		}
		if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("kill --all of a chdir-only container reached the outside process %d: %v", victim.Process.Pid, err)
		}
		r.ok("delete", "killall")
	})
}

// TestChdirOnlyRefused: --require-full-isolation and a profile requiring
// isolation refuse the fallback with one clear line and leave nothing
// behind (checkClean, and the state directory right after).
func TestChdirOnlyRefused(t *testing.T) {
	testutil.Requires(t, "landlock>=1")
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(nil)
		prof := filepath.Join(hostTempDir(t, r.user), "needs-isolation.yaml")
		if err := os.WriteFile(prof, []byte("name: needs-isolation\nextends: default\nrequired: [seccomp, isolation]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--require-full-isolation", "run", "--bundle", b, "refused1"},
				"zviz: --require-full-isolation: full isolation is not available: a new "},
			{[]string{"--profile", prof, "run", "--bundle", b, "refused2"},
				"zviz: profile needs-isolation requires isolation: full isolation is not available: a new "},
			{[]string{"--require-full-isolation", "sandbox", "--", "/bin/true"},
				"zviz: --require-full-isolation: full isolation is not available: a new "},
		} {
			res := r.via(hostTempDir(t, r.user), tc.args...)
			if res.code == 0 || !strings.HasPrefix(res.stderr, tc.want) || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
				t.Errorf("zviz %v under the restriction: %v\nwant one line starting %q", tc.args, res, tc.want)
			}
			if ents, _ := os.ReadDir(r.root); len(ents) > 0 {
				t.Errorf("zviz %v: state left behind: %v", tc.args, ents)
			}
		}
		// The profile's requirement is met with full isolation.
		r.ok("--profile", prof, "run", "--bundle", b, "allowed")
	})
}

// TestSandboxChdirOnly: zviz sandbox under the restriction runs host
// programs, writes its current directory and TMPDIR, and reads neither
// the caller's home nor another directory of the caller.
func TestSandboxChdirOnly(t *testing.T) {
	testutil.Requires(t, "landlock>=6")
	forEachUser(t, func(t *testing.T, r *rt) {
		secret := outsideFile(t, r)
		cwd := hostTempDir(t, r.user)
		writableBy(t, cwd, sandboxUID(t, r.user))
		script := `echo "cwd=$( (echo x > ./out) 2>&1 && cat ./out)"
f=$(mktemp 2>/dev/null) && echo y > "$f" && echo tmp=OK || echo tmp=denied
echo "secret=$(cat "$SECRET" 2>&1)"
echo "etc=$(head -c 5 /etc/os-release)"
echo "proc=$(cat /proc/self/status 2>&1 | head -1)"`
		res := r.via(cwd, "sandbox", "--env", "SECRET="+secret, "--", "/bin/sh", "-c", script)
		if res.code != 0 {
			t.Fatalf("sandbox under the restriction: %v", res)
		}
		kv := keyValues(res.stdout)
		t.Logf("sandbox facts: %q", res.stdout)
		tmp := "OK"
		if r.user == "root" {
			// Root's sandbox runs as nobody, who cannot reach root's state
			// directory: no TMPDIR, and the host's /tmp is closed.
			tmp = "denied"
		}
		for k, want := range map[string]string{
			"cwd":    "x",
			"tmp":    tmp,
			"secret": "cat: " + secret + ": Permission denied",
			"etc":    "PRETT",
			"proc":   "cat: /proc/self/status: Permission denied",
		} {
			if kv[k] != want {
				t.Errorf("%s=%q, want %q", k, kv[k], want)
			}
		}
		if !strings.Contains(res.stderr, "zviz: warning: isolation: chdir-only (") {
			t.Errorf("the fallback is not announced:\n%s", res.stderr)
		}

		// Run from the home directory: it is readable (read-only), the
		// credentials in it are not, though their owner is the sandboxed
		// user (sandboxHome): Landlock's grants skip them.
		home, env := sandboxHome(t, r.user)
		script = `echo "ssh=$(cat .ssh/id_test 2>&1)"
echo "aws=$(cat "$CALLER_HOME/.aws/credentials" 2>&1)"
echo "list=$(ls -A . | grep -c '^.ssh$')"
echo "write=$( (echo x > ./from-sandbox) 2>&1 | grep -c 'Permission denied')"`
		c := testutil.RunAs(t, r.user, env, testutil.BuildNoMount(t), r.zviz, "--root", r.root, "sandbox", "--env", "CALLER_HOME="+home, "--", "/bin/sh", "-c", script)
		c.Dir = home
		res = r.runCmd(c)
		kv = keyValues(res.stdout)
		t.Logf("home facts: %q", res.stdout)
		for k, want := range map[string]string{
			"ssh":   "cat: .ssh/id_test: Permission denied",
			"aws":   "cat: " + home + "/.aws/credentials: Permission denied",
			"list":  "1",
			"write": "1",
		} {
			if kv[k] != want {
				t.Errorf("from the home directory: %s=%q, want %q (%v)", k, kv[k], want, res)
			}
		}
	})
}

// TestCheckReportsChdirOnly: zviz check names the mode and why.
func TestCheckReportsChdirOnly(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		c := testutil.RunAs(t, r.user, nil, testutil.BuildNoMount(t), r.zviz, "check", "--json")
		out, err := c.Output()
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
			t.Fatalf("zviz check: %v", err)
		}
		var rep struct{ Isolation string }
		if err := json.Unmarshal(out, &rep); err != nil || rep.Isolation != "chdir-only" {
			t.Errorf("zviz check under the restriction: isolation %q (%v), want chdir-only", rep.Isolation, err)
		}
	})
}
