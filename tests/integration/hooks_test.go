package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookScript appends "NAME STATE-JSON" to the log named by its second
// argument. The same script serves on the host and, copied into the
// rootfs, inside the container (busybox's sh and cat); startContainer's
// copy first sleeps a little, so that a poststart hook that does not wait
// for the process to be executed is caught.
const hookScript = `#!/bin/sh
state=$(/bin/cat)
[ "$1" = startContainer ] && /bin/sleep 0.3
echo "$1 $state" >> "$2"
`

type hookRecord struct {
	name  string
	state specs.State
}

func readHookLog(t *testing.T, path string) []hookRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("hook log: %v", err)
	}
	var recs []hookRecord
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, js, _ := strings.Cut(l, " ")
		rec := hookRecord{name: name}
		if err := json.Unmarshal([]byte(js), &rec.state); err != nil {
			t.Errorf("hook %s: state %q: %v", name, js, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestHooks: every kind of hook runs once, in the runtime-spec's order,
// with the container's state on stdin (id, pid, bundle, status).
// createContainer runs in the container's namespaces before pivot_root
// (host path), startContainer after it (container path).
func TestHooks(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		dir := hostTempDir(t, r.user)
		script := filepath.Join(dir, "hook.sh")
		if err := os.WriteFile(script, []byte(hookScript), 0o755); err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(dir, "log")
		hook := func(name, path, logPath string) specs.Hook {
			return specs.Hook{Path: path, Args: []string{"hook", name, logPath}}
		}
		b := r.bundleWith(func(s *specs.Spec) {
			s.Process.Args = []string{"true"}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
			s.Hooks = &specs.Hooks{
				Prestart:        []specs.Hook{hook("prestart", script, log)},
				CreateRuntime:   []specs.Hook{hook("createRuntime", script, log)},
				CreateContainer: []specs.Hook{hook("createContainer", script, log)},
				StartContainer:  []specs.Hook{hook("startContainer", "/hook.sh", "/hooklog/log")},
				Poststart:       []specs.Hook{hook("poststart", script, log)},
				Poststop:        []specs.Hook{hook("poststop", script, log)},
			}
		}, func(root string) {
			if err := os.WriteFile(filepath.Join(root, "hook.sh"), []byte(hookScript), 0o755); err != nil {
				t.Fatal(err)
			}
		})
		d := r.createLogged(b)
		pid := d.statePid()
		r.ok("start", d.id)
		d.wait()
		recs := readHookLog(t, log)
		want := []struct{ name, status string }{
			{"prestart", "creating"}, {"createRuntime", "creating"}, {"createContainer", "creating"},
			{"startContainer", "created"}, {"poststart", "running"}, {"poststop", "stopped"},
		}
		var names []string
		for _, rec := range recs {
			names = append(names, rec.name)
		}
		if len(recs) != len(want) {
			t.Fatalf("hooks ran %v, want %d of them", names, len(want))
		}
		for i, w := range want {
			rec := recs[i]
			if rec.name != w.name {
				t.Errorf("hook #%d is %s, want %s (order %v)", i, rec.name, w.name, names)
				continue
			}
			st := rec.state
			if st.ID != d.id || st.Bundle != b || string(st.Status) != w.status {
				t.Errorf("%s: state id %q bundle %q status %q, want %q %q %q", w.name, st.ID, st.Bundle, st.Status, d.id, b, w.status)
			}
			wantPid := pid
			if w.name == "poststop" {
				wantPid = 0
			}
			if st.Pid != wantPid {
				t.Errorf("%s: state pid %d, want %d", w.name, st.Pid, wantPid)
			}
		}
	})
}

// statePid is the init's pid from `zviz state`.
func (d *detached) statePid() int {
	d.r.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(d.r.ok("state", d.id).stdout), &st); err != nil {
		d.r.t.Fatal(err)
	}
	return st.Pid
}

// TestHookTimeout: a hook that outlives its timeout fails create with an
// error naming the hook and the timeout, promptly, and leaves no state
// and no process (checkClean).
func TestHookTimeout(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		for _, stage := range []string{"createRuntime", "createContainer"} {
			one := 1
			// A shell hook whose child sleeps: the child must die with it.
			pidFile := filepath.Join(hostTempDir(t, r.user), "pid")
			h := []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; wait"}, Timeout: &one}}
			b := r.bundle(func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{}
				if stage == "createRuntime" {
					s.Hooks.CreateRuntime = h
				} else {
					s.Hooks.CreateContainer = h
				}
			})
			start := time.Now()
			d := &detached{r: r, id: "hook-" + randID()}
			d.out, d.err = filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "err")
			res := r.createTo(d, nil, b)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("%s: create took %v with a 1 s hook timeout", stage, took)
			}
			if res.code == 0 {
				_ = r.cmd("delete", "--force", d.id).Run()
				t.Errorf("%s: create succeeded despite the hook timing out", stage)
				continue
			}
			if !strings.Contains(res.stderr, stage) || !strings.Contains(res.stderr, "timed out") {
				t.Errorf("%s: unclear error: %v", stage, res)
			}
			if st := r.run("state", d.id); st.code == 0 {
				t.Errorf("%s: container state left after a failed create: %v", stage, st)
			}
			// createRuntime runs on the host: its child's pid is a host pid
			// (createContainer's dies with the container's pid namespace).
			if stage == "createRuntime" {
				b, err := os.ReadFile(pidFile)
				if err != nil {
					t.Fatalf("hook did not record its child: %v", err)
				}
				if alive(strings.TrimSpace(string(b)), 2*time.Second) {
					t.Errorf("%s: the timed-out hook's child %s is still running", stage, b)
					_ = exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
				}
			}
		}
	})
}

// alive reports whether process pid still runs (not a zombie) after
// waiting up to grace for it to go.
func alive(pid string, grace time.Duration) bool {
	deadline := time.Now().Add(grace)
	for {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return false
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
}
