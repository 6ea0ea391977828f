package initproc

import (
	"fmt"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capNames maps capability names to numbers (linux/capability.h); 41
// capabilities, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40).
var capNames = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// lastCap is the highest capability this kernel knows, read once.
var lastCap = sync.OnceValue(func() uint {
	b, err := readSmall("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	var n uint
	if _, err := fmt.Sscanf(b, "%d", &n); err != nil {
		return 40
	}
	return n
})

// capMask turns a list of names into a 64-bit set. Names this kernel does
// not know are an error: a capability asked for must not silently vanish.
func capMask(field string, names []string) (uint64, error) {
	var m uint64
	last := lastCap()
	for i, n := range names {
		c, ok := capNames[n]
		if !ok {
			return 0, fmt.Errorf("%s[%d] %q: unknown capability", field, i, n)
		}
		if c > last {
			return 0, fmt.Errorf("%s[%d] %q: not supported by this kernel (last is %d)", field, i, n, last)
		}
		m |= 1 << c
	}
	return m, nil
}

// dropBounding removes every capability not in caps.bounding from the
// bounding set (nil caps: drop them all).
func dropBounding(caps *specs.LinuxCapabilities) error {
	var keep uint64
	if caps != nil {
		var err error
		if keep, err = capMask("process.capabilities.bounding", caps.Bounding); err != nil {
			return err
		}
	}
	last := lastCap()
	for c := uint(0); c <= last; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// applyCaps sets the effective, permitted and inheritable sets and raises
// the ambient ones, then clears keepcaps.
func applyCaps(caps *specs.LinuxCapabilities) error {
	if caps == nil {
		caps = &specs.LinuxCapabilities{}
	}
	eff, err := capMask("process.capabilities.effective", caps.Effective)
	if err != nil {
		return err
	}
	perm, err := capMask("process.capabilities.permitted", caps.Permitted)
	if err != nil {
		return err
	}
	inh, err := capMask("process.capabilities.inheritable", caps.Inheritable)
	if err != nil {
		return err
	}
	amb, err := capMask("process.capabilities.ambient", caps.Ambient)
	if err != nil {
		return err
	}
	// Ambient capabilities of our own setup (the parent grants them so the
	// init keeps its privileges across its own exec) must not survive.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities (effective %#x, permitted %#x, inheritable %#x): %w", eff, perm, inh, err)
	}
	// capabilities(7): a capability can be ambient only if it is both
	// permitted and inheritable; runc's default config lists ambient ones
	// that are not inheritable, which the parent reports as a warning.
	amb &= perm & inh
	for c := uint(0); c <= 63; c++ {
		if amb&(1<<c) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", err)
	}
	return nil
}

// CapabilityNames lists the capabilities zviz knows, in number order (for
// `zviz features`).
func CapabilityNames() []string {
	names := make([]string, len(capNames))
	for n, c := range capNames {
		names[c] = n
	}
	return names
}
