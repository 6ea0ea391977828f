package testutil

import (
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
)

// UserManager is a real `systemd --user` with its user bus for TestUser,
// started by hack/systemd-user.sh (TEST-ENVIRONMENTS.md §A) in an
// environment of its own, and stopped (its cgroups removed) when the test
// ends.
type UserManager struct {
	script string
	env    []string          // ZVIZ_SYSTEMD_ENV=... for every script call
	Vars   map[string]string // what `start` printed
	// Cgroup is the environment's cgroup directory on the host: the root of
	// the session's cgroup namespace.
	Cgroup string
	PID    int // the manager
}

// userManagerPrefix + the test binary's pid + a name names each
// environment, so that stale ones (their test binary died) can be found.
const userManagerPrefix = "zviz-systemd-it-"

// StartUserManager starts the manager, or skips the test naming what is
// missing. name tells concurrent environments of one test binary apart.
func StartUserManager(t testing.TB, name string) *UserManager {
	t.Helper()
	Requires(t, "root", "unprivileged-user", "systemd-user")
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "hack", "systemd-user.sh")
	removeStaleManagers(t, script)
	m := &UserManager{script: script, env: []string{
		"ZVIZ_SYSTEMD_ENV=" + userManagerPrefix + strconv.Itoa(os.Getpid()) + "-" + name,
		"ZVIZ_TEST_USER=" + TestUser}}
	t.Cleanup(func() {
		if out, err := m.command("stop").CombinedOutput(); err != nil {
			t.Errorf("stop the user manager: %v\n%s", err, out)
		}
		if _, err := os.Stat(m.Cgroup); m.Cgroup != "" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after stop (%v)", m.Cgroup, err)
		}
	})
	began := time.Now()
	out, err := m.command("start").Output()
	if err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("hack/systemd-user.sh start: %v\n%s", err, ee.Stderr)
	}
	t.Logf("systemd --user and the user bus up in %v", time.Since(began).Round(time.Millisecond))
	m.Vars = map[string]string{}
	for line := range strings.Lines(string(out)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		m.Vars[k] = strings.ReplaceAll(v, `\ `, " ")
	}
	m.Cgroup = m.Vars["ZVIZ_SYSTEMD_CGROUP"]
	m.PID, _ = strconv.Atoi(m.Vars["ZVIZ_SYSTEMD_MANAGER_PID"])
	if m.Cgroup == "" || m.PID == 0 {
		t.Fatalf("hack/systemd-user.sh start printed no session:\n%s", out)
	}
	return m
}

// Command runs name with args as TestUser in the session: in a cgroup the
// user manager may move into a scope, with the session's mount and cgroup
// namespaces, XDG_RUNTIME_DIR and user bus.
func (m *UserManager) Command(name string, args ...string) *exec.Cmd {
	return m.command(append([]string{"run", TestUser, "--", name}, args...)...)
}

// HostPath is the host directory of a cgroup path as the session sees it
// (below its cgroup2 mount at /sys/fs/cgroup).
func (m *UserManager) HostPath(sessionPath string) string {
	rel, ok := strings.CutPrefix(sessionPath, "/sys/fs/cgroup")
	if !ok {
		rel = sessionPath
	}
	return filepath.Join(m.Cgroup, rel)
}

func (m *UserManager) command(args ...string) *exec.Cmd {
	cmd := exec.Command(m.script, args...)
	cmd.Env = append(os.Environ(), m.env...)
	return cmd
}

// removeStaleManagers stops the environments of test binaries that died
// before their cleanup ran.
func removeStaleManagers(t testing.TB, script string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/unified/" + userManagerPrefix + "*")
	for _, d := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), userManagerPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		cmd := exec.Command(script, "stop", TestUser)
		cmd.Env = append(os.Environ(), "ZVIZ_SYSTEMD_ENV="+filepath.Base(d))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("remove the stale environment %s: %v\n%s", d, err, out)
		}
	}
}

func checkSystemdUser() error {
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		return errors.New("no /lib/systemd/systemd (apt-get install systemd; hack/setup.sh does)")
	}
	if _, err := os.Stat("/usr/lib/systemd/user/dbus.socket"); err != nil {
		return errors.New("no user bus unit (apt-get install dbus-user-session; hack/setup.sh does)")
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || !strings.Contains(string(b), " /sys/fs/cgroup/unified ") {
		return fmt.Errorf("no cgroup v2 hierarchy at /sys/fs/cgroup/unified (the hybrid layout hack/systemd-user.sh builds on)")
	}
	return checkBinaries("nsenter", "setpriv", "unshare", "systemctl")
}
