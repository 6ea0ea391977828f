package initproc

import (
	"fmt"

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
		RestrictNetwork: r.RestrictNetwork, TCPBind: r.TCPBind, TCPConnect: r.TCPConnect,
		Scope: r.Scope,
	}
	if _, err := landlock.Apply(rules, r.Required); err != nil {
		return fmt.Errorf("apply landlock: %w", err)
	}
	return nil
}

// installSeccomp installs each compiled program on this thread; the kernel
// enforces all of them (the strictest action wins), so the config's own
// filter and zviz's profile both apply.
func installSeccomp(progs []wire.BPF, denialFD int) error {
	for _, p := range progs {
		flags := p.Flags
		if p.Notify {
			flags |= seccomp.ListenerFlags()
		}
		listener, err := seccomp.Install(&seccomp.Program{Profile: p.Name, Arch: p.Arch, BPF: p.Program, Notify: p.Notify}, flags)
		if err != nil {
			return fmt.Errorf("install seccomp filter %s: %w", p.Name, err)
		}
		if listener >= 0 {
			if err := handOver(listener, denialFD); err != nil {
				return err
			}
		}
	}
	return nil
}

// handOver sends the filter's listener to the denial logger and closes
// every copy here: a process of the container holding it could answer its
// own calls. Only allowed syscalls run between Install and this (sendmsg,
// close), or the init would wait on a listener only it holds.
func handOver(listener, denialFD int) error {
	defer unix.Close(listener)
	if denialFD <= 0 {
		return fmt.Errorf("seccomp listener: no denial logger to hand it to")
	}
	defer unix.Close(denialFD)
	if err := unix.Sendmsg(denialFD, []byte("listener"), unix.UnixRights(listener), nil, 0); err != nil {
		return fmt.Errorf("send seccomp listener to the denial logger: %w", err)
	}
	return nil
}
