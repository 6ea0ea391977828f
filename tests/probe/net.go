package main

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Network tries, for the egress allow-list and its broker. Addresses are
// ADDR:PORT or [V6]:PORT; a try that needs more takes them joined by "/".
// Listeners (serve, serve-udp, serve-unix) run in the background for the
// rest of the probe's tries, counting what reaches them; count:ADDR
// reports that count in the fields. Results are errnos as everywhere:
// EACCES is the broker's refusal.
//
//	serve:ADDR          TCP listener that accepts and closes
//	serve-udp:ADDR      UDP socket that counts datagrams
//	serve-unix:PATH     unix stream listener (PATH starting with @: abstract)
//	count:ADDR          fields count=N: connections or datagrams so far
//	connect:ADDR        blocking TCP connect
//	connect-nb:ADDR     non-blocking connect: fields first=EINPROGRESS, then
//	                    the result of poll and SO_ERROR
//	connect-unix:PATH   unix stream connect
//	sendto-udp:ADDR     one UDP datagram with sendto(2)
//	sendmsg-udp:ADDR    one UDP datagram with sendmsg(2)
//	sendmmsg-udp:ADDR   two datagrams in one sendmmsg(2): fields sent=N
//	send-connected:ADDR UDP connect(2), then send(2) without an address
//	race:OK/BAD/SECS    threads flip one sockaddr between OK and BAD while
//	                    others connect through it; fields ok, refused, other
//	many:ADDR/N         N connects at once; fields ok=N
//	resolve:NAME        the system resolver (/etc/resolv.conf): fields
//	                    addrs; ENOENT when the name does not resolve
//	dial:NAME:PORT      resolve NAME and connect to it over TCP
//	wait:SECS           sleep (listeners keep serving meanwhile)
//	srr:HOP             setsockopt(IP_OPTIONS) with loose source routing via
//	                    HOP on a UDP socket (the setsockopt's errno)
//	retopts:HOP/ADDR    sendmsg to ADDR with an IP_RETOPTS control message
//	                    routing via HOP
//	tos                 setsockopt(IP_TOS) on a UDP socket: an ordinary option
func init() {
	for name, f := range map[string]tryFunc{
		"serve": tryServe, "serve-udp": tryServeUDP, "serve-unix": tryServeUnix, "count": tryCount,
		"connect": tryConnect, "connect-nb": tryConnectNB, "connect-unix": tryConnectUnix,
		"sendto-udp": trySendtoUDP, "sendmsg-udp": trySendmsgUDP, "sendmmsg-udp": trySendmmsgUDP,
		"send-connected": trySendConnected, "race": tryRace, "many": tryMany,
		"resolve": tryResolve, "dial": tryDial, "wait": tryWait,
		"srr": trySRR, "retopts": tryRetopts, "tos": tryTOS,
	} {
		tries[name] = f
	}
}

var counters sync.Map // address → *atomic.Int64

func counter(addr string) *atomic.Int64 {
	c, _ := counters.LoadOrStore(addr, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// sockaddr is the raw sockaddr_in or sockaddr_in6 for "ADDR:PORT".
func sockaddr(s string) (domain int, raw []byte, err error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return 0, nil, unix.EINVAL
	}
	port := ap.Port()
	if ap.Addr().Is4() {
		raw = make([]byte, unix.SizeofSockaddrInet4)
		*(*uint16)(unsafe.Pointer(&raw[0])) = unix.AF_INET
		raw[2], raw[3] = byte(port>>8), byte(port)
		a := ap.Addr().As4()
		copy(raw[4:], a[:])
		return unix.AF_INET, raw, nil
	}
	raw = make([]byte, unix.SizeofSockaddrInet6)
	*(*uint16)(unsafe.Pointer(&raw[0])) = unix.AF_INET6
	raw[2], raw[3] = byte(port>>8), byte(port)
	a := ap.Addr().As16()
	copy(raw[8:], a[:])
	return unix.AF_INET6, raw, nil
}

func unixSockaddr(path string) []byte {
	raw := make([]byte, 2, 2+len(path)+1)
	*(*uint16)(unsafe.Pointer(&raw[0])) = unix.AF_UNIX
	if strings.HasPrefix(path, "@") {
		return append(append(raw, 0), path[1:]...)
	}
	return append(append(raw, path...), 0)
}

func rawSyscall(trap uintptr, a ...uintptr) (uintptr, error) {
	for len(a) < 6 {
		a = append(a, 0)
	}
	r, _, e := unix.Syscall6(trap, a[0], a[1], a[2], a[3], a[4], a[5])
	return r, errnoOf(e)
}

func connectRaw(fd int, raw []byte) error {
	_, err := rawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw)))
	return err
}

func bindListen(typ int, addr string) (int, error) {
	domain, raw, err := sockaddr(addr)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if _, err := rawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw))); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 1024); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

func acceptLoop(fd int, c *atomic.Int64) {
	for {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			return
		}
		c.Add(1)
		unix.Close(nfd)
	}
}

func tryServe(addr string, _ fields) error {
	fd, err := bindListen(unix.SOCK_STREAM, addr)
	// A new IPv6 address is tentative (duplicate address detection) for a
	// moment: EADDRNOTAVAIL until then.
	for i := 0; err == unix.EADDRNOTAVAIL && i < 60; i++ {
		time.Sleep(50 * time.Millisecond)
		fd, err = bindListen(unix.SOCK_STREAM, addr)
	}
	if err != nil {
		return err
	}
	go acceptLoop(fd, counter(addr))
	return nil
}

func tryServeUDP(addr string, _ fields) error {
	fd, err := bindListen(unix.SOCK_DGRAM, addr)
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := unix.Recvfrom(fd, buf, 0); err != nil && err != unix.EINTR {
				return
			}
			counter(addr).Add(1)
		}
	}()
	return nil
}

func tryServeUnix(path string, _ fields) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	raw := unixSockaddr(path)
	if _, err := rawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw))); err != nil {
		return err
	}
	if err := unix.Listen(fd, 128); err != nil {
		return err
	}
	go acceptLoop(fd, counter(path))
	return nil
}

func tryCount(addr string, f fields) error {
	time.Sleep(100 * time.Millisecond) // what is in flight arrives
	f["count"] = strconv.FormatInt(counter(addr).Load(), 10)
	return nil
}

func socketFor(addr string, typ int) (int, []byte, error) {
	domain, raw, err := sockaddr(addr)
	if err != nil {
		return -1, nil, err
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	return fd, raw, err
}

func tryConnect(addr string, _ fields) error {
	fd, raw, err := socketFor(addr, unix.SOCK_STREAM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return connectRaw(fd, raw)
}

func tryConnectNB(addr string, f fields) error {
	fd, raw, err := socketFor(addr, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = connectRaw(fd, raw)
	f["first"] = errnoName(err)
	if err != unix.EINPROGRESS {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if _, err := unix.Poll(pfd, 5000); err != nil {
		return err
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	return errnoOf(unix.Errno(soerr))
}

func tryConnectUnix(path string, _ fields) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return connectRaw(fd, unixSockaddr(path))
}

var payload = []byte("zviz-probe")

func trySendtoUDP(addr string, _ fields) error {
	fd, raw, err := socketFor(addr, unix.SOCK_DGRAM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = rawSyscall(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&payload[0])), uintptr(len(payload)), 0,
		uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw)))
	return err
}

// msghdr builds a struct msghdr for one datagram to raw.
func msghdr(raw []byte, iov *unix.Iovec) unix.Msghdr {
	*iov = unix.Iovec{Base: &payload[0], Len: uint64(len(payload))}
	return unix.Msghdr{Name: &raw[0], Namelen: uint32(len(raw)), Iov: iov, Iovlen: 1}
}

func trySendmsgUDP(addr string, _ fields) error {
	fd, raw, err := socketFor(addr, unix.SOCK_DGRAM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var iov unix.Iovec
	h := msghdr(raw, &iov)
	_, err = rawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), 0)
	return err
}

func trySendmmsgUDP(addr string, f fields) error {
	fd, raw, err := socketFor(addr, unix.SOCK_DGRAM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	type mmsghdr struct {
		hdr unix.Msghdr
		len uint32
		_   [4]byte
	}
	var iov [2]unix.Iovec
	msgs := [2]mmsghdr{{hdr: msghdr(raw, &iov[0])}, {hdr: msghdr(raw, &iov[1])}}
	n, err := rawSyscall(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), 2, 0)
	f["sent"] = strconv.Itoa(int(n))
	f["len0"] = strconv.Itoa(int(msgs[0].len))
	return err
}

func trySendConnected(addr string, _ fields) error {
	fd, raw, err := socketFor(addr, unix.SOCK_DGRAM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := connectRaw(fd, raw); err != nil {
		return err
	}
	_, err = unix.Write(fd, payload)
	return err
}

// tryRace: half the threads rewrite one shared sockaddr between the
// allowed and the forbidden address as fast as they can, the other half
// connect through it until the time is up. A broker that checked the
// address and then let the kernel read it again would connect some of
// them to the forbidden listener.
func tryRace(arg string, f fields) error {
	parts := strings.Split(arg, "/")
	if len(parts) != 3 {
		return unix.EINVAL
	}
	_, good, err1 := sockaddr(parts[0])
	domain, bad, err2 := sockaddr(parts[1])
	secs, err3 := strconv.ParseFloat(parts[2], 64)
	if err := errors.Join(err1, err2, err3); err != nil || len(good) != len(bad) {
		return unix.EINVAL
	}
	shared := make([]byte, len(good))
	copy(shared, good)
	var stop atomic.Bool
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for !stop.Load() {
				copy(shared, bad)
				copy(shared, good)
			}
		}()
	}
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for !stop.Load() {
				fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					other.Add(1)
					continue
				}
				switch connectRaw(fd, shared) {
				case nil:
					ok.Add(1)
				case unix.EACCES:
					refused.Add(1)
				default:
					other.Add(1)
				}
				unix.Close(fd)
			}
		}()
	}
	time.Sleep(time.Duration(secs * float64(time.Second)))
	stop.Store(true)
	wg.Wait()
	f["ok"], f["refused"], f["other"] = strconv.FormatInt(ok.Load(), 10), strconv.FormatInt(refused.Load(), 10), strconv.FormatInt(other.Load(), 10)
	return nil
}

// tryMany connects N sockets at once, each from its own thread.
func tryMany(arg string, f fields) error {
	addr, ns, _ := strings.Cut(arg, "/")
	n, err := strconv.Atoi(ns)
	if err != nil || n < 1 {
		return unix.EINVAL
	}
	var ok atomic.Int64
	errs := sync.Map{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd, raw, err := socketFor(addr, unix.SOCK_STREAM)
			if err == nil {
				<-start
				err = connectRaw(fd, raw)
				defer unix.Close(fd)
			}
			if err == nil {
				ok.Add(1)
				return
			}
			errs.Store(errnoName(err), true)
		}()
	}
	close(start)
	wg.Wait()
	f["ok"] = strconv.FormatInt(ok.Load(), 10)
	var names []string
	errs.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
	if len(names) > 0 {
		f["errors"] = strings.Join(names, ",")
	}
	return nil
}

func tryResolve(name string, f fields) error {
	addrs, err := net.LookupHost(name)
	if err != nil {
		f["error"] = err.Error()
		return unix.ENOENT
	}
	f["addrs"] = strings.Join(addrs, ",")
	return nil
}

func tryDial(arg string, f fields) error {
	c, err := net.DialTimeout("tcp", arg, 5*time.Second)
	if err != nil {
		f["error"] = err.Error()
		var errno unix.Errno
		if errors.As(err, &errno) {
			return errno
		}
		return unix.ENOENT
	}
	f["peer"] = c.RemoteAddr().String()
	return c.Close()
}

func tryWait(arg string, _ fields) error {
	secs, err := strconv.ParseFloat(arg, 64)
	if err != nil {
		return unix.EINVAL
	}
	time.Sleep(time.Duration(secs * float64(time.Second)))
	return nil
}

// lsrr is an IPv4 loose source route option through hop (RFC 791), padded
// to a multiple of 4 with an end-of-options byte.
func lsrr(hop string) ([]byte, error) {
	a, err := netip.ParseAddr(hop)
	if err != nil || !a.Is4() {
		return nil, unix.EINVAL
	}
	h := a.As4()
	return []byte{0x83, 7, 4, h[0], h[1], h[2], h[3], 0}, nil
}

func trySRR(hop string, _ fields) error {
	opt, err := lsrr(hop)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = rawSyscall(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_IP, unix.IP_OPTIONS,
		uintptr(unsafe.Pointer(&opt[0])), uintptr(len(opt)))
	return err
}

func tryRetopts(arg string, _ fields) error {
	hop, addr, _ := strings.Cut(arg, "/")
	opt, err := lsrr(hop)
	if err != nil {
		return err
	}
	fd, raw, err := socketFor(addr, unix.SOCK_DGRAM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	oob := make([]byte, unix.CmsgSpace(len(opt)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_IP, unix.IP_RETOPTS
	h.SetLen(unix.CmsgLen(len(opt)))
	copy(oob[unix.CmsgLen(0):], opt)
	var iov unix.Iovec
	m := msghdr(raw, &iov)
	m.Control, m.Controllen = &oob[0], uint64(len(oob))
	_, err = rawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&m)), 0)
	return err
}

func tryTOS(string, fields) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TOS, 0x10); err != nil {
		return err
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_IP, unix.IP_TOS); err != nil || v != 0x10 {
		return unix.EIO // the broker did not set what was asked
	}
	return nil
}
