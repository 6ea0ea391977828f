package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The filter is installed only in a re-executed copy of the test binary
// (this process must stay unfiltered): the child runs TestInstallChild with
// childEnv set, installs, probes, prints one JSON line and exits.
const childEnv = "ZVIZ_SECCOMP_TEST_CHILD"

type childReport struct {
	InstallNS int64             `json:"install_ns"`
	Errnos    map[string]string `json:"errnos"`
	Err       string            `json:"err,omitempty"`
}

// requires skips a test by the name of a missing host feature.
func requires(t *testing.T, feature string) {
	t.Helper()
	switch feature {
	case "seccomp-filter":
		status, _ := os.ReadFile("/proc/self/status")
		if !bytes.Contains(status, []byte("\nSeccomp:")) {
			t.Skip("requires seccomp-filter: /proc/self/status has no Seccomp line")
		}
	default:
		t.Fatalf("unknown feature %q", feature)
	}
}

func runChild(t *testing.T, mode, profile string) (*childReport, *exec.ExitError) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestInstallChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode+":"+profile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil, exit
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(string(out), "\n") {
		var r childReport
		if json.Unmarshal([]byte(line), &r) == nil && r.Errnos != nil {
			if r.Err != "" {
				t.Fatalf("child: %s", r.Err)
			}
			return &r, nil
		}
	}
	t.Fatalf("child printed no report:\n%s\n%s", out, stderr.String())
	return nil, nil
}

// TestInstall: under the default profile, in a real kernel.
func TestInstall(t *testing.T) {
	requires(t, "seccomp-filter")
	r, exit := runChild(t, "probe", "default")
	if exit != nil {
		t.Fatalf("child died: %v", exit)
	}
	want := map[string]string{
		"getpid":                         "ok",
		"socket(AF_INET)":                "ok",
		"ioctl(pipe, TCGETS)":            "ENOTTY", // reached the kernel
		"personality(QUERY)":             "ok",
		"exec /bin/sh pipeline":          "ok",
		"ptrace(PEEKDATA, bogus)":        "EPERM", // natively ESRCH
		"mount(NULL…)":                   "EPERM", // natively EFAULT
		"bpf(-1)":                        "EPERM", // natively EINVAL
		"io_uring_setup(0, NULL)":        "EPERM",
		"unshare(CLONE_NEWUSER)":         "EPERM",
		"clone(CLONE_NEWUSER)":           "EPERM",
		"clone(CLONE_NEWNET)":            "EPERM",
		"clone3(NULL, 0)":                "ENOSYS", // natively EINVAL
		"kcmp":                           "ENOSYS",
		"syslog(SIZE_BUFFER)":            "ENOSYS",
		"socket(AF_PACKET)":              "EAFNOSUPPORT",
		"socket(AF_NETLINK)":             "EAFNOSUPPORT",
		"socketpair(AF_UNIX)":            "ok",
		"socketpair(AF_NETLINK)":         "EAFNOSUPPORT", // natively EOPNOTSUPP, after netlink_create ran
		"ioctl(pipe, TIOCSTI)":           "EPERM",        // natively ENOTTY
		"personality(READ_IMPLIES_EXEC)": "ENOSYS",
	}
	for k, w := range want {
		if got := r.Errnos[k]; got != w {
			t.Errorf("%s: %s, want %s", k, got, w)
		}
	}
	t.Logf("install took %v", time.Duration(r.InstallNS))
	// The same probes without the filter: every refusal above must come
	// from the filter, not from the kernel answering the same way.
	native, exit := runChild(t, "native", "default")
	if exit != nil {
		t.Fatalf("native child died: %v", exit)
	}
	for k, w := range want {
		if got := native.Errnos[k]; w != "ok" && w != "ENOTTY" && got == w {
			t.Errorf("%s: %s without the filter too; the probe proves nothing", k, got)
		}
	}
}

// TestInstallX32Kills: a call with the x32 bit set kills the process.
func TestInstallX32Kills(t *testing.T) {
	requires(t, "seccomp-filter")
	if runtime.GOARCH != "amd64" {
		t.Skip("requires x86_64: x32 is an x86_64 ABI")
	}
	r, exit := runChild(t, "x32", "default")
	if exit == nil {
		t.Fatalf("x32 getpid returned: %+v", r)
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child exit %v, want killed by SIGSYS", exit)
	}
}

// TestInstallEveryProfile: each built-in runs a shell pipeline and keeps
// the dangerous classics out.
func TestInstallEveryProfile(t *testing.T) {
	requires(t, "seccomp-filter")
	for _, name := range Builtins() {
		r, exit := runChild(t, "probe", name)
		if exit != nil {
			t.Fatalf("%s: child died: %v", name, exit)
		}
		for k, w := range map[string]string{"getpid": "ok", "exec /bin/sh pipeline": "ok", "bpf(-1)": "EPERM", "clone3(NULL, 0)": "ENOSYS"} {
			if got := r.Errnos[k]; got != w {
				t.Errorf("%s: %s: %s, want %s", name, k, got, w)
			}
		}
	}
}

func TestInstallRefusesWithoutNoNewPrivs(t *testing.T) {
	requires(t, "seccomp-filter")
	r, exit := runChild(t, "no-nnp", "default")
	if exit != nil {
		t.Fatalf("child died: %v", exit)
	}
	if got := r.Errnos["install"]; !strings.Contains(got, "no_new_privs is not set") {
		t.Errorf("install without no_new_privs: %q", got)
	}
}

func TestInstallChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return // only meaningful in the re-executed child
	}
	mode, profile, _ := strings.Cut(spec, ":")
	r := childReport{Errnos: map[string]string{}}
	defer func() {
		b, _ := json.Marshal(r)
		fmt.Printf("\n%s\n", b)
		os.Exit(0)
	}()
	runtime.LockOSThread()
	p, err := Load(profile)
	if err != nil {
		r.Err = err.Error()
		return
	}
	native, _ := libseccomp.GetNativeArch()
	prog, err := Compile(p, native.String())
	if err != nil {
		r.Err = err.Error()
		return
	}
	if mode == "native" {
		probe(r.Errnos)
		return
	}
	if mode != "no-nnp" {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			r.Err = err.Error()
			return
		}
	}
	start := time.Now()
	_, err = Install(prog, unix.SECCOMP_FILTER_FLAG_TSYNC)
	r.InstallNS = int64(time.Since(start))
	switch {
	case mode == "no-nnp":
		r.Errnos["install"] = fmt.Sprint(err)
	case err != nil:
		r.Err = err.Error()
	case mode == "x32":
		unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}) // SIGSYS dumps core
		unix.RawSyscall(x32Bit|unix.SYS_GETPID, 0, 0, 0)
		r.Err = "x32 getpid returned"
	default:
		probe(r.Errnos)
	}
}

// probe makes the calls TestInstall judges, recording "ok" or the errno.
func probe(out map[string]string) {
	res := func(name string, _ uintptr, e unix.Errno) {
		out[name] = "ok"
		if e != 0 {
			out[name] = unix.ErrnoName(e)
		}
	}
	call := func(name string, nr uintptr, a ...uintptr) {
		a = append(a, 0, 0, 0, 0, 0, 0)
		r, _, e := unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		res(name, r, e)
	}
	// clone that would succeed must not run Go code in the child.
	cloneProbe := func(name string, flags uintptr) {
		r, _, e := unix.RawSyscall6(unix.SYS_CLONE, flags|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e == 0 && r == 0 {
			unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		if e == 0 {
			unix.Wait4(int(r), nil, 0, nil)
		}
		res(name, r, e)
	}
	var pipe [2]int
	unix.Pipe2(pipe[:], unix.O_CLOEXEC)
	var c byte = 'x'
	call("getpid", unix.SYS_GETPID)
	call("ioctl(pipe, TCGETS)", unix.SYS_IOCTL, uintptr(pipe[0]), unix.TCGETS, uintptr(unsafe.Pointer(new(unix.Termios))))
	call("ioctl(pipe, TIOCSTI)", unix.SYS_IOCTL, uintptr(pipe[0]), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
	call("personality(QUERY)", unix.SYS_PERSONALITY, 0xffffffff)
	call("personality(READ_IMPLIES_EXEC)", unix.SYS_PERSONALITY, 0x0400000)
	call("ptrace(PEEKDATA, bogus)", unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x7ffffff0, 0, 0)
	call("mount(NULL…)", unix.SYS_MOUNT, 0, 0, 0, 0, 0)
	call("bpf(-1)", unix.SYS_BPF, ^uintptr(0), 0, 0)
	call("io_uring_setup(0, NULL)", unix.SYS_IO_URING_SETUP, 0, 0)
	call("unshare(CLONE_NEWUSER)", unix.SYS_UNSHARE, unix.CLONE_NEWUSER)
	cloneProbe("clone(CLONE_NEWUSER)", unix.CLONE_NEWUSER)
	cloneProbe("clone(CLONE_NEWNET)", unix.CLONE_NEWNET)
	call("clone3(NULL, 0)", unix.SYS_CLONE3, 0, 0)
	call("kcmp", unix.SYS_KCMP, 0, 0, 0, 0, 0)
	call("syslog(SIZE_BUFFER)", unix.SYS_SYSLOG, 10, 0, 0)
	for name, af := range map[string]int{"socket(AF_INET)": unix.AF_INET, "socket(AF_PACKET)": unix.AF_PACKET, "socket(AF_NETLINK)": unix.AF_NETLINK} {
		fd, err := unix.Socket(af, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		out[name] = "ok"
		if err != nil {
			out[name] = unix.ErrnoName(err.(unix.Errno))
		} else {
			unix.Close(fd)
		}
	}
	for name, af := range map[string]int{"socketpair(AF_UNIX)": unix.AF_UNIX, "socketpair(AF_NETLINK)": unix.AF_NETLINK} {
		fds, err := unix.Socketpair(af, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		out[name] = "ok"
		if err != nil {
			out[name] = unix.ErrnoName(err.(unix.Errno))
		} else {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
	}
	sh := exec.Command("/bin/sh", "-c", `x=$(echo zviz | tr a-z A-Z | cat); test "$x" = ZVIZ`)
	out["exec /bin/sh pipeline"] = "ok"
	if err := sh.Run(); err != nil {
		out["exec /bin/sh pipeline"] = err.Error()
	}
}
