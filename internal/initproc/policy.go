package initproc

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"

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
//
// No program carries SECCOMP_FILTER_FLAG_TSYNC (the config's
// linux.seccomp.flags cannot ask for it, seccomp.CompileOCI): the filters
// cover this thread, and through execve the workload, but no other
// thread of this process, which handOver relies on.
func installSeccomp(progs []wire.BPF, denialFD, dns int) error {
	h := wire.NoHandover
	h.DNS = dns
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

// handOver sends the listeners (and the resolver socket) to the denial
// logger as SCM_RIGHTS and waits for its answer (wire.Handover); the
// caller then closes every copy here, since a process of the container
// holding a listener could answer its own calls.
//
// The exchange runs on another thread than this one. Seccomp filters,
// like the Landlock domain, the capabilities and the ids launch set with
// raw calls, belong to the thread that installed them, and main.go locked
// that thread to the main goroutine: here sendmsg(2) may now be a call
// the filter sends to the very listener it carries (the network
// broker's), and it would wait forever. A goroutine that locks itself to
// an OS thread cannot get this one, and every other thread of the
// process has no filter: they were cloned before the install, or after
// it from a thread without one (the runtime never clones a locked
// thread: its template thread does, runtime.newm).
//
// That thread keeps what this one had before launch gave it up
// (capabilities, no Landlock, no filter). This is safe: nothing runs
// there but this exchange, no code of the container has run yet, the
// process is undumpable until execve (nothing in the container can
// ptrace it or read its memory), and execve(2) ends every thread but the
// calling one, which carries the whole policy into the workload.
func handOver(h wire.Handover, denialFD int) error {
	if denialFD <= 0 {
		return fmt.Errorf("seccomp listener: no denial logger to hand it to")
	}
	defer unix.Close(denialFD)
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and takes
		// the privileges it kept with it.
		runtime.LockOSThread()
		done <- exchange(h, denialFD)
	}()
	return <-done
}

// exchange sends the handover with this thread's credentials (which the
// kernel checks) and reads the logger's answer.
func exchange(h wire.Handover, fd int) error {
	text, oob := h.Encode(unix.Getpid(), unix.Getuid(), unix.Getgid())
	if err := unix.Sendmsg(fd, text, oob, nil, 0); err != nil {
		return fmt.Errorf("hand the seccomp listener over to the denial logger: %w", err)
	}
	buf := make([]byte, 512)
	n, err := unix.Read(fd, buf)
	if err != nil || n == 0 {
		return fmt.Errorf("seccomp listener: the denial logger did not take it (%v)", err)
	}
	if answer := string(buf[:n]); answer != wire.HandoverOK {
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
