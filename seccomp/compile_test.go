package seccomp

import (
	"bytes"
	"math/rand"
	"testing"

	"golang.org/x/sys/unix"
)

var testArches = []string{"x86_64", "aarch64"}

const (
	ePERM   = "ERRNO(EPERM)"
	eNOSYS  = "ERRNO(ENOSYS)"
	eAFNO   = "ERRNO(EAFNOSUPPORT)"
	allow   = "ALLOW"
	killed  = "KILL_PROCESS"
	hiBits  = 0xdead_beef_0000_0000
	sigchld = uint64(unix.SIGCHLD)
)

var threadFlags = uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS |
	unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID)

// defaultTable is the readable statement of the default policy:
// {syscall, args} → action, checked on both arches by TestDefaultTable.
var defaultTable = []struct {
	syscall string
	args    []uint64
	want    string
}{
	// hot paths and the gaps of the seed list
	{"read", []uint64{0, 0x1000, 4096}, allow},
	{"write", []uint64{1, 0x1000, 12}, allow},
	{"getpid", nil, allow},
	{"futex", []uint64{0x1000, 0x80, 1}, allow},
	{"openat", []uint64{uint64(0xffffff9c), 0x1000, unix.O_RDONLY | unix.O_CLOEXEC}, allow},
	{"newfstatat", nil, allow},
	{"statx", nil, allow},
	{"tgkill", []uint64{1, 2, uint64(unix.SIGURG)}, allow},
	{"sendmmsg", nil, allow},
	{"renameat2", nil, allow},
	{"rseq", nil, allow},
	{"clock_nanosleep", nil, allow},
	{"epoll_pwait2", nil, allow},
	{"restart_syscall", nil, allow},
	// denied on purpose
	{"ptrace", nil, ePERM},
	{"mount", nil, ePERM},
	{"fsopen", nil, ePERM},
	{"unshare", []uint64{unix.CLONE_NEWUSER}, ePERM},
	{"setns", nil, ePERM},
	{"keyctl", nil, ePERM},
	{"io_uring_setup", nil, ePERM},
	{"open_by_handle_at", nil, ePERM},
	// unlisted → ENOSYS, and clone3 on purpose
	{"clone3", []uint64{0x1000, 88}, eNOSYS},
	{"kcmp", nil, eNOSYS},
	{"syslog", nil, eNOSYS},
	{"chroot", nil, eNOSYS},
	{"pidfd_getfd", nil, eNOSYS},
	// clone: fork, vfork, threads pass; every namespace flag refused
	{"clone", []uint64{sigchld}, allow},
	{"clone", []uint64{unix.CLONE_VM | unix.CLONE_VFORK | sigchld}, allow},
	{"clone", []uint64{threadFlags}, allow},
	{"clone", []uint64{unix.CLONE_PIDFD | sigchld}, allow},
	{"clone", []uint64{hiBits | sigchld}, allow},
	{"clone", []uint64{unix.CLONE_NEWUSER | unix.CLONE_NEWNS | sigchld}, ePERM},
	{"clone", []uint64{hiBits | unix.CLONE_NEWNET}, ePERM},
	// socket by family
	{"socket", []uint64{unix.AF_UNIX, unix.SOCK_STREAM}, allow},
	{"socket", []uint64{unix.AF_INET, unix.SOCK_DGRAM}, allow},
	{"socket", []uint64{unix.AF_INET6, unix.SOCK_STREAM}, allow},
	{"socket", []uint64{unix.AF_PACKET, unix.SOCK_RAW}, eAFNO},
	{"socket", []uint64{unix.AF_NETLINK, unix.SOCK_RAW}, eAFNO},
	{"socket", []uint64{unix.AF_VSOCK, unix.SOCK_STREAM}, eAFNO},
	{"socket", []uint64{unix.AF_ALG, unix.SOCK_SEQPACKET}, eAFNO},
	{"socket", []uint64{unix.AF_KEY}, eAFNO},
	{"socket", []uint64{0}, eAFNO},
	{"socket", []uint64{unix.AF_MAX}, eAFNO},
	{"socket", []uint64{0xffffffff}, eAFNO},
	{"socket", []uint64{1<<32 | unix.AF_INET}, eAFNO},
	{"socket", []uint64{1<<32 | unix.AF_PACKET}, eAFNO},
	{"socketpair", []uint64{unix.AF_UNIX, unix.SOCK_STREAM}, allow},
	{"socketpair", []uint64{unix.AF_NETLINK, unix.SOCK_RAW}, eAFNO},
	{"socketpair", []uint64{unix.AF_INET, unix.SOCK_STREAM}, eAFNO},
	{"socketpair", []uint64{0}, eAFNO},
	// ioctl: terminal injection refused, the rest passes
	{"ioctl", []uint64{0, 0x5412}, ePERM},              // TIOCSTI
	{"ioctl", []uint64{0, 0x541C}, ePERM},              // TIOCLINUX
	{"ioctl", []uint64{0, 0x5423}, ePERM},              // TIOCSETD
	{"ioctl", []uint64{0, hiBits | 0x5412}, ePERM},     // CVE-2019-10063
	{"ioctl", []uint64{0, 0xffffffff_00005412}, ePERM}, // sign-extension junk
	{"ioctl", []uint64{0, unix.TCGETS}, allow},         // isatty(3)
	{"ioctl", []uint64{0, unix.TIOCGWINSZ}, allow},     // TIOCSTI+1
	{"ioctl", []uint64{0, 0x5421}, allow},              // everything else
	{"ioctl", []uint64{0, 0x80045430}, allow},          // TIOCGPTN
	{"ioctl", []uint64{0, 0xffffffff_80045430}, allow}, // TIOCGPTN through an int
	{"ioctl", []uint64{0, 0x541D}, allow},              // TIOCCONS: default lets it
	// personality: query and plain personas only
	{"personality", []uint64{0}, allow},
	{"personality", []uint64{8}, allow},
	{"personality", []uint64{0xffffffff}, allow},
	{"personality", []uint64{0xffffffff_ffffffff}, allow},
	{"personality", []uint64{0x0040000}, eNOSYS}, // ADDR_NO_RANDOMIZE
	{"personality", []uint64{0x0400000}, eNOSYS}, // READ_IMPLIES_EXEC
	{"personality", []uint64{0x0100000}, eNOSYS}, // MMAP_PAGE_ZERO
	{"personality", []uint64{0x0020000}, eNOSYS}, // UNAME26
}

// TestDefaultTable runs defaultTable, and clone with every namespace flag.
func TestDefaultTable(t *testing.T) {
	for _, arch := range testArches {
		_, prog := compileT(t, "default", arch)
		v := newVM(t, prog)
		for _, r := range defaultTable {
			if got := v.call(r.syscall, r.args...); got != r.want {
				t.Errorf("%s %s(%#x) = %s, want %s", arch, r.syscall, r.args, got, r.want)
			}
		}
		for flag, name := range map[uint64]string{
			unix.CLONE_NEWNS: "NEWNS", unix.CLONE_NEWCGROUP: "NEWCGROUP", unix.CLONE_NEWUTS: "NEWUTS",
			unix.CLONE_NEWIPC: "NEWIPC", unix.CLONE_NEWUSER: "NEWUSER", unix.CLONE_NEWPID: "NEWPID",
			unix.CLONE_NEWNET: "NEWNET",
		} {
			for _, base := range []uint64{0, sigchld, threadFlags} {
				if got := v.call("clone", base|flag); got != ePERM {
					t.Errorf("%s clone(CLONE_%s|%#x) = %s, want %s", arch, name, base, got, ePERM)
				}
			}
		}
	}
}

// TestOtherABIs: i386 (int 0x80), x32 and foreign arches kill the process.
func TestOtherABIs(t *testing.T) {
	_, x86 := compileT(t, "default", "x86_64")
	v := newVM(t, x86)
	getpid := nr(t, "getpid", "x86_64")
	for _, c := range []struct {
		name      string
		nr, audit uint32
	}{
		{"i386 getpid (int 0x80)", 20, auditI386},
		{"i386 execve", 11, auditI386},
		{"x32 getpid", x32Bit | getpid, unix.AUDIT_ARCH_X86_64},
		{"x32 read", x32Bit | 0, unix.AUDIT_ARCH_X86_64},
		{"x32 ioctl (x32 number 514)", 514 | x32Bit, unix.AUDIT_ARCH_X86_64},
		{"aarch64 arch on x86_64 program", 172, unix.AUDIT_ARCH_AARCH64},
	} {
		if got := v.raw(c.nr, c.audit); got != killed {
			t.Errorf("x86_64: %s = %s, want %s", c.name, got, killed)
		}
	}
	if got := v.raw(1000, unix.AUDIT_ARCH_X86_64); got != eNOSYS {
		t.Errorf("x86_64: syscall 1000 = %s, want %s", got, eNOSYS)
	}
	_, arm := compileT(t, "default", "aarch64")
	a := newVM(t, arm)
	for _, audit := range []uint32{auditARM, unix.AUDIT_ARCH_X86_64} {
		if got := a.raw(20, audit); got != killed {
			t.Errorf("aarch64 program, arch %#x = %s, want %s", audit, got, killed)
		}
	}
}

// TestIoctlCoverExhaustive probes the complement cover: around and at
// each refused value, bit flips of it, and random values, with and without
// garbage in the high half.
func TestIoctlCoverExhaustive(t *testing.T) {
	refused := map[uint32]bool{0x5412: true, 0x541C: true, 0x5423: true}
	var probes []uint32
	for r := range refused {
		probes = append(probes, r-1, r, r+1)
		for bit := 0; bit < 32; bit++ {
			probes = append(probes, r^1<<bit)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		probes = append(probes, rng.Uint32(), 0x5400|uint32(rng.Intn(256)))
	}
	for _, arch := range testArches {
		_, prog := compileT(t, "default", arch)
		v := newVM(t, prog)
		for _, p := range probes {
			want := allow
			if refused[p] {
				want = ePERM
			}
			for _, hi := range []uint64{0, hiBits, 0xffffffff_00000000} {
				if got := v.call("ioctl", 3, hi|uint64(p)); got != want {
					t.Fatalf("%s ioctl(3, %#x) = %s, want %s", arch, hi|uint64(p), got, want)
				}
			}
		}
	}
}

func TestComplementCover(t *testing.T) {
	for _, set := range [][]uint32{{}, {0}, {0xffffffff}, {0x5412, 0x541C, 0x5423}, {1, 2, 3, 4}} {
		cover := complementCover(set, 31, 0)
		in := map[uint32]bool{}
		for _, v := range set {
			in[v] = true
		}
		rng := rand.New(rand.NewSource(2))
		probes := append([]uint32{0, 0xffffffff}, set...)
		for i := 0; i < 2000; i++ {
			probes = append(probes, rng.Uint32())
		}
		for _, x := range probes {
			n := 0
			for _, c := range cover {
				if x&c.mask == c.value {
					n++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[in[x]]; n != want {
				t.Fatalf("cover of %#x matches %#x %d times, want %d", set, x, n, want)
			}
		}
	}
}

// TestEveryProfileEverySyscall runs each built-in profile's lists through
// the VM: every syscall the arch has gets exactly the action its list says
// (filtered ones are in the tables above and below).
func TestEveryProfileEverySyscall(t *testing.T) {
	want := map[string]string{classAllow: allow, classDeny: ePERM, classENOSYS: eNOSYS, classBroker: "NOTIFY", "": eNOSYS}
	for _, name := range Builtins() {
		for _, arch := range testArches {
			p, prog := compileT(t, name, arch)
			v := newVM(t, prog)
			_, target, _ := canonicalArch(arch)
			for _, s := range archSyscalls(target) {
				class, r := classOf(p, s)
				if class == classFilter {
					continue
				}
				if r != nil && len(r.Arches) > 0 && !contains(r.Arches, arch) {
					class = ""
				}
				if got := v.call(s, 1, 2, 3); got != want[class] {
					t.Errorf("%s/%s: %s = %s, want %s (%s)", name, arch, s, got, want[class], class)
				}
			}
		}
	}
}

// TestConstantActions: allowed and denied syscalls never look at their
// arguments or instruction pointer, which is what lets kernels >= 5.11
// cache the decision (seccomp_cache_prepare emulates the filter with only
// nr and arch). The VM gets a seccomp_data cut after arch: any load past
// it stops the program with 0 (SECCOMP_RET_KILL_THREAD).
func TestConstantActions(t *testing.T) {
	for _, name := range Builtins() {
		for _, arch := range testArches {
			p, prog := compileT(t, name, arch)
			v := newVM(t, prog)
			for _, l := range []struct {
				rules []Rule
				want  string
			}{{p.Allow, allow}, {p.Deny, ePERM}} {
				for _, r := range l.rules {
					if len(r.Arches) > 0 && !contains(r.Arches, arch) {
						continue
					}
					ret, err := v.prog.Run(seccompData(nr(t, r.Syscall, arch), auditArch(arch), 0, nil)[:8])
					if got := action(uint32(ret)); err != nil || got != l.want {
						t.Errorf("%s/%s: %s reads past nr/arch: %s %v", name, arch, r.Syscall, got, err)
					}
				}
			}
		}
	}
}

// TestProfileDifferences: what each derived profile changes, in the VM.
func TestProfileDifferences(t *testing.T) {
	rows := []struct {
		profile, syscall string
		args             []uint64
		want             string
	}{
		{"development", "ptrace", nil, allow},
		{"development", "process_vm_readv", nil, allow},
		{"development", "personality", []uint64{0x0040000}, allow},
		{"development", "personality", []uint64{0x0400000}, eNOSYS},
		{"development", "msgget", nil, allow},
		{"development", "bpf", nil, ePERM},
		{"ci-runner", "msgget", nil, allow},
		{"ci-runner", "memfd_create", nil, allow},
		{"ci-runner", "ptrace", nil, ePERM},
		{"default", "msgget", nil, eNOSYS},
		{"batch-job", "mbind", nil, allow},
		{"hostile-tenant", "setuid", nil, ePERM},
		{"hostile-tenant", "inotify_init1", nil, eNOSYS},
		{"hostile-tenant", "ioctl", []uint64{0, 0x541D}, ePERM},
		{"hostile-tenant", "ioctl", []uint64{0, unix.TCGETS}, allow},
		{"hostile-tenant", "personality", []uint64{8}, eNOSYS},
		{"hostile-tenant", "personality", []uint64{0xffffffff}, allow},
		{"web-server", "socket", []uint64{unix.AF_INET6}, allow},
		{"web-server", "socket", []uint64{unix.AF_NETLINK}, eAFNO},
	}
	for _, arch := range testArches {
		for _, r := range rows {
			_, prog := compileT(t, r.profile, arch)
			if got := newVM(t, prog).call(r.syscall, r.args...); got != r.want {
				t.Errorf("%s/%s %s(%#x) = %s, want %s", r.profile, arch, r.syscall, r.args, got, r.want)
			}
		}
	}
}

// TestBuiltins: each built-in validates, compiles for both arches within
// the kernel's limit, and is deterministic. Run with -v for the sizes.
func TestBuiltins(t *testing.T) {
	for _, name := range Builtins() {
		for _, arch := range testArches {
			p, prog := compileT(t, name, arch)
			again, err := Compile(p, arch)
			if err != nil || !bytes.Equal(again.BPF, prog.BPF) || again.Key != prog.Key {
				t.Errorf("%s/%s: second compile differs (%v)", name, arch, err)
			}
			l, err := Show(p, arch)
			if err != nil {
				t.Fatal(err)
			}
			if prog.Instructions < 100 || prog.Instructions > 1024 {
				t.Errorf("%s/%s: %d instructions, expected a few hundred", name, arch, prog.Instructions)
			}
			t.Logf("%-14s %-7s allowed %3d denied %2d filtered %d enosys %d brokered %d unlisted %3d  bpf %d instructions",
				name, arch, len(l.Allow), len(l.Deny), len(l.Filter), len(l.ENOSYS), len(l.Broker), l.Unlisted, prog.Instructions)
		}
	}
	if got := Builtins(); len(got) != 6 {
		t.Errorf("built-ins %v, want the six of SPEC.md", got)
	}
}

func TestCompileRejectsHandEditedConflict(t *testing.T) {
	p, _ := compileT(t, "default", "x86_64")
	p.Deny = append(p.Deny, Rule{Syscall: "read", Why: "x"})
	if _, err := Compile(p, "x86_64"); err == nil {
		t.Fatal("Compile accepted read in allow and deny")
	}
	if _, err := Compile(p, "riscv64"); err == nil {
		t.Fatal("Compile accepted an arch zviz does not target")
	}
}
