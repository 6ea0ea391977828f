package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The kernel's SECCOMP_RET_* actions and the audit arches the tests feed.
const (
	retKillProcess = 0x80000000
	retErrno       = 0x00050000
	retNotify      = 0x7fc00000
	retAllow       = 0x7fff0000

	auditI386 = unix.AUDIT_ARCH_I386
	auditARM  = unix.AUDIT_ARCH_ARM
	x32Bit    = 0x40000000 // __X32_SYSCALL_BIT
)

// vm runs a compiled program in golang.org/x/net/bpf's interpreter.
type vm struct {
	t    *testing.T
	arch string
	prog *bpf.VM
}

func newVM(t *testing.T, prog *Program) *vm {
	t.Helper()
	insns := make([]bpf.Instruction, len(prog.BPF)/8)
	for i := range insns {
		b := prog.BPF[i*8:]
		raw := bpf.RawInstruction{
			Op: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3],
			K: binary.LittleEndian.Uint32(b[4:]),
		}
		insns[i] = raw.Disassemble()
	}
	m, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("bpf.NewVM(%s/%s): %v", prog.Profile, prog.Arch, err)
	}
	return &vm{t, prog.Arch, m}
}

func auditArch(arch string) uint32 {
	for _, a := range arches {
		if a.name == arch {
			return a.audit
		}
	}
	panic("unknown arch " + arch)
}

// seccompData lays out struct seccomp_data as a little-endian kernel does,
// but with each 32-bit word stored big-endian: x/net/bpf loads words
// big-endian, the kernel natively, and libseccomp only ever loads aligned
// 32-bit words (the low half of a 64-bit field at its offset, the high
// half 4 bytes on).
func seccompData(nr, audit uint32, ip uint64, args []uint64) []byte {
	b := make([]byte, 64)
	put := func(off int, v uint64) {
		binary.BigEndian.PutUint32(b[off:], uint32(v))
		binary.BigEndian.PutUint32(b[off+4:], uint32(v>>32))
	}
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], audit)
	put(8, ip)
	for i, a := range args {
		put(16+8*i, a)
	}
	return b
}

// raw runs one call described by number and audit arch.
func (v *vm) raw(nr, audit uint32, args ...uint64) string {
	v.t.Helper()
	ret, err := v.prog.Run(seccompData(nr, audit, 0x7f0000001000, args))
	if err != nil {
		v.t.Fatalf("bpf run: %v", err)
	}
	return action(uint32(ret))
}

// call runs syscall name on the program's own arch.
func (v *vm) call(name string, args ...uint64) string {
	v.t.Helper()
	return v.raw(nr(v.t, name, v.arch), auditArch(v.arch), args...)
}

func nr(t *testing.T, name, arch string) uint32 {
	t.Helper()
	_, a, err := canonicalArch(arch)
	if err != nil {
		t.Fatal(err)
	}
	n, err := libseccomp.GetSyscallFromNameByArch(name, a)
	if err != nil || n < 0 {
		t.Fatalf("syscall %s on %s: %d %v", name, arch, n, err)
	}
	return uint32(n)
}

// action names a SECCOMP_RET_* value: "ALLOW", "ERRNO(EPERM)", ...
func action(ret uint32) string {
	switch ret & 0xffff0000 {
	case retAllow:
		return "ALLOW"
	case retKillProcess:
		return "KILL_PROCESS"
	case retNotify:
		return "NOTIFY"
	case retErrno:
		return "ERRNO(" + unix.ErrnoName(unix.Errno(ret&0xffff)) + ")"
	}
	return fmt.Sprintf("ret %#x", ret)
}

func compileT(t *testing.T, profile, arch string) (*Profile, *Program) {
	t.Helper()
	p, err := Load(profile)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile(p, arch)
	if err != nil {
		t.Fatal(err)
	}
	return p, prog
}
