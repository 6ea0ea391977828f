package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The tests of processes exec'd into a container whose seccomp filters
// have a listener: --log-denials, a network allow-list (the broker), a
// seccomp agent. The exec'd process hands its own listeners to the
// container's denial logger, which answers them as it answers the
// init's.

// listenerTarget creates (with the global flags) and starts a container
// whose process is `sh -c script`, with stdout and stderr on files: the
// zviz:[denials] helper writes its log to create's stderr.
func (r *rt) listenerTarget(flags []string, b string) *detached {
	r.t.Helper()
	d := r.createLoggedWith(flags, b)
	r.ok("start", d.id)
	return d
}

// waitContains waits until the file at path contains want, and returns it.
func waitContains(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lacks %q:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execDetached runs `zviz exec --detach --pid-file` with stdio on a file,
// as conmon does, and returns the process's host pid and a function that
// waits for it to exit and returns its output.
func (r *rt) execDetached(id string, args ...string) (int, func() string) {
	r.t.Helper()
	pidFile := filepath.Join(hostTempDir(r.t, r.user), "exec.pid")
	out := filepath.Join(r.t.TempDir(), "exec-out")
	f, err := os.Create(out)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	c := r.cmd(append([]string{"exec", "--detach", "--pid-file", pidFile, id}, args...)...)
	c.Stdout, c.Stderr = f, f
	if res := r.runCmd(c); res.code != 0 {
		b, _ := os.ReadFile(out)
		r.t.Fatalf("zviz exec -d %v: exit %d: %s", args, res.code, b)
	}
	pid, err := strconv.Atoi(readFile(r.t, pidFile))
	if err != nil {
		r.t.Fatal(err)
	}
	return pid, func() string {
		r.t.Helper()
		waitGone(r.t, pid)
		b, _ := os.ReadFile(out)
		return string(b)
	}
}

// waitCount waits until the file at path contains want n times, and
// fails if it ends up with another count.
func waitCount(t *testing.T, path, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		got := strings.Count(string(b), want)
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("%s has %q %d times, want %d:\n%s", path, want, got, n, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveMembers lists the live (not zombie) processes of pid's pid
// namespace.
func liveMembers(t *testing.T, pid int) []int {
	t.Helper()
	var live []int
	for _, p := range pidnsMembers(t, pid) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil && !strings.Contains(string(b), ") Z ") {
			live = append(live, p)
		}
	}
	return live
}

// TestExecLogDenials: a process exec'd into a --log-denials container
// (created and started: the zviz:[denials] helper serves it) gets the
// errnos the container's own process gets, and its refused calls are in
// the container's denial log with its pid. The same through a foreground
// `zviz run`, whose own goroutine is the logger.
func TestExecLogDenials(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		script := `hostname zviz-init 2>&1; echo init-rc=$?; /probe try ptrace clone3; exec /probe sleep 120`
		d := r.listenerTarget([]string{"--log-denials"}, r.escapeBundle(nil, func(s *specs.Spec) {
			s.Process.Args = []string{"sh", "-c", script}
		}))
		initOut := waitContains(t, d.out, `{"results"`)
		// busybox is single-threaded: the denied sethostname is the
		// process's own, logged with its pid.
		pid, output := r.execDetached(d.id, "hostname", "zviz-exec")
		if out := output(); !strings.Contains(out, "Operation not permitted") || !strings.Contains(initOut, "Operation not permitted") {
			t.Errorf("hostname: exec'd %q, init's %q: want EPERM from both", out, initOut)
		}
		waitContains(t, d.err, fmt.Sprintf(") = EPERM pid %d [profile default]", pid))
		if !strings.Contains(d.stderr(), "zviz: denied: sethostname(") {
			t.Errorf("denial log lacks the exec'd sethostname:\n%s", d.stderr())
		}
		execd := tries(t, r.ok("exec", d.id, "/probe", "try", "ptrace", "clone3").stdout)
		initd := tries(t, initOut)
		for _, name := range []string{"ptrace", "clone3"} {
			if execd[name].Errno != initd[name].Errno || execd[name].Errno == "" {
				t.Errorf("%s: exec'd %q, init's %q", name, execd[name].Errno, initd[name].Errno)
			}
		}
		wantTry(t, execd, "ptrace", "EPERM")
		wantTry(t, execd, "clone3", "ENOSYS")
		// The logger writes a line once it has answered: wait for it.
		waitCount(t, d.err, "zviz: denied: ptrace(", 2)

		// Foreground run: its goroutine answers the exec'd process too.
		id := "xlf-" + randID()
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "wait-signal", "USR1"} })
		c, br, errb := r.lcForeground("--log-denials", "run", "--bundle", b, id)
		if line := readLine(t, br); !strings.Contains(line, "ready") {
			t.Fatalf("probe: %q", line)
		}
		wantTry(t, tries(t, r.ok("exec", id, "/probe", "try", "ptrace").stdout), "ptrace", "EPERM")
		if err := c.Process.Signal(unix.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if code := waitCmd(t, c); code != 0 {
			t.Errorf("run: exit %d, want 0", code)
		}
		if log := errb.String(); !strings.Contains(log, "zviz: denied: ptrace(") || strings.Contains(log, "did not finish") {
			t.Errorf("foreground run's denial log, want the exec'd ptrace and a finished log:\n%s", log)
		}
	})
}

// TestExecBroker: a process exec'd into a container whose profile has a
// network allow-list reaches the allowed destination and is refused the
// other one with the errno the container's own process gets, by the
// container's broker.
func TestExecBroker(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		prof := brokerProfile(t, r, "10.0.0.1/32")
		ops := "serve:10.0.0.1:8080 serve:10.0.0.2:8080 connect:10.0.0.1:8080 connect:10.0.0.2:8080 count:10.0.0.2:8080"
		b := r.brokerBundle("/probe try "+ops+"; exec /probe sleep 120", nil)
		d := r.listenerTarget([]string{"--profile", prof}, b)
		initd := tries(t, waitContains(t, d.out, `{"results"`))
		res := r.ok(append([]string{"exec", d.id, "/probe", "try"}, strings.Fields(ops)...)...)
		execd := tries(t, res.stdout)
		wantTry(t, execd, "connect:10.0.0.1:8080", "OK")
		wantTry(t, execd, "connect:10.0.0.2:8080", "EACCES")
		wantTry(t, execd, "count:10.0.0.2:8080", "OK", "count", "0")
		for _, name := range []string{"connect:10.0.0.1:8080", "connect:10.0.0.2:8080"} {
			if execd[name].Errno != initd[name].Errno {
				t.Errorf("%s: exec'd %s, init's %s", name, execd[name].Errno, initd[name].Errno)
			}
		}
		if n := strings.Count(d.stderr(), "zviz: broker: connect 10.0.0.2:8080 refused"); n != 2 {
			t.Errorf("%d refusals logged, want the init's and the exec'd one's:\n%s", n, d.stderr())
		}
	})
}

// TestExecBrokerDomains: the exec'd process resolves through the
// container's resolver (bound by the init, served by the logger), and the
// address it was answered is then admitted for its connects: one broker
// state for the container.
func TestExecBrokerDomains(t *testing.T) {
	stopDNS := fakeResolver(t, "127.0.0.77:53", map[string]string{"a.wild.test.": "10.0.0.3"})
	defer stopDNS()
	forEachUser(t, func(t *testing.T, r *rt) {
		prof := filepath.Join(hostTempDir(t, r.user), "domains.yaml")
		body := "extends: default\nnetwork:\n  mode: nat\n  allow_domains: [\"*.wild.test\"]\n"
		if err := os.WriteFile(prof, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		b := r.shBundle("exec /probe sleep 120", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/busybox",
				Args: []string{"busybox", "sh", "-c", "ip addr add 10.0.0.3/32 dev lo"}}}}
		})
		if err := os.WriteFile(filepath.Join(b, "rootfs", "etc", "resolv.conf"), []byte("nameserver 127.0.0.77\noptions timeout:2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d := r.listenerTarget([]string{"--verbose", "--profile", prof}, b)
		connect := []string{"exec", d.id, "/probe", "try", "serve:10.0.0.3:8080", "connect:10.0.0.3:8080"}
		wantTry(t, tries(t, r.ok(connect...).stdout), "connect:10.0.0.3:8080", "EACCES")
		wantTry(t, tries(t, r.ok("exec", d.id, "/probe", "try", "resolve:a.wild.test").stdout), "resolve:a.wild.test", "OK", "addrs", "10.0.0.3")
		wantTry(t, tries(t, r.ok(connect...).stdout), "connect:10.0.0.3:8080", "OK")
		if !strings.Contains(d.stderr(), "zviz: broker: connect 10.0.0.3:8080 allowed (domain a.wild.test)") {
			t.Errorf("broker log lacks the admitted connect:\n%s", d.stderr())
		}
	})
}

// TestExecSeccompAgent: the listener of an exec'd process's copy of the
// config's own filter goes to the agent at linux.seccomp.listenerPath,
// with the container's state and the exec'd process's pid, and the agent
// answers its calls. With the agent gone, exec fails with the reason and
// leaves nothing running.
func TestExecSeccompAgent(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		sock := filepath.Join(hostTempDir(t, r.user), "agent.sock")
		states, stopAgent := seccompAgent(t, sock, unix.EXDEV)
		if err := os.Chmod(sock, 0o777); err != nil {
			t.Fatal(err)
		}
		d, initPid := r.execTarget(func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}}}
		})
		st := receiveState(t, states)
		if st.Pid != initPid {
			t.Errorf("the init's state names pid %d, want %d", st.Pid, initPid)
		}
		pid, output := r.execDetached(d.id, "mkdir", "/tmp/agent-dir")
		if out := output(); !strings.Contains(out, "Invalid cross-device link") {
			t.Errorf("the exec'd mkdir was not answered by the agent (EXDEV): %q", out)
		}
		st = receiveState(t, states)
		if st.Pid != pid || st.State.Pid != initPid || st.State.ID != d.id || st.State.Status != specs.StateRunning {
			t.Errorf("exec'd process state: pid %d, state %+v; want pid %d and the container's state (init %d)", st.Pid, st.State, pid, initPid)
		}
		stopAgent()
		res := r.run("exec", d.id, "/probe", "exit", "0")
		if res.code == 0 || !strings.Contains(res.stderr, "listenerPath") {
			t.Errorf("exec with the agent gone: %v, want the agent's error", res)
		}
		if live := liveMembers(t, initPid); len(live) != 1 || live[0] != initPid {
			t.Errorf("processes left in the container after the failed exec: %v", live)
		}
	})
}

func receiveState(t *testing.T, states <-chan specs.ContainerProcessState) specs.ContainerProcessState {
	t.Helper()
	select {
	case st := <-states:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("the agent got no state")
		return specs.ContainerProcessState{}
	}
}

// TestExecDenialLoggerGone: with the container's zviz:[denials] helper
// killed, exec says so in one line naming the container, and starts
// nothing.
func TestExecDenialLoggerGone(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		d := r.listenerTarget([]string{"--log-denials"}, r.bundle(func(s *specs.Spec) {
			s.Process.Args = []string{"/probe", "sleep", "120"}
		}))
		initPid := r.state(d.id).Pid
		if r.user != "root" {
			refusedPeer(t, filepath.Join(r.root, d.id, "denials.sock"), d.err)
		}
		helper := procWithCmdline("zviz:[denials]\x00" + d.id + "\x00")
		if helper == 0 {
			t.Fatalf("no zviz:[denials] helper for %s", d.id)
		}
		if err := unix.Kill(helper, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, helper)
		res := r.run("exec", d.id, "/probe", "exit", "0")
		msg := strings.TrimSpace(res.stderr)
		if res.code == 0 || !strings.Contains(msg, d.id) || !strings.Contains(msg, "is gone") || strings.Contains(msg, "\n") {
			t.Errorf("exec with the denial logger gone: %v, want one line naming %s and the logger", res, d.id)
		}
		if live := liveMembers(t, initPid); len(live) != 1 || live[0] != initPid {
			t.Errorf("processes left in the container after the refused exec: %v", live)
		}
	})
}

// refusedPeer connects to a rootless container's denials.sock as root (the
// test's own uid): the logger hangs up on a connection that is not its
// owner's, and says so in its log.
func refusedPeer(t *testing.T, sock, log string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatalf("connect %s as root: %v", sock, err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Read(fd, make([]byte, 16)); n != 0 || err != nil {
		t.Errorf("a connection from another uid: read %d, %v; want it closed", n, err)
	}
	waitContains(t, log, "from uid 0 ")
}

// TestExecListenerLongStatePath: the denial logger's socket is reached
// through a descriptor of the state directory, so a state path longer than
// sun_path's 108 bytes (podman's 64-hex ids under a long runtime
// directory) works.
func TestExecListenerLongStatePath(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		r.root += strings.Repeat("-long-runtime-dir", 4) // beside the usual one, like the cache
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "120"} })
		id := strings.Repeat(randID(), 6)[:64]
		c := r.cmd("--log-denials", "create", "--bundle", b, id)
		f, err := os.Create(filepath.Join(t.TempDir(), "stdio"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c.Stdout, c.Stderr = f, f
		if res := r.runCmd(c); res.code != 0 {
			t.Fatalf("create: %v", res)
		}
		t.Cleanup(func() { _ = r.cmd("delete", "--force", id).Run() })
		if dir := filepath.Join(r.root, id, "denials.sock"); len(dir) <= 108 {
			t.Fatalf("state path %s is only %d bytes", dir, len(dir))
		}
		r.ok("start", id)
		wantTry(t, tries(t, r.ok("exec", id, "/probe", "try", "ptrace").stdout), "ptrace", "EPERM")
	})
}
