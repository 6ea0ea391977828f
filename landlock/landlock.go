package landlock

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	gll "github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Rules says what the container may reach. Paths are absolute and name the
// container's view (after pivot_root); they are resolved when Apply runs.
type Rules struct {
	// ReadExec: read and execute beneath these paths ("/" for an image root).
	ReadExec []string
	// ReadOnly: read, but not execute, beneath these paths.
	ReadOnly []string
	// ListOnly: list directories, and nothing else, beneath these paths
	// (the directories above a path cut out of a grant).
	ListOnly []string
	// Writable: also write, create (no device nodes), remove, rename and
	// link beneath these paths, and truncate and ioctl on device files
	// (a writable root, rw mounts, /tmp, /dev/shm, /dev/null, /dev/pts ...).
	Writable []string

	// RestrictNetwork denies TCP bind(2) and connect(2) except to the
	// listed ports (ABI 4). Without it the ports must be empty.
	RestrictNetwork bool
	// RestrictConnect denies only TCP connect(2) except to TCPConnect
	// (ABI 4): an egress allow-list, which must leave servers free to
	// bind. TCPBind must then be empty.
	RestrictConnect bool
	TCPBind         []uint16
	TCPConnect      []uint16

	// Scope denies connecting to abstract unix sockets and signalling
	// processes outside the domain (ABI 6).
	Scope bool
}

// Report says what Apply enforced. It is meant for stderr warnings and
// `zviz state`.
type Report struct {
	// ABI is the kernel's Landlock ABI version (0: unavailable).
	ABI int `json:"abi"`
	// Requested is the ABI version that the rules need in full.
	Requested int `json:"requested"`
	// Applied is the ABI version whose features were enforced:
	// min(Requested, what the kernel can do).
	Applied int `json:"applied"`
	// Downgrades has one line per protection asked for but not enforced.
	Downgrades []string `json:"downgrades,omitempty"`
	// Notes has one line per path skipped (missing) or resolved through
	// a symlink. None of them weakens the policy.
	Notes []string `json:"notes,omitempty"`
}

// ABI returns the kernel's Landlock ABI version, 0 when Landlock is not
// built in (ENOSYS) or not enabled at boot (EOPNOTSUPP) (landlock.rst,
// "Landlock ABI versions"). It does not count errata; Report.Applied does.
func ABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// Apply restricts the calling thread to r, as far as the kernel allows, and
// reports what it enforced.
//
// Apply locks the calling goroutine to its OS thread for good: the caller
// must finish its setup and call execve(2) from the same goroutine. Other
// threads of the process are not restricted (doc.go, "One thread"). When
// it enforces anything, it also sets no_new_privs on the thread.
//
// Without required, missing kernel support is reported in
// Report.Downgrades and the rest is enforced (nothing at all without
// Landlock). With required, any downgrade is an error and nothing is
// applied; the report comes back with the error.
func Apply(r *Rules, required bool) (*Report, error) {
	errata, err := llsys.LandlockGetErrata()
	if err != nil {
		errata = 0 // an old kernel: no fix is known to be present
	}
	return apply(r, required, ABI(), errata)
}

// Plan reports what Apply would enforce of r on this kernel, without
// restricting anything: the runtime announces downgrades before the
// container starts from the same tables Apply uses.
func Plan(r *Rules) (*Report, error) {
	errata, err := llsys.LandlockGetErrata()
	if err != nil {
		errata = 0
	}
	p, err := makePlan(r, ABI(), errata)
	if err != nil {
		return nil, err
	}
	return &p.report, nil
}

// apply is Apply for a given kernel ABI version and errata bits. Tests pass
// a lower ABI to simulate older kernels: go-landlock then builds a ruleset
// limited to that ABI, which the running kernel enforces as such.
func apply(r *Rules, required bool, kernelABI, errata int) (*Report, error) {
	p, err := makePlan(r, kernelABI, errata)
	if err != nil {
		return nil, err
	}
	if required && len(p.report.Downgrades) > 0 {
		return &p.report, fmt.Errorf("landlock: required but the kernel cannot enforce all of it: %s",
			strings.Join(p.report.Downgrades, "; "))
	}
	if p.cfg == (gll.Config{}) {
		return &p.report, nil // no Landlock: reported as downgrades
	}
	if err := enforce(p); err != nil {
		return nil, err
	}
	return &p.report, nil
}

// enforce builds the ruleset with go-landlock and restricts the calling
// thread with it.
func enforce(p *plan) error {
	// p.cfg is not best-effort: go-landlock checks it against the ABI it
	// detects itself, so a plan that disagrees with the kernel fails here
	// instead of being weakened quietly.
	fd, flags, err := p.cfg.NewRulesetFD(p.rules...)
	if err != nil {
		return fmt.Errorf("landlock: create ruleset: %w", err)
	}
	if fd < 0 {
		return fmt.Errorf("landlock: create ruleset: nothing to enforce for %v", p.cfg)
	}
	defer unix.Close(fd)

	// Never unlocked: the restricted thread must not run other goroutines,
	// and dies with this one (runtime.LockOSThread).
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("landlock: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if err := llsys.LandlockRestrictSelf(fd, flags); err != nil {
		if errors.Is(err, unix.E2BIG) {
			return fmt.Errorf("landlock: restrict self: already 16 nested domains: %w", err)
		}
		return fmt.Errorf("landlock: restrict self: %w", err)
	}
	return nil
}
