package initproc

import (
	"fmt"

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
		ReadExec: r.ReadExec, ReadOnly: r.ReadOnly, Writable: r.Writable,
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
func installSeccomp(progs []wire.BPF) error {
	for _, p := range progs {
		if _, err := seccomp.Install(&seccomp.Program{Profile: p.Name, Arch: p.Arch, BPF: p.Program}, p.Flags); err != nil {
			return fmt.Errorf("install seccomp filter %s: %w", p.Name, err)
		}
	}
	return nil
}
