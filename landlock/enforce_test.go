package landlock

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// TestEnforce applies the rules of tree.rules in a child, for the kernel's
// own ABI and for simulated older ones, and checks every operation's errno
// against what the effective ABI must allow or deny.
func TestEnforce(t *testing.T) {
	if os.Getenv(childEnv) == "enforce" {
		enforceChild()
		return
	}
	kernel := requireLandlock(t, 1)
	scenarios := []struct {
		name     string
		abi      int
		required bool
	}{
		{"kernel", kernel, false},
		{"kernel-required", kernel, true},
		{"simulated-abi5", 5, false},
		{"simulated-abi4", 4, false},
		{"simulated-abi3", 3, false},
		{"simulated-abi1", 1, false},
		{"simulated-abi0", 0, false},
		{"required-abi3", 3, true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			requireLandlock(t, sc.abi)
			if sc.name == "kernel-required" {
				requireLandlock(t, 6)
			}
			tr := buildTree(t)
			name := fmt.Sprintf("@zviz-landlock-test-%d-%s", os.Getpid(), sc.name)
			ln, err := net.Listen("unix", name)
			if err != nil {
				t.Fatalf("listen on abstract socket %s: %v", name, err)
			}
			defer ln.Close()
			res := runChild(t, "TestEnforce", childEnv+"=enforce", dirEnv+"="+tr.dir,
				fmt.Sprintf("%s=%d", abiEnv, sc.abi), fmt.Sprintf("%s=%t", requiredEnv, sc.required),
				abstractEnv+"="+name)
			eff := checkReport(t, res, sc.abi, sc.required)
			if !tr.root {
				t.Log("device checks not asserted: they require root (mknod of the /dev/null twins)")
			}
			for _, c := range checks {
				got, ran := res.Checks[c.name]
				switch {
				case c.root && !tr.root:
					continue
				case !ran:
					t.Errorf("%s: not run", c.name)
				case got != c.want(eff):
					t.Errorf("%s: got %s, want %s (effective ABI %d)", c.name, got, c.want(eff), eff)
				}
			}
			for k, v := range res.Info {
				t.Logf("info: %s: %s", k, v)
			}
		})
	}
}

// checkReport asserts the child's report and error, and returns the ABI
// whose features are in force (0 when apply refused).
func checkReport(t *testing.T, res *childResult, abi int, required bool) int {
	t.Helper()
	rep := res.Report
	if rep == nil {
		t.Fatalf("no report; err %q", res.Err)
	}
	wantApplied := min(abi, 6)
	if rep.ABI != abi || rep.Requested != 6 || rep.Applied != wantApplied {
		t.Errorf("report ABI/Requested/Applied = %d/%d/%d, want %d/6/%d", rep.ABI, rep.Requested, rep.Applied, abi, wantApplied)
	}
	if (len(rep.Downgrades) > 0) != (abi < 6) {
		t.Errorf("downgrades at ABI %d: %q", abi, rep.Downgrades)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "/missing does not exist: skipped") {
		t.Errorf("notes %q do not mention the missing writable path", rep.Notes)
	}
	for _, l := range rep.Downgrades {
		t.Logf("downgrade: %s", l)
	}
	refused := required && abi < 6
	if refused != (res.Err != "") {
		t.Fatalf("required=%t at ABI %d: err %q", required, abi, res.Err)
	}
	if refused {
		if !strings.Contains(res.Err, "required") {
			t.Errorf("err %q does not say the layer was required", res.Err)
		}
		return 0 // nothing may have been applied
	}
	return rep.Applied
}

// probe holds what the checks need that must exist before enforcement.
type probe struct {
	tr                  *tree
	okPort, otherPort   uint16 // listening; connect allowed / not
	bindPort, otherBind uint16 // free; bind allowed / not
	abstract            string // the parent's abstract socket, outside the domain
	outFD               int    // out/file.txt, opened for writing before enforcement
}

func enforceChild() {
	tr := &tree{dir: os.Getenv(dirEnv), root: os.Geteuid() == 0}
	pr := &probe{tr: tr, abstract: os.Getenv(abstractEnv)}
	var err error
	if pr.okPort, err = tcpListen(); err == nil {
		if pr.otherPort, err = tcpListen(); err == nil {
			if pr.bindPort, err = freePort(); err == nil {
				pr.otherBind, err = freePort()
			}
		}
	}
	if err == nil {
		pr.outFD, err = unix.Open(tr.p("out", "file.txt"), unix.O_RDWR|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: set up:", err)
		os.Exit(2)
	}
	errata, _ := llsys.LandlockGetErrata()
	rep, err := apply(tr.rules(pr.bindPort, pr.okPort), os.Getenv(requiredEnv) == "true", envInt(abiEnv), errata)
	res := &childResult{Report: rep, Checks: map[string]string{}, Info: map[string]string{}}
	if err != nil {
		res.Err = err.Error()
	}
	for _, c := range checks {
		if !c.root || tr.root {
			res.Checks[c.name] = errName(c.run(pr))
		}
	}
	res.Info["MPTCP connect to a port not in TCPConnect"] = errName(tcpConnect(pr.otherPort, unix.IPPROTO_MPTCP))
	writeResult(res)
}

func tcpListen() (uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	// Left open: the listener lives as long as the child.
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return 0, err
	}
	if err := unix.Listen(fd, 8); err != nil {
		return 0, err
	}
	return localPort(fd)
}

func freePort() (uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return 0, err
	}
	return localPort(fd)
}

func localPort(fd int) (uint16, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	return uint16(sa.(*unix.SockaddrInet4).Port), nil
}

func tcpConnect(port uint16, proto int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}})
}

func tcpBind(port uint16) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}})
}

// unixConnect connects a new stream socket to addr ("@name" is abstract).
func unixConnect(addr string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: addr})
}

// unixListen binds and listens on addr from the calling thread.
func unixListen(addr string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 8); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// listenConnect listens on addr, then connects to it: both inside the domain.
func listenConnect(addr string) error {
	fd, err := unixListen(addr)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unixConnect(addr)
}

// signalOwnChild starts a process inside the domain and signals it.
func signalOwnChild() error {
	cmd := inheritStdio(exec.Command("/usr/bin/sleep", "30"))
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	return unix.Kill(cmd.Process.Pid, 0)
}
