package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kernelFreezer makes the fake report "frozen V" in cgroup.events a little
// after cgroup.freeze is written, as the kernel does once every task has
// stopped; with stuck set it never does.
func kernelFreezer(f *fake, stuck bool) {
	f.onWrite = func(file, value string) {
		if filepath.Base(file) != "cgroup.freeze" || stuck {
			return
		}
		events := filepath.Join(filepath.Dir(file), "cgroup.events")
		go func() {
			time.Sleep(30 * time.Millisecond)
			writeFile(events, "populated 1\nfrozen "+value+"\n")
		}()
	}
}

func TestFreezeThaw(t *testing.T) {
	f := newFake(t)
	dir := f.mkCgroup("c", 1)
	kernelFreezer(f, false)
	start := time.Now()
	if err := Freeze(dir, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if f.read("c/cgroup.freeze") != "1" || !strings.Contains(f.read("c/cgroup.events"), "frozen 1") {
		t.Errorf("after Freeze: cgroup.freeze %q, events %q", f.read("c/cgroup.freeze"), f.read("c/cgroup.events"))
	}
	if err := Thaw(dir, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if f.read("c/cgroup.freeze") != "0" || !strings.Contains(f.read("c/cgroup.events"), "frozen 0") {
		t.Errorf("after Thaw: cgroup.freeze %q, events %q", f.read("c/cgroup.freeze"), f.read("c/cgroup.events"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Freeze and Thaw took %v: the event was missed", d)
	}
}

func TestFreezeTimeoutThawsAgain(t *testing.T) {
	f := newFake(t)
	dir := f.mkCgroup("c", 1)
	kernelFreezer(f, true)
	start := time.Now()
	err := Freeze(dir, 200*time.Millisecond)
	if !errContains(err, `still "frozen 0" after 200ms, want "frozen 1"`) {
		t.Errorf("Freeze that never completes: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %v, want 200ms", d)
	}
	if got := f.Log(); len(got) != 2 || got[1] != "c/cgroup.freeze <- 0" {
		t.Errorf("operations %q: want the freeze undone", got)
	}
	os.Remove(filepath.Join(f.root, "cgroup.freeze")) // as in the real root cgroup
	if err := Freeze(f.root, time.Second); !errors.Is(err, os.ErrNotExist) || !errContains(err, "the root cgroup has no cgroup.freeze") {
		t.Errorf("Freeze without cgroup.freeze: %v", err)
	}
}

func TestKill(t *testing.T) {
	f := newFake(t)
	dir := f.mkCgroup("c")
	if err := Kill(dir); err != nil {
		t.Fatal(err)
	}
	if got := f.Log(); len(got) != 1 || got[0] != "c/cgroup.kill <- 1" {
		t.Errorf("Kill did %q, want one write of cgroup.kill", got)
	}
	if err := Kill(filepath.Join(f.root, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Kill of a missing cgroup: %v", err)
	}
}

// Without cgroup.kill (Linux < 5.14), Kill signals the pids Procs lists:
// here two real sleeping children, whose pids the fake lists.
func TestKillWithoutCgroupKill(t *testing.T) {
	f := newFake(t)
	kernelFreezer(f, false)
	var cmds []*exec.Cmd
	for range 2 {
		c := exec.Command("sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		cmds = append(cmds, c)
	}
	f.mkCgroup("c", cmds[0].Process.Pid)
	dir := f.mkCgroup("c/sub", cmds[1].Process.Pid)
	dir = filepath.Dir(dir)
	for _, rel := range []string{"c/cgroup.kill", "c/sub/cgroup.kill"} {
		os.Remove(filepath.Join(f.root, rel))
	}
	if err := Kill(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		err := c.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("pid %d: %v, want killed by SIGKILL", c.Process.Pid, err)
		}
	}
	log := strings.Join(f.Log(), "\n")
	if !strings.Contains(log, "c/cgroup.freeze <- 1") || !strings.Contains(log, "c/cgroup.freeze <- 0") {
		t.Errorf("the fallback did not freeze around the signals:\n%s", log)
	}
}

func TestOOMKills(t *testing.T) {
	f := newFake(t, "memory")
	if err := f.control(f.root, "+memory"); err != nil {
		t.Fatal(err)
	}
	dir := f.mkCgroup("c")
	writeFile(filepath.Join(dir, "memory.events"), "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n")
	if n, err := OOMKills(dir); n != 2 || err != nil {
		t.Errorf("OOMKills = %d, %v; want 2", n, err)
	}
	os.Remove(filepath.Join(dir, "memory.events"))
	if n, err := OOMKills(dir); n != 0 || err != nil {
		t.Errorf("OOMKills without memory.events = %d, %v; want 0, nil", n, err)
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("oom_kill x\n"), 0o644)
	if _, err := OOMKills(dir); !errContains(err, `oom_kill "x"`) {
		t.Errorf("OOMKills of a bad file: %v", err)
	}
}
