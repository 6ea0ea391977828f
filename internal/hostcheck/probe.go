package hostcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kinds of child probe.
const (
	// ProbeUserns: a child in a new user and mount namespace, mapped to the
	// caller's uid and gid alone, makes its mounts private and mounts a
	// tmpfs: what an unprivileged zviz needs before pivot_root. Ubuntu's
	// kernel.apparmor_restrict_unprivileged_userns=1 lets the clone succeed
	// but the mount fail with EPERM (issue 6).
	ProbeUserns = "userns"
	// ProbeMountns: the same in a new mount namespace alone (root, or euid 0
	// inside rootless podman's user namespace, creates no user namespace).
	ProbeMountns = "mountns"
	// ProbeNotify: a child sets no_new_privs, installs an allow-all filter
	// with SECCOMP_FILTER_FLAG_NEW_LISTENER, and asks the listener for
	// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6), which the broker uses
	// to hand the notification to the waiting thread's CPU.
	ProbeNotify = "notify"
)

// ProbeResult is what a child probe saw.
type ProbeResult struct {
	OK    bool   `json:"ok"`
	Step  string `json:"step,omitempty"`  // the step that failed: clone, make-private, mount, ...
	Errno string `json:"errno,omitempty"` // its errno name (EPERM)
	Error string `json:"error,omitempty"`
}

func (p ProbeResult) describe() string {
	if p.OK {
		return "ok"
	}
	s := p.Step
	if p.Errno != "" {
		s += ": " + p.Errno
	}
	if p.Error != "" {
		s += " (" + p.Error + ")"
	}
	return s
}

func failed(step string, err error) ProbeResult {
	r := ProbeResult{Step: step, Error: err.Error()}
	var e syscall.Errno
	if errors.As(err, &e) {
		r.Errno = unix.ErrnoName(e)
		r.Error = e.Error()
	}
	return r
}

// NewProber returns Host.Probe for the real host: it runs
// `EXE check --probe-KIND` in a child started with the clone flags the
// probe is about. uid and gid are the caller's effective ids, mapped to 0
// in the probe's user namespace.
func NewProber(exe string, uid, gid int) func(kind string) ProbeResult {
	return func(kind string) ProbeResult {
		return runProbe(exe, []string{"check", "--probe-" + kind}, nil, kind, uid, gid)
	}
}

// runProbe starts path with args (and env, nil for ours) as the child for
// kind and decodes its answer.
func runProbe(path string, args, env []string, kind string, uid, gid int) ProbeResult {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	switch kind {
	case ProbeUserns:
		attr.Cloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	case ProbeMountns:
		attr.Cloneflags = unix.CLONE_NEWNS
	case ProbeNotify:
	default:
		return ProbeResult{Step: "start", Error: fmt.Sprintf("unknown probe %q", kind)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, path, args...)
	c.Env, c.SysProcAttr, c.Stderr = env, attr, io.Discard
	out, err := c.Output()
	var res ProbeResult
	if jerr := json.Unmarshal(out, &res); jerr == nil && (res.OK || res.Step != "") {
		return res
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return ProbeResult{Step: "answer", Error: fmt.Sprintf("unreadable probe output %q", out)}
	case errors.As(err, &exit):
		return ProbeResult{Step: "child", Error: exit.String()}
	}
	// The fork/exec itself failed: clone(2) refused the flags (EPERM when
	// unprivileged user namespaces are off, ENOSPC at max_user_namespaces),
	// or the uid_map write failed.
	return failed("clone", err)
}

// RunProbe is the child's side: it performs the probe of the given kind in
// the namespaces it was started in and writes one JSON ProbeResult to w.
// It returns the exit status (0 even when the probe's operation failed:
// that is an answer, not an error).
func RunProbe(kind string, w io.Writer) int {
	var res ProbeResult
	switch kind {
	case ProbeUserns, ProbeMountns:
		res = probeMount()
	case ProbeNotify:
		res = probeNotify()
	default:
		fmt.Fprintf(os.Stderr, "unknown probe %q\n", kind)
		return 2
	}
	b, _ := json.Marshal(res)
	fmt.Fprintf(w, "%s\n", b)
	return 0
}

// probeMount: the mount namespace is new, so making it private and
// mounting over a directory change nothing outside this child, which exits
// right after (mount_namespaces(7)).
func probeMount() ProbeResult {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return failed("make-private", fmt.Errorf("mount --make-rprivate /: %w", err))
	}
	target := "/tmp"
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		target = "/"
	}
	if err := unix.Mount("zviz-probe", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k"); err != nil {
		return failed("mount", fmt.Errorf("mount tmpfs on %s: %w", target, err))
	}
	return ProbeResult{OK: true}
}

func probeNotify() ProbeResult {
	// The filter attaches to this thread only; it allows everything and
	// this process exits right away.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return failed("no_new_privs", err)
	}
	insn := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	prog := unix.SockFprog{Len: 1, Filter: &insn[0]}
	fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return failed("new-listener", e)
	}
	_, _, e = unix.Syscall(unix.SYS_IOCTL, fd, unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	if e != 0 {
		return failed("set-flags", e)
	}
	return ProbeResult{OK: true}
}

// SeccompSupport is what the kernel's seccomp(2) offers. All of it is
// asked without installing anything.
type SeccompSupport struct {
	Filter           bool   `json:"filter"` // SECCOMP_SET_MODE_FILTER
	FilterErr        string `json:"filter_error,omitempty"`
	Mode             int    `json:"mode"`               // PR_GET_SECCOMP of this process: 2 = already filtered
	KillProcess      bool   `json:"kill_process"`       // SECCOMP_RET_KILL_PROCESS (4.14)
	UserNotif        bool   `json:"user_notif"`         // SECCOMP_RET_USER_NOTIF (5.0)
	TSyncESRCH       bool   `json:"tsync_esrch"`        // TSYNC with NEW_LISTENER (5.7)
	WaitKillableRecv bool   `json:"wait_killable_recv"` // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19)
	SyncWakeUp       bool   `json:"sync_wake_up"`       // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (6.6), child probe
	SyncWakeUpErr    string `json:"sync_wake_up_error,omitempty"`
}

// SeccompProbe asks the running kernel (Host.Seccomp for the real host).
func SeccompProbe() SeccompSupport {
	var s SeccompSupport
	mode, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	if err != nil {
		s.FilterErr = "prctl(PR_GET_SECCOMP): " + errName(err) + ": kernel built without CONFIG_SECCOMP"
		return s
	}
	s.Mode = mode
	// SET_MODE_FILTER with a NULL program fails with EFAULT when the
	// flags are known (the program is copied after the flags are checked)
	// and EINVAL when they are not: libseccomp's sys_chk_seccomp_flag.
	s.Filter = flagKnown(0)
	if !s.Filter {
		s.FilterErr = "seccomp(SECCOMP_SET_MODE_FILTER) unsupported: kernel built without CONFIG_SECCOMP_FILTER"
		return s
	}
	s.KillProcess = actionAvail(unix.SECCOMP_RET_KILL_PROCESS)
	s.UserNotif = actionAvail(unix.SECCOMP_RET_USER_NOTIF) && flagKnown(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	s.TSyncESRCH = flagKnown(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	s.WaitKillableRecv = flagKnown(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	return s
}

func flagKnown(flags uintptr) bool {
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, 0)
	return e == unix.EFAULT
}

// actionAvail is SECCOMP_GET_ACTION_AVAIL (Linux 4.14).
func actionAvail(action uint32) bool {
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	return e == 0
}

func errName(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return strings.TrimSpace(err.Error())
}
