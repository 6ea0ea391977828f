package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// RunAs returns a command that runs as user ("" or "root" for root, or a
// user name such as TestUser) with a clean environment: PATH, HOME, USER,
// LOGNAME, XDG_RUNTIME_DIR=/run/user/UID (not for root), then env (later
// entries win). A non-root user gets its uid, gid and supplementary groups;
// switching to another user needs root (Requires(t, "unprivileged-user")).
func RunAs(t testing.TB, userName string, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd, err := Command(userName, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// Command is RunAs for callers without a testing.TB (hack/bench).
func Command(userName string, env []string, name string, args ...string) (*exec.Cmd, error) {
	if userName == "" {
		userName = "root"
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return nil, fmt.Errorf("run as %s: %w (run hack/setup.sh as root)", userName, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command(name, args...)
	cmd.Env = append(userEnv(u, uid), env...)
	if uid == os.Geteuid() {
		return cmd, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("run as %s: running as uid %d, need root to switch users", userName, os.Geteuid())
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("run as %s: list groups: %w", userName, err)
	}
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd, nil
}

func userEnv(u *user.User, uid int) []string {
	env := []string{
		"PATH=" + defaultPath,
		"HOME=" + u.HomeDir,
		"USER=" + u.Username,
		"LOGNAME=" + u.Username,
	}
	if uid != 0 {
		env = append(env, "XDG_RUNTIME_DIR=/run/user/"+strconv.Itoa(uid))
	}
	return env
}

// LookupUser returns the uid of a user name.
func LookupUser(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("look up user %s: %w (run hack/setup.sh as root)", name, err)
	}
	return strconv.Atoi(u.Uid)
}

// NSInode is the inode of namespace name (as in /proc/PID/ns) of process
// pid, which identifies the namespace.
func NSInode(t testing.TB, pid int, name string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, name), &st); err != nil {
		t.Fatalf("stat namespace: %v", err)
	}
	return st.Ino
}
