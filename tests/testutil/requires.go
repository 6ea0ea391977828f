package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUser is the unprivileged user that hack/setup.sh creates.
const TestUser = "zviztest"

// checks maps a feature name to a function returning why it is missing (nil
// when present). "landlock>=N" is handled by landlockAtLeast.
var checks = map[string]func() error{
	"root":              checkRoot,
	"userns":            checkUserns,
	"unprivileged-user": checkUnprivilegedUser,
	"subuid":            func() error { return checkSubIDs("/etc/subuid", "/etc/subgid", TestUser) },
	"newuidmap":         func() error { return checkBinaries("newuidmap", "newgidmap") },
	"runc":              func() error { return checkBinaries("runc") },
	"bwrap":             func() error { return checkBinaries("bwrap") },
	"slirp4netns":       func() error { return checkBinaries("slirp4netns", "nsenter", "ip") },
	"pasta":             func() error { return checkBinaries("pasta") },
	"busybox":           checkBusybox,
	"systemd-user":      checkSystemdUser,
}

var featureCache sync.Map // feature name -> error (nil when present)

// Requires skips the test unless every named host feature is present, with
// the message "requires FEATURE: why it is missing". Known features: root,
// userns, unprivileged-user (zviztest exists and the test runs as root, so
// it can switch to it), subuid, newuidmap, runc, bwrap, slirp4netns, pasta,
// busybox, systemd-user (hack/systemd-user.sh can start a user manager),
// landlock>=N; cgroup.go and podman.go add cgroup2, podman, docker-cli and
// cgroup2-only (/sys/fs/cgroup itself is cgroup2: not a hybrid host).
// An unknown name fails the test: a typo must not skip silently.
func Requires(t testing.TB, features ...string) {
	t.Helper()
	for _, f := range features {
		err, known := featureMissing(f)
		if !known {
			t.Fatalf("testutil.Requires: unknown feature %q", f)
		}
		if err != nil {
			t.Skipf("requires %s: %v", f, err)
		}
	}
}

// featureMissing reports why feature f is missing (nil if present) and
// whether f is a known feature name.
func featureMissing(f string) (err error, known bool) {
	check, ok := checks[f]
	if !ok {
		n, isLandlock := parseAtLeast(f, "landlock")
		if !isLandlock {
			return nil, false
		}
		check = func() error { return landlockAtLeast(n, landlockABI) }
	}
	if v, ok := featureCache.Load(f); ok {
		err, _ := v.(error)
		return err, true
	}
	err = check()
	featureCache.Store(f, err)
	return err, true
}

// parseAtLeast parses "NAME>=N".
func parseAtLeast(f, name string) (int, bool) {
	rest, ok := strings.CutPrefix(f, name+">=")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func checkRoot() error {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Errorf("running as uid %d, not root (try: sudo make test)", euid)
	}
	return nil
}

// checkUserns asks whether unprivileged users may create user namespaces.
func checkUserns() error {
	if v, err := readInt("/proc/sys/user/max_user_namespaces"); err == nil && v == 0 {
		return errors.New("user.max_user_namespaces is 0")
	}
	if v, err := readInt("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && v == 0 {
		return errors.New("kernel.unprivileged_userns_clone is 0")
	}
	if os.Geteuid() == 0 {
		return nil // the sysctls are all an unprivileged caller depends on
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("clone(CLONE_NEWUSER): %w", err)
	}
	return nil
}

func checkUnprivilegedUser() error {
	if _, err := user.Lookup(TestUser); err != nil {
		return fmt.Errorf("no user %s (run hack/setup.sh as root): %w", TestUser, err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("switching to %s needs root; running as uid %d", TestUser, os.Geteuid())
	}
	return nil
}

func checkSubIDs(subuid, subgid, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("no user %s (run hack/setup.sh as root): %w", name, err)
	}
	for _, f := range []string{subuid, subgid} {
		n, err := subIDCount(f, name, u.Uid)
		if err != nil {
			return err
		}
		if n < 65536 {
			return fmt.Errorf("%s gives %s %d ids, want at least 65536", f, name, n)
		}
	}
	return nil
}

// subIDCount sums the ranges that path (subuid(5) format) gives to the user
// by name or by uid.
func subIDCount(path, name, uid string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read subordinate ids: %w", err)
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 || (fields[0] != name && fields[0] != uid) {
			continue
		}
		if n, err := strconv.ParseInt(fields[2], 10, 64); err == nil && n > 0 {
			total += n
		}
	}
	return total, sc.Err()
}

func checkBinaries(names ...string) error {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return fmt.Errorf("%s not on PATH (run hack/setup.sh as root)", n)
		}
	}
	return nil
}

func checkBusybox() error {
	if _, err := os.Stat(busyboxPath); err != nil {
		return fmt.Errorf("%v (apt-get install busybox-static)", err)
	}
	return nil
}

// landlockABI returns the kernel's Landlock ABI version (landlock(7)).
func landlockABI() (int, error) {
	const createRulesetVersion = 1 << 0 // LANDLOCK_CREATE_RULESET_VERSION
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if e != 0 {
		return 0, fmt.Errorf("landlock_create_ruleset: %w", e)
	}
	return int(v), nil
}

func landlockAtLeast(want int, abi func() (int, error)) error {
	got, err := abi()
	if err != nil {
		return err
	}
	if got < want {
		return fmt.Errorf("kernel Landlock ABI is %d", got)
	}
	return nil
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
