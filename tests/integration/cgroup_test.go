package integration

import (
	"fmt"
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

// The cgroup tests. This host's cgroup v2 hierarchy has no resource
// controllers (TEST-ENVIRONMENTS.md): here they check placement, delegation,
// freezing, killing and cleanup, and skip every limit check, saying so;
// tests/vm checks real limits in a VM with systemd as PID 1.

// counterBundle is a container whose processes are a shell that writes an
// increasing counter to /shared/n every 50 ms and two sleeps.
func (r *rt) counterBundle(edit func(s *specs.Spec)) (bundle, shared string) {
	r.t.Helper()
	shared = r.userDir()
	bundle = r.shBundle(`sleep 600 & sleep 600 & i=0; while :; do i=$((i+1)); echo $i > /shared/n; sleep 0.05; done`,
		func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: shared,
				Options: []string{"rbind", "rw"}})
			if edit != nil {
				edit(s)
			}
		})
	return bundle, shared
}

// exercise drives a started counter container through ps, pause, resume,
// update, kill --all and delete, checking its cgroup dir (a host path)
// along the way.
func (r *rt) exercise(id, dir, shared string) {
	t := r.t
	t.Helper()
	waitFile(t, filepath.Join(shared, "n"))
	var pids []int
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) < 3 && time.Now().Before(deadline) {
		testutil.DecodeJSON(t, []byte(r.ok("ps", "--format", "json", id).stdout), &pids)
		time.Sleep(20 * time.Millisecond)
	}
	// The counter's short sleeps come and go: the shell and the two long
	// sleeps must be in both lists.
	inLeaf := readPids(t, filepath.Join(dir, "container", "cgroup.procs"))
	common := slices.DeleteFunc(slices.Clone(pids), func(p int) bool { return !slices.Contains(inLeaf, p) })
	if len(common) < 3 {
		t.Errorf("ps --format json: %v, want the 3 lasting pids of %s/container: %v", pids, dir, inLeaf)
	}
	if table := r.ok("ps", id).stdout; !strings.Contains(table, "PID") || !strings.Contains(table, "sleep 600") {
		t.Errorf("ps (table): %q", table)
	}

	r.ok("pause", id)
	if st := r.state(id); st.Status != "paused" || st.Pid == 0 {
		t.Errorf("state after pause: %q pid %d, want paused with its pid", st.Status, st.Pid)
	}
	if ev := readFile(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 1") {
		t.Errorf("%s/cgroup.events after pause: %q", dir, ev)
	}
	before := readFile(t, filepath.Join(shared, "n"))
	time.Sleep(300 * time.Millisecond)
	if after := readFile(t, filepath.Join(shared, "n")); after != before {
		t.Errorf("the paused counter moved: %q -> %q", before, after)
	}
	if res := r.run("pause", id); res.code == 0 {
		t.Errorf("pause of a paused container succeeded")
	}
	r.ok("resume", id)
	if st := r.state(id); st.Status != "running" {
		t.Errorf("state after resume: %q", st.Status)
	}
	deadline = time.Now().Add(5 * time.Second)
	for readFile(t, filepath.Join(shared, "n")) == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if readFile(t, filepath.Join(shared, "n")) == before {
		t.Errorf("the counter did not move after resume")
	}
	if res := r.run("resume", id); res.code == 0 || !strings.Contains(res.stderr, "not paused") {
		t.Errorf("resume of a running container: %v", res)
	}

	// No controllers here: update is accepted, recorded, and says what it
	// could not apply. (Limit checks: tests/vm.)
	res := r.ok("update", "--pids-limit", "77", id)
	if !strings.Contains(res.stderr, "pids.max=77") || !strings.Contains(res.stderr, "limits not applied") {
		t.Errorf("update without a pids controller must say so: %v", res)
	}
	t.Log("limit checks skipped: this host's cgroup v2 hierarchy has no controllers (see tests/vm)")

	r.ok("kill", "--all", id, "KILL")
	r.waitStatus(id, "stopped")
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z") {
				t.Errorf("pid %d survived kill --all", pid)
			}
		}
	}
	r.ok("delete", id)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after delete (%v)", dir, err)
	}
}

// TestCgroupHostModes: on this host root gets a cgroupfs cgroup in the v2
// hierarchy and the unprivileged user, to whom nothing is delegated and
// who has no systemd user manager, gets none — announced on stderr and in
// state, with pause refused and ps and kill --all still working.
func TestCgroupHostModes(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		id := "cg-" + randID()
		b, shared := r.counterBundle(nil)
		res := r.okIO("create", "--bundle", b, id)
		defer r.run("delete", "--force", id)
		st := r.state(id)
		if st.Cgroup == nil {
			t.Fatalf("state has no cgroup: %+v", st)
		}
		if r.user != "root" {
			if st.Cgroup.Manager != "none" || !strings.Contains(st.Cgroup.Reason, "not in a subtree delegated") ||
				!strings.Contains(res.stderr, "zviz: warning: no cgroup (") {
				t.Errorf("unprivileged on this host: cgroup %+v, stderr %q; want none, announced", st.Cgroup, res.stderr)
			}
			r.ok("start", id)
			waitFile(t, filepath.Join(shared, "n"))
			if res := r.run("pause", id); res.code == 0 || !strings.Contains(res.stderr, "has no cgroup") {
				t.Errorf("pause without a cgroup: %v", res)
			}
			var pids []int
			testutil.DecodeJSON(t, []byte(r.ok("ps", "--format", "json", id).stdout), &pids)
			if !slices.Contains(pids, st.Pid) {
				t.Errorf("ps without a cgroup: %v lacks the init %d", pids, st.Pid)
			}
			r.ok("kill", "--all", id, "KILL")
			r.waitStatus(id, "stopped")
			r.ok("delete", id)
			return
		}
		want := "/sys/fs/cgroup/unified/zviz-" + id
		if st.Cgroup.Manager != "cgroupfs" || st.Cgroup.Path != want {
			t.Fatalf("root on this host: cgroup %+v, want cgroupfs at %s", st.Cgroup, want)
		}
		if cg := readFile(t, fmt.Sprintf("/proc/%d/cgroup", st.Pid)); !strings.Contains(cg, "0::/zviz-"+id+"/container\n") {
			t.Errorf("the init's /proc/PID/cgroup: %q", cg)
		}
		r.ok("start", id)
		r.exercise(id, want, shared)
	})
}

// TestCgroupfsPath: a cgroupsPath without --systemd-cgroup is a cgroupfs
// path (absolute: in the hierarchy; relative: below the caller's cgroup);
// delete removes what create made, and the container sees its own cgroup
// as the root of its cgroup namespace.
func TestCgroupfsPath(t *testing.T) {
	r := newRT(t, "root")
	top := "zviz-it-" + randID()
	id := "cgp-" + randID()
	b := r.shBundle(`cat /proc/self/cgroup`, func(s *specs.Spec) { s.Linux.CgroupsPath = "/" + top + "/" + id })
	res := r.ok("run", "--bundle", b, id)
	if !slices.Contains(strings.Split(res.stdout, "\n"), "0::/") {
		t.Errorf("/proc/self/cgroup in the container: %q, want 0::/ (its own cgroup namespace)", res.stdout)
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/" + top); !os.IsNotExist(err) {
		t.Errorf("/sys/fs/cgroup/unified/%s left behind (%v)", top, err)
		os.Remove("/sys/fs/cgroup/unified/" + top + "/" + id + "/container")
		os.Remove("/sys/fs/cgroup/unified/" + top + "/" + id)
		os.Remove("/sys/fs/cgroup/unified/" + top)
	}
}

// TestCgroupBadInput: an invalid cgroupsPath, and a profile that requires
// limits where none can be applied: one line naming the problem, exit
// non-zero, and nothing left (state, init, cgroup directory).
func TestCgroupBadInput(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		quota := int64(500)
		cases := []struct {
			name, path, want string
			systemd          bool
			profile          string
			res              *specs.LinuxResources
		}{
			{"dotdot", "/zviz-x/../etc", `linux.cgroupsPath "/zviz-x/../etc": ".." component`, false, "", nil},
			{"root", "/", `linux.cgroupsPath "/": the root cgroup`, false, "", nil},
			{"doubled slash", "zviz-a//b", `linux.cgroupsPath "zviz-a//b": empty path component`, false, "", nil},
			{"systemd form without the flag", "user.slice:zviz:x", "needs --systemd-cgroup", false, "", nil},
			{"not slice:prefix:name", "/a/b", `linux.cgroupsPath "/a/b": want "slice:prefix:name"`, true, "", nil},
			{"bad slice", "nosuffix:zviz:x", `slice "nosuffix"`, true, "", nil},
			{"limits required", "", "profile hostile-tenant requires limits", false, "hostile-tenant", nil},
			{"quota below the kernel's minimum", "", "linux.resources.cpu.quota 500: below what the kernel accepts", false, "",
				&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota}}},
		}
		for _, c := range cases {
			id := "cgbad-" + randID()
			b := r.shBundle("true", func(s *specs.Spec) {
				s.Linux.CgroupsPath = c.path
				s.Linux.Resources = c.res
				if c.profile != "" {
					s.Annotations = map[string]string{"run.zviz.profile": c.profile}
				}
			})
			args := []string{"create", "--bundle", b, id}
			if c.systemd {
				args = append([]string{"--systemd-cgroup"}, args...)
			}
			res := r.run(args...)
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			if res.code == 0 || len(lines) != 1 || !strings.Contains(res.stderr, c.want) {
				t.Errorf("%s: want one line with %q and exit != 0, got %v", c.name, c.want, res)
			}
			if res := r.run("state", id); res.code == 0 {
				t.Errorf("%s: state left behind: %s", c.name, res.stdout)
			}
			if m, _ := filepath.Glob("/sys/fs/cgroup/unified/zviz-" + id + "*"); len(m) > 0 {
				t.Errorf("%s: cgroup left behind: %v", c.name, m)
			}
		}
	})
}

// TestCgroupSystemdUser drives a real systemd --user over the real user
// bus (started by hack/systemd-user.sh, TEST-ENVIRONMENTS.md §A) as the
// unprivileged test user: the scope appears, belongs to the user, holds
// the container's processes, freezes and thaws, and is gone after delete;
// without --systemd-cgroup the user manager is found by asking the bus;
// a scope systemd refuses leaves nothing behind.
func TestCgroupSystemdUser(t *testing.T) {
	m := testutil.StartUserManager(t, "cgroup")
	r := newRT(t, testutil.TestUser)
	r.session = m
	r.root = filepath.Join("/tmp", filepath.Base(r.root))
	t.Cleanup(func() { os.RemoveAll(r.root) })
	uid := uidOf(t, testutil.TestUser)

	t.Run("podman cgroupsPath", func(t *testing.T) {
		r.t = t
		id := "sd-" + randID()
		unit := "libpod-" + id + ".scope"
		b, shared := r.counterBundle(func(s *specs.Spec) {
			s.Linux.CgroupsPath = "user.slice:libpod:" + id
			limit := int64(64 << 20)
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		})
		res := r.okIO("--systemd-cgroup", "create", "--bundle", b, id)
		defer r.run("delete", "--force", id)
		st := r.state(id)
		if st.Cgroup == nil || st.Cgroup.Manager != "systemd" || st.Cgroup.Unit != unit ||
			!strings.HasSuffix(st.Cgroup.Path, "/user.slice/"+unit) {
			t.Fatalf("cgroup in state: %+v, want systemd scope %s in user.slice", st.Cgroup, unit)
		}
		dir := m.HostPath(st.Cgroup.Path)
		var fi syscall.Stat_t
		if err := syscall.Stat(dir, &fi); err != nil || int(fi.Uid) != uid {
			t.Errorf("scope cgroup %s: owner %d (%v), want the user %d", dir, fi.Uid, err, uid)
		}
		if !slices.Contains(readPids(t, filepath.Join(dir, "container", "cgroup.procs")), st.Pid) {
			t.Errorf("the init %d is not in %s/container", st.Pid, dir)
		}
		if !strings.Contains(res.stderr, "memory.max=67108864") {
			t.Errorf("the memory limit the cgroup cannot take must be announced: %q", res.stderr)
		}
		if out, err := m.Command("systemctl", "--user", "is-active", unit).Output(); strings.TrimSpace(string(out)) != "active" {
			t.Errorf("systemctl --user is-active %s: %q %v", unit, out, err)
		}
		r.ok("start", id)
		r.exercise(id, dir, shared)
		if out, _ := m.Command("systemctl", "--user", "is-active", unit).Output(); strings.TrimSpace(string(out)) == "active" {
			t.Errorf("%s still active after delete", unit)
		}
	})

	t.Run("user manager found on the bus", func(t *testing.T) {
		r.t = t
		id := "sdauto-" + randID()
		b := r.shBundle("sleep 600", nil)
		r.okIO("create", "--bundle", b, id)
		st := r.state(id)
		if st.Cgroup == nil || st.Cgroup.Manager != "systemd" || st.Cgroup.Unit != "zviz-"+id+".scope" {
			t.Errorf("without --systemd-cgroup: cgroup %+v, want the user manager's scope zviz-%s.scope", st.Cgroup, id)
		}
		// kill --all and delete --force of a created container, through
		// the cgroup.
		r.ok("delete", "--force", id)
		if st.Cgroup != nil {
			if _, err := os.Stat(m.HostPath(st.Cgroup.Path)); !os.IsNotExist(err) {
				t.Errorf("scope cgroup left after delete --force (%v)", err)
			}
		}
	})

	t.Run("refused scope leaves nothing", func(t *testing.T) {
		r.t = t
		id := "sdfirst-" + randID()
		b := r.shBundle("sleep 600", func(s *specs.Spec) { s.Linux.CgroupsPath = ":zviz:" + id })
		r.okIO("--systemd-cgroup", "create", "--bundle", b, id)
		defer r.run("delete", "--force", id)
		// A second container asking for the same unit: systemd refuses.
		id2 := "sdsecond-" + randID()
		res := r.run("--systemd-cgroup", "create", "--bundle", b, id2)
		if res.code == 0 || !strings.Contains(res.stderr, "UnitExists") || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
			t.Errorf("a scope systemd refuses: want one line naming UnitExists, got %v", res)
		}
		if res := r.run("state", id2); res.code == 0 {
			t.Errorf("state of the refused container left: %s", res.stdout)
		}
		if st := r.state(id); st.Status != "created" {
			t.Errorf("the first container suffered: %q", st.Status)
		}
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readPids(t *testing.T, file string) []int {
	t.Helper()
	var pids []int
	for _, f := range strings.Fields(readFile(t, file)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", file, f)
		}
		pids = append(pids, n)
	}
	return pids
}
