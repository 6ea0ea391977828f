package broker

import (
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/seccomp"
)

// Socket options and ancillary messages that set source routing: a packet
// for an allowed destination would go to the first listed hop instead
// (IPv4 LSRR/SSRR; an IPv6 routing header, e.g. SRv6, lists segments the
// same way). Under an allow-list they are refused, whatever the hops.
const (
	ipOptions        = unix.IP_OPTIONS          // setsockopt, SOL_IP
	ipRetopts        = unix.IP_RETOPTS          // cmsg, SOL_IP: per-packet IP options
	ipv6Rthdr        = unix.IPV6_RTHDR          // setsockopt and cmsg, SOL_IPV6
	ipv62292Rthdr    = unix.IPV6_2292RTHDR      // the RFC 2292 form
	ipv62292PktOpts  = unix.IPV6_2292PKTOPTIONS // sticky options in cmsg form, a routing header among them
	maxSockoptLength = 64 << 10
)

// sourceRouting reports whether (level, name) sets source routing, with
// its name for the log.
func sourceRouting(level, name int32, cmsg bool) (string, bool) {
	switch {
	case level == unix.SOL_IP && !cmsg && name == ipOptions:
		return "IP_OPTIONS (source routing)", true
	case level == unix.SOL_IP && cmsg && name == ipRetopts:
		return "IP_RETOPTS (source routing)", true
	case level == unix.SOL_IPV6 && (name == ipv6Rthdr || name == ipv62292Rthdr):
		return "IPV6_RTHDR (routing header)", true
	case level == unix.SOL_IPV6 && !cmsg && name == ipv62292PktOpts:
		return "IPV6_2292PKTOPTIONS (may carry a routing header)", true
	case level == unix.SOL_IPV6 && name == unix.IPV6_NEXTHOP:
		return "IPV6_NEXTHOP (next hop)", true
	}
	return "", false
}

// setsockopt(fd, level, name, val, len), brokered at the IP and IPv6
// levels only (the program allows the others in BPF). Source routing is
// refused; every other option is set by the broker on the caller's socket
// from its copy of the value, so what was checked is what is set.
func (c *call) setsockopt() (func() (int64, unix.Errno), unix.Errno) {
	a := c.n.Args
	level, name, size := int32(a[1]), int32(a[2]), int32(a[4])
	if size < 0 || size > maxSockoptLength {
		return nil, unix.EINVAL
	}
	var val []byte
	if a[3] != 0 || size > 0 {
		var e unix.Errno
		if val, e = c.t.read(a[3], int(size)); e != 0 {
			return nil, e
		}
	}
	if e := c.socket(); e != 0 {
		return nil, e
	}
	if !c.t.valid() {
		return nil, unix.EINTR
	}
	if level == unix.IPPROTO_SCTP { // SOL_SCTP
		c.b.refusal("setsockopt", c.n, "at the SCTP level (SCTP connects to address lists)")
		return nil, Refused
	}
	// Clearing them (an empty value) is harmless.
	if what, ok := sourceRouting(level, name, false); ok && size > 0 {
		c.b.refusal("setsockopt", c.n, what)
		return nil, Refused
	}
	return func() (int64, unix.Errno) {
		_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(c.sock), uintptr(level), uintptr(name),
			uintptr(ptr(val)), uintptr(len(val)), 0)
		runtime.KeepAlive(val)
		return 0, e
	}, 0
}

// refusal logs a refused call that has no destination to name:
//
//	zviz: broker: setsockopt IP_OPTIONS (source routing) refused (EACCES: network.allow is active) pid 42 [profile p]
func (b *Broker) refusal(name string, n *seccomp.Notification, what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Log == nil {
		return
	}
	if _, err := fmt.Fprintf(b.Log, "zviz: broker: %s %s refused (%s: network.allow is active) pid %d [profile %s]\n",
		name, what, unix.ErrnoName(Refused), n.Pid, b.Profile); err != nil {
		b.Log = io.Discard
	}
}
