package broker

import (
	"encoding/binary"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's limits for a msghdr (include/linux/uio.h, net/socket.c).
const (
	uioMaxIOV   = 1024
	maxControl  = 64 << 10 // above the default net.core.optmem_max: ENOBUFS
	sizeofMmsg  = unix.SizeofMsghdr + 8
	sizeofCmsg  = unix.SizeofCmsghdr
	sizeofIovec = 16
)

// message is one msghdr, copied out of the caller: the broker sends these
// bytes, never the caller's memory.
type message struct {
	name    []byte // sockaddr; empty: the connected peer
	data    []byte // the iovecs, gathered
	control []byte // ancillary data, SCM_RIGHTS descriptors translated
	d       dest
}

// readMsg copies the msghdr at addr and everything it points to. The
// struct is decoded by hand: its pointers are the caller's addresses,
// which must not sit in Go pointer fields.
func (c *call) readMsg(addr uint64) (*message, unix.Errno) {
	h, e := c.t.read(addr, unix.SizeofMsghdr)
	if e != 0 {
		return nil, e
	}
	u64 := func(off int) uint64 { return binary.NativeEndian.Uint64(h[off:]) }
	m := &message{d: dest{kind: destNone}}
	if name, namelen := u64(0), int32(binary.NativeEndian.Uint32(h[8:])); name != 0 {
		if namelen < 0 {
			return nil, unix.EINVAL
		}
		// The kernel truncates a longer name to a sockaddr_storage.
		if m.name, e = c.t.read(name, min(int(namelen), unix.SizeofSockaddrAny)); e != 0 {
			return nil, e
		}
	}
	iov, iovlen := u64(16), u64(24)
	if iovlen > uioMaxIOV {
		return nil, unix.EMSGSIZE
	}
	vb, e := c.t.read(iov, int(iovlen)*sizeofIovec)
	if e != 0 {
		return nil, e
	}
	remote := make([]unix.RemoteIovec, iovlen)
	total := uint64(0)
	for i := range remote {
		base, l := binary.NativeEndian.Uint64(vb[i*16:]), binary.NativeEndian.Uint64(vb[i*16+8:])
		if int64(l) < 0 {
			return nil, unix.EINVAL
		}
		total += l
		remote[i] = unix.RemoteIovec{Base: uintptr(base), Len: int(l)}
	}
	if total > maxData && c.typ != unix.SOCK_STREAM {
		return nil, unix.EMSGSIZE
	}
	if m.data, e = c.t.readv(remote, maxData); e != 0 {
		return nil, e
	}
	if ctl, l := u64(32), u64(40); ctl != 0 && l > 0 {
		if l > maxControl {
			return nil, unix.ENOBUFS
		}
		if m.control, e = c.t.read(ctl, int(l)); e != 0 {
			return nil, e
		}
		if e := c.translateRights(m.control); e != 0 {
			return nil, e
		}
	}
	if len(m.name) > 0 {
		if m.d, e = parseDest(c.domain, m.name, false); e != 0 {
			return nil, e
		}
	}
	return m, 0
}

// translateRights replaces the caller's descriptor numbers in SCM_RIGHTS
// messages by the broker's duplicates of the same files, so the receiver
// gets what the caller meant to pass, and refuses source routing
// (sourceRouting). A malformed header is left for the kernel to refuse.
func (c *call) translateRights(b []byte) unix.Errno {
	for off := 0; off+sizeofCmsg <= len(b); {
		clen := int(binary.NativeEndian.Uint64(b[off:]))
		if clen < sizeofCmsg || clen > len(b)-off {
			return 0
		}
		level := int32(binary.NativeEndian.Uint32(b[off+8:]))
		typ := int32(binary.NativeEndian.Uint32(b[off+12:]))
		if what, ok := sourceRouting(level, typ, true); ok {
			if c.t.valid() {
				c.b.refusal(callName(c.n.Nr), c.n, what)
			}
			return Refused
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_RIGHTS {
			for p := off + sizeofCmsg; p+4 <= off+clen; p += 4 {
				fd, e := c.t.getfd(uint64(binary.NativeEndian.Uint32(b[p:])))
				if e != 0 {
					return e
				}
				binary.NativeEndian.PutUint32(b[p:], uint32(fd))
			}
		}
		off += unix.CmsgSpace(clen - sizeofCmsg)
	}
	return 0
}

// send performs one message on the socket.
func (c *call) send(m *message, flags int) (int64, unix.Errno) {
	iov := unix.Iovec{Base: (*byte)(ptr(m.data)), Len: uint64(len(m.data))}
	h := unix.Msghdr{Name: (*byte)(ptr(m.name)), Namelen: uint32(len(m.name)), Iov: &iov, Iovlen: 1,
		Control: (*byte)(ptr(m.control)), Controllen: uint64(len(m.control))}
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(c.sock), uintptr(unsafe.Pointer(&h)), uintptr(flags))
	runtime.KeepAlive(m)
	return int64(r), e
}

// sendmsg(fd, msg, flags).
func (c *call) sendmsg() (func() (int64, unix.Errno), unix.Errno) {
	if e := c.socket(); e != 0 {
		return nil, e
	}
	m, e := c.readMsg(c.n.Args[1])
	if e != 0 {
		return nil, e
	}
	if e := c.checkValid("sendmsg", m.d, &m.name); e != 0 {
		return nil, e
	}
	return c.sender(int(c.n.Args[2]), func(flags int) (int64, unix.Errno) { return c.send(m, flags) }), 0
}

// sendmmsg(fd, msgvec, vlen, flags): the messages are sent in order and
// each msg_len written back; the first refusal or failure ends the call
// with the count so far, or its errno when it is the first message, as
// the kernel does.
func (c *call) sendmmsg() (func() (int64, unix.Errno), unix.Errno) {
	if e := c.socket(); e != 0 {
		return nil, e
	}
	vec, vlen := c.n.Args[1], min(uint32(c.n.Args[2]), uioMaxIOV)
	var msgs []*message
	for i := uint32(0); i < vlen; i++ {
		m, e := c.readMsg(vec + uint64(i)*sizeofMmsg)
		if e != 0 {
			if i == 0 {
				return nil, e
			}
			break
		}
		if m.d.kind == destUnix && !m.d.abstract {
			if e := c.check("sendmmsg", m.d, &m.name); e != 0 {
				return nil, e
			}
			m.d.kind = destNone
		}
		msgs = append(msgs, m)
	}
	if !c.t.valid() {
		return nil, unix.EINTR
	}
	flags := int(c.n.Args[3])
	var senders []func() (int64, unix.Errno)
	for _, m := range msgs {
		senders = append(senders, c.sender(flags, func(flags int) (int64, unix.Errno) { return c.send(m, flags) }))
	}
	return func() (int64, unix.Errno) {
		for i, m := range msgs {
			e := c.check("sendmmsg", m.d, &m.name)
			var n int64
			if e == 0 {
				n, e = senders[i]()
			}
			if e != 0 {
				if i == 0 {
					return 0, e
				}
				return int64(i), 0
			}
			c.t.writeU32(vec+uint64(i)*sizeofMmsg+unix.SizeofMsghdr, uint32(n))
		}
		return int64(len(msgs)), 0
	}, 0
}
