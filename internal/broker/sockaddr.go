package broker

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// dest is where a brokered call would send or connect, as the kernel
// will read the very bytes the broker passes on.
type dest struct {
	kind     destKind
	addr     netip.Addr // destIP: unmapped
	port     uint16
	path     string // destUnix: the socket path, "" for abstract
	abstract bool
}

type destKind int

const (
	destNone destKind = iota // no address: a disconnect, or the connected peer
	destIP
	destUnix
)

func (d dest) String() string {
	switch d.kind {
	case destIP:
		return netip.AddrPortFrom(d.addr, d.port).String()
	case destUnix:
		if d.abstract {
			return "unix:@" + d.path
		}
		return "unix:" + d.path
	}
	return "(none)"
}

// parseDest reads the sockaddr b a call passes to a socket of the given
// domain, the way the kernel will: the family the socket interprets the
// bytes as, not only the one they claim. Where the kernel is lenient
// (AF_UNSPEC sends read as the socket's own family by raw and UDP IPv4
// sockets) the bytes are checked as that family, so a refusal here can
// be stricter than the kernel but never looser. connect says whether the
// call is connect(2), where AF_UNSPEC dissolves the association.
func parseDest(domain int, b []byte, connect bool) (dest, unix.Errno) {
	if len(b) < 2 {
		return dest{}, unix.EINVAL
	}
	fam := int(binary.NativeEndian.Uint16(b))
	if fam == unix.AF_UNSPEC && connect {
		return dest{kind: destNone}, 0
	}
	switch domain {
	case unix.AF_UNIX:
		return parseUnix(fam, b)
	case unix.AF_INET:
		if fam != unix.AF_INET && fam != unix.AF_UNSPEC {
			return dest{}, unix.EAFNOSUPPORT
		}
		return parseIPv4(b)
	case unix.AF_INET6:
		switch fam {
		case unix.AF_INET:
			return parseIPv4(b)
		case unix.AF_INET6:
			return parseIPv6(b)
		case unix.AF_UNSPEC:
			// udpv6 ignores such an address, raw IPv6 reads it as IPv6.
			if len(b) < unix.SizeofSockaddrInet6-4 {
				return dest{kind: destNone}, 0
			}
			return parseIPv6(b)
		}
		return dest{}, unix.EAFNOSUPPORT
	}
	return dest{}, unix.EAFNOSUPPORT
}

func parseIPv4(b []byte) (dest, unix.Errno) {
	if len(b) < unix.SizeofSockaddrInet4 {
		return dest{}, unix.EINVAL
	}
	return dest{kind: destIP, port: binary.BigEndian.Uint16(b[2:4]), addr: netip.AddrFrom4([4]byte(b[4:8]))}, 0
}

// parseIPv6 reads a sockaddr_in6 of at least SIN6_LEN_RFC2133 (24)
// bytes, what the kernel accepts. A v4-mapped address is checked as IPv4,
// which is where the kernel sends it.
func parseIPv6(b []byte) (dest, unix.Errno) {
	if len(b) < unix.SizeofSockaddrInet6-4 {
		return dest{}, unix.EINVAL
	}
	a := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	return dest{kind: destIP, port: binary.BigEndian.Uint16(b[2:4]), addr: a}, 0
}

func parseUnix(fam int, b []byte) (dest, unix.Errno) {
	if fam != unix.AF_UNIX || len(b) <= 2 {
		return dest{}, unix.EINVAL
	}
	p := b[2:]
	if p[0] == 0 {
		return dest{kind: destUnix, abstract: true, path: strconv.Quote(string(p[1:]))}, 0
	}
	for i, c := range p {
		if c == 0 {
			p = p[:i]
			break
		}
	}
	return dest{kind: destUnix, path: string(p)}, 0
}
