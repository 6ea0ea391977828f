package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// TestLogDenialsMatchesPlain: for every profile, arch and syscall number
// (and a battery of argument values for the filtered ones), the notify
// variant allows exactly what the plain program allows, kills exactly
// what it kills, and sends everything else to the listener, whose table
// answers the plain program's errno.
func TestLogDenialsMatchesPlain(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var battery []uint64
	for v := uint64(0); v <= 64; v++ {
		battery = append(battery, v, v|hiBits)
	}
	for i := 0; i < 64; i++ {
		battery = append(battery, 1<<i, 1<<i|sigchld)
	}
	for _, k := range filterKinds {
		for _, v := range k.values {
			battery = append(battery, v, v|hiBits, v|sigchld, v+1, v-1)
		}
	}
	battery = append(battery, threadFlags, 0xffffffff, ^uint64(0), 0x80000000)
	for i := 0; i < 300; i++ {
		battery = append(battery, rng.Uint64(), uint64(rng.Uint32()))
	}
	for _, name := range Builtins() {
		for _, arch := range testArches {
			p, plainProg := compileT(t, name, arch)
			notifyProg, err := CompileWith(p, arch, CompileOptions{LogDenials: true})
			if err != nil {
				t.Fatal(err)
			}
			if !notifyProg.Notify || !notifyProg.LogDenials || notifyProg.Denials == nil {
				t.Fatalf("%s/%s: notify variant: Notify %v LogDenials %v table %v", name, arch, notifyProg.Notify, notifyProg.LogDenials, notifyProg.Denials != nil)
			}
			if plainProg.Denials != nil || plainProg.LogDenials {
				t.Fatalf("%s/%s: plain program carries a denial table", name, arch)
			}
			plain, notify, table := newVM(t, plainProg), newVM(t, notifyProg), notifyProg.Denials
			audit := auditArch(arch)
			check := func(nr uint32, args [6]uint64) {
				want, got := plain.raw(nr, audit, args[:]...), notify.raw(nr, audit, args[:]...)
				switch {
				case strings.HasPrefix(want, "ERRNO("):
					_, class, errno := table.Answer(int32(nr), args)
					answer := "ERRNO(" + unix.ErrnoName(errno) + ")"
					if got != "NOTIFY" || answer != want {
						t.Errorf("%s/%s nr %d (%s) args %#x: plain %s, notify %s answering %s (%s)", name, arch, nr, table.Name(int32(nr)), args[:2], want, got, answer, class)
					}
				case got != want:
					t.Errorf("%s/%s nr %d (%s) args %#x: plain %s, notify %s", name, arch, nr, table.Name(int32(nr)), args[:2], want, got)
				}
			}
			filtered := map[uint32]*filterKind{}
			for _, r := range p.Filter {
				filtered[nr(t, r.Syscall, arch)] = findFilterKind(r.Syscall)
			}
			for n := uint32(0); n < 1024; n++ {
				check(n, [6]uint64{})
				check(n, [6]uint64{rng.Uint64(), rng.Uint64(), rng.Uint64()})
				if k := filtered[n]; k != nil {
					for _, v := range battery {
						var args [6]uint64
						args[k.arg] = v
						check(n, args)
					}
				}
			}
			// Other ABIs are killed by both, never notified.
			for _, c := range []struct{ nr, audit uint32 }{{20, auditI386}, {x32Bit | 39, unix.AUDIT_ARCH_X86_64}, {x32Bit | 101, unix.AUDIT_ARCH_X86_64}} {
				if arch != "x86_64" {
					break
				}
				if w, g := plain.raw(c.nr, c.audit), notify.raw(c.nr, c.audit); w != killed || g != killed {
					t.Errorf("%s/%s other ABI nr %#x: plain %s, notify %s", name, arch, c.nr, w, g)
				}
			}
		}
	}
}

// TestLogDenialsSizes reports the notify variant's size beside the plain
// program's (the variant drops the deny rules and filter refusals, which
// become its default action).
func TestLogDenialsSizes(t *testing.T) {
	for _, name := range Builtins() {
		for _, arch := range testArches {
			p, plainProg := compileT(t, name, arch)
			n, err := CompileWith(p, arch, CompileOptions{LogDenials: true})
			if err != nil {
				t.Fatal(err)
			}
			if n.Instructions > plainProg.Instructions {
				t.Errorf("%s/%s: notify variant %d instructions > plain %d", name, arch, n.Instructions, plainProg.Instructions)
			}
			t.Logf("%-15s %-8s plain %3d insns, log-denials %3d insns, %d table entries", name, arch, plainProg.Instructions, n.Instructions, len(n.Denials.Syscalls))
		}
	}
}

func TestLogDenialsCache(t *testing.T) {
	dir := t.TempDir()
	p, _ := Load("default")
	opts := CompileOptions{LogDenials: true}
	plain, err := CompileCached(p, "x86_64", dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := CompileCachedWith(p, "x86_64", dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the in-memory cache as other tests expect it (empty of these).
	t.Cleanup(func() { memCache.Delete(plain.Key); memCache.Delete(first.Key) })
	if first.Key == plain.Key || bytes.Equal(first.BPF, plain.BPF) {
		t.Fatalf("variant shares the plain program's key or bytes")
	}
	if k, _ := cacheKey(p, "x86_64"); k != plain.Key {
		t.Fatalf("plain key changed: %s != %s", k, plain.Key)
	}
	memCache.Delete(first.Key)
	memCache.Delete(plain.Key)
	again, err := CompileCachedWith(p, "x86_64", dir, opts) // from disk
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.BPF, first.BPF) || !again.Notify || !again.LogDenials || again.Denials == nil {
		t.Fatalf("disk cache: %+v", again)
	}
	if _, err := os.Stat(filepath.Join(dir, first.Key+".bpf")); err != nil {
		t.Fatal(err)
	}
	if p2, _ := CompileCached(p, "x86_64", dir); p2.Notify || p2.Denials != nil || !bytes.Equal(p2.BPF, plain.BPF) {
		t.Fatalf("plain program from the cache after the variant: notify %v", p2.Notify)
	}
	// The table survives JSON (a helper process may be handed it).
	b, err := json.Marshal(again.Denials)
	if err != nil {
		t.Fatal(err)
	}
	var back DenialTable
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	args := [6]uint64{unix.AF_PACKET, unix.SOCK_RAW}
	if _, _, e := back.Answer(int32(unix.SYS_SOCKET), args); e != unix.EAFNOSUPPORT {
		t.Fatalf("socket(AF_PACKET) after JSON: %v", e)
	}
}

func TestDenialLine(t *testing.T) {
	n := &Notification{Pid: 4242, Args: [6]uint64{0x10, 1, 0, 0xffffffffffffffff}}
	got := string(appendDenial(nil, "ptrace", n, unix.EPERM, "default"))
	want := "zviz: denied: ptrace(0x10, 0x1, 0x0, 0xffffffffffffffff, 0x0, 0x0) = EPERM pid 4242 [profile default]\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// The kernel tests: the filter is installed only in a re-executed child
// (TestNotifyChild with notifyChildEnv set). The parent hands the child one
// end of a socketpair as fd 3; the child sets no_new_privs, installs the
// LogDenials program with NEW_LISTENER, sends the listener fd back over
// SCM_RIGHTS, makes its calls and prints one JSON report.
const notifyChildEnv = "ZVIZ_SECCOMP_NOTIFY_CHILD"

type notifyReport struct {
	Pid     int                `json:"pid"`
	Errnos  map[string]string  `json:"errnos"`
	Median  map[string]float64 `json:"median_us,omitempty"`
	Blocked float64            `json:"blocked_ms,omitempty"`
	Err     string             `json:"err,omitempty"`
}

type notifyChild struct {
	cmd    *exec.Cmd
	sock   int // the parent's end
	out    bytes.Buffer
	stderr bytes.Buffer
}

// startNotifyChild runs mode ("probe", "bench", "bench-plain", "gone")
// under profile and, unless mode is bench-plain, returns the listener fd
// the child sent.
func startNotifyChild(t *testing.T, mode, profile string) (*notifyChild, int) {
	t.Helper()
	requires(t, "seccomp-filter")
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &notifyChild{sock: fds[0]}
	theirs := os.NewFile(uintptr(fds[1]), "notify-child-sock")
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestNotifyChild$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), notifyChildEnv+"="+mode+":"+profile)
	c.cmd.ExtraFiles = []*os.File{theirs} // fd 3
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() {
		unix.Close(c.sock)
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	if mode == "bench-plain" {
		return c, -1
	}
	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(c.sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatalf("receive listener: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		c.cmd.Wait()
		t.Fatalf("child sent no listener fd (%v):\n%s\n%s", err, c.out.String(), c.stderr.String())
	}
	got, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(got) != 1 {
		t.Fatalf("child sent no listener fd: %v", err)
	}
	return c, got[0]
}

// wait reaps the child and returns its report.
func (c *notifyChild) wait(t *testing.T) *notifyReport {
	t.Helper()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.stderr.String())
	}
	for _, line := range strings.Split(c.out.String(), "\n") {
		var r notifyReport
		if json.Unmarshal([]byte(line), &r) == nil && r.Errnos != nil {
			if r.Err != "" {
				t.Fatalf("child: %s", r.Err)
			}
			return &r
		}
	}
	t.Fatalf("child printed no report:\n%s\n%s", c.out.String(), c.stderr.String())
	return nil
}

// listen runs Listen in a goroutine; the returned function waits for it to
// return and gives its error and log.
func listen(t *testing.T, fd int, table *DenialTable, opts ListenOptions) func(timeout time.Duration) (string, error) {
	var log bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Listen(fd, table, &log, opts) }()
	return func(timeout time.Duration) (string, error) {
		select {
		case err := <-done:
			return log.String(), err
		case <-time.After(timeout):
			t.Fatalf("Listen did not return %v after the child was reaped", timeout)
			return "", nil
		}
	}
}

func notifyTable(t *testing.T, profile string) *DenialTable {
	p, err := Load(profile)
	if err != nil {
		t.Fatal(err)
	}
	native, _ := libseccomp.GetNativeArch()
	prog, err := CompileCachedWith(p, native.String(), "", CompileOptions{LogDenials: true})
	if err != nil {
		t.Fatal(err)
	}
	return prog.Denials
}

var denialLine = regexp.MustCompile(`^zviz: denied: ([a-z0-9_]+)\(((?:0x[0-9a-f]+, ){5}0x[0-9a-f]+)\) = ([A-Z0-9]+) pid ([0-9]+) \[profile ([a-z-]+)\]$`)

// TestLogDenials: the child sees exactly the errnos the plain filter gives
// (the same probe as TestInstall, plus a few), each denial is logged with
// its name, arguments and errno, allowed calls are not, and Listen returns
// once the child is reaped.
func TestLogDenials(t *testing.T) {
	plain, exit := runChild(t, "probe", "default")
	if exit != nil {
		t.Fatalf("plain child died: %v", exit)
	}
	c, fd := startNotifyChild(t, "probe", "default")
	defer unix.Close(fd)
	result := listen(t, fd, notifyTable(t, "default"), ListenOptions{})
	r := c.wait(t)
	log, err := result(5 * time.Second)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	for k, w := range plain.Errnos {
		if got := r.Errnos[k]; got != w {
			t.Errorf("%s: %s under log-denials, %s under the plain filter", k, got, w)
		}
	}
	for k, w := range map[string]string{"ptrace(PEEKDATA, bogus)": "EPERM", "kcmp": "ENOSYS", "socket(AF_PACKET)": "EAFNOSUPPORT", "getpid": "ok", "socket(AF_INET)": "ok"} {
		if got := r.Errnos[k]; got != w {
			t.Errorf("%s: %s, want %s", k, got, w)
		}
	}
	type entry struct{ name, args, errno string }
	var mine []entry
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		m := denialLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("malformed log line %q", l)
			continue
		}
		if m[5] != "default" {
			t.Errorf("profile %q in %q", m[5], l)
		}
		if m[4] == strconv.Itoa(r.Pid) {
			mine = append(mine, entry{m[1], m[2], m[3]})
		}
	}
	zeros := "0x0, 0x0, 0x0, 0x0, 0x0, 0x0"
	want := []struct {
		name, args, errno string // args: a regexp over the six
	}{
		{"ptrace", "0x2, 0x7ffffff0, 0x0, 0x0, 0x0, 0x0", "EPERM"},
		{"mount", zeros, "EPERM"},
		{"bpf", "0xffffffffffffffff, 0x0, 0x0, 0x0, 0x0, 0x0", "EPERM"},
		{"unshare", fmt.Sprintf("%#x, 0x0, 0x0, 0x0, 0x0, 0x0", unix.CLONE_NEWUSER), "EPERM"},
		{"clone3", zeros, "ENOSYS"},
		{"kcmp", zeros, "ENOSYS"},
		{"socket", fmt.Sprintf("%#x, %#x, 0x0, 0x0, 0x0, 0x0", unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC), "EAFNOSUPPORT"},
		{"socketpair", fmt.Sprintf("%#x, .*", unix.AF_NETLINK), "EAFNOSUPPORT"},
		{"ioctl", fmt.Sprintf("0x[0-9a-f]+, %#x, .*", unix.TIOCSTI), "EPERM"},
		{"clone", fmt.Sprintf("%#x, .*", uint64(unix.CLONE_NEWUSER)|sigchld), "EPERM"},
		{"personality", "0x400000, .*", "ENOSYS"},
	}
	for _, w := range want {
		re := regexp.MustCompile("^" + w.args + "$")
		if !slices.ContainsFunc(mine, func(e entry) bool { return e.name == w.name && re.MatchString(e.args) && e.errno == w.errno }) {
			t.Errorf("no log line for %s(%s) = %s", w.name, w.args, w.errno)
		}
	}
	// Allowed calls are never logged: the probe made each of these.
	allowed := regexp.MustCompile(fmt.Sprintf(`^(getpid|sendmsg|write|execve)$|^socket(pair)?\((%#x|%#x),`, unix.AF_INET, unix.AF_UNIX))
	for _, e := range mine {
		if allowed.MatchString(e.name) || allowed.MatchString(e.name+"("+e.args) {
			t.Errorf("allowed call logged: %s(%s) = %s", e.name, e.args, e.errno)
		}
	}
	// Every call the child saw refused appears in the log with the same errno.
	names := map[string]string{}
	for _, e := range mine {
		names[e.name] = e.errno
	}
	t.Logf("%d denial lines from the probe's pid %d, %d in all; syscalls: %v", len(mine), r.Pid, strings.Count(log, "\n"), sortedKeys(names))
}

// TestListenerGone: with no listener the kernel answers ENOSYS, both to
// the call waiting when the listener is closed and to every later one:
// a denied call's EPERM becomes ENOSYS. (The integrator must therefore
// keep the listener alive exactly as long as the container.)
func TestListenerGone(t *testing.T) {
	c, fd := startNotifyChild(t, "gone", "default")
	// The child's first ptrace is waiting once the listener polls readable.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); n != 1 || err != nil {
		t.Fatalf("no pending notification: %d %v", n, err)
	}
	time.Sleep(50 * time.Millisecond)
	unix.Close(fd)
	if _, err := unix.Write(c.sock, []byte{1}); err != nil {
		t.Fatal(err)
	}
	r := c.wait(t)
	want := map[string]string{
		"pending ptrace":    "ENOSYS",
		"ptrace":            "ENOSYS",
		"socket(AF_PACKET)": "ENOSYS",
		"kcmp":              "ENOSYS",
		"getpid":            "ok",
		"socket(AF_INET)":   "ok",
	}
	for k, w := range want {
		if got := r.Errnos[k]; got != w {
			t.Errorf("%s with the listener gone: %s, want %s", k, got, w)
		}
	}
	if r.Blocked < 40 {
		t.Errorf("the pending ptrace returned after %.1f ms: it did not wait for the listener", r.Blocked)
	}
}

// TestListenerEndsAtReap: Listen returns once the container is reaped at
// the latest. (Whether a zombie still counts as a user of the filter
// depends on the kernel: 5.9+ dropped the count in release_task, at the
// reap; this test logs what this kernel does.)
func TestListenerEndsAtReap(t *testing.T) {
	c, fd := startNotifyChild(t, "exit", "default")
	defer unix.Close(fd)
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, c.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	unix.Poll(pfd, 0)
	t.Logf("child exited, not reaped: listener revents %#x (POLLHUP=%#x)", pfd[0].Revents, unix.POLLHUP)
	result := listen(t, fd, notifyTable(t, "default"), ListenOptions{})
	c.cmd.Wait()
	if _, err := result(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyRoundTrip measures a denied call's round trip through the
// listener (median over 1000 ptrace calls, as the child times them) with
// and without SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, beside the same call
// answered by the plain filter in BPF.
func TestNotifyRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	table := notifyTable(t, "default")
	c, _ := startNotifyChild(t, "bench-plain", "default")
	base := c.wait(t)
	res := map[string]*notifyReport{}
	for _, mode := range []string{"sync", "nosync"} {
		c, fd := startNotifyChild(t, "bench", "default")
		result := listen(t, fd, table, ListenOptions{NoSyncWakeUp: mode == "nosync"})
		res[mode] = c.wait(t)
		log, err := result(5 * time.Second)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(log, "ptrace("); n < 1000 {
			t.Errorf("%s: %d ptrace lines, want 1000", mode, n)
		} else {
			t.Logf("%s: %d ptrace lines for 1000 calls", mode, n)
		}
	}
	t.Logf("ptrace denied, median of 1000: plain filter %.2f µs; log-denials %.2f µs with SYNC_WAKE_UP, %.2f µs without (GOMAXPROCS %d, %d CPUs)",
		base.Median["ptrace"], res["sync"].Median["ptrace"], res["nosync"].Median["ptrace"], runtime.GOMAXPROCS(0), runtime.NumCPU())
	t.Logf("getpid allowed, median of 1000: plain %.2f µs, log-denials %.2f µs", base.Median["getpid"], res["sync"].Median["getpid"])
}

func TestNotifyChild(t *testing.T) {
	spec := os.Getenv(notifyChildEnv)
	if spec == "" {
		return // only meaningful in the re-executed child
	}
	mode, profile, _ := strings.Cut(spec, ":")
	r := notifyReport{Pid: os.Getpid(), Errnos: map[string]string{}, Median: map[string]float64{}}
	defer func() {
		b, _ := json.Marshal(r)
		fmt.Printf("\n%s\n", b)
		os.Exit(0)
	}()
	const sock = 3
	runtime.LockOSThread()
	// The kernel names the calling thread: the probe's calls run on this
	// one, which is not always the main thread (tid = pid).
	r.Pid = unix.Gettid()
	p, err := Load(profile)
	if err != nil {
		r.Err = err.Error()
		return
	}
	native, _ := libseccomp.GetNativeArch()
	prog, err := CompileWith(p, native.String(), CompileOptions{LogDenials: mode != "bench-plain"})
	if err != nil {
		r.Err = err.Error()
		return
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		r.Err = err.Error()
		return
	}
	flags := uint(unix.SECCOMP_FILTER_FLAG_TSYNC)
	if prog.Notify {
		flags |= ListenerFlags() | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	listener, err := Install(prog, flags)
	if err != nil {
		r.Err = err.Error()
		return
	}
	if prog.Notify {
		// Allowed calls only until the listener is out: sendmsg, close.
		if err := unix.Sendmsg(sock, []byte{0}, unix.UnixRights(listener), nil, 0); err != nil {
			r.Err = "send listener: " + err.Error()
			return
		}
		unix.Close(listener)
	}
	errno := func(_ uintptr, e unix.Errno) string {
		if e == 0 {
			return "ok"
		}
		return unix.ErrnoName(e)
	}
	raw := func(nr uintptr, a ...uintptr) string {
		a = append(a, 0, 0, 0, 0, 0, 0)
		r, _, e := unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		return errno(r, e)
	}
	sockProbe := func(af int) string {
		fd, err := unix.Socket(af, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return unix.ErrnoName(err.(unix.Errno))
		}
		unix.Close(fd)
		return "ok"
	}
	median := func(name string, f func()) {
		d := make([]time.Duration, 1000)
		for i := range d {
			start := time.Now()
			f()
			d[i] = time.Since(start)
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		r.Median[name] = float64(d[len(d)/2].Nanoseconds()) / 1000
	}
	switch mode {
	case "probe":
		probe(r.Errnos)
	case "bench", "bench-plain":
		median("ptrace", func() { unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x7ffffff0, 0, 0, 0, 0) })
		median("getpid", func() { unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0) })
	case "gone":
		// Waits in the kernel until the parent closes the listener.
		start := time.Now()
		r.Errnos["pending ptrace"] = raw(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x7ffffff0)
		r.Blocked = float64(time.Since(start).Microseconds()) / 1000
		var b [1]byte
		unix.Read(sock, b[:])
		r.Errnos["ptrace"] = raw(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x7ffffff0)
		r.Errnos["kcmp"] = raw(unix.SYS_KCMP)
		r.Errnos["getpid"] = raw(unix.SYS_GETPID)
		r.Errnos["socket(AF_PACKET)"] = sockProbe(unix.AF_PACKET)
		r.Errnos["socket(AF_INET)"] = sockProbe(unix.AF_INET)
	case "exit":
	}
}

func TestListenerFlags(t *testing.T) {
	f := ListenerFlags()
	if f&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		t.Fatalf("ListenerFlags %#x lacks NEW_LISTENER", f)
	}
	var u unix.Utsname
	unix.Uname(&u)
	t.Logf("kernel %s: ListenerFlags %#x (WAIT_KILLABLE_RECV %v)", unix.ByteSliceToString(u.Release[:]), f, f&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0)
}
