// Package integration drives the built zviz binary on throwaway busybox
// bundles, as root and as the unprivileged test user, with the static probe
// inside the container doing the checking.
package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// rt is zviz as one user, with a private state directory.
type rt struct {
	t    *testing.T
	user string // "root" or testutil.TestUser
	zviz string
	root string // --root
	// session, when set, runs zviz as the test user in a systemd --user
	// session (cgroup_test.go).
	session *testutil.UserManager
	ids     []string // of the containers created or run, for checkClean
}

// forEachUser runs f as root and as the unprivileged test user.
func forEachUser(t *testing.T, f func(t *testing.T, r *rt)) {
	for _, u := range []string{"root", testutil.TestUser} {
		t.Run(u, func(t *testing.T) {
			f(t, newRT(t, u))
		})
	}
}

// newRT prepares zviz for user: the binary, and a state directory that is
// checked to be empty (no state left behind) when the test ends.
func newRT(t *testing.T, user string) *rt {
	t.Helper()
	testutil.Requires(t, "root", "userns")
	if user != "root" {
		testutil.Requires(t, "unprivileged-user")
	}
	r := &rt{t: t, user: user, zviz: testutil.BuildZviz(t)}
	base := "/run/zviz-test"
	if user != "root" {
		base = fmt.Sprintf("/run/user/%d", uidOf(t, user))
	}
	r.root = filepath.Join(base, fmt.Sprintf("zviz-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	t.Cleanup(func() { r.checkClean() })
	return r
}

// result is one zviz invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (res result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
}

// cmd builds `zviz --root R args...` as the runtime's user.
func (r *rt) cmd(args ...string) *exec.Cmd {
	for _, a := range args {
		if a == "create" || a == "run" {
			r.ids = append(r.ids, args[len(args)-1])
			break
		}
	}
	if r.session != nil {
		return r.session.Command(r.zviz, append([]string{"--root", r.root}, args...)...)
	}
	return testutil.RunAs(r.t, r.user, nil, r.zviz, append([]string{"--root", r.root}, args...)...)
}

// run runs zviz to completion (bounded: 60 s).
func (r *rt) run(args ...string) result {
	r.t.Helper()
	c := r.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		r.t.Fatalf("start zviz %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		<-done
		r.t.Fatalf("zviz %v: timed out\nstdout: %s\nstderr: %s", args, out.String(), errb.String())
	}
	res := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("zviz %v: %v", args, err)
	}
	return res
}

// ok runs zviz and fails the test unless it exits 0.
func (r *rt) ok(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("zviz %v: %v", args, res)
	}
	return res
}

// bundle makes a busybox bundle for this user; edit adjusts the default
// spec (the shape of `runc spec`, rootless for the test user).
func (r *rt) bundle(edit func(s *specs.Spec)) string {
	r.t.Helper()
	rootless := r.user != "root"
	uid := uint32(0)
	if rootless {
		uid = uint32(uidOf(r.t, r.user))
	}
	s := testutil.DefaultSpec(rootless, uid, uid)
	if edit != nil {
		edit(s)
	}
	return testutil.BusyboxBundle(r.t, testutil.BundleOptions{Spec: s, User: r.user})
}

// checkClean asserts that the state directory holds no container and that
// no init of ours survived.
func (r *rt) checkClean() {
	t := r.t
	ents, err := os.ReadDir(r.root)
	if err == nil && len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
			_ = r.cmd("delete", "--force", e.Name()).Run()
		}
		t.Errorf("state left behind in %s: %v", r.root, names)
	}
	os.RemoveAll(r.root)
	if pids := initsUnder(r.root); len(pids) > 0 {
		t.Errorf("zviz:[init] processes left behind: %v", pids)
	}
	// Root's containers get a cgroupfs cgroup here (cgroup_test.go).
	for _, id := range r.ids {
		dir := "/sys/fs/cgroup/unified/zviz-" + id
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup left behind: %s", dir)
			_ = os.Remove(filepath.Join(dir, "container"))
			_ = os.Remove(dir)
		}
	}
}

// withoutCgroupNotes drops zviz's announcements about the container's
// cgroup (no cgroup here for the unprivileged user, no controllers for
// root: see cgroup_test.go) from stderr, for tests about something else.
func withoutCgroupNotes(stderr string) string {
	var keep []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if strings.HasPrefix(l, "zviz: warning: no cgroup (") ||
			(strings.HasPrefix(l, "zviz: warning: cgroup ") && strings.Contains(l, ": limits not applied: ")) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "")
}

func uidOf(t testing.TB, name string) int {
	t.Helper()
	if name == "root" {
		return 0
	}
	u, err := testutil.LookupUser(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// initsUnder lists the zviz:[init] processes whose exec fifo is in the
// state directory root (other test processes may run inits of their own).
func initsUnder(root string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(b), "zviz:[init]") {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && strings.HasPrefix(l, root+"/") {
				pids = append(pids, e.Name())
				break
			}
		}
	}
	return pids
}
