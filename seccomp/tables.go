package seccomp

import (
	"fmt"
	"sort"
	"strings"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Architectures a profile is validated and compiled for. Names are the
// kernel's (uname -m); Go's names are accepted as aliases.
var arches = []struct {
	name, goName string
	scmp         libseccomp.ScmpArch
	audit        uint32 // AUDIT_ARCH_* as seccomp_data.arch carries it
}{
	{"x86_64", "amd64", libseccomp.ArchAMD64, unix.AUDIT_ARCH_X86_64},
	{"aarch64", "arm64", libseccomp.ArchARM64, unix.AUDIT_ARCH_AARCH64},
}

// canonicalArch maps "x86_64"/"amd64" and "aarch64"/"arm64" to the kernel name.
func canonicalArch(a string) (string, libseccomp.ScmpArch, error) {
	for _, x := range arches {
		if a == x.name || a == x.goName {
			return x.name, x.scmp, nil
		}
	}
	return "", 0, fmt.Errorf("unsupported architecture %q (zviz compiles for x86_64 and aarch64)", a)
}

func archNames() []string {
	var n []string
	for _, x := range arches {
		n = append(n, x.name)
	}
	return n
}

// Argument-filter kinds. Each syscall zviz can filter by argument has one
// fixed meaning for its value list, one errno for refused calls and one
// argument. The argument is the same on x86_64 and aarch64 for all four
// (clone's flags move only on s390/cris, CLONE_BACKWARDS2; see clone(2)
// NOTES), and the kernel reads all four as 32-bit values, so the compiler
// compares only the low 32 bits: high garbage can neither smuggle a
// refused value past the filter nor block an allowed one (CVE-2019-10063,
// flatpak's TIOCSTI bypass, was a 64-bit comparison on ioctl's cmd).
type filterKind struct {
	syscall string
	field   string // the YAML key holding the values
	allow   bool   // the values are the allowed ones (else: the refused ones)
	flags   bool   // the values are bits: refused when any is set
	arg     uint
	errno   unix.Errno
	values  map[string]uint64
	explain string
}

var filterKinds = []filterKind{
	{
		syscall: "socket", field: "allow_families", allow: true, arg: 0,
		// The kernel's own answer for a family it does not have, which
		// every library already handles (glibc's AI_ADDRCONFIG probe,
		// Python's socket module).
		errno:   unix.EAFNOSUPPORT,
		values:  addressFamilies,
		explain: "allowed only for address families %s; any other family gets EAFNOSUPPORT",
	},
	{
		// socketpair(2) runs the family's socket creation code before it
		// finds the family has no pairs, so it needs the same gate.
		syscall: "socketpair", field: "allow_families", allow: true, arg: 0,
		errno:   unix.EAFNOSUPPORT,
		values:  addressFamilies,
		explain: "allowed only for address families %s; any other family gets EAFNOSUPPORT",
	},
	{
		syscall: "clone", field: "deny_flags", flags: true, arg: 0,
		errno:   unix.EPERM,
		values:  cloneNamespaceFlags,
		explain: "refused with EPERM when flags carry any of %s; plain fork, vfork and thread creation pass",
	},
	{
		syscall: "ioctl", field: "deny_requests", arg: 1,
		errno:   unix.EPERM,
		values:  ioctlRequests,
		explain: "refused with EPERM for requests %s; every other request passes",
	},
	{
		syscall: "personality", field: "allow_values", allow: true, arg: 0,
		// Refused values fall to the default action: an "otherwise"
		// errno would need ~32 BPF rules per allowed value (see
		// complementCover), and personality(2) has no error a caller
		// could expect anyway.
		errno:   unix.ENOSYS,
		values:  personalities,
		explain: "allowed only for personas %s; any other value gets ENOSYS",
	},
}

func findFilterKind(syscall string) *filterKind {
	for i := range filterKinds {
		if filterKinds[i].syscall == syscall {
			return &filterKinds[i]
		}
	}
	return nil
}

func filterSyscalls() []string {
	var n []string
	for _, k := range filterKinds {
		n = append(n, k.syscall)
	}
	return n
}

// value resolves "A" or "A|B" against the kind's table.
func (k *filterKind) value(s string) (uint64, error) {
	var v uint64
	for _, part := range strings.Split(s, "|") {
		x, ok := k.values[strings.TrimSpace(part)]
		if !ok {
			return 0, fmt.Errorf("unknown %s value %q (known: %s)", k.syscall, part, strings.Join(sortedKeys(k.values), ", "))
		}
		v |= x
	}
	if k.flags && strings.Contains(s, "|") {
		return 0, fmt.Errorf("%q: list flags one per entry", s)
	}
	return v, nil
}

var addressFamilies = map[string]uint64{
	"AF_UNIX": unix.AF_UNIX, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6,
	"AF_NETLINK": unix.AF_NETLINK, "AF_PACKET": unix.AF_PACKET, "AF_VSOCK": unix.AF_VSOCK,
	"AF_ALG": unix.AF_ALG, "AF_KEY": unix.AF_KEY, "AF_BLUETOOTH": unix.AF_BLUETOOTH,
	"AF_CAN": unix.AF_CAN, "AF_TIPC": unix.AF_TIPC, "AF_RDS": unix.AF_RDS,
	"AF_XDP": unix.AF_XDP, "AF_APPLETALK": unix.AF_APPLETALK, "AF_AX25": unix.AF_AX25,
	"AF_X25": unix.AF_X25, "AF_IPX": unix.AF_IPX, "AF_LLC": unix.AF_LLC,
	"AF_NFC": unix.AF_NFC, "AF_QIPCRTR": unix.AF_QIPCRTR, "AF_SMC": unix.AF_SMC,
	"AF_MCTP": unix.AF_MCTP, "AF_PPPOX": unix.AF_PPPOX, "AF_IEEE802154": unix.AF_IEEE802154,
}

// The namespace flags clone(2) accepts. CLONE_NEWTIME is not here on
// purpose: its bit (0x80) lies inside CSIGNAL in clone(2), where the kernel
// reads it as part of the exit signal, so a time namespace can only be
// made through clone3 (answered ENOSYS) or unshare (denied).
var cloneNamespaceFlags = map[string]uint64{
	"CLONE_NEWNS": unix.CLONE_NEWNS, "CLONE_NEWCGROUP": unix.CLONE_NEWCGROUP,
	"CLONE_NEWUTS": unix.CLONE_NEWUTS, "CLONE_NEWIPC": unix.CLONE_NEWIPC,
	"CLONE_NEWUSER": unix.CLONE_NEWUSER, "CLONE_NEWPID": unix.CLONE_NEWPID,
	"CLONE_NEWNET": unix.CLONE_NEWNET,
}

// Terminal ioctls from include/uapi/asm-generic/ioctls.h, which x86_64 and
// aarch64 share (spelled out rather than taken from x/sys/unix, whose
// values follow the build machine's arch, not the compile target's).
var ioctlRequests = map[string]uint64{
	"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C, "TIOCCONS": 0x541D, "TIOCSETD": 0x5423,
}

// personality(2) values. QUERY (0xffffffff) is not a kernel name: it is
// the value glibc, util-linux setarch and gdb pass to read the persona
// without changing it.
var personalities = map[string]uint64{
	"PER_LINUX": 0, "PER_LINUX32": 0x0008, "UNAME26": 0x0020000,
	"ADDR_NO_RANDOMIZE": 0x0040000, "ADDR_COMPAT_LAYOUT": 0x0200000,
	"READ_IMPLIES_EXEC": 0x0400000, "MMAP_PAGE_ZERO": 0x0100000,
	"QUERY": 0xffffffff,
}

// capabilities lists the 41 capabilities of Linux 5.9+ in number order.
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Network modes: none = a fresh network namespace with loopback only;
// nat = a fresh namespace with user-mode NAT to the outside (pasta or
// slirp4netns), no inbound unless ports are published; host = the
// caller's network namespace.
var networkModes = []string{"none", "nat", "host"}

// Layers a profile can mark required: zviz refuses to start when one of
// them cannot be applied as asked (SPEC.md "Enforcement layers").
var layers = []string{
	"seccomp", "landlock", "landlock-net", "landlock-scope", "limits", "notify",
	// isolation: the mount namespace and the rootfs; without it zviz
	// falls back to chdir-only isolation (Landlock alone) unless required.
	"isolation",
}

// FeatureSet is what `zviz features` and `zviz policy` print about this
// package: the names come from the tables the compiler itself uses.
type FeatureSet struct {
	Actions    []string `json:"actions"`    // what a profile's lists compile to
	Operators  []string `json:"operators"`  // argument comparisons emitted
	Archs      []string `json:"archs"`      // compile targets
	Filters    []string `json:"filters"`    // syscalls with an inline argument filter
	Layers     []string `json:"layers"`     // names accepted in required:
	Profiles   []string `json:"profiles"`   // built-in profiles
	Libseccomp string   `json:"libseccomp"` // linked library version
}

// Features returns the tables above.
func Features() FeatureSet {
	return FeatureSet{
		Actions: []string{
			"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_NOTIFY",
		},
		Operators:  []string{"SCMP_CMP_MASKED_EQ"},
		Archs:      archNames(),
		Filters:    filterSyscalls(),
		Layers:     append([]string(nil), layers...),
		Profiles:   Builtins(),
		Libseccomp: libseccompVersion(),
	}
}

func libseccompVersion() string {
	a, b, c := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", a, b, c)
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
