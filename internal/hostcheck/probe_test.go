package hostcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The test binary is its own probe child: with probeEnv set it runs
// RunProbe instead of the tests (what `zviz check --probe-KIND` does), after
// installing a filter that fails mount(2) with EPERM when denyMountEnv is
// set, which is what Ubuntu's restricted user namespaces do (issue 6).
// With parentEnv set it plays `zviz check` instead: it runs the probe of
// that kind (as whoever started it) and prints the result.
const (
	probeEnv     = "HOSTCHECK_TEST_PROBE"
	parentEnv    = "HOSTCHECK_TEST_PARENT"
	denyMountEnv = "HOSTCHECK_TEST_DENY_MOUNT"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(probeEnv); kind != "" {
		if os.Getenv(denyMountEnv) != "" {
			if err := denyMount(); err != nil {
				os.Stderr.WriteString("deny mount: " + err.Error() + "\n")
				os.Exit(3)
			}
		}
		os.Exit(RunProbe(kind, os.Stdout))
	}
	if kind := os.Getenv(parentEnv); kind != "" {
		r := testProbe(kind)
		b, _ := json.Marshal(r)
		fmt.Printf("%s\n", b)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// denyMount installs, on every thread, a filter returning EPERM for
// mount(2) (this arch's number; the test child runs natively).
func denyMount() error {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_MOUNT, SkipFalse: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
	})
	if err != nil {
		return err
	}
	f := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	return seccompTSync(&unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

// testProbe runs the probe of kind with this test binary as the child.
func testProbe(kind string, env ...string) ProbeResult {
	env = append(append(os.Environ(), env...), probeEnv+"="+kind)
	return runProbe(os.Args[0], []string{"-test.run=^$"}, env, kind, os.Geteuid(), os.Getegid())
}

func seccompTSync(prog *unix.SockFprog) error {
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(prog)))
	if e != 0 {
		return e
	}
	return nil
}

// requiresUserns skips when this host gives nobody user namespaces.
func requiresUserns(t *testing.T) {
	t.Helper()
	if v := readSysctl("/proc/sys", "user/max_user_namespaces"); v != nil && *v == 0 {
		t.Skip("requires userns: user.max_user_namespaces is 0")
	}
}

func TestProbeUserns(t *testing.T) {
	requiresUserns(t)
	if r := testProbe(ProbeUserns); !r.OK {
		t.Fatalf("userns probe as uid %d: %+v", os.Geteuid(), r)
	}
	// The restriction reproduced: clone works, mount gets EPERM.
	r := testProbe(ProbeUserns, denyMountEnv+"=1")
	if r.OK || r.Step != "make-private" || r.Errno != "EPERM" {
		t.Errorf("userns probe with mount denied: %+v, want make-private: EPERM", r)
	}
}

func TestProbeUsernsUnprivileged(t *testing.T) {
	requiresUserns(t)
	u, err := user.Lookup("zviztest")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("requires unprivileged-user: root and the user zviztest (hack/setup.sh)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The test binary lives in a directory only root can enter: copy it.
	exe := copyExecutable(t)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	if r := probeAs(t, exe, cred, ProbeUserns); !r.OK {
		t.Errorf("userns probe as %s: %+v", u.Username, r)
	}
	if r := probeAs(t, exe, cred, ProbeMountns); r.OK || r.Step != "clone" || r.Errno != "EPERM" {
		t.Errorf("mount namespace alone as %s: %+v, want clone: EPERM", u.Username, r)
	}
}

// probeAs runs exe as cred in the parent's role (parentEnv) and decodes
// the probe result it prints.
func probeAs(t *testing.T, exe string, cred *syscall.Credential, kind string) ProbeResult {
	t.Helper()
	c := exec.Command(exe, "-test.run=^$")
	c.Env = []string{parentEnv + "=" + kind, "PATH=/usr/bin:/bin"}
	c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := c.Output()
	var r ProbeResult
	if err != nil || json.Unmarshal(out, &r) != nil {
		t.Fatalf("%s as uid %d: %v: %q", exe, cred.Uid, err, out)
	}
	return r
}

func copyExecutable(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = parent(d) {
		os.Chmod(d, 0o755)
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := dir + "/hostcheck.test"
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func parent(d string) string {
	for i := len(d) - 1; i > 0; i-- {
		if d[i] == '/' {
			return d[:i]
		}
	}
	return "/"
}

func TestProbeNotify(t *testing.T) {
	s := SeccompProbe()
	if !s.UserNotif {
		t.Skip("requires seccomp user notification (Linux >= 5.0)")
	}
	r := testProbe(ProbeNotify)
	if kernelAtLeast(t, 6, 6) && !r.OK {
		t.Errorf("notify probe: %+v, want SYNC_WAKE_UP (Linux >= 6.6)", r)
	}
}

func TestSeccompProbe(t *testing.T) {
	s := SeccompProbe()
	if !s.Filter || !s.KillProcess {
		t.Fatalf("seccomp on this kernel: %+v", s)
	}
	if kernelAtLeast(t, 5, 19) && !(s.UserNotif && s.TSyncESRCH && s.WaitKillableRecv) {
		t.Errorf("kernel >= 5.19 without user notification flags: %+v", s)
	}
	if flagKnown(1 << 30) {
		t.Error("an undefined filter flag reported as known: the EFAULT/EINVAL probe is broken")
	}
	if actionAvail(0x7ff10000) {
		t.Error("an undefined action reported as available")
	}
}

func TestRunProbeUnknown(t *testing.T) {
	if r := runProbe("/bin/true", nil, nil, "bogus", 0, 0); r.OK || r.Step != "start" {
		t.Errorf("unknown kind: %+v", r)
	}
	if r := runProbe("/nonexistent/zviz", nil, nil, ProbeNotify, 0, 0); r.OK || r.Step != "clone" || r.Errno != "ENOENT" {
		t.Errorf("missing binary: %+v", r)
	}
	if r := runProbe("/bin/true", nil, nil, ProbeNotify, 0, 0); r.OK || r.Step != "answer" {
		t.Errorf("silent child: %+v", r)
	}
	if _, err := exec.LookPath("false"); err == nil {
		if r := runProbe("/bin/false", nil, nil, ProbeNotify, 0, 0); r.OK || r.Step != "child" {
			t.Errorf("failing child: %+v", r)
		}
	}
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var a, b int
	rel := unix.ByteSliceToString(uts.Release[:])
	n, _ := fmt.Sscanf(rel, "%d.%d", &a, &b)
	if n < 2 {
		t.Fatalf("kernel release %q", rel)
	}
	return a > major || a == major && b >= minor
}
