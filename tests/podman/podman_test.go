package podman

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// TestPodmanRunEcho: `podman --runtime ZVIZ run --rm IMG echo hi`.
func TestPodmanRunEcho(t *testing.T) {
	e := podmanEnv(t)
	res := e.zok(t, "run", "--rm", image, "echo", "hi")
	if res.stdout != "hi\n" {
		t.Errorf("stdout %q, want hi", res.stdout)
	}
}

// TestPodmanExitCodes: the process's status is podman's, and zviz's error
// text makes podman answer 127 for a missing command and 126 for one that
// cannot be executed.
func TestPodmanExitCodes(t *testing.T) {
	e := podmanEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		text string
	}{
		{[]string{"sh", "-c", "exit 7"}, 7, ""},
		{[]string{"/probe", "exit", "42"}, 42, ""},
		{[]string{"no-such-command"}, 127, "executable file not found in $PATH"},
		{[]string{"/no/such/file"}, 127, "no such file or directory"},
		{[]string{"/etc/passwd"}, 126, "permission denied"},
	} {
		res := e.zrun(t, append([]string{"run", "--rm", image}, tc.args...)...)
		if res.code != tc.code || !strings.Contains(res.stderr, tc.text) {
			t.Errorf("run %v: %v\nwant exit %d and %q", tc.args, res, tc.code, tc.text)
		}
	}
}

// TestPodmanDetachLogsStopRm: run -d, logs, stop (SIGTERM reaches the
// process, which exits 0), rm.
func TestPodmanDetachLogsStopRm(t *testing.T) {
	e := podmanEnv(t)
	n := e.name(t)
	e.zok(t, "run", "-d", "--name", n, image, "sh", "-c", `trap "echo bye; exit 0" TERM; echo started; while :; do sleep 0.1; done`)
	e.waitLogs(t, n, "started")
	if st := e.zok(t, "inspect", "--format", "{{.State.Status}}", n).stdout; strings.TrimSpace(st) != "running" {
		t.Errorf("status %q, want running", st)
	}
	e.zok(t, "stop", "-t", "10", n)
	e.waitLogs(t, n, "bye")
	if code := e.zok(t, "inspect", "--format", "{{.State.ExitCode}}", n).stdout; strings.TrimSpace(code) != "0" {
		t.Errorf("exit code after stop %q, want 0 (the TERM trap ran)", code)
	}
	e.zok(t, "rm", n)
	if out := e.zok(t, "ps", "-a", "--format", "{{.Names}}").stdout; strings.Contains(out, n) {
		t.Errorf("container %s still listed after rm: %q", n, out)
	}
}

// waitLogs waits (up to 20 s) until the container's logs contain s.
func (e *env) waitLogs(t *testing.T, name, s string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := e.zrun(t, "logs", name)
		if strings.Contains(res.stdout, s) {
			return res.stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s: no %q: %v", name, s, res)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// initPid is the host pid of the container's init.
func (e *env) initPid(t *testing.T, name string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(e.zok(t, "inspect", "--format", "{{.State.Pid}}", name).stdout))
	if err != nil || pid <= 0 {
		t.Fatalf("pid of %s: %v", name, err)
	}
	return pid
}

// TestPodmanExec: `podman exec` (conmon's `zviz exec --process --detach`)
// runs in the container's namespaces, podman's user namespace included,
// with no capabilities and the seccomp filters; exit codes come back;
// `exec -t` gets a terminal.
func TestPodmanExec(t *testing.T) {
	e := podmanEnv(t)
	n := e.name(t)
	e.zok(t, "run", "-d", "--name", n, image, "sleep", "300")
	pid := e.initPid(t, n)
	in := e.probeInfo(t, "exec", n, "/probe", "info")
	for _, ns := range []string{"user", "mnt", "pid", "net", "ipc", "uts"} {
		if want := testutil.NSInode(t, pid, ns); in.NS[ns] != want {
			t.Errorf("%s namespace: exec'd %d, init %d", ns, in.NS[ns], want)
		}
	}
	checkConfined(t, in)
	if res := e.zrun(t, "exec", n, "sh", "-c", "exit 5"); res.code != 5 {
		t.Errorf("exec exit 5: %v", res)
	}
	if res := e.zrun(t, "exec", n, "no-such-command"); res.code != 127 {
		t.Errorf("exec of a missing command: %v, want 127", res)
	}
	res := e.zok(t, "exec", "-t", n, "sh", "-c", "tty; echo t''ty-ok")
	if !strings.Contains(res.stdout, "/dev/pts/") || !strings.Contains(res.stdout, "tty-ok") {
		t.Errorf("exec -t: %v, want a /dev/pts terminal", res)
	}
}

const noCaps = "0000000000000000"

// TestPodmanRunInteractive: `podman run -it` driven through a real pty:
// the shell's prompt, typed commands, their output, exit status.
func TestPodmanRunInteractive(t *testing.T) {
	e := podmanEnv(t)
	master, slave := openPTY(t)
	c := e.cmd(t, "--runtime", e.zviz, "run", "-it", "--rm", "-e", "PS1=zviz-prompt$ ", image, "sh")
	c.Dir = e.dir
	out, waitc := testutil.StartOnPTY(t, c, master, slave)
	out.Timeout = 30 * time.Second // podman's start-up on a loaded machine
	off := out.WaitFor(t, "zviz-prompt$ ", 0)
	if _, err := master.WriteString("echo sum=$((40+2)) t''ty=$(tty)\n"); err != nil {
		t.Fatal(err)
	}
	off = out.WaitFor(t, "sum=42 tty=/dev/pts/", off)
	out.WaitFor(t, "zviz-prompt$ ", off)
	if _, err := master.WriteString("exit 3\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waitc:
		if code := c.ProcessState.ExitCode(); code != 3 {
			t.Errorf("run -it: exit %d, want 3; terminal: %q", code, out.String())
		}
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		<-waitc
		t.Fatalf("run -it did not exit; terminal: %q", out.String())
	}
}

// TestPodmanKillSignal: `podman kill -s USR1` reaches the process.
func TestPodmanKillSignal(t *testing.T) {
	e := podmanEnv(t)
	n := e.name(t)
	e.zok(t, "run", "-d", "--name", n, image, "/probe", "wait-signal", "USR1")
	e.waitLogs(t, n, "ready")
	e.zok(t, "kill", "-s", "USR1", n)
	e.waitLogs(t, n, "SIGUSR1")
	e.zok(t, "wait", n)
	if code := e.zok(t, "inspect", "--format", "{{.State.ExitCode}}", n).stdout; strings.TrimSpace(code) != "0" {
		t.Errorf("exit code %q, want 0 (the probe caught USR1)", code)
	}
}

// TestPodmanRestart: restart makes a new init that runs the process again.
func TestPodmanRestart(t *testing.T) {
	e := podmanEnv(t)
	n := e.name(t)
	e.zok(t, "run", "-d", "--name", n, image, "sh", "-c", "echo run-$$; exec sleep 300")
	e.waitLogs(t, n, "run-1")
	before := e.initPid(t, n)
	e.zok(t, "restart", "-t", "0", n)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(e.zok(t, "logs", n).stdout, "run-1") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second run after restart: %q", e.zok(t, "logs", n).stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := e.initPid(t, n); after == before {
		t.Errorf("init pid %d unchanged by restart", after)
	}
}

// TestPodmanNetwork: --network=none leaves only lo; the default rootless
// network (slirp4netns) gives a tap device that reaches a server on the
// host's loopback through slirp4netns' gateway.
func TestPodmanNetwork(t *testing.T) {
	e := podmanEnv(t)
	res := e.zok(t, "run", "--rm", "--runtime", e.zviz, "--network=none", image, "cat", "/proc/net/dev")
	if ifs := interfaces(res.stdout); strings.Join(ifs, ",") != "lo" {
		t.Errorf("--network=none: interfaces %v, want lo only", ifs)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "zviz-host-reply") }))
	port := l.Addr().(*net.TCPAddr).Port
	res = e.zok(t, "run", "--rm", "--network", "slirp4netns:allow_host_loopback=true", image, "sh", "-c",
		fmt.Sprintf("cat /proc/net/dev; wget -qO- http://10.0.2.2:%d/", port))
	if ifs := interfaces(res.stdout); !contains(ifs, "tap0") {
		t.Errorf("default network: interfaces %v, want tap0 (slirp4netns)", ifs)
	}
	if !strings.Contains(res.stdout, "zviz-host-reply") {
		t.Errorf("no reply from the host through slirp4netns: %v", res)
	}
}

// interfaces lists the interface names in /proc/net/dev.
func interfaces(dev string) []string {
	var out []string
	for _, l := range strings.Split(dev, "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok && !strings.Contains(name, "|") {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestPodmanProfileAnnotation: --annotation run.zviz.profile=development
// changes the policy (ptrace is allowed there, refused by default).
func TestPodmanProfileAnnotation(t *testing.T) {
	e := podmanEnv(t)
	try := func(extra ...string) string {
		args := append(append([]string{"run", "--rm"}, extra...), image, "/probe", "try", "ptrace")
		var rep report.TryReport
		testutil.DecodeJSON(t, []byte(e.zok(t, args...).stdout), &rep)
		return rep.Errno("ptrace")
	}
	if got := try(); got != "EPERM" {
		t.Errorf("ptrace under the default profile: %s, want EPERM", got)
	}
	if got := try("--annotation", "run.zviz.profile=development"); got != "OK" {
		t.Errorf("ptrace under run.zviz.profile=development: %s, want OK", got)
	}
}

// TestPodmanKeepID: --userns=keep-id (a user namespace in config.json,
// inside podman's): the process runs as the caller's uid, mapped once.
func TestPodmanKeepID(t *testing.T) {
	e := podmanEnv(t)
	uid, err := testutil.LookupUser(testutil.TestUser)
	if err != nil {
		t.Fatal(err)
	}
	var in report.Info
	testutil.DecodeJSON(t, []byte(e.zok(t, "run", "--rm", "--userns=keep-id", image, "/probe", "info").stdout), &in)
	if in.UID != uid || in.EUID != uid {
		t.Errorf("uid %d euid %d, want %d (keep-id)", in.UID, in.EUID, uid)
	}
	if in.Caps["CapEff"] != noCaps {
		t.Errorf("keep-id: CapEff %s, want none", in.Caps["CapEff"])
	}
}

// escapeTries are the probe's attempts compared between podman and `zviz
// run`: every one is refused under zviz's default profile.
var escapeTries = []string{
	"unshare-user", "unshare-net", "clone-newuser", "clone3", "setns", "mount", "fsopen", "open_tree",
	"move_mount", "ptrace", "process_vm_readv", "bpf", "perf_event_open", "io_uring_setup", "keyctl",
	"add_key", "userfaultfd", "init_module", "kexec_load", "reboot", "open_by_handle_at", "tiocsti",
	"socket-packet", "socket-netlink", "socket-vsock", "personality-bad", "int80", "x32", "chroot", "mknod",
}

// TestPodmanEscape: the static escape probe inside a podman container is
// refused exactly as under `zviz run` of a bundle, errno for errno.
func TestPodmanEscape(t *testing.T) {
	e := podmanEnv(t)
	var inPodman, inZviz report.TryReport
	testutil.DecodeJSON(t, []byte(e.zok(t, append([]string{"run", "--rm", image, "/probe", "try"}, escapeTries...)...).stdout), &inPodman)
	uid, _ := testutil.LookupUser(testutil.TestUser)
	s := testutil.DefaultSpec(true, uint32(uid), uint32(uid))
	s.Process.Args = append([]string{"/probe", "try"}, escapeTries...)
	b := testutil.BusyboxBundle(t, testutil.BundleOptions{Spec: s, User: testutil.TestUser})
	root := filepath.Join(e.runtime, "zviz-run-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	c := testutil.RunAs(t, testutil.TestUser, e.vars, e.zviz, "--root", root, "run", "--bundle", b, "escape")
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("zviz run: %v: %s", err, stderr.String())
	}
	testutil.DecodeJSON(t, out, &inZviz)
	for _, name := range escapeTries {
		p, z := inPodman.Errno(name), inZviz.Errno(name)
		if p != z || p == "OK" || p == "" {
			t.Errorf("try %s: podman %q, zviz run %q: want the same refusal", name, p, z)
		}
	}
}

// TestPodmanContainersConf: with containers.conf naming zviz the default
// runtime (README.md), podman uses it without --runtime, and reads its
// errors as JSON (runtime_supports_json).
func TestPodmanContainersConf(t *testing.T) {
	e := podmanEnv(t)
	if got := strings.TrimSpace(e.ok(t, "info", "--format", "{{.Host.OCIRuntime.Name}}").stdout); got != "zviz" {
		t.Errorf("podman's OCI runtime %q, want zviz", got)
	}
	n := e.name(t)
	e.ok(t, "run", "-d", "--name", n, image, "sleep", "300")
	id := strings.TrimSpace(e.ok(t, "inspect", "--format", "{{.Id}}", n).stdout)
	if _, err := os.Stat(filepath.Join(e.runtime, "zviz", id, "state.json")); err != nil {
		t.Errorf("zviz has no state for podman's container: %v", err)
	}
	res := e.run(t, "run", "--rm", image, "no-such-command")
	if res.code != 127 || !strings.Contains(res.stderr, "executable file not found in $PATH") {
		t.Errorf("missing command: %v, want 127 with zviz's message", res)
	}
	e.ok(t, "rm", "-f", "-t", "0", n)
}

// openPTY opens a pty pair of 30x100.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s := testutil.OpenPTY(t)
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 100}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestPodmanPause: podman pause and unpause (zviz pause/resume) freeze and
// thaw the container. Rootless podman refuses to pause on a cgroup v1 (or
// hybrid) host before it asks the runtime, hence the requirement.
func TestPodmanPause(t *testing.T) {
	testutil.Requires(t, "cgroup2-only")
	e := podmanEnv(t)
	n := e.name(t)
	e.zok(t, "run", "-d", "--name", n, image, "sh", "-c", "while :; do date +%s%N > /tmp/tick; sleep 0.05; done")
	pid := e.initPid(t, n)
	e.zok(t, "pause", n)
	if st := strings.TrimSpace(e.zok(t, "inspect", "--format", "{{.State.Status}}", n).stdout); st != "paused" {
		t.Errorf("status after pause %q, want paused", st)
	}
	// The kernel's word: the init's cgroup reports itself frozen.
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(strings.TrimSpace(string(cg)), "0::")
	events, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", path, "cgroup.events"))
	if err != nil || !strings.Contains(string(events), "frozen 1") {
		t.Errorf("cgroup %s of the paused init: %q (%v), want frozen 1", path, events, err)
	}
	e.zok(t, "unpause", n)
	if st := strings.TrimSpace(e.zok(t, "inspect", "--format", "{{.State.Status}}", n).stdout); st != "running" {
		t.Errorf("status after unpause %q, want running", st)
	}
	first := e.zok(t, "exec", n, "cat", "/tmp/tick").stdout
	time.Sleep(300 * time.Millisecond)
	if again := e.zok(t, "exec", n, "cat", "/tmp/tick").stdout; again == first {
		t.Errorf("the loop does not run after unpause (tick %q)", first)
	}
}

// TestPodmanJoinByPath: the namespaces podman hands over by path that a
// Go process cannot enter itself (create's nsenter stage): --pid
// container:NAME, and a pod with a user namespace of its own, whose
// members join the infra container's user namespace. The joined process
// keeps the whole policy (probe info).
func TestPodmanJoinByPath(t *testing.T) {
	e := podmanEnv(t)
	t.Run("pid-container", func(t *testing.T) {
		a := e.name(t)
		e.zok(t, "run", "-d", "--name", a, image, "sleep", "300")
		apid := e.initPid(t, a)
		in := e.probeInfo(t, "run", "--rm", "--pid", "container:"+a, image, "/probe", "info")
		if want := testutil.NSInode(t, apid, "pid"); in.NS["pid"] != want {
			t.Errorf("pid namespace %d, want %s's %d", in.NS["pid"], a, want)
		}
		if in.PID <= 1 {
			t.Errorf("pid %d, want > 1 (%s's sleep is 1)", in.PID, a)
		}
		checkConfined(t, in)
	})
	t.Run("userns-ns", func(t *testing.T) {
		// keep-id gives A a user namespace of its own (nested in
		// podman's): B names it with --userns ns:PATH.
		a := e.name(t)
		e.zok(t, "run", "-d", "--name", a, "--userns", "keep-id", image, "sleep", "300")
		apid := e.initPid(t, a)
		in := e.probeInfo(t, "run", "--rm", "--userns", fmt.Sprintf("ns:/proc/%d/ns/user", apid), image, "/probe", "info")
		if want := testutil.NSInode(t, apid, "user"); in.NS["user"] != want {
			t.Errorf("user namespace %d, want %s's %d", in.NS["user"], a, want)
		}
		checkConfined(t, in)
	})
	t.Run("pod-userns", func(t *testing.T) {
		pod := e.name(t)
		e.zok(t, "pod", "create", "--name", pod, "--userns", "keep-id")
		t.Cleanup(func() { e.run(t, "pod", "rm", "-f", pod) })
		b := e.name(t)
		e.zok(t, "run", "-d", "--pod", pod, "--name", b, image, "sleep", "300")
		bpid := e.initPid(t, b)
		in := e.probeInfo(t, "run", "--rm", "--pod", pod, image, "/probe", "info")
		for _, n := range []string{"user", "net", "ipc", "uts"} {
			if want := testutil.NSInode(t, bpid, n); in.NS[n] != want {
				t.Errorf("%s namespace %d, want the pod's %d", n, in.NS[n], want)
			}
		}
		if in.NS["pid"] == testutil.NSInode(t, bpid, "pid") {
			t.Errorf("pid namespace is %s's: want one of its own", b)
		}
		checkConfined(t, in)
		in = e.probeInfo(t, "exec", b, "/probe", "info")
		if want := testutil.NSInode(t, bpid, "user"); in.NS["user"] != want {
			t.Errorf("exec into %s: user namespace %d, want the pod's %d", b, in.NS["user"], want)
		}
		checkConfined(t, in)
	})
}

// probeInfo runs podman with args ending in `/probe info` and decodes it.
func (e *env) probeInfo(t *testing.T, args ...string) report.Info {
	t.Helper()
	var in report.Info
	testutil.DecodeJSON(t, []byte(e.zok(t, args...).stdout), &in)
	return in
}

func checkConfined(t *testing.T, in report.Info) {
	t.Helper()
	if in.Caps["CapEff"] != noCaps || in.Caps["CapBnd"] != noCaps || in.NoNewPrivs != 1 || in.Seccomp != 2 {
		t.Errorf("caps %v no_new_privs %d seccomp %d: want none, 1, 2", in.Caps, in.NoNewPrivs, in.Seccomp)
	}
}
