package vm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// zviz's own limits in a real kernel: the guest runs systemd as PID 1 and
// the unprivileged user's manager delegates cpu, memory and pids, so
// `zviz --systemd-cgroup` gets a scope where the limits really apply.

// guestZviz copies zviz into the guest once per test binary.
var guestZviz = struct {
	sync.Once
	path string
	err  error
}{}

func zvizIn(t *testing.T, v *VM) string {
	t.Helper()
	guestZviz.Do(func() { guestZviz.path, guestZviz.err = v.Copy(buildStatic(t, "zviz")) })
	if guestZviz.err != nil {
		t.Fatal(guestZviz.err)
	}
	return guestZviz.path
}

// guestBundle writes a busybox bundle running sh -c script, with edit
// applied to its rootless spec, and copies it to the test user's home in
// the guest (its own files, as a rootless bundle is); it returns the
// bundle's guest path.
func guestBundle(t *testing.T, v *VM, name, script string, edit func(s *specs.Spec)) string {
	t.Helper()
	guestShared := fmt.Sprintf("%s/bundle-%s-%d", GuestShare, name, time.Now().UnixNano())
	host, err := v.HostPath(guestShared)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(host) })
	s := testutil.DefaultSpec(true, 1000, 1000)
	s.Process.Args = []string{"sh", "-c", script}
	if edit != nil {
		edit(s)
	}
	applets := []string{"sh", "sleep", "tail", "cat", "echo", "timeout", "true"}
	if err := testutil.WriteBundle(host, s, "", applets); err != nil {
		t.Fatal(err)
	}
	dst := "$HOME/" + filepath.Base(guestShared)
	v.MustRun(t, TestUser, "cp -a "+guestShared+" "+dst+" && echo "+dst)
	home := strings.TrimSpace(v.MustRun(t, TestUser, "echo $HOME"))
	path := home + "/" + filepath.Base(guestShared)
	t.Cleanup(func() { v.Run(TestUser, "rm -rf "+path) })
	return path
}

func int64p(v int64) *int64    { return &v }
func uint64p(v uint64) *uint64 { return &v }

type guestState struct {
	Status string `json:"status"`
	Pid    int    `json:"pid"`
	Cgroup struct {
		Manager, Unit, Path string
	} `json:"cgroup"`
	OOMKills uint64   `json:"oomKills"`
	Warnings []string `json:"warnings"`
}

// detach starts a container with `run --detach`. Its stdio goes to a file:
// the container would hold ssh's pipes open, and ssh waits for them.
func detach(t *testing.T, v *VM, zviz, bundle, id string) {
	t.Helper()
	log := "$HOME/" + id + ".log"
	v.MustRun(t, TestUser, fmt.Sprintf("%s --systemd-cgroup run --detach --bundle %s %s </dev/null >%s 2>&1; rc=$?; cat %s; rm -f %s; exit $rc",
		zviz, bundle, id, log, log, log))
}

func stateIn(t *testing.T, v *VM, zviz, id string) guestState {
	t.Helper()
	var st guestState
	if err := json.Unmarshal([]byte(v.MustRun(t, TestUser, zviz+" state "+id)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A memory hog under a 64M limit is killed by the OOM killer inside the
// container's scope: run exits 137 and says so, and memory.events counted
// it.
func TestVMZvizMemoryLimitOOM(t *testing.T) {
	v := bookworm(t)
	zviz := zvizIn(t, v)
	b := guestBundle(t, v, "oom", "timeout 60 tail /dev/zero", func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: int64p(64 << 20), Swap: int64p(64 << 20)}}
	})
	id := fmt.Sprintf("oom-%d", time.Now().UnixNano())
	start := time.Now()
	out, errOut, code := v.RunTimeout(TestUser, zviz+" --systemd-cgroup run --bundle "+b+" "+id, 3*time.Minute)
	took := time.Since(start)
	if code != 137 || !strings.Contains(errOut, "the OOM killer killed") {
		t.Fatalf("memory hog under memory.max 64M: exit %d after %v, want 137 and the OOM note\nstdout:\n%s\nstderr:\n%s",
			code, took, out, errOut)
	}
	if strings.Contains(errOut, "limits not applied") {
		t.Errorf("a delegated memory controller must take the limit: %s", errOut)
	}
	t.Logf("memory hog OOM-killed under memory.max=64M in %v: %s", took.Round(time.Millisecond), lastLine(errOut))
}

// A fork bomb stops at pids.max while the guest stays responsive; state
// shows the OOM count of a detached container too.
func TestVMZvizPidsLimitStopsForkBomb(t *testing.T) {
	v := bookworm(t)
	zviz := zvizIn(t, v)
	// The bomb runs in a subshell (a shell that cannot fork gives up); the
	// container's init is a sleep.
	b := guestBundle(t, v, "pids", `(i=0; while [ $i -lt 200 ]; do sleep 600 & i=$((i+1)); done) 2>/dev/null & exec sleep 600`,
		func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: int64p(32)}}
		})
	id := fmt.Sprintf("pids-%d", time.Now().UnixNano())
	detach(t, v, zviz, b, id)
	defer v.Run(TestUser, zviz+" delete --force "+id)
	st := stateIn(t, v, zviz, id)
	dir := st.Cgroup.Path
	if st.Cgroup.Manager != "systemd" || dir == "" {
		t.Fatalf("cgroup in state: %+v, want a systemd scope", st.Cgroup)
	}
	var current int
	var events string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		// Before Linux 6.2 the refusal is counted where the forking
		// process is (the leaf), not where the limit is.
		events = v.MustRun(t, TestUser, "cat "+dir+"/container/pids.events")
		if !strings.Contains(events, "max 0") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	current, _ = strconv.Atoi(strings.TrimSpace(v.MustRun(t, TestUser, "cat "+dir+"/pids.current")))
	if current < 28 || current > 32 || !strings.Contains(events, "max ") || strings.Contains(events, "max 0") {
		t.Errorf("fork bomb under pids.max=32: pids.current %d, pids.events %q", current, events)
	}
	began := time.Now()
	v.MustRun(t, "root", "true")
	t.Logf("fork bomb held at pids.current=%d (%s); the guest answered in %v", current,
		strings.TrimSpace(events), time.Since(began).Round(time.Millisecond))

	// update lowers the limit of the running container.
	v.MustRun(t, TestUser, zviz+" update --pids-limit 40 --memory 256m "+id)
	if got := strings.TrimSpace(v.MustRun(t, TestUser, "cat "+dir+"/pids.max "+dir+"/memory.max")); got != "40\n268435456" {
		t.Errorf("after update: pids.max, memory.max = %q, want 40, 268435456", got)
	}
	if got := strings.TrimSpace(v.MustRun(t, TestUser, "systemctl --user show -p TasksMax "+st.Cgroup.Unit)); got != "TasksMax=40" {
		t.Errorf("systemd's view after update: %q, want TasksMax=40", got)
	}
	// pause and resume freeze and thaw every process.
	v.MustRun(t, TestUser, zviz+" pause "+id)
	if s := stateIn(t, v, zviz, id); s.Status != "paused" {
		t.Errorf("state after pause: %q", s.Status)
	}
	if ev := v.MustRun(t, TestUser, "cat "+dir+"/cgroup.events"); !strings.Contains(ev, "frozen 1") {
		t.Errorf("cgroup.events after pause: %q", ev)
	}
	v.MustRun(t, TestUser, zviz+" resume "+id)
	if s := stateIn(t, v, zviz, id); s.Status != "running" {
		t.Errorf("state after resume: %q", s.Status)
	}
	v.MustRun(t, TestUser, zviz+" delete --force "+id)
	if _, _, code := v.Run(TestUser, "test -e "+dir); code == 0 {
		t.Errorf("%s still exists after delete --force", dir)
	}
}

// A busy loop under cpu.max 20% gets about a fifth of a CPU.
func TestVMZvizCPUQuotaThrottles(t *testing.T) {
	v := bookworm(t)
	zviz := zvizIn(t, v)
	b := guestBundle(t, v, "cpu", `while :; do :; done`, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: int64p(20000), Period: uint64p(100000)}}
	})
	id := fmt.Sprintf("cpu-%d", time.Now().UnixNano())
	detach(t, v, zviz, b, id)
	defer v.Run(TestUser, zviz+" delete --force "+id)
	dir := stateIn(t, v, zviz, id).Cgroup.Path
	if got := strings.TrimSpace(v.MustRun(t, TestUser, "cat "+dir+"/cpu.max")); got != "20000 100000" {
		t.Fatalf("cpu.max = %q, want 20000 100000", got)
	}
	// usage_usec over 3 s of the guest's own clock, measured in one command.
	out := v.MustRun(t, TestUser, fmt.Sprintf(`a=$(sed -n 's/^usage_usec //p' %[1]s/cpu.stat); t0=$(date +%%s%%N); sleep 3;
b=$(sed -n 's/^usage_usec //p' %[1]s/cpu.stat); t1=$(date +%%s%%N); echo $((b-a)) $(((t1-t0)/1000)); grep nr_throttled %[1]s/cpu.stat`, dir))
	f := strings.Fields(out)
	used, _ := strconv.ParseFloat(f[0], 64)
	wall, _ := strconv.ParseFloat(f[1], 64)
	share := used / wall
	if share > 0.3 || share < 0.05 || !strings.Contains(out, "nr_throttled") || strings.Contains(out, "nr_throttled 0") {
		t.Errorf("busy loop under cpu.max 20%%: used %.0f µs of %.0f µs wall (%.2f CPUs); cpu.stat: %s", used, wall, share, out)
	}
	t.Logf("busy loop under cpu.max=20000/100000: %.3f CPUs measured over %.1f s (%s)", share, wall/1e6, strings.Join(f[2:], " "))
}

// A limit the kernel refuses (cpu.weight 0, through linux.resources.unified,
// which zviz passes on verbatim) fails create with one line naming it, and
// leaves no state, no scope and no cgroup.
func TestVMZvizRefusedLimitLeavesNothing(t *testing.T) {
	v := bookworm(t)
	zviz := zvizIn(t, v)
	b := guestBundle(t, v, "badcpu", "true", func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"cpu.weight": "0"}}
	})
	id := fmt.Sprintf("badcpu-%d", time.Now().UnixNano())
	out, errOut, code := v.Run(TestUser, zviz+" --systemd-cgroup create --bundle "+b+" "+id+" </dev/null")
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "cpu.weight") ||
		!strings.Contains(errOut, "the kernel refused the value") {
		t.Errorf("cpu.weight 0: want one line naming cpu.weight and the kernel's refusal, got exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := v.Run(TestUser, zviz+" state "+id); code == 0 {
		t.Errorf("state of the refused container exists")
	}
	units := v.MustRun(t, TestUser, "systemctl --user list-units --all --no-legend 'zviz-"+id+"*'")
	if strings.TrimSpace(units) != "" {
		t.Errorf("scope left behind: %s", units)
	}
	if out, _, _ := v.Run(TestUser, "find /sys/fs/cgroup -name 'zviz-"+id+"*'"); strings.TrimSpace(out) != "" {
		t.Errorf("cgroup left behind: %s", out)
	}
}
