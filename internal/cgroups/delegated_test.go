package cgroups

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

	"golang.org/x/sys/unix"
)

// TestRealDelegated delegates a cgroup to the test user the way
// cgroup-v2.rst ("Delegation") and systemd's Delegate=yes do, and drives
// the whole API as that user from a copy of this test binary
// (delegatedChild) that starts inside the subtree, in base/session, as a
// user's login session would be.
func TestRealDelegated(t *testing.T) {
	mount, base := realCgroup(t)
	cred := credential(t)
	session := filepath.Join(base, "session")
	if err := os.Mkdir(session, 0o755); err != nil {
		t.Fatal(err)
	}
	// The delegation: the directory and the files that let the user
	// create children and move processes; not its limits.
	for _, p := range []string{base, filepath.Join(base, "cgroup.procs"), filepath.Join(base, "cgroup.subtree_control"), filepath.Join(base, "cgroup.threads")} {
		if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	// session stands for a cgroup the user made itself: all of it is theirs.
	if err := filepath.WalkDir(session, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, int(cred.Uid), int(cred.Gid))
	}); err != nil {
		t.Fatal(err)
	}

	// A process of the same user outside the subtree: delegation
	// containment must keep it out.
	outside := busyLoop(t, &syscall.SysProcAttr{Credential: cred})

	fd, err := unix.Open(session, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command(testBinary(t), mount, base, strconv.Itoa(outside.Process.Pid))
	cmd.Env = []string{childEnv + "=delegated", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, UseCgroupFD: true, CgroupFD: fd}
	out, err := cmd.CombinedOutput()
	t.Logf("as %s:\n%s", testUser, out)
	for _, line := range strings.Split(string(out), "\n") {
		if msg, ok := strings.CutPrefix(line, "FAIL: "); ok {
			t.Error(msg)
		}
	}
	if err != nil {
		t.Errorf("the delegated user's run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "ctr")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("base/ctr left behind (%v)", err)
	}
}

// delegatedChild runs as the test user in base/session.
func delegatedChild(args []string) int {
	mount, base := args[0], args[1]
	outside, _ := strconv.Atoi(args[2])
	failed := false
	errorf := func(format string, a ...any) {
		failed = true
		fmt.Printf("FAIL: "+format+"\n", a...)
	}
	rel := strings.TrimPrefix(base, mount)

	own, err := Own()
	if err != nil || own != rel+"/session" {
		errorf("Own() = %q, %v; want %s/session", own, err, rel)
	}
	if _, err := Resolve(mount, own, "../ctr"); err == nil {
		errorf(`Resolve("../ctr") succeeded`)
	}
	if dir, err := Resolve(mount, own, "nested"); err != nil || dir != base+"/session/nested" {
		errorf(`Resolve("nested") = %q, %v`, dir, err)
	}
	dir, err := Resolve(mount, own, rel+"/ctr")
	if err != nil || dir != base+"/ctr" {
		errorf("Resolve(%s/ctr) = %q, %v", rel, dir, err)
		return 1
	}
	if err := Delegated(dir); err != nil {
		errorf("Delegated(%s): %v", dir, err)
	}
	notMine := filepath.Join(mount, "zviz-not-delegated")
	if err := Delegated(notMine); !errors.Is(err, unix.EACCES) {
		errorf("Delegated(%s) = %v, want EACCES", notMine, err)
	} else {
		fmt.Printf("Delegated(%s): %v\n", notMine, err)
	}
	if _, err := Create(notMine); !errors.Is(err, unix.EACCES) {
		errorf("Create(%s) = %v, want EACCES", notMine, err)
	}
	if err := Join(mount+own, outside); !errors.Is(err, unix.EACCES) {
		errorf("Join(pid %d from the root cgroup) = %v, want EACCES", outside, err)
	} else {
		fmt.Printf("Join from outside: %v\n", err)
	}

	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		errorf("start: %v", err)
		return 1
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	checkLifecycle(errorf, mount, dir, cmd.Process.Pid)
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		errorf("after Kill the process ended with %v, want SIGKILL", err)
	}
	if failed {
		return 1
	}
	fmt.Println("delegated lifecycle ok")
	return 0
}
