// Package broker decides the calls a profile's seccomp program sends to
// user space (SECCOMP_RET_USER_NOTIF) when an egress allow-list is active:
// connect(2), sendto(2) with an address, sendmsg(2) and sendmmsg(2). BPF
// cannot read the sockaddr behind those pointers, so the broker reads it
// from the caller's memory, checks it against network.allow (and the
// addresses admitted for network.allow_domains), and performs the call
// itself on the caller's socket, taken with pidfd_getfd(2), from the
// bytes it checked. It never answers SECCOMP_USER_NOTIF_FLAG_CONTINUE:
// the container could change the sockaddr between the check and the
// kernel reading it again (seccomp_unotify(2), "Caveats").
//
// It sits between the core (internal/container, which runs it in the
// process that holds the listener, see seccomp.Listen) and the seccomp
// package whose notifications it answers.
package broker

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/seccomp"
)

// Refused is the errno of a call the allow-list refuses: EACCES, what
// connect(2) documents for "a local firewall rule" and what Landlock's
// TCP rules answer, so a program sees the same refusal from either layer.
// (ECONNREFUSED would invite a retry loop: it means nobody listens.)
const Refused = unix.EACCES

// maxData bounds what one brokered send copies out of the container. A
// stream socket sends a prefix (a short count, which send(2) allows); a
// datagram larger than this is refused with EMSGSIZE (no IP datagram is
// larger than 64 KiB anyway).
const maxData = 4 << 20

// Broker answers the brokered calls of one container.
type Broker struct {
	Policy  *Policy
	Profile string    // for log lines
	Log     io.Writer // refusals always; every decision when Verbose
	Verbose bool
	// HostNetwork: the container shares the host's network namespace, so
	// abstract unix socket names are the host's: refused (the caller's
	// Landlock scope would have refused them, and the broker's connect
	// is not under it).
	HostNetwork bool

	mu   sync.Mutex // serialises log lines, and guards Log and line
	line []byte
}

// Session is the broker's side of one seccomp listener. One Broker (its
// policy, the addresses admitted for allow_domains, its log) serves the
// listener of the container's init and those of the processes `zviz
// exec` starts in it, each in a goroutine of its own: what the threads
// of one listener's callers keep open is that listener's alone
// (threadCache), since a cache shared between goroutines could close a
// descriptor one of them is reading through.
type Session struct {
	b       *Broker
	threads threadCache // the listener's goroutine only
}

// Session starts the session of one listener; Close it once the
// listener is done.
func (b *Broker) Session() *Session { return &Session{b: b} }

// Close releases what the session keeps of its callers' threads.
func (s *Session) Close() { s.threads.close() }

// Handle answers notification n on listener fd (seccomp.ListenOptions.
// Broker). answered is true when a call that may block was handed to a
// goroutine, which answers it itself.
func (s *Session) Handle(fd int, n *seccomp.Notification) (val int64, errno unix.Errno, answered bool) {
	val, errno, answered = s.handle(fd, n)
	if errno == unix.ESRCH && !answered {
		// A cached thread had exited (threadCache): once more, afresh.
		s.threads.drop(int(n.Pid))
		val, errno, answered = s.handle(fd, n)
	}
	return val, errno, answered
}

func (s *Session) handle(fd int, n *seccomp.Notification) (val int64, errno unix.Errno, answered bool) {
	t, e := openTarget(fd, n, &s.threads)
	if e != 0 {
		return 0, e, false
	}
	c := &call{b: s.b, t: t, n: n}
	var op func() (int64, unix.Errno)
	switch n.Nr {
	case unix.SYS_CONNECT:
		op, e = c.connect()
	case unix.SYS_SENDTO:
		op, e = c.sendto()
	case unix.SYS_SENDMSG:
		op, e = c.sendmsg()
	case unix.SYS_SENDMMSG:
		op, e = c.sendmmsg()
	case unix.SYS_SETSOCKOPT:
		op, e = c.setsockopt()
	default:
		e = unix.ENOSYS
	}
	if op == nil {
		t.close()
		return 0, e, false
	}
	if !c.blocks {
		val, e = op()
		t.close()
		return val, e, false
	}
	t.detach()
	go func() {
		val, e := op()
		_ = seccomp.RespondErrno(fd, n.ID, val, e)
		t.close()
	}()
	return 0, 0, true
}

// call is one notification being brokered.
type call struct {
	b      *Broker
	t      *target
	n      *seccomp.Notification
	sock   int
	domain int
	typ    int
	nonblk bool // the socket is O_NONBLOCK
	blocks bool // performing it may block: do it in a goroutine
}

// socket takes the caller's socket and learns its domain, type and mode.
func (c *call) socket() unix.Errno {
	s, e := c.t.getfd(c.n.Args[0])
	if e != 0 {
		return e
	}
	c.sock = s
	var err error
	if c.domain, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil {
		return unix.ENOTSOCK
	}
	if c.typ, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
		return unix.ENOTSOCK
	}
	if c.typ == unix.SOCK_STREAM || c.typ == unix.SOCK_SEQPACKET {
		// SCTP (stream and seqpacket) sends to address lists and to
		// destinations named in control messages, and moves between a
		// peer's addresses: not checkable here, refused.
		if proto, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_PROTOCOL); err == nil && proto == unix.IPPROTO_SCTP {
			if c.t.valid() {
				c.b.refusal(callName(c.n.Nr), c.n, "on an SCTP socket")
			}
			return Refused
		}
	}
	if c.typ == unix.SOCK_RAW || c.typ == unix.SOCK_PACKET {
		// A raw socket writes its own IP header (IP_HDRINCL, IPv6 raw
		// with a routing header): the address the broker checks is not
		// where the packet goes. (Raw sockets need CAP_NET_RAW, which no
		// built-in profile keeps.)
		if c.t.valid() {
			c.b.refusal(callName(c.n.Nr), c.n, "on a raw socket")
		}
		return Refused
	}
	if c.typ == unix.SOCK_DGRAM && c.n.Nr == unix.SYS_CONNECT {
		return 0 // a datagram connect never blocks
	}
	fl, err := unix.FcntlInt(uintptr(s), unix.F_GETFL, 0)
	if err != nil {
		return unix.EBADF
	}
	c.nonblk = fl&unix.O_NONBLOCK != 0
	return 0
}

// sockaddr reads the caller's address of length l at p (at most
// sizeof(struct sockaddr_storage); the kernel refuses longer for connect
// and truncates for sendmsg, which callers arrange).
func (c *call) sockaddr(p, l uint64) ([]byte, unix.Errno) {
	n := int64(int32(l))
	if n < 0 || n > unix.SizeofSockaddrAny {
		return nil, unix.EINVAL
	}
	return c.t.read(p, int(n))
}

// check decides d for syscall name: 0 to go on, or the errno to answer.
// Unix path destinations are opened in the caller's root and raw is
// rewritten to reach that inode through /proc/self/fd.
func (c *call) check(name string, d dest, raw *[]byte) unix.Errno {
	switch d.kind {
	case destNone:
		return 0
	case destUnix:
		if d.abstract {
			if c.b.HostNetwork {
				c.b.decision(name, c.n, d, false, "abstract unix socket of the host's network namespace")
				return Refused
			}
			return 0
		}
		fd, e := c.t.resolveUnix(d.path)
		if e != 0 {
			return e
		}
		*raw = unixPath("/proc/self/fd/" + strconv.Itoa(fd))
		return 0
	}
	ok, why := c.b.Policy.Decide(d.addr, d.port)
	c.b.decision(name, c.n, d, ok, why)
	if !ok {
		return Refused
	}
	return 0
}

func unixPath(p string) []byte {
	b := make([]byte, 2, 2+len(p)+1)
	*(*uint16)(ptr(b)) = unix.AF_UNIX
	b = append(b, p...)
	return append(b, 0)
}

// connect(fd, addr, addrlen).
func (c *call) connect() (func() (int64, unix.Errno), unix.Errno) {
	raw, e := c.sockaddr(c.n.Args[1], c.n.Args[2])
	if e != 0 {
		return nil, e
	}
	if e := c.socket(); e != 0 {
		return nil, e
	}
	d, e := parseDest(c.domain, raw, true)
	if e != 0 {
		return nil, e
	}
	if e := c.checkValid("connect", d, &raw); e != 0 {
		return nil, e
	}
	c.blocks = !c.nonblk && c.typ != unix.SOCK_DGRAM
	return func() (int64, unix.Errno) {
		_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(c.sock), uintptr(ptr(raw)), uintptr(len(raw)))
		runtime.KeepAlive(raw)
		return 0, e
	}, 0
}

// sendto(fd, buf, len, flags, addr, addrlen). The program lets a sendto
// without an address (send(2) on a connected socket) through in BPF.
func (c *call) sendto() (func() (int64, unix.Errno), unix.Errno) {
	a := c.n.Args
	var raw []byte
	if a[4] != 0 {
		var e unix.Errno
		if raw, e = c.sockaddr(a[4], a[5]); e != 0 {
			return nil, e
		}
	}
	if e := c.socket(); e != 0 {
		return nil, e
	}
	size := a[2]
	if size > maxData {
		if c.typ != unix.SOCK_STREAM {
			return nil, unix.EMSGSIZE
		}
		size = maxData
	}
	data, e := c.t.read(a[1], int(size))
	if e != 0 {
		return nil, e
	}
	d := dest{kind: destNone}
	if raw != nil {
		if d, e = parseDest(c.domain, raw, false); e != 0 {
			return nil, e
		}
	}
	if e := c.checkValid("sendto", d, &raw); e != 0 {
		return nil, e
	}
	flags := int(a[3])
	return c.sender(flags, func(flags int) (int64, unix.Errno) {
		r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.sock), uintptr(ptr(data)), uintptr(len(data)),
			uintptr(flags), uintptr(ptr(raw)), uintptr(len(raw)))
		runtime.KeepAlive(data)
		runtime.KeepAlive(raw)
		return int64(r), e
	}), 0
}

// checkValid checks d once the caller is confirmed to be still waiting
// (unix paths are opened before that: opening reads the caller's root).
// A caller that went away gets EINTR, which nobody reads.
func (c *call) checkValid(name string, d dest, raw *[]byte) unix.Errno {
	if d.kind == destUnix && !d.abstract {
		if e := c.check(name, d, raw); e != 0 {
			return e
		}
		d.kind = destNone
	}
	if !c.t.valid() {
		return unix.EINTR
	}
	return c.check(name, d, raw)
}

// sender wraps a send so that it never blocks the listener: a socket in
// blocking mode is tried with MSG_DONTWAIT first (datagrams), and sent in
// a goroutine when that would block; a blocking stream send always goes
// to a goroutine (MSG_DONTWAIT would make it return short).
func (c *call) sender(flags int, send func(flags int) (int64, unix.Errno)) func() (int64, unix.Errno) {
	if c.nonblk || flags&unix.MSG_DONTWAIT != 0 {
		return func() (int64, unix.Errno) { return send(flags) }
	}
	if c.typ == unix.SOCK_STREAM || c.typ == unix.SOCK_SEQPACKET {
		c.blocks = true
		return func() (int64, unix.Errno) { return send(flags) }
	}
	return func() (int64, unix.Errno) {
		r, e := send(flags | unix.MSG_DONTWAIT)
		if e != unix.EAGAIN {
			return r, e
		}
		return send(flags) // rare: a full send buffer; blocks this listener
	}
}

// decision logs one broker decision: every refusal, and with Verbose
// every decision.
//
//	zviz: broker: connect 10.0.0.2:80 refused (EACCES: not in network.allow) pid 42 [profile web]
//	zviz: broker: connect 10.0.0.1:80 allowed (10.0.0.0/24) pid 42 [profile web]
func (b *Broker) decision(name string, n *seccomp.Notification, d dest, ok bool, why string) {
	if ok && !b.Verbose {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Log == nil {
		return
	}
	l := append(b.line[:0], "zviz: broker: "...)
	l = append(l, name...)
	l = append(l, ' ')
	l = append(l, d.String()...)
	if ok {
		l = fmt.Appendf(l, " allowed (%s)", why)
	} else {
		if why == "" {
			why = "not in network.allow"
		}
		l = fmt.Appendf(l, " refused (%s: %s)", unix.ErrnoName(Refused), why)
	}
	l = fmt.Appendf(l, " pid %d [profile %s]\n", n.Pid, b.Profile)
	b.line = l
	if _, err := b.Log.Write(l); err != nil {
		b.Log = io.Discard
	}
}

// ptr is the address of b's first byte, nil for an empty b.
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func callName(nr int32) string {
	switch nr {
	case unix.SYS_CONNECT:
		return "connect"
	case unix.SYS_SENDTO:
		return "sendto"
	case unix.SYS_SENDMSG:
		return "sendmsg"
	case unix.SYS_SENDMMSG:
		return "sendmmsg"
	case unix.SYS_SETSOCKOPT:
		return "setsockopt"
	}
	return "syscall_" + strconv.Itoa(int(nr))
}
