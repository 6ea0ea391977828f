package seccomp

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// podmanLike is the shape of podman's profile: errno by default, a list of
// allowed names, one argument-filtered entry, one errno entry with its own
// code.
func podmanLike() *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	enosys := uint(unix.ENOSYS)
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "getpid", "not_a_syscall_here"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}},
			{Names: []string{"socket"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_UNIX, Op: specs.OpEqualTo},
					{Index: 0, Value: unix.AF_INET, Op: specs.OpEqualTo}}},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
}

func TestCompileOCI(t *testing.T) {
	prog, flags, err := CompileOCI(podmanLike(), "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if flags != 0 {
		t.Errorf("flags %#x, want none", flags)
	}
	v := newVM(t, prog)
	for _, c := range []struct {
		name string
		args []uint64
		want string
	}{
		{"read", nil, "ALLOW"},
		{"getpid", nil, "ALLOW"},
		{"ptrace", nil, "ERRNO(EPERM)"},
		{"personality", []uint64{0}, "ALLOW"},
		{"personality", []uint64{8}, "ERRNO(EPERM)"},
		// Two conditions on one argument: either value passes.
		{"socket", []uint64{unix.AF_UNIX}, "ALLOW"},
		{"socket", []uint64{unix.AF_INET}, "ALLOW"},
		{"socket", []uint64{unix.AF_PACKET}, "ERRNO(EPERM)"},
		{"clone3", nil, "ERRNO(ENOSYS)"},
	} {
		if got := v.call(c.name, c.args...); got != c.want {
			t.Errorf("%s%v: %s, want %s", c.name, c.args, got, c.want)
		}
	}
	// Another ABI is killed, as in zviz's own profile.
	if got := v.raw(nr(t, "getpid", "x86_64")|0x40000000, auditArch("x86_64")); got != "KILL_PROCESS" {
		t.Errorf("x32 getpid: %s, want KILL_PROCESS", got)
	}
}

func TestCompileOCIErrors(t *testing.T) {
	for _, c := range []struct {
		edit func(s *specs.LinuxSeccomp)
		want string
	}{
		{func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_BOGUS" }, "linux.seccomp.defaultAction"},
		{func(s *specs.LinuxSeccomp) { s.Syscalls[1].Args[0].Op = "SCMP_CMP_BOGUS" }, "linux.seccomp.syscalls[1]: args[0].op"},
		{func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActNotify }, "listenerPath"},
		{func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"} }, "linux.seccomp.flags[0]"},
	} {
		s := podmanLike()
		c.edit(s)
		if _, _, err := CompileOCI(s, "x86_64"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %q, got %v", c.want, err)
		}
	}
	s := podmanLike()
	s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}
	if _, flags, err := CompileOCI(s, "x86_64"); err != nil || flags != unix.SECCOMP_FILTER_FLAG_LOG {
		t.Errorf("flags %#x, %v; want SECCOMP_FILTER_FLAG_LOG", flags, err)
	}
}
