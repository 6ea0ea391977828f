package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// This file holds the namespace tests and the small helpers the core
// runtime tests (ns, rootfs, process, terminal, hooks, sandbox) share.

// nsKinds are the namespaces every default bundle asks zviz to create.
var nsKinds = []string{"pid", "mnt", "ipc", "uts", "cgroup", "net"}

// hostNS reads the inodes of the host's namespaces: the test's own (pid 1
// of this VM may be undumpable, so /proc/1/ns can be out of reach even
// for root; the test runs in the host's namespaces).
func hostNS(t *testing.T) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, n := range append([]string{"user"}, nsKinds...) {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+n, &st); err != nil {
			t.Fatalf("stat host namespace: %v", err)
		}
		m[n] = st.Ino
	}
	return m
}

// probeInfo runs the bundle (whose process is `/probe info`) with `zviz run`
// and decodes the report.
func (r *rt) probeInfo(bundle string, flags ...string) report.Info {
	r.t.Helper()
	args := append(append([]string{"run", "--bundle", bundle}, flags...), "info-"+randID())
	res := r.ok(args...)
	var in report.Info
	testutil.DecodeJSON(r.t, []byte(res.stdout), &in)
	if len(in.Errors) > 0 {
		r.t.Logf("probe reported errors: %v", in.Errors)
	}
	return in
}

// runCmd runs a prepared zviz command to completion (bounded: 60 s),
// capturing stdout and stderr unless the caller set them.
func (r *rt) runCmd(c *exec.Cmd) result {
	r.t.Helper()
	var out, errb bytes.Buffer
	if c.Stdout == nil {
		c.Stdout = &out
	}
	if c.Stderr == nil {
		c.Stderr = &errb
	}
	if err := c.Start(); err != nil {
		r.t.Fatalf("start %v: %v", c.Args, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		<-done
		r.t.Fatalf("%v: timed out\nstdout: %s\nstderr: %s", c.Args, out.String(), errb.String())
	}
	res := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("%v: %v", c.Args, err)
	}
	return res
}

// detached is a container made with `zviz create` whose stdio goes to
// files (a pipe would keep create's caller waiting for the init).
type detached struct {
	r        *rt
	id       string
	out, err string
}

// createLogged runs `zviz create` with stdout/stderr redirected to files and
// returns the handle; it fails the test unless create succeeds.
func (r *rt) createLogged(bundle string, flags ...string) *detached {
	r.t.Helper()
	return r.createLoggedWith(nil, bundle, flags...)
}

// createLoggedWith is createLogged with global flags before the verb.
func (r *rt) createLoggedWith(globals []string, bundle string, flags ...string) *detached {
	r.t.Helper()
	d := &detached{r: r, id: "c-" + randID()}
	dir := r.t.TempDir()
	d.out, d.err = filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	res := r.createTo(d, globals, bundle, flags...)
	if res.code != 0 {
		r.t.Fatalf("zviz create: %v\ncontainer stderr: %s", res, d.stderr())
	}
	r.t.Cleanup(func() { _ = r.cmd("delete", "--force", d.id).Run() })
	return d
}

// createTo runs `zviz GLOBALS create --bundle BUNDLE FLAGS d.id` with
// stdout and stderr going to d's files.
func (r *rt) createTo(d *detached, globals []string, bundle string, flags ...string) result {
	r.t.Helper()
	of, err := os.Create(d.out)
	if err != nil {
		r.t.Fatal(err)
	}
	defer of.Close()
	ef, err := os.Create(d.err)
	if err != nil {
		r.t.Fatal(err)
	}
	defer ef.Close()
	args := append(append(slices.Clone(globals), "create", "--bundle", bundle), flags...)
	c := r.cmd(append(args, d.id)...)
	c.Stdout, c.Stderr = of, ef
	res := r.runCmd(c)
	b, _ := os.ReadFile(d.err)
	res.stderr = string(b)
	return res
}

func (d *detached) stdout() string { b, _ := os.ReadFile(d.out); return string(b) }
func (d *detached) stderr() string { b, _ := os.ReadFile(d.err); return string(b) }

// status is the container's status from `zviz state`.
func (d *detached) status() string {
	d.r.t.Helper()
	res := d.r.ok("state", d.id)
	var st specs.State
	testutil.DecodeJSON(d.r.t, []byte(res.stdout), &st)
	return string(st.Status)
}

// wait waits (up to 20 s) for the container to stop, then deletes it.
func (d *detached) wait() {
	d.r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for d.status() != "stopped" {
		if time.Now().After(deadline) {
			d.r.t.Fatalf("container %s did not stop\nstdout: %s\nstderr: %s", d.id, d.stdout(), d.stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.r.ok("delete", d.id)
}

func randID() string {
	var b [6]byte
	if _, err := unix.Getrandom(b[:], 0); err != nil {
		return fmt.Sprint(time.Now().UnixNano())
	}
	return fmt.Sprintf("%x", b)
}

// shBundle is a bundle whose process is `sh -c script`.
func (r *rt) shBundle(script string, edit func(s *specs.Spec)) string {
	return r.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", script}
		if edit != nil {
			edit(s)
		}
	})
}

// withoutNS removes namespaces of the given types from the config.
func withoutNS(s *specs.Spec, types ...specs.LinuxNamespaceType) {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return slices.Contains(types, n.Type)
	})
}

func hasNS(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ })
}

// TestNSNew: every namespace the config asks for is new, the new network
// namespace holds only lo, up, and root without a user namespace in the
// config stays in the host's user namespace while zviztest gets its own.
func TestNSNew(t *testing.T) {
	host := hostNS(t)
	forEachUser(t, func(t *testing.T, r *rt) {
		in := r.probeInfo(r.bundle(nil))
		for _, n := range nsKinds {
			if in.NS[n] == 0 || in.NS[n] == host[n] {
				t.Errorf("%s namespace: container %d, host %d: want a new one", n, in.NS[n], host[n])
			}
		}
		if len(in.Interfaces) != 1 || in.Interfaces[0].Name != "lo" || !in.Interfaces[0].Up {
			t.Errorf("interfaces: got %+v, want only lo, up", in.Interfaces)
		}
		if r.user == "root" && in.NS["user"] != host["user"] {
			t.Errorf("root without a user namespace in config: user ns %d, host %d", in.NS["user"], host["user"])
		}
		if r.user != "root" && in.NS["user"] == host["user"] {
			t.Errorf("%s: user namespace is the host's", r.user)
		}
		if in.PID != 1 {
			t.Errorf("pid %d, want 1 in a new pid namespace", in.PID)
		}
	})
}

// TestNSUserDefaultMapping: zviztest without uidMappings gets container 0
// mapped to itself and 1..65536 to its subordinate range (newuidmap).
func TestNSUserDefaultMapping(t *testing.T) {
	testutil.Requires(t, "root", "unprivileged-user", "subuid", "newuidmap")
	r := newRT(t, testutil.TestUser)
	uid := uidOf(t, r.user)
	in := r.probeInfo(r.bundle(func(s *specs.Spec) {
		s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
	}))
	start := subIDStart(t, "/etc/subuid", r.user)
	want := []string{fmt.Sprintf("0 %d 1", uid), fmt.Sprintf("1 %d 65536", start)}
	if !slices.Equal(in.UIDMap, want) {
		t.Errorf("uid_map: got %q, want %q", in.UIDMap, want)
	}
	gstart := subIDStart(t, "/etc/subgid", r.user)
	wantG := []string{fmt.Sprintf("0 %d 1", uid), fmt.Sprintf("1 %d 65536", gstart)}
	if !slices.Equal(in.GIDMap, wantG) {
		t.Errorf("gid_map: got %q, want %q", in.GIDMap, wantG)
	}
}

// subIDStart is the first subordinate id of user in path (first range).
func subIDStart(t *testing.T, path, user string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 3 && (f[0] == user || f[0] == fmt.Sprint(uidOf(t, user))) {
			var n int
			fmt.Sscan(f[1], &n)
			return n
		}
	}
	t.Fatalf("%s has no range for %s", path, user)
	return 0
}

// TestNSUserConfigMapping: mappings from the config are used exactly, for
// zviztest ({0,1001,1}) and for root (a user namespace it asked for).
func TestNSUserConfigMapping(t *testing.T) {
	host := hostNS(t)
	forEachUser(t, func(t *testing.T, r *rt) {
		uid := uint32(uidOf(t, r.user))
		maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}}
		if r.user == "root" {
			maps = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
		}
		b := r.bundle(func(s *specs.Spec) {
			if !hasNS(s, specs.UserNamespace) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			}
			// For root the rootfs stays owned by host root (unmapped inside):
			// it is world-readable, and the probe only reads.
			s.Linux.UIDMappings, s.Linux.GIDMappings = maps, maps
		})
		in := r.probeInfo(b)
		want := fmt.Sprintf("%d %d %d", maps[0].ContainerID, maps[0].HostID, maps[0].Size)
		if !slices.Equal(in.UIDMap, []string{want}) || !slices.Equal(in.GIDMap, []string{want}) {
			t.Errorf("uid_map %q gid_map %q, want exactly [%q]", in.UIDMap, in.GIDMap, want)
		}
		if in.NS["user"] == host["user"] {
			t.Errorf("user namespace is the host's, want a new one")
		}
	})
}

// TestNSJoinNetworkByPath: root joins a named network namespace that has
// a bridge interface (dummy may be a missing module); the container sees exactly that namespace.
func TestNSJoinNetworkByPath(t *testing.T) {
	testutil.Requires(t, "root")
	r := newRT(t, "root")
	name := "zviztest-" + randID()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "add", "zvizbr0", "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	path := "/run/netns/" + name
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	b := r.bundle(func(s *specs.Spec) {
		withoutNS(s, specs.NetworkNamespace)
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
	})
	in := r.probeInfo(b)
	if in.NS["net"] != st.Ino {
		t.Errorf("net namespace %d, want the joined one %d", in.NS["net"], st.Ino)
	}
	var names []string
	for _, i := range in.Interfaces {
		names = append(names, i.Name)
	}
	if !slices.Contains(names, "zvizbr0") {
		t.Errorf("interfaces %v: want zvizbr0 of the joined namespace", names)
	}
}

// TestNSJoinPIDAndUserByPath is podman's --pid container:NAME (and a
// pod's user namespace): container B joins the pid and user namespaces of
// A's init by path and gets new mount, ipc, uts, net and cgroup ones. For
// root, A gets a user namespace mapped to 200000: B's init is then root
// of a namespace whose root is an unprivileged host id, which must still
// open B's exec fifo. The escape table of B is checked elsewhere; here
// what B's process is in.
func TestNSJoinPIDAndUserByPath(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		a := r.createLogged(r.shBundle("sleep 600", func(s *specs.Spec) {
			if r.user == "root" {
				maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				s.Linux.UIDMappings, s.Linux.GIDMappings = maps, maps
			}
		}))
		pid := a.statePid()
		b := r.bundle(func(s *specs.Spec) {
			withoutNS(s, specs.UserNamespace, specs.PIDNamespace)
			s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
			s.Linux.Namespaces = append(s.Linux.Namespaces,
				specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", pid)},
				specs.LinuxNamespace{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", pid)})
			// Written by the init, which is undumpable then: its /proc
			// files belong to root of the namespace it exec'd in.
			adj := 300
			s.Process.OOMScoreAdj = &adj
		})
		in := r.probeInfo(b)
		for _, n := range []string{"user", "pid"} {
			if want := testutil.NSInode(t, pid, n); in.NS[n] != want {
				t.Errorf("%s namespace %d, want A's %d", n, in.NS[n], want)
			}
		}
		for _, n := range []string{"mnt", "ipc", "uts", "net"} {
			if in.NS[n] == testutil.NSInode(t, pid, n) {
				t.Errorf("%s namespace is A's, want a new one", n)
			}
		}
		if in.PID <= 1 {
			t.Errorf("pid %d in A's pid namespace: want > 1 (A's init is 1)", in.PID)
		}
		if in.OOMScoreAdj != 300 {
			t.Errorf("oom_score_adj %d, want 300", in.OOMScoreAdj)
		}
		if in.UID != 0 || in.NoNewPrivs != 1 || in.Seccomp != 2 {
			t.Errorf("uid %d, no_new_privs %d, seccomp %d: want 0, 1, 2", in.UID, in.NoNewPrivs, in.Seccomp)
		}
		// Mappings given with the path are not the namespace's: they are
		// ignored (podman sends its defaults with --userns ns:PATH) and
		// announced.
		odd := r.bundle(func(s *specs.Spec) {
			withoutNS(s, specs.UserNamespace)
			one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 12345, Size: 1}}
			s.Linux.UIDMappings, s.Linux.GIDMappings = one, one
			s.Linux.Namespaces = append(s.Linux.Namespaces,
				specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", pid)})
		})
		res := r.ok("run", "--bundle", odd, "maps-"+randID())
		var oddIn report.Info
		testutil.DecodeJSON(t, []byte(res.stdout), &oddIn)
		want := strings.Fields(readFile(t, fmt.Sprintf("/proc/%d/uid_map", pid)))
		if have := strings.Fields(strings.Join(oddIn.UIDMap, " ")); !slices.Equal(have, want) || oddIn.NS["user"] != testutil.NSInode(t, pid, "user") {
			t.Errorf("uid_map %q, want the joined namespace's %q", have, want)
		}
		if !strings.Contains(res.stderr, "linux.uidMappings/gidMappings: ignored: the user namespace joined by path maps uids [") {
			t.Errorf("ignored mappings not announced: %v", res)
		}
		// The seccomp listener of --log-denials reaches the logger from
		// an init that entered its namespaces undumpable.
		join := func(s *specs.Spec) {
			withoutNS(s, specs.UserNamespace, specs.PIDNamespace)
			s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
			s.Linux.Namespaces = append(s.Linux.Namespaces,
				specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", pid)},
				specs.LinuxNamespace{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", pid)})
		}
		res = r.run("--log-denials", "run", "--bundle", r.shBundle(`/probe try ptrace`, join), "jl-"+randID())
		if res.code != 0 || !strings.Contains(res.stderr, "zviz: denied: ptrace(") || !strings.Contains(res.stdout, `"name":"ptrace","errno":"EPERM"`) {
			t.Errorf("--log-denials in joined namespaces: %v, want ptrace logged and EPERM", res)
		}
		r.ok("delete", "--force", a.id)
		r.checkClean()
	})
}

// TestNSJoinUserAndMountByPath joins a user and mount namespace made by
// unshare(1), as the test user (root: the mount namespace only): the
// container's rootfs is set up in the joined mount namespace, whose
// mounts the container then sees, and no pid namespace is joined, so the
// init is not forked.
func TestNSJoinUserAndMountByPath(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		args := []string{"unshare", "--mount", "--propagation", "private", "sleep", "600"}
		if r.user != "root" {
			args = append([]string{"unshare", "--user", "--map-root-user"}, args[1:]...)
		}
		holder := testutil.RunAs(t, r.user, nil, args[0], args[1:]...)
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
		pid := holder.Process.Pid
		waitNSChange(t, pid, "mnt")
		b := r.bundle(func(s *specs.Spec) {
			withoutNS(s, specs.UserNamespace, specs.MountNamespace)
			s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
			s.Linux.Namespaces = append(s.Linux.Namespaces,
				specs.LinuxNamespace{Type: specs.MountNamespace, Path: fmt.Sprintf("/proc/%d/ns/mnt", pid)})
			if r.user != "root" {
				s.Linux.Namespaces = append(s.Linux.Namespaces,
					specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", pid)})
			}
		})
		in := r.probeInfo(b)
		for _, n := range []string{"user", "mnt"} {
			if want := testutil.NSInode(t, pid, n); in.NS[n] != want {
				t.Errorf("%s namespace %d, want the joined %d", n, in.NS[n], want)
			}
		}
		if in.PID != 1 {
			t.Errorf("pid %d: want 1 in a new pid namespace", in.PID)
		}
		r.checkClean()
	})
}

// TestNSJoinByPathErrors: a path that is missing, or a namespace of
// another type, is refused with an error naming the field, and leaves
// nothing.
func TestNSJoinByPathErrors(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		for _, c := range []struct {
			typ        specs.LinuxNamespaceType
			path, want string
		}{
			{specs.PIDNamespace, "/nonexistent/ns/pid", "no such file or directory"},
			{specs.PIDNamespace, "/proc/self/ns/net", "not a pid namespace"},
			{specs.MountNamespace, "/etc/hostname", "not a namespace"},
		} {
			b := r.bundle(func(s *specs.Spec) {
				withoutNS(s, c.typ)
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: c.typ, Path: c.path})
			})
			res := r.run("run", "--bundle", b, "join-"+randID())
			if res.code == 0 || !strings.Contains(res.stderr, "linux.namespaces[") ||
				!strings.Contains(res.stderr, c.path) || !strings.Contains(res.stderr, c.want) {
				t.Errorf("join %s %s: %v, want an error naming the field, the path and %q", c.typ, c.path, res, c.want)
			}
		}
		r.checkClean()
	})
}

// waitNSChange waits until process pid is in a namespace n of its own
// (unshare(1) has made it).
func waitNSChange(t *testing.T, pid int, n string) {
	t.Helper()
	self := testutil.NSInode(t, os.Getpid(), n)
	for i := 0; testutil.NSInode(t, pid, n) == self; i++ {
		if i == 500 {
			t.Fatalf("process %d did not get a %s namespace of its own", pid, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNSInsideUserNamespace is the rootless podman case: zviztest runs zviz
// as root of a user namespace it made with unshare. Without a user
// namespace in the config the container stays in that namespace (no second
// mapping); with one, a nested namespace is created.
func TestNSInsideUserNamespace(t *testing.T) {
	testutil.Requires(t, "root", "unprivileged-user")
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("requires unshare (util-linux)")
	}
	r := newRT(t, testutil.TestUser)
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("config-userns=%v", nested), func(t *testing.T) {
			uid := uint32(uidOf(t, r.user))
			s := testutil.DefaultSpec(true, uid, uid)
			withoutNS(s, specs.UserNamespace)
			s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
			if nested {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
				s.Linux.UIDMappings, s.Linux.GIDMappings = one, one
			}
			b := testutil.BusyboxBundle(t, testutil.BundleOptions{Spec: s, User: r.user})
			script := `stat -L -c %i /proc/self/ns/user && exec "$@"`
			c := testutil.RunAs(t, r.user, nil, "unshare", "--user", "--map-root-user", "--mount",
				"sh", "-c", script, "sh", r.zviz, "--root", r.root, "run", "--bundle", b, "nested-"+randID())
			res := r.runCmd(c)
			if res.code != 0 {
				t.Fatalf("zviz inside unshare: %v", res)
			}
			first, rest, _ := strings.Cut(res.stdout, "\n")
			var outer uint64
			fmt.Sscan(first, &outer)
			var in report.Info
			testutil.DecodeJSON(t, []byte(rest), &in)
			if !nested && in.NS["user"] != outer {
				t.Errorf("user namespace %d, want the caller's %d (no second one)", in.NS["user"], outer)
			}
			if nested && (in.NS["user"] == outer || !slices.Equal(in.UIDMap, []string{"0 0 1"})) {
				t.Errorf("user namespace %d (caller's %d), uid_map %q: want a new one mapped 0 0 1", in.NS["user"], outer, in.UIDMap)
			}
			if in.UID != 0 {
				t.Errorf("uid %d, want 0", in.UID)
			}
		})
	}
}
