package broker

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDecide(t *testing.T) {
	p, err := ParseAllow([]string{"10.0.0.0/24", "192.168.1.5:443", "[fd00::/64]:8080", "2001:db8::1", "*:53"})
	if err != nil {
		t.Fatal(err)
	}
	p.LocalFree = true
	host, err := ParseAllow([]string{"127.0.0.1:80"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    *Policy
		addr string
		port uint16
		ok   bool
		why  string
	}{
		{p, "10.0.0.7", 1, true, "10.0.0.0/24"},
		{p, "10.0.1.7", 1, false, ""},
		{p, "192.168.1.5", 443, true, "192.168.1.5:443"},
		{p, "192.168.1.5", 80, false, ""},
		{p, "fd00::9", 8080, true, "[fd00::/64]:8080"},
		{p, "fd00::9", 8081, false, ""},
		{p, "fd00:0:0:1::9", 8080, false, ""},
		{p, "2001:db8::1", 9, true, "2001:db8::1"},
		{p, "8.8.8.8", 53, true, "*:53"},
		{p, "2001:4860::8888", 53, true, "*:53"},
		{p, "8.8.8.8", 54, false, ""},
		{p, "127.0.0.1", 9, true, "loopback"},
		{p, "127.3.4.5", 9, true, "loopback"},
		{p, "::1", 9, true, "loopback"},
		{p, "0.0.0.0", 9, true, "loopback"},
		{p, "::", 9, true, "loopback"},
		// With the host's network, loopback is the host's: rules apply.
		{host, "127.0.0.1", 80, true, "127.0.0.1:80"},
		{host, "127.0.0.1", 81, false, ""},
		{host, "0.0.0.0", 81, false, ""},
	} {
		ok, why := c.p.Decide(netip.MustParseAddr(c.addr), c.port)
		if ok != c.ok || why != c.why {
			t.Errorf("%s:%d = %v %q, want %v %q", c.addr, c.port, ok, why, c.ok, c.why)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "host:80", "[fd00::1", "10.0.0.1:0", "10.0.0.1:65536", "*:x"} {
		if _, err := ParseAllow([]string{bad}); err == nil {
			t.Errorf("ParseAllow(%q) accepted", bad)
		}
	}
	if !AllowsAll([]string{"10.0.0.1", "*"}) || AllowsAll([]string{"*:443"}) {
		t.Error("AllowsAll: only a bare * admits everything")
	}
}

func sin(fam uint16, addr string, port uint16, size int) []byte {
	b := make([]byte, size)
	binary.NativeEndian.PutUint16(b, fam)
	binary.BigEndian.PutUint16(b[2:], port)
	a := netip.MustParseAddr(addr)
	if a.Is4() {
		v := a.As4()
		copy(b[4:], v[:])
	} else {
		v := a.As16()
		copy(b[8:], v[:])
	}
	return b
}

// TestParseDest: the broker reads a sockaddr as the socket's family will,
// including the kernel's lenient cases, so what it checks is what the
// kernel connects or sends to.
func TestParseDest(t *testing.T) {
	un := func(path string) []byte {
		b := make([]byte, 2, 110)
		binary.NativeEndian.PutUint16(b, unix.AF_UNIX)
		return append(append(b, path...), 0)
	}
	for _, c := range []struct {
		name    string
		domain  int
		raw     []byte
		connect bool
		want    string
		errno   unix.Errno
	}{
		{"v4", unix.AF_INET, sin(unix.AF_INET, "10.0.0.2", 80, 16), true, "10.0.0.2:80", 0},
		{"v4 short", unix.AF_INET, sin(unix.AF_INET, "10.0.0.2", 80, 16)[:8], true, "", unix.EINVAL},
		{"v4 unspec connect dissolves", unix.AF_INET, sin(unix.AF_UNSPEC, "10.0.0.2", 80, 16), true, "(none)", 0},
		// udp_sendmsg and raw_sendmsg read AF_UNSPEC as AF_INET.
		{"v4 unspec send", unix.AF_INET, sin(unix.AF_UNSPEC, "10.0.0.2", 80, 16), false, "10.0.0.2:80", 0},
		{"v4 socket v6 addr", unix.AF_INET, sin(unix.AF_INET6, "fd00::1", 80, 28), true, "", unix.EAFNOSUPPORT},
		{"v6", unix.AF_INET6, sin(unix.AF_INET6, "fd00::2", 443, 28), true, "[fd00::2]:443", 0},
		{"v6 rfc2133 length", unix.AF_INET6, sin(unix.AF_INET6, "fd00::2", 443, 28)[:24], false, "[fd00::2]:443", 0},
		{"v6 short", unix.AF_INET6, sin(unix.AF_INET6, "fd00::2", 443, 28)[:20], true, "", unix.EINVAL},
		{"v4-mapped is checked as v4", unix.AF_INET6, sin(unix.AF_INET6, "::ffff:10.0.0.2", 80, 28), true, "10.0.0.2:80", 0},
		{"v6 socket v4 addr", unix.AF_INET6, sin(unix.AF_INET, "10.0.0.2", 80, 16), true, "10.0.0.2:80", 0},
		// rawv6_sendmsg reads family 0 as IPv6; udpv6 ignores it.
		{"v6 unspec send", unix.AF_INET6, sin(unix.AF_UNSPEC, "fd00::2", 80, 28), false, "[fd00::2]:80", 0},
		{"v6 unspec send short", unix.AF_INET6, sin(unix.AF_UNSPEC, "fd00::2", 80, 28)[:16], false, "(none)", 0},
		{"unix path", unix.AF_UNIX, un("/run/s"), true, "unix:/run/s", 0},
		{"unix abstract (every byte is the name)", unix.AF_UNIX, un("\x00name"), true, `unix:@"name\x00"`, 0},
		{"unix no path", unix.AF_UNIX, un("")[:2], true, "", unix.EINVAL},
		{"unix socket inet addr", unix.AF_UNIX, sin(unix.AF_INET, "10.0.0.2", 80, 16), false, "", unix.EINVAL},
		{"netlink socket", unix.AF_NETLINK, sin(unix.AF_NETLINK, "10.0.0.2", 80, 16), false, "", unix.EAFNOSUPPORT},
		{"packet socket", unix.AF_PACKET, sin(unix.AF_PACKET, "10.0.0.2", 80, 20), false, "", unix.EAFNOSUPPORT},
		{"too short", unix.AF_INET, []byte{2}, true, "", unix.EINVAL},
	} {
		d, e := parseDest(c.domain, c.raw, c.connect)
		if e != c.errno || e == 0 && d.String() != c.want {
			t.Errorf("%s: %v %v, want %q %v", c.name, d, e, c.want, c.errno)
		}
	}
}

func TestAdmitted(t *testing.T) {
	now := time.Unix(1000, 0)
	a := NewAdmitted()
	a.now = func() time.Time { return now }
	a.Admit("example.test", netip.MustParseAddr("::ffff:10.1.2.3"), 30*time.Second)
	a.Admit("short.test", netip.MustParseAddr("10.1.2.3"), 5*time.Second) // the longer TTL stays
	if name, ok := a.Lookup(netip.MustParseAddr("10.1.2.3")); !ok || name != "example.test" {
		t.Fatalf("Lookup = %q %v, want example.test", name, ok)
	}
	now = now.Add(31 * time.Second)
	if _, ok := a.Lookup(netip.MustParseAddr("10.1.2.3")); ok {
		t.Fatal("admitted after its TTL")
	}
	p := &Policy{Domains: a}
	a.Admit("example.test", netip.MustParseAddr("10.9.9.9"), time.Minute)
	if ok, why := p.Decide(netip.MustParseAddr("10.9.9.9"), 443); !ok || why != "domain example.test" {
		t.Errorf("Decide = %v %q, want domain example.test", ok, why)
	}
}
