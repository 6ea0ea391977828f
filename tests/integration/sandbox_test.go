package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zviz/zviz/tests/testutil"
)

// sandboxScript runs in `zviz sandbox` with the host's /bin/sh and tools
// and prints KEY=VALUE facts. $RW and $RO are the --rw and --ro paths.
const sandboxScript = `
echo "pid=$$"
echo "procs=$(ls /proc | grep -c '^[0-9]')"
echo "etc=$(touch /etc/zviz-sandbox-probe 2>&1 && echo OK)"
echo "usr=$(touch /usr/zviz-sandbox-probe 2>&1 && echo OK)"
echo "dev=$(ls -A /dev | xargs)"
echo "tmp=$(ls -A /tmp | xargs)"
echo "run=$(ls -A /run | xargs)"
echo "cwd=$( (echo x > ./from-sandbox) 2>&1 && echo OK)"
echo "rw=$( (echo x > "$RW/from-sandbox") 2>&1 && echo OK)"
echo "ro-read=$(cat "$RO/data")"
echo "ro-write=$( (echo x > "$RO/from-sandbox") 2>&1 && echo OK)"
echo "net=$(tail -n +3 /proc/net/dev | cut -d: -f1 | xargs)"
echo "marker=${ZVIZ_SANDBOX_MARKER-unset}"
echo "extra=${ZVIZ_EXTRA-unset}"
echo "ssh=$(cat "$CALLER_HOME/.ssh/id_test" 2>/dev/null)"
echo "ssh-ls=$(ls -A "$CALLER_HOME/.ssh" 2>/dev/null | xargs)"
echo "aws=$(cat "$CALLER_HOME/.aws/credentials" 2>/dev/null)"
exit 7
`

// sandboxHome prepares the caller's HOME with credentials (the test user's
// real HOME; a temporary one for root, whose home belongs to the machine)
// and returns the environment for zviz.
func sandboxHome(t *testing.T, user string) (home string, env []string) {
	t.Helper()
	if user == "root" {
		home = hostTempDir(t, "root")
	} else {
		home = "/home/" + user
		if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
			t.Skipf("requires a home directory for %s: %v", user, err)
		}
	}
	for _, f := range []string{".ssh/id_test", ".aws/credentials"} {
		dir := filepath.Join(home, filepath.Dir(f))
		created := false
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			created = true
		}
		p := filepath.Join(home, f)
		if err := os.WriteFile(p, []byte("SECRET-"+filepath.Base(f)), 0o600); err != nil {
			t.Fatal(err)
		}
		// Owned by whoever the sandboxed command runs as (root's runs as
		// nobody), so that hiding, not file permissions, is what is tested.
		uid := sandboxUID(t, user)
		for _, x := range []string{dir, p} {
			if err := os.Chown(x, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			os.Remove(p)
			if created {
				os.RemoveAll(dir)
			}
		})
	}
	return home, []string{"HOME=" + home, "ZVIZ_SANDBOX_MARKER=caller"}
}

// sandboxUID is the uid the sandboxed command runs as: the caller, or for
// root nobody (65534), so that the host's root-only files stay closed.
func sandboxUID(t *testing.T, user string) int {
	if user == "root" {
		return 65534
	}
	return uidOf(t, user)
}

// writableBy makes a test directory writable by the sandboxed command.
func writableBy(t *testing.T, dir string, uid int) {
	t.Helper()
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// sandbox runs `zviz sandbox ARGS...` as the runtime's user in dir.
func (r *rt) sandbox(dir string, env []string, args ...string) result {
	r.t.Helper()
	c := r.cmd(append([]string{"sandbox"}, args...)...)
	c.Env = append(c.Env, env...)
	c.Dir = dir
	return r.runCmd(c)
}

// TestSandbox: the host's root read-only, fresh /proc, /dev, /tmp and
// /run, the current directory and --rw writable, --ro read-only, no
// network, a minimal environment with --env added, credentials hidden,
// and the exit status propagated.
func TestSandbox(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		home, env := sandboxHome(t, r.user)
		cwd, rw, ro := hostTempDir(t, r.user), hostTempDir(t, r.user), hostTempDir(t, r.user)
		if err := os.WriteFile(filepath.Join(ro, "data"), []byte("readable"), 0o644); err != nil {
			t.Fatal(err)
		}
		writableBy(t, cwd, sandboxUID(t, r.user))
		writableBy(t, rw, sandboxUID(t, r.user))
		res := r.sandbox(cwd, env, "--rw", rw, "--ro", ro, "--env", "ZVIZ_EXTRA=yes", "--env", "CALLER_HOME="+home,
			"--env", "RW="+rw, "--env", "RO="+ro, "--", "/bin/sh", "-c", sandboxScript)
		if res.code != 7 {
			t.Fatalf("sandbox: %v, want exit 7 from the command", res)
		}
		kv := keyValues(res.stdout)
		t.Logf("sandbox facts: %q", res.stdout)
		if kv["pid"] != "1" || kv["procs"] == "" || len(kv["procs"]) > 1 {
			t.Errorf("/proc: shell pid %q, %q processes: want a fresh pid namespace", kv["pid"], kv["procs"])
		}
		for _, k := range []string{"etc", "usr"} {
			if !strings.Contains(kv[k], "Read-only file system") {
				t.Errorf("touch /%s/...: %q, want read-only", k, kv[k])
			}
		}
		for _, p := range []string{"/etc/zviz-sandbox-probe", "/usr/zviz-sandbox-probe"} {
			if _, err := os.Lstat(p); err == nil {
				os.Remove(p)
				t.Errorf("%s was created on the host", p)
			}
		}
		devs := strings.Fields(kv["dev"])
		for _, d := range []string{"null", "zero", "urandom", "tty", "pts", "shm"} {
			if !slices.Contains(devs, d) {
				t.Errorf("/dev %v lacks %s", devs, d)
			}
		}
		hostDev, _ := os.ReadDir("/dev")
		for _, e := range hostDev {
			n := e.Name()
			if slices.Contains(devs, n) && !slices.Contains([]string{"null", "zero", "full", "random", "urandom", "tty",
				"ptmx", "pts", "shm", "mqueue", "fd", "stdin", "stdout", "stderr", "console"}, n) {
				t.Errorf("host device /dev/%s visible in the sandbox", n)
			}
		}
		// The writable and read-only paths of this test live under /tmp:
		// their mount points are all the fresh /tmp may hold.
		var own []string
		for _, d := range []string{cwd, rw, ro} {
			own = append(own, filepath.Base(d))
		}
		for _, n := range strings.Fields(kv["tmp"]) {
			if !slices.Contains(own, n) {
				t.Errorf("/tmp holds %q: want a fresh one with only the mount points of %v", n, own)
			}
		}
		if kv["run"] != "" {
			t.Errorf("/run holds %q: want a fresh, empty one", kv["run"])
		}
		if kv["cwd"] != "OK" || kv["rw"] != "OK" {
			t.Errorf("write to cwd %q, to --rw %q: want OK", kv["cwd"], kv["rw"])
		}
		for _, d := range []string{cwd, rw} {
			if _, err := os.Stat(filepath.Join(d, "from-sandbox")); err != nil {
				t.Errorf("file written in the sandbox missing on the host: %v", err)
			}
		}
		if kv["ro-read"] != "readable" || !strings.Contains(kv["ro-write"], "Read-only file system") {
			t.Errorf("--ro: read %q, write %q", kv["ro-read"], kv["ro-write"])
		}
		if kv["net"] != "lo" {
			t.Errorf("network interfaces %q, want only lo", kv["net"])
		}
		if kv["marker"] != "unset" || kv["extra"] != "yes" {
			t.Errorf("environment: caller's marker %q (want unset), --env %q (want yes)", kv["marker"], kv["extra"])
		}
		if kv["ssh"] != "" || kv["ssh-ls"] != "" || kv["aws"] != "" {
			t.Errorf("credentials visible: ssh %q (dir %q), aws %q", kv["ssh"], kv["ssh-ls"], kv["aws"])
		}

		// --ro re-exposes a hidden credential directory; --net shares the
		// host's network.
		// (Absolute paths: root's sandboxed command has HOME=/tmp.)
		res = r.sandbox(cwd, env, "--ro", filepath.Join(home, ".ssh"), "--net", "--", "/bin/sh", "-c",
			`cat "`+home+`/.ssh/id_test"; echo; tail -n +3 /proc/net/dev | cut -d: -f1 | xargs; cat "`+home+`/.aws/credentials" 2>/dev/null; true`)
		lines := strings.Split(res.stdout, "\n")
		if res.code != 0 || len(lines) < 2 || lines[0] != "SECRET-id_test" {
			t.Errorf("--ro ~/.ssh: %v, want the key readable", res)
		}
		if len(lines) >= 2 && strings.TrimSpace(lines[1]) == "lo" {
			t.Errorf("--net: interfaces %q, want the host's", lines[1])
		}
		if strings.Contains(res.stdout, "SECRET-credentials") {
			t.Errorf("~/.aws exposed although only ~/.ssh was given: %v", res)
		}
	})
}

// TestSandboxBadFlags: usage errors are reported clearly, nothing runs and
// nothing is left behind.
func TestSandboxBadFlags(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		cwd := hostTempDir(t, r.user)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--bogus", "--", "true"}, "bogus"},
			{[]string{}, "no command"},
			{[]string{"--env", "NOEQUALS", "--", "true"}, "NOEQUALS"},
			{[]string{"--rw", "/nonexistent-zviz-path", "--", "true"}, "/nonexistent-zviz-path"},
			{[]string{"--ro", "/nonexistent-zviz-path", "--", "true"}, "/nonexistent-zviz-path"},
		} {
			marker := filepath.Join(cwd, "ran")
			args := tc.args
			if len(args) > 0 {
				args = append(slices.Clone(args[:len(args)-1]), "/bin/sh", "-c", "touch "+marker)
			}
			res := r.sandbox(cwd, nil, args...)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("sandbox %q: %v, want a failure mentioning %q", tc.args, res, tc.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("sandbox %q: the command ran", tc.args)
			}
		}
	})
}

// TestSandboxGitGuards: in a writable repository the sandbox may commit,
// but not change the hooks or config that git runs outside later.
func TestSandboxGitGuards(t *testing.T) {
	testutil.Requires(t, "root")
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("requires git: not installed")
	}
	forEachUser(t, func(t *testing.T, r *rt) {
		repo := hostTempDir(t, r.user)
		for _, d := range []string{".git/hooks", ".git/objects"} {
			if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(repo, ".git/config"), []byte("[core]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		uid := sandboxUID(t, r.user)
		filepath.Walk(repo, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, uid) })
		res := r.sandbox(repo, nil, "--", "/bin/sh", "-c",
			`echo x > .git/objects/o && echo objects=OK; echo x > .git/hooks/pre-commit 2>/dev/null || echo hooks=refused; echo x >> .git/config 2>/dev/null || echo config=refused`)
		for _, want := range []string{"objects=OK", "hooks=refused", "config=refused"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("want %s: %v", want, res)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(repo, ".git/config")); string(b) != "[core]\n" {
			t.Errorf(".git/config changed on the host: %q", b)
		}
	})
}
