package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// hostAddr is a non-loopback IPv4 address of this host (slirp4netns and
// pasta keep the host's loopback out of reach): the test's listeners bind
// there, so no packet leaves the machine.
func hostAddr(t *testing.T) string {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Skip("requires a non-loopback IPv4 address on the host (none found)")
	return ""
}

// countingListener accepts on addr:0 until the test ends; it returns the
// port and a counter of accepted connections.
func countingListener(t *testing.T, addr string) (int, func() int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan struct{}, 1024)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, func() int { return len(accepted) }
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNetworkUserMode: --network slirp4netns and pasta give a rootless
// container egress to a listener on the host (through the driver, from
// the container's own network namespace), a resolv.conf naming the
// driver's DNS forwarder, and -p forwards a host port into the
// container. Rootless only: the drivers join the container's user
// namespace.
func TestNetworkUserMode(t *testing.T) {
	r := newRT(t, testutil.TestUser)
	host := hostAddr(t)
	for _, driver := range []string{"slirp4netns", "pasta"} {
		t.Run(driver, func(t *testing.T) {
			testutil.Requires(t, driver)
			port, accepted := countingListener(t, host)
			hostPort := freePort(t)
			inside := hostPort
			if driver == "slirp4netns" {
				inside = 8080 // slirp4netns remaps
			}
			serve := fmt.Sprintf("0.0.0.0:%d", inside)
			b := r.shBundle(fmt.Sprintf("cat /etc/resolv.conf; /probe try connect:%s:%d serve:%s wait:4 count:%s",
				host, port, serve, serve), nil)
			c := r.cmd("run", "--network", driver, "-p", fmt.Sprintf("%d:%d", hostPort, inside), "--bundle", b, "net-"+randID())
			var out, errb bytes.Buffer
			c.Stdout, c.Stderr = &out, &errb
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			// -p: the host keeps connecting to the published port while the
			// container serves (the driver accepts on the host side before
			// the container listens, so one success proves nothing: the
			// container's count does).
			forwarded := false
			for deadline := time.Now().Add(3500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(hostPort), time.Second); err == nil {
					conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					_, _ = conn.Read(make([]byte, 1))
					conn.Close()
					forwarded = true
				}
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("zviz run --network %s: %v\n%s\n%s", driver, err, out.String(), errb.String())
				}
			case <-time.After(60 * time.Second):
				c.Process.Kill()
				t.Fatalf("zviz run --network %s: timed out\n%s\n%s", driver, out.String(), errb.String())
			}
			got := tries(t, out.String())
			wantTry(t, got, fmt.Sprintf("connect:%s:%d", host, port), "OK")
			if accepted() < 1 {
				t.Errorf("the host's listener saw no connection")
			}
			if !strings.Contains(out.String(), "nameserver 10.0.2.3") {
				t.Errorf("resolv.conf does not name the driver's DNS forwarder:\n%s", out.String())
			}
			if left := orphanDrivers(driver); len(left) > 0 {
				t.Errorf("%s processes left for containers that are gone: %v", driver, left)
			}
			cnt := got["count:"+serve]
			if n, _ := strconv.Atoi(cnt.Fields["count"]); !forwarded || n < 1 {
				t.Errorf("-p %d:%d: forwarded=%v, container saw %q connections\n%s", hostPort, inside, forwarded, cnt.Fields["count"], errb.String())
			}
		})
	}
}

// TestNetworkFlags: --network host and none choose the namespace; user-mode
// networking refuses, naming why, where it cannot work; bad -p and
// --network values are one-line errors, and nothing is left behind.
func TestNetworkFlags(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.shBundle("/probe info", nil)
		res := r.ok("run", "--network", "none", "--bundle", b, "nn-"+randID())
		if strings.Contains(res.stdout, `"eth0"`) {
			t.Errorf("--network none shows eth0:\n%s", res.stdout)
		}
		noNet := r.shBundle("/probe info", func(s *specs.Spec) { withoutNS(s, specs.NetworkNamespace) })
		if r.user == "root" {
			res = r.ok("run", "--network", "host", "--bundle", b, "nh-"+randID())
			if !strings.Contains(res.stdout, `"eth0"`) {
				t.Errorf("--network host hides eth0:\n%s", res.stdout)
			}
			// A config without a network namespace gets one with none.
			res = r.ok("run", "--network", "none", "--bundle", noNet, "nn-"+randID())
			if strings.Contains(res.stdout, `"eth0"`) {
				t.Errorf("--network none on a config sharing the host's network shows eth0:\n%s", res.stdout)
			}
			res = r.run("run", "--network", "slirp4netns", "--bundle", b, "ns-"+randID())
			if res.code == 0 || !strings.Contains(res.stderr, "needs a user namespace") {
				t.Errorf("slirp4netns without a user namespace: %v", res)
			}
			res = r.run("run", "--network", "pasta", "--bundle", b, "np-"+randID())
			if res.code == 0 || !strings.Contains(res.stderr, "needs a user namespace") {
				t.Errorf("pasta without a user namespace: %v", res)
			}
			// Root with a user namespace whose root is not root: refused by
			// name, as the drivers cannot configure it.
			withUserNS := r.shBundle("true", func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
				s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
			})
			for driver, why := range map[string]string{"slirp4netns": "uid 0 to be you", "pasta": "will not run as root"} {
				res = r.run("run", "--network", driver, "--bundle", withUserNS, "nu-"+randID())
				if res.code == 0 || !strings.Contains(res.stderr, why) {
					t.Errorf("%s as root with a user namespace: want %q, got %v", driver, why, res)
				}
			}
		}
		for _, bad := range [][]string{
			{"--network", "bridge"}, {"-p", "80:80"}, {"--network", "none", "-p", "80:80"},
			{"--network", "slirp4netns", "-p", "80"}, {"--network", "slirp4netns", "-p", "80:70000"},
			{"--network", "slirp4netns", "-p", "80:80/sctp"},
		} {
			res := r.run(append(append([]string{"run"}, bad...), "--bundle", b, "bad-"+randID())...)
			if res.code == 0 || strings.Count(strings.TrimSpace(res.stderr), "\n") > 0 {
				t.Errorf("zviz run %v: want a one-line error, got %v", bad, res)
			}
		}
	})
}

// orphanDrivers lists driver processes (argv[0] driver, last argument a
// pid, as zviz starts them) whose container init no longer exists.
func orphanDrivers(driver string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if err != nil || filepath.Base(args[0]) != driver {
			continue
		}
		target, err := strconv.Atoi(args[len(args)-1])
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(target))); err != nil {
			out = append(out, pid)
		}
	}
	return out
}

// TestSandboxNetwork: zviz sandbox --network pasta reaches a listener on
// the host through pasta; slirp4netns is refused by name (the sandbox maps
// only the caller, and rootlesskit's tap needs the namespace's root).
func TestSandboxNetwork(t *testing.T) {
	testutil.Requires(t, "pasta", "busybox")
	r := newRT(t, testutil.TestUser)
	host := hostAddr(t)
	port, accepted := countingListener(t, host)
	dir := hostTempDir(t, r.user)
	c := r.cmd("sandbox", "--network", "pasta", "--", "/bin/busybox", "sh", "-c",
		fmt.Sprintf("cat /etc/resolv.conf; /bin/busybox nc -w 3 %s %d </dev/null && echo connected", host, port))
	c.Dir = dir
	res := r.runCmd(c)
	if res.code != 0 || !strings.Contains(res.stdout, "connected") || !strings.Contains(res.stdout, "nameserver 10.0.2.3") || accepted() < 1 {
		t.Errorf("sandbox --network pasta: %v (host saw %d connections)", res, accepted())
	}
	c = r.cmd("sandbox", "--network", "slirp4netns", "--", "/bin/true")
	c.Dir = dir
	if res := r.runCmd(c); res.code == 0 || !strings.Contains(res.stderr, "use --network pasta") {
		t.Errorf("sandbox --network slirp4netns: %v", res)
	}
	if left := orphanDrivers("pasta"); len(left) > 0 {
		t.Errorf("pasta processes left: %v", left)
	}
}

// TestNetworkDetached: run -d --network slirp4netns keeps the network in a
// zviz:[net] helper for as long as the container runs (-p forwards into
// it meanwhile), and the helper and the driver are gone with it.
func TestNetworkDetached(t *testing.T) {
	testutil.Requires(t, "slirp4netns")
	r := newRT(t, testutil.TestUser)
	dir := hostTempDir(t, r.user)
	hostPort := freePort(t)
	id := "netd-" + randID()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	b := r.shBundle("/probe try serve:0.0.0.0:8080 wait:3 count:0.0.0.0:8080", nil)
	c := r.cmd("run", "-d", "--network", "slirp4netns", "-p", fmt.Sprintf("%d:8080", hostPort), "--bundle", b, id)
	c.Stdout, c.Stderr = out, out
	res := r.runCmd(c)
	out.Close()
	if res.code != 0 {
		b, _ := os.ReadFile(filepath.Join(dir, "out"))
		t.Fatalf("run -d: %v\n%s", res, b)
	}
	if procWithCmdline("zviz:[net]\x00"+id+"\x00") == 0 {
		t.Errorf("no zviz:[net] helper for %s", id)
	}
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(hostPort), time.Second); err == nil {
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = conn.Read(make([]byte, 1))
			conn.Close()
		}
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(r.ok("state", id).stdout, `"status": "stopped"`) {
			break
		}
	}
	r.ok("delete", id)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && procWithCmdline("zviz:[net]\x00"+id+"\x00") != 0; {
		time.Sleep(50 * time.Millisecond)
	}
	if procWithCmdline("zviz:[net]\x00"+id+"\x00") != 0 {
		t.Errorf("zviz:[net] helper of %s outlived it", id)
	}
	if left := orphanDrivers("slirp4netns"); len(left) > 0 {
		t.Errorf("slirp4netns left behind: %v", left)
	}
	b2, _ := os.ReadFile(filepath.Join(dir, "out"))
	got := tries(t, string(b2))
	if n, _ := strconv.Atoi(got["count:0.0.0.0:8080"].Fields["count"]); n < 1 {
		t.Errorf("-p into the detached container: it saw %d connections\n%s", n, b2)
	}
}
