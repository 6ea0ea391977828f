package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// TestProcessPathLookup: args[0] without a slash is looked up in the
// container's PATH, in the container's filesystem.
func TestProcessPathLookup(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		fill := func(root string) {
			if err := os.MkdirAll(filepath.Join(root, "opt/bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(filepath.Join(root, "probe"), filepath.Join(root, "opt/bin/zviz-only-here")); err != nil {
				t.Fatal(err)
			}
		}
		for _, path := range []string{"/bin:/opt/bin", "/bin"} {
			b := r.bundleWith(func(s *specs.Spec) {
				s.Process.Args = []string{"zviz-only-here", "exit", "42"}
				s.Process.Env = []string{"PATH=" + path}
			}, fill)
			res := r.run("run", "--bundle", b, "path-"+randID())
			if path == "/bin" {
				if res.code == 0 || !strings.Contains(res.stderr, "not found") {
					t.Errorf("PATH=%s: want 'executable file not found', got %v", path, res)
				}
				continue
			}
			if res.code != 42 {
				t.Errorf("PATH=%s: want exit 42 from /opt/bin/zviz-only-here, got %v", path, res)
			}
		}
	})
}

// TestProcessUser: process.user's uid, gid, additionalGids and umask, and
// cwd, reach the process. Rootless, the ids come from the subordinate
// range (no uidMappings), so every one of them is mapped.
func TestProcessUser(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		if r.user != "root" {
			testutil.Requires(t, "subuid", "newuidmap")
		}
		umask := uint32(0o027)
		in := r.probeInfo(r.bundle(func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1234, GID: 2345, AdditionalGids: []uint32{3456, 4567}, Umask: &umask}
			s.Process.Cwd = "/etc"
			if r.user != "root" {
				s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
			}
		}))
		if in.UID != 1234 || in.EUID != 1234 || in.GID != 2345 || in.EGID != 2345 {
			t.Errorf("uid/euid/gid/egid %d/%d/%d/%d, want 1234/1234/2345/2345", in.UID, in.EUID, in.GID, in.EGID)
		}
		groups := slices.Clone(in.Groups)
		slices.Sort(groups)
		if !slices.Equal(groups, []int{3456, 4567}) {
			t.Errorf("groups %v, want [3456 4567]", in.Groups)
		}
		if in.Umask != 0o027 {
			t.Errorf("umask %#o, want 027", in.Umask)
		}
		if in.Cwd != "/etc" {
			t.Errorf("cwd %q, want /etc", in.Cwd)
		}
	})
}

// TestProcessAdditionalGidsSingleMapping: with a single-id gid map
// setgroups is denied; additionalGids must fail create with a clear error.
func TestProcessAdditionalGidsSingleMapping(t *testing.T) {
	testutil.Requires(t, "root", "unprivileged-user")
	r := newRT(t, testutil.TestUser)
	b := r.bundle(func(s *specs.Spec) { s.Process.User.AdditionalGids = []uint32{0, 1} })
	res := r.run("run", "--bundle", b, "gids-"+randID())
	if res.code == 0 || !strings.Contains(res.stderr, "additionalGids") {
		t.Errorf("want a failure naming additionalGids, got %v", res)
	}
}

// TestProcessEnv: process.env is passed exactly, plus HOME from the
// container's /etc/passwd when the config does not set it.
func TestProcessEnv(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		env := []string{"PATH=/bin", "ZVIZ_A=1", "ZVIZ_EMPTY=", "ZVIZ_SPACES=a b  c"}
		in := r.probeInfo(r.bundle(func(s *specs.Spec) { s.Process.Env = env }))
		if want := append(slices.Clone(env), "HOME=/root"); !slices.Equal(in.Env, want) {
			t.Errorf("env %q, want %q", in.Env, want)
		}
		env = append(env, "HOME=/elsewhere")
		in = r.probeInfo(r.bundle(func(s *specs.Spec) { s.Process.Env = env }))
		if !slices.Equal(in.Env, env) {
			t.Errorf("env %q, want %q (HOME from the config)", in.Env, env)
		}
	})
}

// TestProcessRlimitsOOMSession: rlimits (read by the shell, since the Go
// runtime raises the probe's own soft NOFILE), oomScoreAdj, and the new
// session (sid == pid == 1).
func TestProcessRlimitsOOMSession(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		adj := 500
		b := r.shBundle(`echo "soft=$(ulimit -n) hard=$(ulimit -Hn) core=$(ulimit -c)"; exec /probe info`, func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456},
				{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
			}
			s.Process.OOMScoreAdj = &adj
		})
		res := r.ok("run", "--bundle", b, "rl-"+randID())
		first, rest, _ := strings.Cut(res.stdout, "\n")
		if first != "soft=123 hard=456 core=0" {
			t.Errorf("shell sees %q, want soft=123 hard=456 core=0", first)
		}
		var in report.Info
		testutil.DecodeJSON(t, []byte(rest), &in)
		if nf := in.Rlimits["NOFILE"]; nf.Hard != 456 {
			t.Errorf("probe NOFILE %+v, want hard 456", nf)
		}
		if in.OOMScoreAdj != 500 {
			t.Errorf("oom_score_adj %d, want 500", in.OOMScoreAdj)
		}
		if in.PID != 1 || in.SID != 1 || in.PGID != 1 {
			t.Errorf("pid %d sid %d pgid %d, want a new session led by pid 1", in.PID, in.SID, in.PGID)
		}
	})
}

// TestProcessStdio: stdin, stdout and stderr are passed through untouched.
func TestProcessStdio(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.shBundle(`cat; echo to-stderr >&2; printf 'no newline'`, nil)
		c := r.cmd("run", "--bundle", b, "stdio-"+randID())
		c.Stdin = strings.NewReader("line one\nline two\n")
		res := r.runCmd(c)
		if res.code != 0 || res.stdout != "line one\nline two\nno newline" || withoutCgroupNotes(res.stderr) != "to-stderr\n" {
			t.Errorf("stdio: %v", res)
		}
	})
}

// extraFDs opens, at fds 3, 4 and 5 of a zviz process, a directory of the
// host that does not exist in the container, a file in it and a pipe.
func extraFDs(t *testing.T, hostDir string) []*os.File {
	t.Helper()
	dir, err := os.Open(hostDir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(hostDir, "file"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close(); f.Close(); pr.Close(); pw.Close() })
	return []*os.File{dir, f, pw}
}

func fdNumbers(fds []report.FD) []int {
	var n []int
	for _, f := range fds {
		n = append(n, f.FD)
	}
	return n
}

// TestProcessFDs: descriptors zviz inherits beyond stdio do not reach the
// container, unless --preserve-fds passes the first N of them; no host
// directory or host cwd reaches it either (CVE-2024-21626).
func TestProcessFDs(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		hostDir := hostTempDir(t, r.user)
		b := r.bundle(nil)
		for _, tc := range []struct {
			flags []string
			want  []int
		}{{nil, []int{0, 1, 2}}, {[]string{"--preserve-fds", "2"}, []int{0, 1, 2, 3, 4}}} {
			c := r.cmd(append(append([]string{"run", "--bundle", b}, tc.flags...), "fds-"+randID())...)
			c.ExtraFiles = extraFDs(t, hostDir)
			c.Dir = hostDir // zviz's own cwd is a host directory
			res := r.runCmd(c)
			if res.code != 0 {
				t.Fatalf("%v: %v", tc.flags, res)
			}
			var in report.Info
			testutil.DecodeJSON(t, []byte(res.stdout), &in)
			if got := fdNumbers(in.FDs); !slices.Equal(got, tc.want) {
				t.Errorf("%v: container fds %v (%+v), want %v", tc.flags, got, in.FDs, tc.want)
			}
			if in.Cwd != "/" {
				t.Errorf("%v: cwd %q, want / from the config", tc.flags, in.Cwd)
			}
			if tc.flags != nil {
				continue // the caller asked for the host descriptors
			}
			for _, fd := range in.FDs {
				if strings.HasPrefix(fd.Target, hostDir) || fd.Target == "/" && fd.FD > 2 {
					t.Errorf("host descriptor reached the container: %+v", fd)
				}
			}
		}
	})
}

// TestProcessListenFDs: socket activation: LISTEN_FDS=1 in zviz's
// environment passes fd 3 on and tells the process so (LISTEN_PID=1).
func TestProcessListenFDs(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		hostDir := hostTempDir(t, r.user)
		b := r.bundle(nil)
		c := testutil.RunAs(t, r.user, []string{"LISTEN_FDS=1", "LISTEN_PID=12345"}, r.zviz,
			"--root", r.root, "run", "--bundle", b, "listen-"+randID())
		c.ExtraFiles = extraFDs(t, hostDir)[2:] // the pipe, at fd 3
		res := r.runCmd(c)
		if res.code != 0 {
			t.Fatalf("run: %v", res)
		}
		var in report.Info
		testutil.DecodeJSON(t, []byte(res.stdout), &in)
		if got := fdNumbers(in.FDs); !slices.Equal(got, []int{0, 1, 2, 3}) || !strings.HasPrefix(in.FDs[3].Target, "pipe:") {
			t.Errorf("container fds %+v, want 0-2 and the pipe at 3", in.FDs)
		}
		if !slices.Contains(in.Env, "LISTEN_FDS=1") || !slices.Contains(in.Env, "LISTEN_PID=1") {
			t.Errorf("env %q, want LISTEN_FDS=1 and LISTEN_PID=1", in.Env)
		}
	})
}

// attackScript runs in an attacker container that shares the host's pid
// namespace. It waits for the victim's workload, the zviz binary that the
// victim's init re-executed through `#!/proc/self/exe` (blocked opening
// its --log FIFO), keeps a read descriptor on its /proc/PID/exe, tries to
// open that for writing while it runs and, after releasing it and seeing
// it exit, through the kept descriptor (the original CVE-2019-5736 attack;
// nothing is written, the opens use O_APPEND).
const attackScript = `pid=
for i in $(seq 1 400); do
  for c in /proc/[0-9]*/cmdline; do
    if grep -q 'log=/fif[o]' "$c" 2>/dev/null; then pid=${c#/proc/}; pid=${pid%/cmdline}; break 2; fi
  done
  sleep 0.05
done
echo "pid=$pid"
[ -n "$pid" ] || exit 1
echo "exe=$(readlink /proc/$pid/exe)"
exec 3</proc/$pid/exe && echo "ro=ok"
echo "id=$(stat -L -c %d:%i /proc/self/fd/3)"
echo "w-running=$( (exec 4>>/proc/$pid/exe) 2>&1 && echo OK)"
echo "w-running-fd=$( (exec 4>>/proc/self/fd/3) 2>&1 && echo OK)"
cat /proc/$pid/root/fifo >/dev/null &
while readlink /proc/$pid/exe >/dev/null 2>&1; do sleep 0.05; done
echo "w-after=$( (exec 4>>/proc/self/fd/3) 2>&1 && echo OK)"
`

// TestProcessExeOverwrite (CVE-2019-5736): as root without a user
// namespace, a container can run the zviz binary again (#!/proc/self/exe
// as the workload's interpreter). A second container that sees its
// processes must not get a writable handle on the host's zviz binary,
// and the binary must be unchanged. Both containers are made with
// create/start so that no host zviz process keeps the binary busy
// (ETXTBSY) when the attacker tries: the test is then able to fail (it
// does when the init is started from the binary itself, not a sealed
// memfd copy).
func TestProcessExeOverwrite(t *testing.T) {
	testutil.Requires(t, "root")
	r := newRT(t, "root")
	// A private copy: nothing else runs it, and a successful attack could
	// not break other tests.
	bin := filepath.Join(hostTempDir(t, "root"), "zviz")
	if err := copyExec(r.zviz, bin); err != nil {
		t.Fatal(err)
	}
	// create and start run the copy; state, polled while the attack runs,
	// and delete run the usual binary, so that no host process executes
	// the copy then.
	rc := *r
	rc.zviz = bin
	before := sha(t, bin)
	var st unix.Stat_t
	if err := unix.Stat(bin, &st); err != nil {
		t.Fatal(err)
	}
	hostID := fmt.Sprintf("%d:%d", st.Dev, st.Ino)

	victim := r.bundleWith(func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"/bin/evil"}
	}, func(root string) {
		if err := os.WriteFile(filepath.Join(root, "bin/evil"), []byte("#!/proc/self/exe --log=/fifo\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o666); err != nil {
			t.Fatal(err)
		}
	})
	attacker := r.bundleWith(func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"sh", "/attack.sh"}
		withoutNS(s, specs.PIDNamespace)
	}, func(root string) {
		if err := os.WriteFile(filepath.Join(root, "attack.sh"), []byte(attackScript), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	v := rc.createLogged(victim)
	a := rc.createLogged(attacker)
	v.r, a.r = r, r
	rc.ok("start", a.id)
	rc.ok("start", v.id)
	// From the host: the re-executed zviz inside the victim must not be the
	// host's binary (it runs from the sealed copy), whatever the attacker
	// manages to see of it.
	zpid := waitForCmdline(t, "log=/fifo", 20*time.Second)
	var est unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/exe", zpid), &est); err != nil {
		t.Fatalf("stat /proc/%d/exe from the host: %v", zpid, err)
	}
	if fmt.Sprintf("%d:%d", est.Dev, est.Ino) == hostID {
		t.Errorf("the zviz re-executed in the container is the host's binary %s, not a sealed copy", hostID)
	}
	// Release the victim once the attacker is done (or could not even look:
	// Landlock denies ptrace-class access to another container's process,
	// and /proc/PID/root of it is outside the attacker's domain).
	go releaseFIFO(filepath.Join(victim, "rootfs", "fifo"), a.out, 15*time.Second)
	a.wait()
	v.wait()
	kv := keyValues(a.stdout())
	t.Logf("attacker: %q; victim stderr: %q", a.stdout(), v.stderr())
	if kv["pid"] == "" {
		t.Fatalf("attacker never saw the re-executed zviz: stdout %q stderr %q", a.stdout(), a.stderr())
	}
	if kv["ro"] != "ok" {
		t.Logf("the attacker could not even open /proc/%s/exe (Landlock): the memfd copy is checked from the host above", kv["pid"])
	}
	for _, k := range []string{"w-running", "w-running-fd", "w-after"} {
		if strings.HasSuffix(kv[k], "OK") && kv["id"] == hostID {
			t.Errorf("%s: the container opened the host's zviz binary (%s) for writing", k, hostID)
		}
	}
	if after := sha(t, bin); !bytes.Equal(before, after) {
		t.Errorf("the host's zviz binary changed")
	}
}

// waitForCmdline returns the pid of the first process whose command line
// contains sub.
func waitForCmdline(t *testing.T, sub string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), sub) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no process with %q in its command line after %v", sub, timeout)
	return 0
}

// releaseFIFO opens the fifo for reading (unblocking its writer) once the
// attacker's log shows its last attempt, or after timeout.
func releaseFIFO(fifo, attackerLog string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(attackerLog)
		if strings.Contains(string(b), "w-running-fd=") {
			break
		}
		if strings.Contains(string(b), "exe=\n") {
			// The attacker could not read the link: its shell stops at the
			// failed redirection that follows.
			time.Sleep(500 * time.Millisecond)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(io.Discard, f)
}

func copyExec(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func sha(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}
