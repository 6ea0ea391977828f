package integration

import (
	"bufio"
	"errors"
	"fmt"
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

// stateDoc is what `zviz state` prints (runtime-spec state plus runc's
// extra fields).
type stateDoc struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
	Created     string            `json:"created"`
	Owner       string            `json:"owner"`
	Warnings    []string          `json:"warnings"`
	Cgroup      *struct {
		Manager, Unit, Path, Reason string
	} `json:"cgroup"`
	OOMKills uint64 `json:"oomKills"`
}

// runIO runs zviz with stdout and stderr going to files, not pipes: the
// container's init inherits them, and a pipe would keep a Wait for `create`
// or `run --detach` waiting for the container's end.
func (r *rt) runIO(args ...string) result {
	r.t.Helper()
	c := r.cmd(args...)
	out, errf := lcTempFile(r.t), lcTempFile(r.t)
	c.Stdout, c.Stderr = out, errf
	res := lcWait(r.t, c, args)
	res.stdout, res.stderr = lcRead(r.t, out), lcRead(r.t, errf)
	return res
}

// okIO is runIO that fails the test unless zviz exits 0.
func (r *rt) okIO(args ...string) result {
	r.t.Helper()
	res := r.runIO(args...)
	if res.code != 0 {
		r.t.Fatalf("zviz %v: %v", args, res)
	}
	return res
}

func lcWait(t *testing.T, c *exec.Cmd, args []string) result {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatalf("start zviz %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		<-done
		t.Fatalf("zviz %v: timed out", args)
	}
	var res result
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("zviz %v: %v", args, err)
	}
	return res
}

func lcTempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp("", "zviz-out-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(f.Name())
	t.Cleanup(func() { f.Close() })
	return f
}

// lcRead returns what has been written to f so far.
func lcRead(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// state returns the decoded `zviz state ID`, failing the test on error.
func (r *rt) state(id string) stateDoc {
	r.t.Helper()
	res := r.ok("state", id)
	var st stateDoc
	testutil.DecodeJSON(r.t, []byte(res.stdout), &st)
	return st
}

// waitStatus polls state until it reports want (up to 10 s).
func (r *rt) waitStatus(id, want string) stateDoc {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A container that `run` is still creating does not exist yet.
		var st stateDoc
		res := r.run("state", id)
		if res.code == 0 {
			testutil.DecodeJSON(r.t, []byte(res.stdout), &st)
			if st.Status == want {
				return st
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s: status %q, want %q (%v)", id, st.Status, want, res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// userDir makes a directory that r's user owns and every user may
// traverse; it is removed when the test ends.
func (r *rt) userDir() string {
	r.t.Helper()
	d, err := os.MkdirTemp("", "zviz-dir-")
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { os.RemoveAll(d) })
	uid := uidOf(r.t, r.user)
	if err := os.Chmod(d, 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chown(d, uid, uid); err != nil {
		r.t.Fatal(err)
	}
	return d
}

// sharedBundle is a bundle whose /shared is a writable bind mount of a host
// directory the test can look into; it returns the bundle and that
// directory.
func (r *rt) sharedBundle(args ...string) (bundle, shared string) {
	r.t.Helper()
	shared = r.userDir()
	bundle = r.bundle(func(s *specs.Spec) {
		s.Process.Args = args
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: shared,
			Options: []string{"rbind", "rw"}})
	})
	return bundle, shared
}

// waitFile polls until path exists (up to 10 s) and returns its content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

// TestLifecycleCreateStart: create parks the init without running the
// workload and writes the pid file; start releases it and returns at once.
func TestLifecycleCreateStart(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b, shared := r.sharedBundle("sh", "-c", "touch /shared/ran; exec sleep 30")
		pidFile := filepath.Join(r.userDir(), "init.pid")
		res := r.okIO("create", "--bundle", b, "--pid-file", pidFile, "lc")
		defer r.run("delete", "--force", "lc")
		if res.stdout != "" || withoutCgroupNotes(res.stderr) != "" {
			t.Errorf("create: want no output, got %v", res)
		}
		st := r.state("lc")
		if st.Status != "created" {
			t.Fatalf("status after create: %q, want created", st.Status)
		}
		if got := cmdline(st.Pid); got != "zviz:[init]" {
			t.Errorf("pid %d: cmdline %q, want zviz:[init]", st.Pid, got)
		}
		pb, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatalf("pid file: %v", err)
		}
		if strings.TrimSpace(string(pb)) != strconv.Itoa(st.Pid) {
			t.Errorf("pid file holds %q, state's pid is %d", pb, st.Pid)
		}
		if ents, _ := os.ReadDir(filepath.Dir(pidFile)); len(ents) != 1 {
			t.Errorf("pid file directory holds %d entries (temporary file left?), want 1", len(ents))
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := os.Stat(filepath.Join(shared, "ran")); err == nil {
			t.Fatal("the workload ran before start")
		}
		began := time.Now()
		r.ok("start", "lc")
		// The workload sleeps 30 s: a start that waited for it would take
		// that long; 5 s leaves room for a loaded CI machine.
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("start took %v, want it to return at once", d)
		}
		waitFile(t, filepath.Join(shared, "ran"))
		if st := r.state("lc"); st.Status != "running" || st.Pid != 0 && cmdline(st.Pid) != "sleep 30" {
			t.Errorf("after start: status %q, pid %d (%q), want running sleep 30", st.Status, st.Pid, cmdline(st.Pid))
		}
		if res := r.run("start", "lc"); res.code == 0 || !strings.Contains(res.stderr, "already running") {
			t.Errorf("second start: want refusal, got %v", res)
		}
		r.ok("delete", "--force", "lc")
		if res := r.run("state", "lc"); res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("state after delete: %v", res)
		}
	})
}

// TestLifecycleStateFields checks every field of the state document.
func TestLifecycleStateFields(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) {
			s.Process.Args = []string{"/probe", "sleep", "30"}
			s.Annotations = map[string]string{"org.example.key": "value", "run.zviz.test": "1"}
		})
		before := time.Now().Add(-time.Second)
		r.okIO("create", "--bundle", b, "st")
		defer r.run("delete", "--force", "st")
		res := r.ok("state", "st")
		var raw map[string]any
		testutil.DecodeJSON(t, []byte(res.stdout), &raw)
		for _, k := range []string{"ociVersion", "id", "status", "pid", "bundle", "annotations", "created", "owner"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("state has no %q field: %s", k, res.stdout)
			}
		}
		var st stateDoc
		testutil.DecodeJSON(t, []byte(res.stdout), &st)
		if !strings.HasPrefix(st.OCIVersion, "1.") || st.ID != "st" || st.Status != "created" || st.Pid <= 0 {
			t.Errorf("state: %+v", st)
		}
		if st.Bundle != b || !filepath.IsAbs(st.Bundle) {
			t.Errorf("bundle %q, want %q", st.Bundle, b)
		}
		if st.Annotations["org.example.key"] != "value" || st.Annotations["run.zviz.test"] != "1" {
			t.Errorf("annotations %v", st.Annotations)
		}
		created, err := time.Parse(time.RFC3339, st.Created)
		if err != nil || created.Before(before) || created.After(time.Now().Add(time.Second)) {
			t.Errorf("created %q (%v): want an RFC 3339 time of the last seconds", st.Created, err)
		}
		if st.Owner != r.user {
			t.Errorf("owner %q, want %q", st.Owner, r.user)
		}
		// Relative bundle paths are made absolute.
		res = func() result {
			c := r.cmd("create", "--bundle", ".", "st-rel")
			c.Dir = b
			c.Stdout, c.Stderr = lcTempFile(t), lcTempFile(t)
			return lcWait(t, c, []string{"create", "st-rel"})
		}()
		defer r.run("delete", "--force", "st-rel")
		if res.code != 0 {
			t.Fatalf("create with --bundle .: %v", res)
		}
		if st := r.state("st-rel"); st.Bundle != b {
			t.Errorf("bundle of --bundle . is %q, want %q", st.Bundle, b)
		}
		r.ok("delete", "--force", "st-rel")
		r.ok("kill", "st", "KILL")
		st = r.waitStatus("st", "stopped")
		if st.Pid != 0 {
			t.Errorf("stopped container reports pid %d", st.Pid)
		}
		r.ok("delete", "st")
		res = r.run("state", "no-such-container")
		if res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("state of unknown id: %v", res)
		}
	})
}

// lcForeground starts `zviz run` with its stdout readable line by line.
func (r *rt) lcForeground(args ...string) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
	r.t.Helper()
	c := r.cmd(args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		r.t.Fatal(err)
	}
	var errb strings.Builder
	c.Stdout = pw
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		r.t.Fatal(err)
	}
	pw.Close()
	r.t.Cleanup(func() { pr.Close(); c.Process.Kill() })
	return c, bufio.NewReader(pr), &errb
}

func readLine(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		ch <- strings.TrimSpace(l)
	}()
	select {
	case l := <-ch:
		return l
	case <-time.After(15 * time.Second):
		t.Fatal("timed out reading the workload's output")
		return ""
	}
}

func waitCmd(t *testing.T, c *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		c.Process.Kill()
		t.Fatal("zviz run did not exit")
		return -1
	}
}

// TestLifecycleRunForwardsSignals: signals sent to a foreground `zviz run`
// reach the workload.
func TestLifecycleRunForwardsSignals(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM} {
			name := map[syscall.Signal]string{syscall.SIGUSR1: "SIGUSR1", syscall.SIGTERM: "SIGTERM"}[sig]
			b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "wait-signal", strconv.Itoa(int(sig))} })
			c, out, errb := r.lcForeground("run", "--bundle", b, "fwd")
			if l := readLine(t, out); l != "ready" {
				t.Fatalf("workload said %q, want ready (stderr %s)", l, errb)
			}
			if err := c.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			got := readLine(t, out)
			if code := waitCmd(t, c); code != 0 {
				t.Errorf("%v: run exited %d, want 0; stderr %s", sig, code, errb)
			}
			if got != name {
				t.Errorf("workload received %q, want %s", got, name)
			}
			if res := r.run("state", "fwd"); !strings.Contains(res.stderr, "does not exist") {
				t.Errorf("run did not remove the container: %v", res)
			}
		}
	})
}

// TestLifecycleRunKilled: run reports 128+N when the workload dies of
// signal N, and exits with the workload's status otherwise.
func TestLifecycleRunKilled(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		c, _, errb := r.lcForeground("run", "--bundle", b, "victim")
		r.waitStatus("victim", "running")
		r.ok("kill", "victim", "KILL")
		if code := waitCmd(t, c); code != 137 {
			t.Errorf("run of a SIGKILLed workload exited %d, want 137; stderr %s", code, errb)
		}
		if res := r.run("state", "victim"); res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("run did not remove the container: %v", res)
		}
		b = r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "exit", "42"} })
		if res := r.runIO("run", "--bundle", b, "exit42"); res.code != 42 {
			t.Errorf("run of exit 42: %v", res)
		}
	})
}

// TestLifecycleRunDetach: run --detach returns while the workload runs.
func TestLifecycleRunDetach(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b, shared := r.sharedBundle("sh", "-c", "touch /shared/ran; exec sleep 30")
		began := time.Now()
		res := r.okIO("run", "--detach", "--bundle", b, "det")
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("run --detach took %v", d)
		}
		if res.stdout != "" || withoutCgroupNotes(res.stderr) != "" {
			t.Errorf("run --detach printed %v", res)
		}
		waitFile(t, filepath.Join(shared, "ran"))
		st := r.state("det")
		if st.Status != "running" {
			t.Errorf("status after run --detach: %q", st.Status)
		}
		r.ok("delete", "--force", "det")
		if _, err := os.Stat("/proc/" + strconv.Itoa(st.Pid)); err == nil && cmdline(st.Pid) == "sleep 30" {
			t.Errorf("workload %d survived delete --force", st.Pid)
		}
	})
}

// TestLifecycleKillSignals: kill accepts signal names in every spelling and
// numbers, and refuses bad names and stopped containers.
func TestLifecycleKillSignals(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		for _, tc := range []struct{ arg, want string }{
			{"KILL", ""}, {"SIGKILL", ""}, {"9", ""}, {"sigterm", "SIGTERM"}, {"TERM", "SIGTERM"}, {"usr1", "SIGUSR1"},
		} {
			args := []string{"/probe", "sleep", "30"}
			if tc.want != "" {
				args = []string{"sh", "-c", "exec /probe wait-signal " + tc.want + " > /shared/got"}
			}
			b, shared := r.sharedBundle(args...)
			r.okIO("run", "--detach", "--bundle", b, "k")
			if tc.want != "" {
				// The probe prints ready once its handler is installed.
				deadline := time.Now().Add(10 * time.Second)
				for b, _ := os.ReadFile(filepath.Join(shared, "got")); !strings.Contains(string(b), "ready"); b, _ = os.ReadFile(filepath.Join(shared, "got")) {
					if time.Now().After(deadline) {
						t.Fatal("probe not ready")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if res := r.run("kill", "k", tc.arg); res.code != 0 {
				t.Errorf("kill k %s: %v", tc.arg, res)
			}
			r.waitStatus("k", "stopped")
			if tc.want != "" {
				if got, _ := os.ReadFile(filepath.Join(shared, "got")); !strings.Contains(string(got), tc.want) {
					t.Errorf("kill %s: workload got %q, want %s", tc.arg, got, tc.want)
				}
			}
			res := r.run("kill", "k", "KILL")
			if res.code == 0 || !strings.Contains(res.stderr, "not running") {
				t.Errorf("kill of a stopped container: %v", res)
			}
			r.ok("delete", "k")
		}
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		r.okIO("create", "--bundle", b, "k2")
		defer r.run("delete", "--force", "k2")
		for _, bad := range []string{"NOSUCH", "SIGFOO", "0", "65"} {
			res := r.run("kill", "k2", bad)
			if res.code == 0 || !strings.Contains(res.stderr, "signal") || !strings.Contains(res.stderr, bad) {
				t.Errorf("kill k2 %s: want an error naming the signal, got %v", bad, res)
			}
		}
		if st := r.state("k2"); st.Status != "created" {
			t.Errorf("bad kill changed the status to %q", st.Status)
		}
		if res := r.run("kill", "nope", "KILL"); res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("kill of unknown id: %v", res)
		}
	})
}

// TestLifecycleKillAll: kill --all signals every process of the container,
// not only its init.
func TestLifecycleKillAll(t *testing.T) {
	const script = `for i in 1 2 3; do
  sh -c 'trap "echo child >> /shared/log; exit 0" TERM; while :; do sleep 0.05; done' &
done
trap "echo init >> /shared/log" TERM
echo started > /shared/ready
while :; do sleep 0.05; done`
	forEachUser(t, func(t *testing.T, r *rt) {
		b, shared := r.sharedBundle("sh", "-c", script)
		r.okIO("run", "--detach", "--bundle", b, "all")
		defer r.run("delete", "--force", "all")
		waitFile(t, filepath.Join(shared, "ready"))
		st := r.state("all")
		time.Sleep(200 * time.Millisecond) // let the children install their traps
		before := pidnsMembers(t, st.Pid)
		if len(before) < 4 {
			t.Fatalf("container has %d processes, want at least 4", len(before))
		}
		r.ok("kill", "--all", "all", "TERM")
		deadline := time.Now().Add(10 * time.Second)
		var log string
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(filepath.Join(shared, "log"))
			if log = string(b); strings.Count(log, "child") == 3 && strings.Contains(log, "init") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if strings.Count(log, "child") != 3 || !strings.Contains(log, "init") {
			t.Fatalf("after kill --all TERM the log is %q, want 3 children and the init", log)
		}
		if st := r.state("all"); st.Status != "running" {
			t.Errorf("init trapped TERM, yet status is %q", st.Status)
		}
		r.ok("kill", "--all", "all", "KILL")
		r.waitStatus("all", "stopped")
		for _, pid := range before {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil && cmdline(pid) != "" {
				t.Errorf("pid %d (%q) survived kill --all KILL", pid, cmdline(pid))
			}
		}
		r.ok("delete", "all")
	})
}

// pidnsMembers lists the host pids in the pid namespace of pid.
func pidnsMembers(t *testing.T, pid int) []int {
	t.Helper()
	own, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && ns == own {
			out = append(out, p)
		}
	}
	return out
}

// TestLifecycleDelete: delete's refusals and runc's exceptions.
func TestLifecycleDelete(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		// A created container is deleted without --force, as runc does.
		r.okIO("create", "--bundle", b, "d1")
		pid := r.state("d1").Pid
		r.ok("delete", "d1")
		if res := r.run("state", "d1"); !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("state after delete of created: %v", res)
		}
		waitGone(t, pid)
		// A running one needs --force.
		r.okIO("run", "--detach", "--bundle", b, "d2")
		res := r.run("delete", "d2")
		if res.code == 0 || !strings.Contains(res.stderr, "--force") || !strings.Contains(res.stderr, "running") {
			t.Errorf("delete of running without --force: %v", res)
		}
		st := r.state("d2")
		if st.Status != "running" {
			t.Fatalf("refused delete changed status to %q", st.Status)
		}
		r.ok("delete", "--force", "d2")
		waitGone(t, st.Pid)
		if res := r.run("state", "d2"); !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("state after delete --force: %v", res)
		}
		// Unknown ids: --force is silent (runc), without it an error.
		if res := r.run("delete", "--force", "never-was"); res.code != 0 || res.stderr != "" {
			t.Errorf("delete --force of an unknown id: %v", res)
		}
		if res := r.run("delete", "never-was"); res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("delete of an unknown id: %v", res)
		}
	})
}

// waitGone waits until pid no longer names a live process.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d (%q) still alive", pid, cmdline(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLifecycleList: list's table, JSON and quiet forms.
func TestLifecycleList(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		if res := r.ok("list", "--format", "json"); strings.TrimSpace(res.stdout) != "[]" {
			t.Errorf("list --format json of an empty store: %q", res.stdout)
		}
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "30"} })
		r.okIO("create", "--bundle", b, "la")
		defer r.run("delete", "--force", "la")
		r.okIO("run", "--detach", "--bundle", b, "lb")
		defer r.run("delete", "--force", "lb")
		res := r.ok("list")
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "STATUS") {
			t.Fatalf("list table: %q", res.stdout)
		}
		rows := map[string][]string{}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			rows[f[0]] = f
		}
		if f := rows["la"]; len(f) < 4 || f[2] != "created" || f[3] != b {
			t.Errorf("list row of la: %v", f)
		}
		if f := rows["lb"]; len(f) < 3 || f[2] != "running" {
			t.Errorf("list row of lb: %v", f)
		}
		var all []stateDoc
		testutil.DecodeJSON(t, []byte(r.ok("list", "--format", "json").stdout), &all)
		got := map[string]string{}
		for _, s := range all {
			got[s.ID] = s.Status
		}
		if len(all) != 2 || got["la"] != "created" || got["lb"] != "running" {
			t.Errorf("list --format json: %+v", all)
		}
		q := strings.Fields(r.ok("list", "-q").stdout)
		if len(q) != 2 || !(q[0] == "la" && q[1] == "lb" || q[0] == "lb" && q[1] == "la") {
			t.Errorf("list -q: %q", q)
		}
		if res := r.run("list", "--format", "yaml"); res.code == 0 || !strings.Contains(res.stderr, "yaml") {
			t.Errorf("list --format yaml: %v", res)
		}
	})
}
