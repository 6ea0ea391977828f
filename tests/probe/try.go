package main

import (
	"errors"
	"os"
	"os/exec"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
)

// tries attempts one operation each and returns its error. Each is harmless
// when it succeeds (or undone at once), and each distinguishes "the syscall
// was refused" (EPERM/ENOSYS from seccomp or a missing capability) from "the
// kernel processed it" (OK, or an errno about the arguments).
var tries = map[string]func() error{
	"mount":          tryMount,
	"unshare-user":   func() error { return inChild(0, unix.CLONE_NEWUSER) },
	"unshare-net":    func() error { return inChild(0, unix.CLONE_NEWNET) },
	"clone-newuser":  func() error { return inChild(unix.CLONE_NEWUSER, 0) },
	"pivot_root":     tryPivotRoot,
	"sethostname":    trySethostname,
	"write-proc-sys": tryWriteProcSys,
	"io_uring_setup": tryIOUringSetup,
	"keyctl":         tryKeyctl,
}

func tryNames() []string {
	var names []string
	for n := range tries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func runTries(names []string) report.Tries {
	var out report.Tries
	for _, n := range names {
		r := report.Try{Name: n, Errno: "ERROR: unknown try"}
		if f, ok := tries[n]; ok {
			r.Errno = errnoName(f())
		}
		out.Results = append(out.Results, r)
	}
	return out
}

// tryMount mounts a tmpfs on a fresh directory (or on / when none can be
// made) and unmounts it at once.
func tryMount() error {
	target := "/"
	if dir, err := os.MkdirTemp("", "probe-mnt"); err == nil {
		defer os.Remove(dir)
		target = dir
	}
	if err := unix.Mount("probe", target, "tmpfs", 0, "size=4k"); err != nil {
		return err
	}
	return unix.Unmount(target, unix.MNT_DETACH)
}

// inChild starts `probe exit 0` with clone(2) flags or unshare(2) flags. A Go
// process is multithreaded, so unshare(CLONE_NEWUSER) must happen in the
// forked child (where the Go runtime calls it before execve).
func inChild(cloneflags, unshareflags uintptr) error {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	cmd := exec.Command(self, "exit", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags, Unshareflags: unshareflags}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return errors.New("child " + ee.String())
		}
		return err
	}
	return nil
}

// tryPivotRoot passes paths that do not exist: pivot_root(2) checks
// CAP_SYS_ADMIN first (EPERM), then looks them up (ENOENT), so nothing moves.
func tryPivotRoot() error {
	return unix.PivotRoot("/nonexistent-probe-new", "/nonexistent-probe-old")
}

// trySethostname sets the hostname to its current value.
func trySethostname() error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return err
	}
	return unix.Sethostname([]byte(unix.ByteSliceToString(uts.Nodename[:])))
}

// tryWriteProcSys opens a sysctl for writing without writing to it.
func tryWriteProcSys() error {
	fd, err := unix.Open("/proc/sys/kernel/hostname", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// tryIOUringSetup passes a NULL params pointer: EFAULT means the syscall
// reached io_uring (io_uring_setup(2)).
func tryIOUringSetup() error {
	_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// tryKeyctl looks up the session keyring without creating one (keyctl(2)).
func tryKeyctl() error {
	_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	return err
}
