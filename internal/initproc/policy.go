package initproc

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
	"github.com/zviz/zviz/landlock"
	"github.com/zviz/zviz/seccomp"
)

// applyLandlock restricts this thread (and so the workload it execs) to
// the rules the parent derived from the mounts. Weaker enforcement than
// asked was announced by the parent; with Required it is refused here too.
func applyLandlock(r *wire.LandlockRules) error {
	if r == nil {
		return nil
	}
	rules := &landlock.Rules{
		ReadExec: r.ReadExec, ReadOnly: r.ReadOnly, ListOnly: r.ListOnly, Writable: r.Writable,
		RestrictNetwork: r.RestrictNetwork, RestrictConnect: r.RestrictConnect, TCPBind: r.TCPBind, TCPConnect: r.TCPConnect,
		Scope: r.Scope,
	}
	if _, err := landlock.Apply(rules, r.Required); err != nil {
		return fmt.Errorf("apply landlock: %w", err)
	}
	return nil
}

// installSeccomp installs each compiled program on this thread; the kernel
// enforces all of them (the strictest action wins), so the config's own
// filter and zviz's profile both apply. The listeners of those that
// notify, and the resolver socket dns (or -1), go to the listener's
// process in one handover once all are installed.
func installSeccomp(progs []wire.BPF, denialFD, dns int) error {
	h := wire.Handover{Listener: -1, Agent: -1, DNS: dns}
	defer func() {
		for _, fd := range []int{h.Listener, h.Agent, h.DNS} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, p := range progs {
		flags := p.Flags
		if p.Notify {
			flags |= seccomp.ListenerFlags()
		}
		listener, err := seccomp.Install(&seccomp.Program{Profile: p.Name, Arch: p.Arch, BPF: p.Program, Notify: p.Notify}, flags)
		if err != nil {
			return fmt.Errorf("install seccomp filter %s: %w", p.Name, err)
		}
		switch {
		case listener < 0:
		case p.Agent:
			h.Agent = listener
		default:
			h.Listener = listener
		}
	}
	if h.Listener < 0 && h.Agent < 0 {
		return nil
	}
	return handOver(h, denialFD)
}

// handOver announces the listeners (and the resolver socket) to the
// denial logger, which takes them with pidfd_getfd(2) and answers; the
// caller then closes every copy here: a process of the container holding
// a listener could answer its own calls. Not SCM_RIGHTS: sendmsg may be a
// brokered call now, waiting on the listener only we hold (see
// internal/container/denials.go). Only plain calls run between Install
// and exec (write, read, close).
func handOver(h wire.Handover, denialFD int) error {
	if denialFD <= 0 {
		return fmt.Errorf("seccomp listener: no denial logger to hand it to")
	}
	defer unix.Close(denialFD)
	if _, err := unix.Write(denialFD, []byte(h.String())); err != nil {
		return fmt.Errorf("announce seccomp listener to the denial logger: %w", err)
	}
	buf := make([]byte, 512)
	n, err := unix.Read(denialFD, buf)
	if err != nil || n == 0 {
		return fmt.Errorf("seccomp listener: the denial logger did not take it (%v)", err)
	}
	if answer := string(buf[:n]); answer != "ok" {
		return errors.New(answer)
	}
	return nil
}

// openDNS binds the UDP socket of the broker's resolver at addr
// ("IP:PORT") in the container's network namespace; -1 when addr is "".
func openDNS(addr string) (int, error) {
	if addr == "" {
		return -1, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1, fmt.Errorf("resolver address %q: want IPv4:PORT", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("resolver socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind resolver socket %s: %w", addr, err)
	}
	return fd, nil
}
