package systemd

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestUserManagerScope drives a real `systemd --user` over the real user bus
// as the test user in a session: a delegated scope for a sleeping process
// appears, belongs to the user, holds the process, can be frozen and thawed
// after the process moved into a leaf, and is gone with its cgroup after
// StopUnit. Limit checks are skipped: this environment has no resource
// controllers (memory, pids, cpu and io belong to the host's cgroup v1
// hierarchies; TEST-ENVIRONMENTS.md §A); the VM stage checks limits.
func TestUserManagerScope(t *testing.T) {
	m := startUserManager(t)
	t.Log("limit checks skipped: no cgroup v2 resource controllers in this environment (delegation only)")
	s := m.newSession(t)

	r := s.must(request{Op: "connect"})
	t.Logf("ConnectUser: %d µs (first connection of this process)", r.ConnectUS)
	r = s.must(request{Op: "connect"})
	t.Logf("ConnectUser: %d µs (again)", r.ConnectUS)
	pid := s.must(request{Op: "spawn"}).PID
	unit := UnitName("zviz-test", "scope1")
	r = s.must(request{Op: "start", Unit: unit, PID: pid})
	t.Logf("StartScope: %d µs -> %s", r.StartUS, r.Cgroup)
	cg := r.Cgroup
	uid := lookupUID(t, testUser)

	// The scope as systemd and the kernel see it.
	wantCg := "/user@" + strconv.Itoa(uid) + ".service/app.slice/" + unit
	if cg != wantCg {
		t.Errorf("StartScope returned cgroup %q, want %q (the manager's default slice)", cg, wantCg)
	}
	out := s.must(request{Op: "exec", Args: []string{"systemctl", "--user", "show", unit,
		"-p", "ActiveState", "-p", "Delegate", "-p", "ControlGroup", "-p", "CollectMode"}}).Out
	for _, want := range []string{"ActiveState=active", "Delegate=yes", "ControlGroup=" + cg, "CollectMode=inactive-or-failed"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("systemctl --user show %s: no %q in:\n%s", unit, want, out)
		}
	}
	dir := m.hostPath(cg)
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if owner := fileUID(t, filepath.Join(dir, f)); owner != uid {
			t.Errorf("%s is owned by uid %d, want the user %d (delegated)", filepath.Join(dir, f), owner, uid)
		}
	}
	if got := procs(t, dir); !slices.Equal(got, []int{pid}) {
		t.Errorf("%s/cgroup.procs = %v, want [%d]", dir, got, pid)
	}

	// Into a leaf before anything is enabled in cgroup.subtree_control, then
	// freeze and thaw the scope (cgroup.freeze needs no controller).
	s.must(request{Op: "leaf", Cgroup: cg, PID: pid})
	if got := procs(t, filepath.Join(dir, "leaf")); !slices.Equal(got, []int{pid}) {
		t.Errorf("leaf/cgroup.procs = %v, want [%d]", got, pid)
	}
	if got := procs(t, dir); len(got) != 0 {
		t.Errorf("the scope itself still holds %v after the move to its leaf", got)
	}
	s.must(request{Op: "freeze", Cgroup: cg, Value: "1"})
	if ev := readFile(t, filepath.Join(dir, "leaf", "cgroup.events")); !strings.Contains(ev, "frozen 1\n") {
		t.Errorf("the leaf is not frozen after the scope was: cgroup.events:\n%s", ev)
	}
	s.must(request{Op: "freeze", Cgroup: cg, Value: "0"})
	if ev := readFile(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 0\n") {
		t.Errorf("the scope is still frozen after thawing: cgroup.events:\n%s", ev)
	}

	timeCycles(t, s)

	// StopUnit removes the scope, its leaf (created by the user), and kills
	// the process.
	r = s.must(request{Op: "stop", Unit: unit})
	t.Logf("StopUnit: %d µs", r.StopUS)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after StopUnit: %v, want it gone", dir, err)
	}
	if err := syscall.Kill(pid, 0); err == nil && !isZombie(pid) {
		t.Errorf("pid %d still runs after StopUnit", pid)
	}
	out = s.must(request{Op: "exec", Args: []string{"systemctl", "--user", "list-units", "--all", "--no-legend", unit}}).Out
	if strings.Contains(out, unit) {
		t.Errorf("systemd still lists %s after StopUnit:\n%s", unit, out)
	}
	// Stopping it again, or a unit that never existed, is not an error.
	s.must(request{Op: "stop", Unit: unit})
	s.must(request{Op: "stop", Unit: UnitName("zviz-test", "never")})
}

// TestUserManagerErrors: what systemd refuses comes back as a clear error,
// and no scope is left behind.
func TestUserManagerErrors(t *testing.T) {
	m := startUserManager(t)
	s := m.newSession(t)
	s.must(request{Op: "connect"})
	pid := s.must(request{Op: "spawn"}).PID

	unit := UnitName("zviz-test", "dup")
	cg := s.must(request{Op: "start", Unit: unit, PID: pid}).Cgroup
	other := s.must(request{Op: "spawn"}).PID
	r := s.do(request{Op: "start", Unit: unit, PID: other})
	if !strings.Contains(r.Err, "UnitExists") {
		t.Errorf("a second scope named %s: err %q, want systemd's UnitExists", unit, r.Err)
	}
	if got := procs(t, m.hostPath(cg)); !slices.Equal(got, []int{pid}) {
		t.Errorf("the failed second start disturbed the first scope: cgroup.procs %v, want [%d]", got, pid)
	}
	s.must(request{Op: "stop", Unit: unit})

	// systemd creates a slice that does not exist yet on demand (as for
	// crun and runc): not an error; "a-b.slice" nests b in a.
	r = s.must(request{Op: "start", Unit: UnitName("zviz-test", "newslice"), Slice: "zviz-test.slice",
		PID: s.must(request{Op: "spawn"}).PID})
	if want := "/zviz.slice/zviz-test.slice/zviz-test-newslice.scope"; !strings.HasSuffix(r.Cgroup, want) {
		t.Errorf("scope in a new slice: cgroup %s, want it to end in %s", r.Cgroup, want)
	}
	s.must(request{Op: "stop", Unit: UnitName("zviz-test", "newslice")})
	// A masked slice is one systemd refuses (--runtime: the mask lives in the
	// session's private /run/user/UID and goes with it).
	s.must(request{Op: "exec", Args: []string{"systemctl", "--user", "mask", "--runtime", "zviz-masked.slice"}})

	cases := []struct {
		name, unit, slice string
		pid               int
		want              string
	}{
		{"a process of another user", "zviz-test-root.scope", "", os.Getpid(), `start job ended "failed"`},
		{"a process of the user outside the session", "zviz-test-outside.scope", "", outsider(t), `start job ended "failed"`},
		{"no such process", "zviz-test-nopid.scope", "", 0x3ffffff0, "UnixProcessIdUnknown"},
		{"a slice systemd refuses", "zviz-test-masked.scope", "zviz-masked.slice", 0, "zviz-masked.slice is masked"},
		{"an invalid slice name", "zviz-test-badslice.scope", "a--b.slice", 0, `slice "a--b.slice": a "-" separates`},
		{"an invalid unit name", "zviz test.scope", "", 0, `start scope zviz test.scope: character ' '`},
	}
	for _, c := range cases {
		if c.pid == 0 {
			c.pid = s.must(request{Op: "spawn"}).PID
		}
		r := s.do(request{Op: "start", Unit: c.unit, Slice: c.slice, PID: c.pid})
		t.Logf("%s: %s", c.name, r.Err)
		if !strings.Contains(r.Err, c.want) {
			t.Errorf("%s: StartScope error %q, want it to contain %q (cgroup %q)", c.name, r.Err, c.want, r.Cgroup)
		}
		out := s.must(request{Op: "exec", Args: []string{"systemctl", "--user", "list-units", "--all", "--no-legend", c.unit}}).Out
		if strings.Contains(out, c.unit) {
			t.Errorf("%s: %s left behind:\n%s", c.name, c.unit, out)
		}
	}
	// No scope cgroup is left anywhere in the manager's tree.
	leftover, _ := filepath.Glob(filepath.Join(m.Cgroup, "user@*.service", "*", "zviz-test-*.scope"))
	if len(leftover) > 0 {
		t.Errorf("scope cgroups left behind: %v", leftover)
	}
}

// TestUserManagerFromUserNamespace: inside a user namespace that maps uid 0
// to the test user (rootless podman's situation), claiming the namespace's
// uid is rejected by the bus, and ConnectUser (EXTERNAL without an identity)
// works for a whole scope start and stop.
func TestUserManagerFromUserNamespace(t *testing.T) {
	m := startUserManager(t)
	s := m.newSession(t)
	out := s.must(request{Op: "userns"}).Out
	var res usernsResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("userns child: %v: %q", err, out)
	}
	uid := lookupUID(t, testUser)
	if res.Euid != 0 || res.UIDMap != "0 "+strconv.Itoa(uid)+" 1" {
		t.Fatalf("userns child: euid %d, uid_map %q; want 0 and \"0 %d 1\"", res.Euid, res.UIDMap, uid)
	}
	if !strings.HasPrefix(res.ClaimNsUID, "REJECTED") {
		t.Errorf("claiming the namespace's uid 0 with EXTERNAL: the bus said %q, want REJECTED", res.ClaimNsUID)
	}
	if !strings.HasSuffix(res.Cgroup, ".scope") || res.StopErr != "" {
		t.Errorf("scope from the user namespace: cgroup %q, stop error %q", res.Cgroup, res.StopErr)
	}
	if _, err := os.Stat(m.hostPath(res.Cgroup)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after StopUnit: %v, want it gone", m.hostPath(res.Cgroup), err)
	}
}

// timeCycles logs how long StartScope and StopUnit take over a few cycles
// on one connection (what --systemd-cgroup adds to create and delete).
func timeCycles(t *testing.T, s *session) {
	const n = 7
	var starts, stops []int64
	for i := range n {
		unit := UnitName("zviz-test", "cycle"+strconv.Itoa(i))
		r := s.must(request{Op: "start", Unit: unit, PID: s.must(request{Op: "spawn"}).PID})
		starts = append(starts, r.StartUS)
		stops = append(stops, s.must(request{Op: "stop", Unit: unit}).StopUS)
	}
	slices.Sort(starts)
	slices.Sort(stops)
	t.Logf("over %d cycles: StartScope min %d µs, median %d µs; StopUnit min %d µs, median %d µs",
		n, starts[0], starts[n/2], stops[0], stops[n/2])
}

// outsider starts a process of the test user outside the environment's
// cgroup subtree, where its manager may not move processes from.
func outsider(t *testing.T) int {
	t.Helper()
	uid := lookupUID(t, testUser)
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

func lookupUID(t *testing.T, name string) int {
	t.Helper()
	out := readFile(t, "/etc/passwd")
	for line := range strings.Lines(out) {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == name {
			uid, _ := strconv.Atoi(f[2])
			return uid
		}
	}
	t.Fatalf("no user %s", name)
	return -1
}

func fileUID(t *testing.T, path string) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}

func procs(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	for f := range strings.FieldsSeq(readFile(t, filepath.Join(dir, "cgroup.procs"))) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	return pids
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// isZombie: a killed child of the session client stays a zombie until the
// client reaps it at exit.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
