package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeHost is an unprivileged caller (uid 1000, "dev") on a unified
// cgroup v2 host with a working user namespace, subordinate ids, setuid
// helpers, Landlock 6, full seccomp, a writable delegated cgroup and a
// systemd user bus. Each test case edits one thing.
type fakeHost struct {
	*Host
	root string
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	root := t.TempDir()
	f := &fakeHost{root: root}
	f.write(t, "proc/sys/user/max_user_namespaces", "63000\n")
	f.write(t, "etc/subuid", "dev:100000:65536\nother:200000:65536\n")
	f.write(t, "etc/subgid", "1000:100000:65536\n")
	f.write(t, "sys/module/apparmor/parameters/enabled", "N\n")
	f.write(t, "proc/self/uid_map", "         0       1000          1\n")
	f.write(t, "proc/self/gid_map", "         0       1000          1\n")
	f.write(t, "proc/self/cgroup", "0::/user.slice/user-1000.slice/session-1.scope\n")
	cg := "sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope"
	f.write(t, cg+"/cgroup.controllers", "cpu io memory pids\n")
	f.write(t, cg+"/cgroup.procs", "")
	f.write(t, cg+"/cgroup.subtree_control", "")
	f.mountinfo(t, "29 23 0:26 / "+root+"/sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate")
	f.mkdir(t, "run/systemd/system")
	f.socket(t, "run/user/1000/bus")
	for _, n := range []string{"newuidmap", "newgidmap"} {
		f.write(t, "bin/"+n, "#!/bin/true\n")
		if err := os.Chmod(f.path("bin/"+n), os.ModeSetuid|0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"XDG_RUNTIME_DIR": f.path("run/user/1000")}
	f.Host = &Host{
		ProcSys: f.path("proc/sys"), Mountinfo: f.path("proc/self/mountinfo"), SelfCgroup: f.path("proc/self/cgroup"),
		UIDMap: f.path("proc/self/uid_map"), GIDMap: f.path("proc/self/gid_map"),
		SysModule: f.path("sys/module"), Run: f.path("run"),
		SubUID: f.path("etc/subuid"), SubGID: f.path("etc/subgid"),
		PathDirs: []string{f.path("nowhere"), f.path("bin")},
		Getenv:   func(k string) string { return env[k] },
		Access:   func(string, uint32) error { return nil },
		UID:      1000, GID: 1000, EUID: 1000, User: "dev", Exe: "/usr/local/bin/zviz",
		LandlockABI: func() int { return 6 },
		Seccomp: func() SeccompSupport {
			return SeccompSupport{Filter: true, KillProcess: true, UserNotif: true, TSyncESRCH: true, WaitKillableRecv: true}
		},
		Probe: func(string) ProbeResult { return ProbeResult{OK: true} },
	}
	return f
}

func (f *fakeHost) path(rel string) string { return filepath.Join(f.root, rel) }

func (f *fakeHost) mkdir(t *testing.T, rel string) {
	t.Helper()
	if err := os.MkdirAll(f.path(rel), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeHost) write(t *testing.T, rel, data string) {
	t.Helper()
	f.mkdir(t, filepath.Dir(rel))
	if err := os.WriteFile(f.path(rel), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeHost) mountinfo(t *testing.T, lines ...string) {
	t.Helper()
	base := "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
	f.write(t, "proc/self/mountinfo", base+strings.Join(lines, "\n")+"\n")
}

func (f *fakeHost) socket(t *testing.T, rel string) {
	t.Helper()
	f.mkdir(t, filepath.Dir(rel))
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: f.path(rel)}); err != nil {
		t.Fatal(err)
	}
}

// line finds the line for item in ls.
func line(t *testing.T, ls []Line, item string) Line {
	t.Helper()
	for _, l := range ls {
		if l.Item == item {
			return l
		}
	}
	t.Fatalf("no %q line in %v", item, ls)
	return Line{}
}

func wantLine(t *testing.T, ls []Line, item string, s Status, substr ...string) {
	t.Helper()
	l := line(t, ls, item)
	if l.Status != s {
		t.Errorf("%s: status %s, want %s (%s)", item, l.Status, s, l.Detail)
	}
	for _, sub := range substr {
		if !strings.Contains(l.Detail, sub) {
			t.Errorf("%s: %q does not mention %q", item, l.Detail, sub)
		}
	}
}

func TestCheckFullRootless(t *testing.T) {
	f := newFakeHost(t)
	r := f.Check()
	if r.Isolation != "full" || r.Mapping != "subids" || r.Limits != "systemd" || !r.Runnable {
		t.Fatalf("isolation %s mapping %s limits %s runnable %v; want full subids systemd true\n%v",
			r.Isolation, r.Mapping, r.Limits, r.Runnable, r.Conclusions)
	}
	wantLine(t, r.Checks, "userns", OK, "max_user_namespaces=63000")
	wantLine(t, r.Checks, "subuid", OK, "dev has 65536 ids")
	wantLine(t, r.Checks, "subgid", OK, "65536 ids") // matched by numeric id
	if os.Geteuid() == 0 {                           // setuid only counts when root owns the file
		wantLine(t, r.Checks, "newuidmap", OK, "setuid root", f.path("bin/newuidmap"))
	}
	wantLine(t, r.Checks, "cgroup v2", OK, "unified at "+f.path("sys/fs/cgroup"))
	wantLine(t, r.Checks, "cgroup delegation", OK, "session-1.scope writable", "cpu io memory pids")
	wantLine(t, r.Checks, "systemd user bus", OK, f.path("run/user/1000/bus"))
	wantLine(t, r.Checks, "landlock", OK, "ABI 6")
	wantLine(t, r.Checks, "seccomp notify flags", OK, "WAIT_KILLABLE_RECV (5.19)", "SYNC_WAKE_UP (6.6)")
	wantLine(t, r.Conclusions, "isolation", OK, "user+mount namespaces")
	wantLine(t, r.Conclusions, "limits", OK, "systemd", "Delegate=yes")
	wantLine(t, r.Conclusions, "profiles", OK, "every built-in")
	if r.Facts.MountnsProbe != nil {
		t.Errorf("mount namespace probe run for uid 1000: %+v", r.Facts.MountnsProbe)
	}
	if r.Facts.InitialUserns {
		t.Error("uid_map 0 1000 1 read as the initial user namespace")
	}
}

// Ubuntu 24.04: the clone works, the mount inside does not.
func TestCheckUbuntuRestriction(t *testing.T) {
	f := newFakeHost(t)
	f.write(t, "sys/module/apparmor/parameters/enabled", "Y\n")
	f.write(t, "proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1\n")
	f.Probe = func(kind string) ProbeResult {
		if kind == ProbeUserns {
			return ProbeResult{Step: "mount", Errno: "EPERM", Error: "operation not permitted"}
		}
		return ProbeResult{OK: true}
	}
	r := f.Check()
	if r.Isolation != "chdir-only" || !r.Runnable {
		t.Fatalf("isolation %s runnable %v, want chdir-only true: %v", r.Isolation, r.Runnable, r.Conclusions)
	}
	wantLine(t, r.Checks, "userns", Fail, "mount: EPERM")
	wantLine(t, r.Checks, "apparmor", Warn, "apparmor_restrict_unprivileged_userns=1", "zviz apparmor install")
	wantLine(t, r.Conclusions, "isolation", Warn, "chdir-only fallback", "apparmor_restrict_unprivileged_userns=1",
		"/usr/local/bin/zviz", "mount: EPERM")
}

func TestCheckNothingIsolates(t *testing.T) {
	f := newFakeHost(t)
	f.write(t, "proc/sys/user/max_user_namespaces", "0\n")
	f.LandlockABI = func() int { return 0 }
	f.Probe = func(string) ProbeResult { return ProbeResult{Step: "clone", Errno: "ENOSPC"} }
	r := f.Check()
	if r.Isolation != "none" || r.Runnable {
		t.Fatalf("isolation %s runnable %v, want none false", r.Isolation, r.Runnable)
	}
	wantLine(t, r.Checks, "userns", Fail, "max_user_namespaces=0")
	wantLine(t, r.Checks, "landlock", Fail, "unavailable")
	wantLine(t, r.Conclusions, "isolation", Fail, "user.max_user_namespaces=0", "no Landlock")
	wantLine(t, r.Conclusions, "profiles", Warn, "hostile-tenant (requires", "landlock: no Landlock")
}

func TestCheckNoSeccomp(t *testing.T) {
	f := newFakeHost(t)
	f.Seccomp = func() SeccompSupport {
		return SeccompSupport{FilterErr: "seccomp(SECCOMP_SET_MODE_FILTER) unsupported"}
	}
	r := f.Check()
	if r.Runnable {
		t.Fatal("runnable without seccomp filters")
	}
	wantLine(t, r.Checks, "seccomp", Fail, "unsupported")
	wantLine(t, r.Conclusions, "seccomp", Fail, "every mode")
	wantLine(t, r.Conclusions, "profiles", Warn, "default (requires seccomp")
}

func TestCheckOldLandlock(t *testing.T) {
	f := newFakeHost(t)
	f.LandlockABI = func() int { return 3 }
	f.Seccomp = func() SeccompSupport { return SeccompSupport{Filter: true, KillProcess: true} }
	r := f.Check()
	if !r.Runnable {
		t.Fatal("not runnable with Landlock 3")
	}
	wantLine(t, r.Checks, "landlock", Warn, "ABI 3", "TCP bind/connect port rules (ABI 4)",
		"ioctl on device files", "scoping (ABI 6)")
	if l := line(t, r.Checks, "landlock"); strings.Contains(l.Detail, "refer") || strings.Contains(l.Detail, "truncate") {
		t.Errorf("ABI 3 reported as missing refer/truncate: %s", l.Detail)
	}
	wantLine(t, r.Conclusions, "profiles", Warn, "hostile-tenant (requires landlock-scope: Landlock ABI 3 < 6)")
	wantLine(t, r.Checks, "seccomp notify", Warn, "no broker")
	wantLine(t, r.Conclusions, "seccomp", Warn, "no --log-denials")
}

func TestCheckRootMountns(t *testing.T) {
	f := newFakeHost(t)
	f.UID, f.GID, f.EUID, f.User = 0, 0, 0, "root"
	f.write(t, "proc/self/uid_map", "0 0 4294967295\n")
	f.write(t, "proc/self/gid_map", "0 0 4294967295\n")
	f.socket(t, "run/dbus/system_bus_socket")
	f.Probe = func(kind string) ProbeResult {
		if kind == ProbeUserns {
			return ProbeResult{Step: "clone", Errno: "EPERM"}
		}
		return ProbeResult{OK: true}
	}
	r := f.Check()
	if r.Isolation != "full" || r.Mapping != "privileged" || r.Limits != "systemd" {
		t.Fatalf("isolation %s mapping %s limits %s: %v", r.Isolation, r.Mapping, r.Limits, r.Conclusions)
	}
	if !r.Facts.InitialUserns {
		t.Error("identity uid_map not read as the initial user namespace")
	}
	wantLine(t, r.Checks, "mountns", OK)
	wantLine(t, r.Checks, "subuid", OK, "not needed")
	wantLine(t, r.Checks, "systemd system bus", OK, f.path("run/dbus/system_bus_socket"))
	wantLine(t, r.Conclusions, "isolation", OK, "mount namespace as euid 0")
}

func TestCheckLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, f *fakeHost)
		limit string
		want  []string
	}{
		{"no bus: cgroupfs", func(t *testing.T, f *fakeHost) {
			os.Remove(f.path("run/user/1000/bus"))
		}, "cgroupfs", []string{"delegated subtree", "session-1.scope"}},
		{"bus without systemd", func(t *testing.T, f *fakeHost) {
			os.Remove(f.path("run/systemd/system"))
			f.Access = func(p string, _ uint32) error { return unix.EACCES }
		}, "none", []string{"systemd not running", "not writable", "EACCES"}},
		{"dbus address", func(t *testing.T, f *fakeHost) {
			f.socket(t, "elsewhere/bus")
			env := map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=" + f.path("elsewhere/bus") + ",guid=1"}
			f.Getenv = func(k string) string { return env[k] }
			f.Access = func(p string, _ uint32) error { return unix.EACCES }
		}, "systemd", []string{"elsewhere/bus", "systemd"}},
		{"hybrid", func(t *testing.T, f *fakeHost) {
			f.mountinfo(t,
				"30 23 0:27 / "+f.root+"/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
				"31 23 0:28 / "+f.root+"/sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
				"32 23 0:29 / "+f.root+"/sys/fs/cgroup rw - cgroup2 cgroup2 rw")
			f.write(t, "sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope/cgroup.controllers", "hugetlb\n")
		}, "none", []string{"hybrid host", "has: hugetlb"}},
		{"no cgroup2", func(t *testing.T, f *fakeHost) { f.mountinfo(t) }, "none", []string{"no cgroup v2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost(t)
			tc.edit(t, f)
			r := f.Check()
			if r.Limits != tc.limit {
				t.Fatalf("limits %s, want %s: %v", r.Limits, tc.limit, line(t, r.Conclusions, "limits"))
			}
			s := OK
			if tc.limit == "none" {
				s = Warn
			}
			wantLine(t, r.Conclusions, "limits", s, tc.want...)
		})
	}
}

// TestCheckCgroup: where a container's cgroup comes from, which does not
// depend on controllers (pause and kill --all need none).
func TestCheckCgroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(t *testing.T, f *fakeHost)
		status Status
		want   []string
	}{
		{"user manager", func(t *testing.T, f *fakeHost) {}, OK, []string{"systemd user manager"}},
		{"no bus: cgroupfs", func(t *testing.T, f *fakeHost) {
			os.Remove(f.path("run/user/1000/bus"))
		}, OK, []string{"cgroupfs", "session-1.scope", "delegated"}},
		{"nothing", func(t *testing.T, f *fakeHost) {
			os.Remove(f.path("run/systemd/system"))
			f.Access = func(p string, _ uint32) error { return unix.EACCES }
		}, Warn, []string{"none", "pause and update refused"}},
		{"no cgroup2", func(t *testing.T, f *fakeHost) { f.mountinfo(t) }, Warn, []string{"no cgroup v2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost(t)
			tc.edit(t, f)
			wantLine(t, f.Check().Conclusions, "cgroup", tc.status, tc.want...)
		})
	}
}

func TestCheckSubIDs(t *testing.T) {
	f := newFakeHost(t)
	f.write(t, "etc/subuid", "dev:100000\n")
	f.write(t, "etc/subgid", "")
	r := f.Check()
	wantLine(t, r.Checks, "subuid", Warn, f.path("etc/subuid")+":1")
	if r.Mapping != "single" {
		t.Errorf("mapping %s with a malformed subuid line, want single", r.Mapping)
	}
	wantLine(t, r.Conclusions, "id mapping", Warn, "uid 1000 and gid 1000 alone", "no subordinate ranges")

	f = newFakeHost(t)
	f.PathDirs = []string{f.path("nowhere")}
	r = f.Check()
	wantLine(t, r.Checks, "newuidmap", Warn, "not found")
	wantLine(t, r.Conclusions, "id mapping", Warn, "newuidmap/newgidmap missing")
}

func TestMountinfo(t *testing.T) {
	f := newFakeHost(t)
	// A cgroup namespace: the mount's root is the caller's own cgroup, and
	// the mount point has an escaped space.
	f.mkdir(t, "cg root")
	f.write(t, "cg root/cgroup.controllers", "memory pids\n")
	f.mountinfo(t, "40 23 0:30 /user.slice/user-1000.slice/session-1.scope "+f.root+`/cg\040root rw shared:9 - cgroup2 cgroup2 rw`)
	c := f.Check().Facts.Cgroup
	if c.V2Mount != f.path("cg root") || c.Dir != f.path("cg root") || strings.Join(c.Controllers, " ") != "memory pids" {
		t.Errorf("cgroup: %+v", c)
	}
	if c.Hybrid {
		t.Error("hybrid without v1 mounts")
	}
}

func TestBusSocket(t *testing.T) {
	for addr, want := range map[string]string{
		"unix:path=/run/user/1000/bus":                    "/run/user/1000/bus",
		"unix:guid=x,path=/a;unix:path=/b":                "/a",
		"tcp:host=localhost,port=1;unix:path=/c":          "/c",
		"unix:abstract=/tmp/dbus-XYZ,guid=0123456789abcd": "",
	} {
		if got := busSocket(addr); got != want {
			t.Errorf("busSocket(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestLandlockMissing(t *testing.T) {
	for abi, n := range map[int]int{0: 1, 1: 5, 2: 4, 4: 2, 5: 1, 6: 0, 7: 0} {
		if got := landlockMissing(abi); len(got) != n {
			t.Errorf("landlockMissing(%d) = %q, want %d entries", abi, got, n)
		}
	}
}

func TestReportStrings(t *testing.T) {
	l := Line{Item: "userns", Status: Warn, Detail: "x"}
	if l.String() != "warn: userns: x" {
		t.Errorf("Line.String() = %q", l.String())
	}
	if got := (ProbeResult{Step: "mount", Errno: "EPERM", Error: "operation not permitted"}).describe(); got != "mount: EPERM (operation not permitted)" {
		t.Errorf("describe = %q", got)
	}
}

func TestCheckNoSyncWakeUp(t *testing.T) {
	f := newFakeHost(t)
	f.Probe = func(kind string) ProbeResult {
		if kind == ProbeNotify {
			return ProbeResult{Step: "set-flags", Errno: "EINVAL"}
		}
		return ProbeResult{OK: true}
	}
	r := f.Check()
	wantLine(t, r.Checks, "seccomp notify flags", Warn, "missing SYNC_WAKE_UP (6.6)", "set-flags: EINVAL")
	if r.Facts.Seccomp.SyncWakeUp {
		t.Error("SyncWakeUp set after a failed probe")
	}
}
