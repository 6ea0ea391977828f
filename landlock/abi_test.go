package landlock

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestABI compares ABI() with the kernel's answers, asked without
// go-landlock: the raw version query, and whether securityfs lists
// "landlock" among the active LSMs.
func TestABI(t *testing.T) {
	if os.Getenv(childEnv) == "lsm" {
		lsmChild()
		return
	}
	const createRulesetVersion = 1 << 0 // LANDLOCK_CREATE_RULESET_VERSION
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	want := int(v)
	if errno != 0 {
		if errno != unix.ENOSYS && errno != unix.EOPNOTSUPP {
			t.Fatalf("landlock_create_ruleset(VERSION): %v", errno)
		}
		want = 0
	}
	if got := ABI(); got != want {
		t.Errorf("ABI() = %d, landlock_create_ruleset(VERSION) says %d", got, want)
	}

	t.Run("securityfs", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("requires root: mounts securityfs in a private mount namespace")
		}
		res := runChildIn(t, "TestABI", &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}, childEnv+"=lsm")
		if res.Err != "" {
			t.Fatalf("child: %s", res.Err)
		}
		lsms := strings.Split(res.Info["lsm"], ",")
		enabled := false
		for _, l := range lsms {
			enabled = enabled || l == "landlock"
		}
		if enabled != (ABI() > 0) {
			t.Errorf("securityfs lsm list %q, but ABI() = %d", lsms, ABI())
		}
	})
}

// lsmChild runs in a private mount namespace (Go makes / private for
// CLONE_NEWNS), so mounting securityfs does not touch the host.
func lsmChild() {
	res := &childResult{Info: map[string]string{}}
	const dir = "/sys/kernel/security"
	err := unix.Mount("securityfs", dir, "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err != nil && !errors.Is(err, unix.EBUSY) {
		res.Err = "mount securityfs: " + err.Error()
	}
	if b, err := os.ReadFile(dir + "/lsm"); err == nil {
		res.Info["lsm"] = strings.TrimSpace(string(b))
	} else if res.Err == "" {
		res.Err = err.Error()
	}
	writeResult(res)
}
