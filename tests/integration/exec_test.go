package integration

import (
	"encoding/json"
	"fmt"
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

// execTarget creates and starts a container whose init sleeps, with a
// hostname, a writable /tmp and the default profile; it returns the
// container and its init's host pid.
func (r *rt) execTarget(edit func(s *specs.Spec)) (*detached, int) {
	r.t.Helper()
	b := r.escapeBundle(nil, func(s *specs.Spec) {
		s.Process.Args = []string{"/probe", "sleep", "120"}
		s.Hostname = "exec-target"
		if edit != nil {
			edit(s)
		}
	})
	d := r.createLogged(b)
	r.ok("start", d.id)
	return d, r.state(d.id).Pid
}

// nsOf reads the inodes of pid's namespaces from the host.
func nsOf(t *testing.T, pid int, names ...string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, n := range names {
		m[n] = testutil.NSInode(t, pid, n)
	}
	return m
}

// TestExecSharesContainer: an exec'd process is in every namespace of the
// container's init (the user namespace too, rootless), sees its hostname
// and pid namespace, and gets exactly the init's policy: no capabilities,
// no_new_privs, the same seccomp answers as `zviz run` for every escape
// try, and Landlock.
func TestExecSharesContainer(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		// The exec'd process writes the container's oomScoreAdj while
		// still dumpable (nsenter.c): afterwards it could not.
		adj := 250
		d, pid := r.execTarget(func(s *specs.Spec) { s.Process.OOMScoreAdj = &adj })
		var in report.Info
		testutil.DecodeJSON(t, []byte(r.ok("exec", d.id, "/probe", "info").stdout), &in)
		if in.OOMScoreAdj != adj {
			t.Errorf("oom_score_adj %d, want the container's %d", in.OOMScoreAdj, adj)
		}
		want := nsOf(t, pid, append([]string{"user"}, nsKinds...)...)
		for n, ino := range want {
			if in.NS[n] != ino {
				t.Errorf("%s namespace: exec'd %d, init %d", n, in.NS[n], ino)
			}
		}
		if in.Hostname != "exec-target" {
			t.Errorf("hostname %q, want the container's exec-target", in.Hostname)
		}
		if in.PID <= 1 || in.PID > 100 {
			t.Errorf("pid %d: want a small pid of the container's pid namespace", in.PID)
		}
		for k, v := range in.Caps {
			if v != noCaps {
				t.Errorf("%s = %s, want none", k, v)
			}
		}
		if in.NoNewPrivs != 1 || in.Seccomp != 2 {
			t.Errorf("no_new_privs %d, seccomp %d: want 1 and 2 (filter)", in.NoNewPrivs, in.Seccomp)
		}
		rep := decodeTries(t, r.run(append([]string{"exec", d.id, "/probe", "try"}, escapeNames()...)...))
		t.Logf("exec as %s: %s", r.user, summary(rep))
		checkRows(t, rep, "run", r.user, "default")
		ops := fileOps(t, r.ok("exec", d.id, "sh", "-c", "/probe write /dev/zviz-x; /probe write /tmp/ok").stdout)
		if got := ops["write /dev/zviz-x"].Errno; got != "EACCES" {
			t.Errorf("write /dev/zviz-x: %s, want EACCES (Landlock)", got)
		}
		if got := ops["write /tmp/ok"].Errno; got != "OK" {
			t.Errorf("write /tmp/ok: %s, want OK", got)
		}
	})
}

// TestExecExitCodesAndErrors: the exec'd process's status is exec's, a
// missing command has the wording podman maps to 127, and a stopped or
// unknown container is refused without leaving anything behind.
func TestExecExitCodesAndErrors(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		d, _ := r.execTarget(nil)
		if res := r.run("exec", d.id, "/probe", "exit", "7"); res.code != 7 {
			t.Errorf("exec exit 7: %v", res)
		}
		if res := r.run("exec", d.id, "/probe", "kill-self", "TERM"); res.code != 128+int(unix.SIGTERM) {
			t.Errorf("exec kill-self TERM: %v, want %d", res, 128+int(unix.SIGTERM))
		}
		res := r.run("exec", d.id, "no-such-command")
		if res.code == 0 || !strings.Contains(res.stderr, "executable file not found in $PATH") {
			t.Errorf("exec of a missing command: %v", res)
		}
		if res := r.run("exec", "--cwd", "/nonexistent", d.id, "/probe", "exit", "0"); res.code == 0 || !strings.Contains(res.stderr, "no such file or directory") {
			t.Errorf("exec with a missing cwd: %v", res)
		}
		if res := r.run("exec", "no-such-id", "/probe", "exit", "0"); res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("exec into an unknown container: %v", res)
		}
		r.ok("kill", d.id, "KILL")
		r.waitStatus(d.id, "stopped")
		res = r.run("exec", d.id, "/probe", "exit", "0")
		if res.code == 0 || !strings.Contains(res.stderr, "stopped") {
			t.Errorf("exec into a stopped container: %v", res)
		}
		r.ok("delete", d.id)
	})
}

// TestExecInlineOptions: -e, --cwd and --user of the inline form, and the
// --process form with its own env and args.
func TestExecInlineOptions(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		d, _ := r.execTarget(nil)
		args := []string{"exec", "-e", "ZVIZ_A=1", "--env", "ZVIZ_B=2", "--cwd", "/tmp"}
		if r.user == "root" {
			args = append(args, "--user", "1234:2345")
		}
		var in report.Info
		testutil.DecodeJSON(t, []byte(r.ok(append(args, d.id, "/probe", "info")...).stdout), &in)
		if !slices.Contains(in.Env, "ZVIZ_A=1") || !slices.Contains(in.Env, "ZVIZ_B=2") {
			t.Errorf("env %v: want ZVIZ_A=1 and ZVIZ_B=2", in.Env)
		}
		if in.Cwd != "/tmp" {
			t.Errorf("cwd %q, want /tmp", in.Cwd)
		}
		if r.user == "root" && (in.UID != 1234 || in.GID != 2345) {
			t.Errorf("uid/gid %d/%d, want 1234/2345", in.UID, in.GID)
		}
		p := specs.Process{Args: []string{"/probe", "info"}, Cwd: "/etc", Env: []string{"ONLY=process.json"}}
		file := filepath.Join(hostTempDir(t, r.user), "process.json")
		b, _ := json.Marshal(p)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		testutil.DecodeJSON(t, []byte(r.ok("exec", "--process", file, d.id).stdout), &in)
		if in.Cwd != "/etc" || !slices.Contains(in.Env, "ONLY=process.json") || slices.Contains(in.Env, "ZVIZ_A=1") {
			t.Errorf("--process: cwd %q env %v, want /etc and ONLY=process.json", in.Cwd, in.Env)
		}
		for k, v := range in.Caps {
			if v != noCaps {
				t.Errorf("--process: %s = %s, want none", k, v)
			}
		}
	})
}

// TestExecDetach: --detach returns once the process runs and --pid-file
// names it (a host pid of a process in the container's pid namespace);
// the init's cgroup is the process's.
func TestExecDetach(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		d, pid := r.execTarget(nil)
		pidFile := filepath.Join(hostTempDir(t, r.user), "exec.pid")
		start := time.Now()
		r.okDetached("exec", "--detach", "--pid-file", pidFile, d.id, "/probe", "sleep", "30")
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("exec --detach took %v: it must not wait for the process", el)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		epid, err := strconv.Atoi(string(b))
		if err != nil {
			t.Fatalf("pid file %q: %v", b, err)
		}
		if got := cmdline(epid); got != "/probe sleep 30" {
			t.Errorf("pid %d from the pid file runs %q, want /probe sleep 30", epid, got)
		}
		if a, b := nsOf(t, epid, "pid", "mnt"), nsOf(t, pid, "pid", "mnt"); a["pid"] != b["pid"] || a["mnt"] != b["mnt"] {
			t.Errorf("detached exec'd process namespaces %v, init's %v", a, b)
		}
		if a, b := readFile(t, fmt.Sprintf("/proc/%d/cgroup", epid)), readFile(t, fmt.Sprintf("/proc/%d/cgroup", pid)); a != b {
			t.Errorf("cgroup of the exec'd process:\n%s\ninit's:\n%s", a, b)
		}
		_ = unix.Kill(epid, unix.SIGKILL)
	})
}

// okDetached runs zviz with stdio on files, as conmon does: a detached
// process keeps what it inherited open, and a pipe would keep the caller
// waiting for it.
func (r *rt) okDetached(args ...string) {
	r.t.Helper()
	f, err := os.Create(filepath.Join(r.t.TempDir(), "stdio"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	c := r.cmd(args...)
	c.Stdout, c.Stderr = f, f
	if res := r.runCmd(c); res.code != 0 {
		b, _ := os.ReadFile(f.Name())
		r.t.Fatalf("zviz %v: exit %d: %s", args, res.code, b)
	}
}

// TestExecJoinsCgroup: as root, with the init moved to a cgroup of its
// own in the v2 hierarchy, the exec'd process is put in that cgroup and
// not left in the caller's.
func TestExecJoinsCgroup(t *testing.T) {
	testutil.Requires(t, "root", "cgroup2")
	r := newRT(t, "root")
	d, pid := r.execTarget(nil)
	mount := testutil.Cgroup2Mount(t)
	dir, err := os.MkdirTemp(mount, "zviz-exec-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r.ok("delete", "--force", d.id)
		waitGone(t, pid)
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.okDetached("exec", "-d", "--pid-file", pidFile, d.id, "/probe", "sleep", "30")
	epid, _ := strconv.Atoi(readFile(t, pidFile))
	defer unix.Kill(epid, unix.SIGKILL)
	want := "0::/" + strings.TrimPrefix(strings.TrimPrefix(dir, mount), "/")
	if got := strings.TrimSpace(readFile(t, fmt.Sprintf("/proc/%d/cgroup", epid))); !strings.Contains(got, want) {
		t.Errorf("exec'd process cgroup %q, want %q (the init's)", got, want)
	}
	_ = unix.Kill(epid, unix.SIGKILL)
	waitGone(t, epid)
}

// TestExecTTYConsoleSocket: --tty --console-socket --detach (conmon's
// form) hands the pty master over; the test drives sh through it.
func TestExecTTYConsoleSocket(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		d, _ := r.execTarget(nil)
		sock, masters := consoleSocket(t, r.user)
		p := specs.Process{Args: []string{"sh"}, Cwd: "/", Terminal: true, Env: []string{"PATH=/bin", "PS1=$ "}}
		file := filepath.Join(hostTempDir(t, r.user), "process.json")
		b, _ := json.Marshal(p)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		pidFile := filepath.Join(hostTempDir(t, r.user), "exec.pid")
		r.okDetached("exec", "--process", file, "--detach", "--pid-file", pidFile, "--tty", "--console-socket", sock, d.id)
		master := <-masters
		if master == nil {
			t.Fatal("no pty master received on the console socket")
		}
		defer master.Close()
		out := testutil.ReadPTY(master)
		if _, err := master.WriteString("echo t''ty=$(tty); exit 3\n"); err != nil {
			t.Fatal(err)
		}
		out.WaitFor(t, "tty=/dev/pts/", 0)
		select {
		case <-out.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("sh did not exit; terminal: %q", out.String())
		}
	})
}

// TestExecTTYForeground: `zviz exec -t` on a real pty relays typed input
// and output and returns the shell's status.
func TestExecTTYForeground(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		d, _ := r.execTarget(nil)
		master, slave := testutil.OpenPTY(t)
		setSize(t, master, 30, 100)
		c := r.cmd("exec", "-t", "-e", "PS1=$ ", d.id, "sh")
		out, waitc := testutil.StartOnPTY(t, c, master, slave)
		if _, err := master.WriteString("echo size=$(stty size)= h''n=$(hostname)\n"); err != nil {
			t.Fatal(err)
		}
		out.WaitFor(t, "size=30 100= hn=exec-target", 0)
		if _, err := master.WriteString("exit 4\n"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-waitc:
			if code := c.ProcessState.ExitCode(); code != 4 {
				t.Errorf("exec -t: exit %d, want 4; terminal: %q", code, out.String())
			}
		case <-time.After(20 * time.Second):
			c.Process.Kill()
			<-waitc
			t.Fatalf("exec -t did not exit; terminal: %q", out.String())
		}
	})
}

// TestExecForwardsSignals: a signal sent to a foreground `zviz exec`
// reaches the process.
func TestExecForwardsSignals(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		d, _ := r.execTarget(nil)
		c, br, _ := r.lcForeground("exec", d.id, "/probe", "wait-signal", "USR1")
		if line := readLine(t, br); !strings.Contains(line, "ready") {
			t.Fatalf("probe: %q", line)
		}
		if err := c.Process.Signal(unix.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if code := waitCmd(t, c); code != 0 {
			t.Errorf("exec wait-signal USR1: exit %d, want 0 (the signal arrived)", code)
		}
	})
}
