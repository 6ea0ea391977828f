package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// TestCrashCreateKilled: a create SIGKILLed while a createRuntime hook runs
// leaves state that delete --force removes, with no init surviving.
func TestCrashCreateKilled(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		dir := r.userDir()
		hook := filepath.Join(dir, "hook.sh")
		hookPid := filepath.Join(dir, "hook.pid")
		stdin := filepath.Join(dir, "hook.stdin")
		script := "#!/bin/sh\ncat > " + stdin + "\necho $$ > " + hookPid + ".tmp\nmv " + hookPid + ".tmp " + hookPid + "\nexec /bin/sh -c 'sleep 30'\n"
		if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chown(hook, uidOf(t, r.user), uidOf(t, r.user))
		b := r.bundle(func(s *specs.Spec) {
			s.Process.Args = []string{"/probe", "sleep", "30"}
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: hook}}}
		})
		c := r.cmd("create", "--bundle", b, "crash")
		c.Stdout, c.Stderr = lcTempFile(t), lcTempFile(t)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
		pidText := waitFile(t, hookPid)
		if pid, err := strconv.Atoi(strings.TrimSpace(pidText)); err == nil {
			// The hook is our grandchild; nothing else reaps it.
			defer syscall.Kill(pid, syscall.SIGKILL)
		}
		// The hook got the state on stdin.
		if in, _ := os.ReadFile(stdin); !strings.Contains(string(in), `"id":"crash"`) || !strings.Contains(string(in), `"status":"creating"`) {
			t.Errorf("hook's stdin: %q, want the state JSON", in)
		}
		// state would wait for create's lock: read the record directly.
		var rec struct {
			Pid int `json:"pid"`
		}
		raw, err := os.ReadFile(filepath.Join(r.root, "crash", "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		testutil.DecodeJSON(t, raw, &rec)
		if cmdline(rec.Pid) != "zviz:[init]" {
			t.Errorf("during the hook: pid %d is %q, want zviz:[init]", rec.Pid, cmdline(rec.Pid))
		}
		if pids := initsUnder(r.root); !slices.Contains(pids, strconv.Itoa(rec.Pid)) {
			t.Errorf("initsUnder(%s) = %v, want the parked init %d", r.root, pids, rec.Pid)
		}
		st := stateDoc{Pid: rec.Pid}
		initPid := st.Pid
		if err := c.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		// The state is still there, and not created.
		if after := r.state("crash"); after.Status != "creating" && after.Status != "stopped" {
			t.Errorf("state after the crash: %+v, want creating or stopped", after)
		}
		if ents, _ := os.ReadDir(r.root); len(ents) != 1 {
			t.Errorf("state directory after the crash: %v", ents)
		}
		if res := r.run("create", "--bundle", b, "crash"); res.code == 0 || !strings.Contains(res.stderr, "already exists") {
			t.Errorf("create over a crashed create: %v", res)
		}
		if res := r.run("start", "crash"); res.code == 0 {
			t.Errorf("start of a crashed create succeeded: %v", res)
		}
		if res := r.run("delete", "--force", "crash"); res.code != 0 {
			t.Fatalf("delete --force after the crash: %v", res)
		}
		if ents, _ := os.ReadDir(r.root); len(ents) != 0 {
			t.Errorf("state left after delete --force: %v", ents)
		}
		waitGone(t, initPid)
		deadline := time.Now().Add(5 * time.Second)
		for len(initsUnder(r.root)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if pids := initsUnder(r.root); len(pids) > 0 {
			t.Errorf("zviz:[init] survived: %v", pids)
		}
	})
}

// TestCrashStateWithoutRecord: a container directory without state.json
// (a create killed before its first write) is "does not exist" to state and
// removed by delete --force.
func TestCrashStateWithoutRecord(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		r.ok("list") // creates the root
		if err := os.MkdirAll(r.root, 0o700); err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(r.root, "half")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		uid := uidOf(t, r.user)
		os.Chown(r.root, uid, uid)
		os.Chown(d, uid, uid)
		if res := r.run("state", "half"); res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("state of a record-less directory: %v", res)
		}
		if q := strings.TrimSpace(r.ok("list", "-q").stdout); q != "" {
			t.Errorf("list shows %q", q)
		}
		if res := r.run("delete", "--force", "half"); res.code != 0 {
			t.Errorf("delete --force: %v", res)
		}
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s still exists", d)
		}
	})
}
