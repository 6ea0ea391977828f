package integration

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// The broker tests give the container's own network namespace extra
// local addresses on lo (a createContainer hook, which runs as root of
// the container's namespaces before its capabilities are dropped): 10.0.0.1
// and fd00::1 are in the profile's allow-list, 10.0.0.2 and fd00::2 are
// not. They are not loopback addresses, so every call to them goes
// through the broker, and no packet leaves the namespace: the listeners
// are the probe's own, in the same container.
// (No duplicate address detection: a tentative IPv6 address cannot be
// bound for about a second.)
const brokerAddrs = "ip addr add 10.0.0.1/32 dev lo && ip addr add 10.0.0.2/32 dev lo && " +
	"echo 0 >/proc/sys/net/ipv6/conf/lo/accept_dad && " +
	"ip -6 addr add fd00::1/128 dev lo && ip -6 addr add fd00::2/128 dev lo"

// brokerProfile writes a profile extending default with allow-list allow.
func brokerProfile(t *testing.T, r *rt, allow ...string) string {
	t.Helper()
	q := make([]string, len(allow))
	for i, a := range allow {
		q[i] = strconv.Quote(a)
	}
	prof := filepath.Join(hostTempDir(t, r.user), "egress.yaml")
	body := fmt.Sprintf("extends: default\nnetwork:\n  mode: nat\n  allow: [%s]\n", strings.Join(q, ", "))
	if err := os.WriteFile(prof, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return prof
}

// brokerBundle runs script in a container with the test addresses.
func (r *rt) brokerBundle(script string, edit func(s *specs.Spec)) string {
	return r.shBundle(script, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{
			Path: "/bin/busybox", Args: []string{"busybox", "sh", "-c", brokerAddrs}}}}
		if edit != nil {
			edit(s)
		}
	})
}

// tries decodes the probe's try reports in out (one JSON object a line).
func tries(t *testing.T, out string) map[string]report.TryResult {
	t.Helper()
	m := map[string]report.TryResult{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, `{"results"`) {
			continue
		}
		var rep report.TryReport
		testutil.DecodeJSON(t, []byte(line), &rep)
		for _, r := range rep.Results {
			m[r.Name] = r
		}
	}
	return m
}

func wantTry(t *testing.T, got map[string]report.TryResult, name, errno string, fields ...string) {
	t.Helper()
	r, ok := got[name]
	if !ok {
		t.Errorf("%s: not run", name)
		return
	}
	if r.Errno != errno {
		t.Errorf("%s = %s, want %s", name, r.Errno, errno)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if r.Fields[fields[i]] != fields[i+1] {
			t.Errorf("%s: %s = %q, want %q (fields %v)", name, fields[i], r.Fields[fields[i]], fields[i+1], r.Fields)
		}
	}
}

// TestBrokerEgress: with network.allow active, connect, sendto, sendmsg
// and sendmmsg reach allowed destinations (IPv4 and IPv6, blocking and
// non-blocking) and are refused with EACCES elsewhere, the refused
// listeners see nothing, each refusal is logged with its destination,
// and loopback and unix sockets keep working.
func TestBrokerEgress(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		prof := brokerProfile(t, r, "10.0.0.1/32", "[fd00::1]:8080")
		ops := []string{
			"serve:10.0.0.1:8080", "serve:10.0.0.2:8080", "serve:[fd00::1]:8080", "serve:[fd00::1]:8081",
			"serve:[fd00::2]:8080", "serve:127.0.0.1:8080", "serve-udp:10.0.0.1:5353", "serve-udp:10.0.0.2:5353",
			"connect:10.0.0.1:8080", "connect:10.0.0.2:8080", "connect-nb:10.0.0.1:8080", "connect-nb:10.0.0.2:8080",
			"connect:[::ffff:10.0.0.2]:8080", "connect:[fd00::1]:8080", "connect:[fd00::1]:8081", "connect:[fd00::2]:8080",
			"connect:127.0.0.1:8080",
			"sendto-udp:10.0.0.1:5353", "sendto-udp:10.0.0.2:5353", "sendmsg-udp:10.0.0.1:5353", "sendmsg-udp:10.0.0.2:5353",
			"sendmmsg-udp:10.0.0.1:5353", "sendmmsg-udp:10.0.0.2:5353", "send-connected:10.0.0.1:5353", "send-connected:10.0.0.2:5353",
			"serve-unix:/dev/shm/s", "connect-unix:/dev/shm/s", "serve-unix:@zviz-broker", "connect-unix:@zviz-broker",
			"count:10.0.0.1:8080", "count:10.0.0.2:8080", "count:[fd00::2]:8080", "count:[fd00::1]:8081",
			"count:10.0.0.1:5353", "count:10.0.0.2:5353", "count:/dev/shm/s",
			"srr:10.0.0.2", "retopts:10.0.0.2/10.0.0.1:5353", "tos",
		}
		b := r.brokerBundle("/probe try "+strings.Join(ops, " "), nil)
		res := r.ok("--profile", prof, "run", "--network", "none", "--bundle", b, "egress-"+randID())
		got := tries(t, res.stdout)
		// serve:[fd00::1]:8081: an allow-list with ports restricts TCP
		// connect (Landlock), never bind.
		for _, ok := range []string{"serve-unix:/dev/shm/s", "serve:[fd00::1]:8081", "connect:10.0.0.1:8080", "connect:[fd00::1]:8080", "connect:127.0.0.1:8080",
			"sendto-udp:10.0.0.1:5353", "sendmsg-udp:10.0.0.1:5353", "send-connected:10.0.0.1:5353",
			"connect-unix:/dev/shm/s", "connect-unix:@zviz-broker"} {
			wantTry(t, got, ok, "OK")
		}
		wantTry(t, got, "connect-nb:10.0.0.1:8080", "OK", "first", "EINPROGRESS")
		wantTry(t, got, "sendmmsg-udp:10.0.0.1:5353", "OK", "sent", "2", "len0", "10")
		for _, refused := range []string{"connect:10.0.0.2:8080", "connect-nb:10.0.0.2:8080", "connect:[::ffff:10.0.0.2]:8080",
			"connect:[fd00::1]:8081", "connect:[fd00::2]:8080", "sendto-udp:10.0.0.2:5353", "sendmsg-udp:10.0.0.2:5353",
			"sendmmsg-udp:10.0.0.2:5353", "send-connected:10.0.0.2:5353"} {
			wantTry(t, got, refused, "EACCES")
		}
		// Source routing would send a packet for 10.0.0.1 to 10.0.0.2
		// first: refused, while other IP-level options are set.
		wantTry(t, got, "srr:10.0.0.2", "EACCES")
		wantTry(t, got, "retopts:10.0.0.2/10.0.0.1:5353", "EACCES")
		wantTry(t, got, "tos", "OK")
		// 1 connect + 1 non-blocking; 1 sendto + 1 sendmsg + 2 sendmmsg + 1 send.
		wantTry(t, got, "count:10.0.0.1:8080", "OK", "count", "2")
		wantTry(t, got, "count:10.0.0.1:5353", "OK", "count", "5")
		wantTry(t, got, "count:/dev/shm/s", "OK", "count", "1")
		for _, none := range []string{"count:10.0.0.2:8080", "count:[fd00::2]:8080", "count:[fd00::1]:8081", "count:10.0.0.2:5353"} {
			wantTry(t, got, none, "OK", "count", "0")
		}
		for _, line := range []string{"zviz: broker: connect 10.0.0.2:8080 refused (EACCES: not in network.allow)",
			"zviz: broker: connect [fd00::2]:8080 refused", "zviz: broker: sendto 10.0.0.2:5353 refused",
			"zviz: broker: sendmsg 10.0.0.2:5353 refused", "zviz: broker: sendmmsg 10.0.0.2:5353 refused",
			"zviz: broker: setsockopt IP_OPTIONS (source routing) refused (EACCES: network.allow is active)",
			"zviz: broker: sendmsg IP_RETOPTS (source routing) refused"} {
			if !strings.Contains(res.stderr, line) {
				t.Errorf("stderr lacks %q:\n%s", line, res.stderr)
			}
		}
		if strings.Contains(res.stderr, "allowed (") {
			t.Errorf("allowed calls are logged only with --verbose:\n%s", res.stderr)
		}
	})
}

// TestBrokerRace: threads keep rewriting one sockaddr between an allowed
// and a forbidden address while others connect through it; the forbidden
// listener never sees a connection (without the broker, the same try
// reaches it hundreds of times a second). Then hundreds of connects at
// once all get through.
func TestBrokerRace(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		prof := brokerProfile(t, r, "10.0.0.1")
		b := r.brokerBundle("/probe try serve:10.0.0.1:8080 serve:10.0.0.2:8080 "+
			"race:10.0.0.1:8080/10.0.0.2:8080/2 many:10.0.0.1:8080/300 count:10.0.0.2:8080", nil)
		res := r.ok("--profile", prof, "run", "--network", "none", "--bundle", b, "race-"+randID())
		got := tries(t, res.stdout)
		wantTry(t, got, "count:10.0.0.2:8080", "OK", "count", "0")
		race := got["race:10.0.0.1:8080/10.0.0.2:8080/2"]
		ok, _ := strconv.Atoi(race.Fields["ok"])
		refused, _ := strconv.Atoi(race.Fields["refused"])
		if ok == 0 || refused == 0 || race.Fields["other"] != "0" {
			t.Errorf("race: want both allowed and refused connects and no other result, got %v", race.Fields)
		}
		t.Logf("race: %v", race.Fields)
		wantTry(t, got, "many:10.0.0.1:8080/300", "OK", "ok", "300")
	})
}

// TestBrokerVerbose: --verbose shows every broker decision with the rule
// that decided it, beside the denied-syscall log.
func TestBrokerVerbose(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		prof := brokerProfile(t, r, "10.0.0.0/24:8080")
		b := r.brokerBundle("/probe try serve:10.0.0.1:8080 connect:10.0.0.1:8080 connect:10.0.0.1:9999 connect:127.0.0.1:1 ptrace", nil)
		res := r.ok("--verbose", "--profile", prof, "run", "--network", "none", "--bundle", b, "verbose-"+randID())
		for _, line := range []string{
			"zviz: broker: connect 10.0.0.1:8080 allowed (10.0.0.0/24:8080) pid ",
			"zviz: broker: connect 10.0.0.1:9999 refused (EACCES: not in network.allow) pid ",
			"zviz: broker: connect 127.0.0.1:1 allowed (loopback)",
			"zviz: denied: ptrace(",
		} {
			if !strings.Contains(res.stderr, line) {
				t.Errorf("stderr lacks %q:\n%s", line, res.stderr)
			}
		}
		got := tries(t, res.stdout)
		wantTry(t, got, "connect:10.0.0.1:9999", "EACCES")
		wantTry(t, got, "connect:127.0.0.1:1", "ECONNREFUSED")
	})
}

// TestBrokerKilled: a detached container's broker is its zviz:[denials]
// helper; killed mid-run, every brokered call fails (ENOSYS, the kernel's
// answer without a listener) instead of going through, plain calls go on,
// and nothing is left behind.
func TestBrokerKilled(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		prof := brokerProfile(t, r, "10.0.0.1")
		shared := hostTempDir(t, r.user)
		script := `/probe try serve:10.0.0.1:8080 connect:10.0.0.1:8080; touch /shared/ready
i=0; while [ ! -e /shared/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
/probe try serve:10.0.0.1:8081 connect:10.0.0.1:8081 sendto-udp:10.0.0.1:53 send-connected:127.0.0.1:53 count:10.0.0.1:8081`
		b := r.brokerBundle(script, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: shared, Options: []string{"rbind", "rw"}})
		})
		id := "killed-" + randID()
		out, err := os.Create(filepath.Join(shared, "out"))
		if err != nil {
			t.Fatal(err)
		}
		c := r.cmd("--profile", prof, "create", "--network", "none", "--bundle", b, id)
		c.Stdout, c.Stderr = out, out
		if res := r.runCmd(c); res.code != 0 {
			t.Fatalf("create: %v", res)
		}
		out.Close()
		helper := procWithCmdline("zviz:[denials]\x00" + id + "\x00")
		if helper == 0 {
			t.Fatalf("no zviz:[denials] helper for %s", id)
		}
		r.ok("start", id)
		waitFile(t, filepath.Join(shared, "ready"))
		if err := unix.Kill(helper, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shared, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if strings.Contains(r.ok("state", id).stdout, `"status": "stopped"`) {
				break
			}
		}
		r.ok("delete", id)
		b2, _ := os.ReadFile(filepath.Join(shared, "out"))
		got := tries(t, string(b2))
		wantTry(t, got, "connect:10.0.0.1:8080", "OK")
		wantTry(t, got, "serve:10.0.0.1:8081", "OK")
		wantTry(t, got, "connect:10.0.0.1:8081", "ENOSYS")
		wantTry(t, got, "sendto-udp:10.0.0.1:53", "ENOSYS")
		wantTry(t, got, "count:10.0.0.1:8081", "OK", "count", "0")
		// send(2) on a connected socket is a plain call; its connect was
		// brokered, so it fails first.
		wantTry(t, got, "send-connected:127.0.0.1:53", "ENOSYS")
		if procWithCmdline("zviz:[denials]\x00"+id+"\x00") != 0 {
			t.Errorf("helper of %s still running", id)
		}
	})
}

// procWithCmdline returns the pid of a process whose command line starts
// with prefix, or 0.
func procWithCmdline(prefix string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.HasPrefix(string(b), prefix) {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	return 0
}

// TestBrokerDomains: network.allow_domains through the system resolver.
// The bundle's resolv.conf names a resolver the test runs on the host
// (127.0.0.77:53, no outside network); zviz points the container's
// resolv.conf at its broker, which forwards admitted names there and
// admits the answered addresses. An address is reachable only once its
// name was resolved; other names are refused at the resolver and their
// addresses at connect.
func TestBrokerDomains(t *testing.T) {
	stopDNS := fakeResolver(t, "127.0.0.77:53", map[string]string{
		"allowed.test.": "10.0.0.1", "a.wild.test.": "10.0.0.3", "other.test.": "10.0.0.2", "wild.test.": "10.0.0.2"})
	defer stopDNS()
	forEachUser(t, func(t *testing.T, r *rt) {
		prof := filepath.Join(hostTempDir(t, r.user), "domains.yaml")
		body := "extends: default\nnetwork:\n  mode: nat\n  allow_domains: [allowed.test, \"*.wild.test\"]\n"
		if err := os.WriteFile(prof, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		b := r.shBundle("/probe try serve:10.0.0.1:8080 serve:10.0.0.2:8080 serve:10.0.0.3:8080 "+
			"connect:10.0.0.3:8080 dial:allowed.test:8080 resolve:a.wild.test connect:10.0.0.3:8080 "+
			"resolve:other.test resolve:wild.test connect:10.0.0.2:8080 count:10.0.0.2:8080; cat /etc/resolv.conf", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/busybox",
				Args: []string{"busybox", "sh", "-c", brokerAddrs + " && ip addr add 10.0.0.3/32 dev lo"}}}}
		})
		if err := os.WriteFile(filepath.Join(b, "rootfs", "etc", "resolv.conf"), []byte("nameserver 127.0.0.77\noptions timeout:2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := r.ok("--verbose", "--profile", prof, "run", "--network", "none", "--bundle", b, "domains-"+randID())
		got := tries(t, res.stdout)
		wantTry(t, got, "dial:allowed.test:8080", "OK", "peer", "10.0.0.1:8080")
		wantTry(t, got, "resolve:a.wild.test", "OK", "addrs", "10.0.0.3")
		// 10.0.0.3 before and after a.wild.test was answered.
		if r := got["connect:10.0.0.3:8080"]; r.Errno != "OK" {
			t.Errorf("connect to 10.0.0.3 after resolving a.wild.test: %s", r.Errno)
		}
		if !strings.Contains(res.stderr, "zviz: broker: connect 10.0.0.3:8080 refused") ||
			!strings.Contains(res.stderr, "zviz: broker: connect 10.0.0.3:8080 allowed (domain a.wild.test)") {
			t.Errorf("want 10.0.0.3 refused before and allowed after its name was resolved:\n%s", res.stderr)
		}
		wantTry(t, got, "resolve:other.test", "ENOENT")
		wantTry(t, got, "resolve:wild.test", "ENOENT")
		wantTry(t, got, "connect:10.0.0.2:8080", "EACCES")
		wantTry(t, got, "count:10.0.0.2:8080", "OK", "count", "0")
		for _, line := range []string{"zviz: broker: dns other.test refused (REFUSED: not in network.allow_domains)",
			"zviz: broker: dns allowed.test answered (1 addresses admitted)", "nameserver 127.0.0.53", "options timeout:2"} {
			if !strings.Contains(res.stderr+res.stdout, line) {
				t.Errorf("output lacks %q:\n%s\n%s", line, res.stdout, res.stderr)
			}
		}
	})
}

// fakeResolver answers A queries for names on addr (UDP) until stopped.
func fakeResolver(t *testing.T, addr string, names map[string]string) func() {
	t.Helper()
	testutil.Requires(t, "root")
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("test resolver on %s: %v", addr, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			rb := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			_ = rb.StartQuestions()
			_ = rb.Question(q)
			_ = rb.StartAnswers()
			if a, ok := names[q.Name.String()]; ok && q.Type == dnsmessage.TypeA {
				_ = rb.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.AResource{A: netip.MustParseAddr(a).As4()})
			}
			if out, err := rb.Finish(); err == nil {
				_, _ = conn.WriteTo(out, from)
			}
		}
	}()
	return func() { conn.Close() }
}
