package hostcheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/seccomp"
)

// TestShowCounts: the counts and lists are seccomp.Show's, on both arches,
// and the unlisted names are exactly the Unlisted count.
func TestShowCounts(t *testing.T) {
	for _, arch := range []string{"x86_64", "aarch64"} {
		for _, name := range seccomp.Builtins() {
			p, err := seccomp.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			want, err := seccomp.Show(p, arch)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Show(name, arch, true)
			if err != nil {
				t.Fatal(err)
			}
			c := s.Counts
			if c != (Counts{len(want.Allow), len(want.Deny), len(want.Filter), len(want.ENOSYS), len(want.Broker), want.Unlisted}) {
				t.Errorf("%s/%s: counts %+v, seccomp.Show %d/%d/%d/%d/%d/%d", name, arch, c,
					len(want.Allow), len(want.Deny), len(want.Filter), len(want.ENOSYS), len(want.Broker), want.Unlisted)
			}
			if len(s.UnlistedNames) != want.Unlisted {
				t.Errorf("%s/%s: %d unlisted names, Unlisted %d", name, arch, len(s.UnlistedNames), want.Unlisted)
			}
			for _, r := range s.Filter {
				if !strings.HasPrefix(s.Effects[r.Syscall], "filtered inline: ") {
					t.Errorf("%s/%s: effect of %s: %q", name, arch, r.Syscall, s.Effects[r.Syscall])
				}
			}
		}
	}
}

// TestWriteShowFormat pins the text layout: the counts line, one section
// per list with its count, and every syscall on its own line with its reason.
func TestWriteShowFormat(t *testing.T) {
	s, err := Show("default", "x86_64", false)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	WriteShow(&b, s)
	out := b.String()
	c := s.Counts
	for _, want := range []string{
		"profile default (builtin:default) on x86_64\n",
		fmt.Sprintf("counts: %d allowed, %d denied (EPERM), %d filtered, %d enosys, %d brokered, %d unlisted → ENOSYS\n",
			c.Allow, c.Deny, c.Filter, c.ENOSYS, c.Broker, c.Unlisted),
		fmt.Sprintf("\nallowed (reach the kernel, no argument checks): %d\n", c.Allow),
		fmt.Sprintf("\ndenied (EPERM): %d\n", c.Deny),
		fmt.Sprintf("\nfiltered (argument checks inline in BPF): %d\n", c.Filter),
		fmt.Sprintf("\nunlisted → ENOSYS: %d (--unlisted names them)\n", c.Unlisted),
		"→ filtered inline: allowed only for address families AF_UNIX, AF_INET, AF_INET6",
		"  iopl [x86_64]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q", want)
		}
	}
	lines := strings.Split(out, "\n")
	for _, list := range [][]seccomp.Rule{s.Allow, s.Deny, s.Filter, s.ENOSYS} {
		for _, r := range list {
			if !hasRuleLine(lines, r) {
				t.Errorf("no line for %s with its reason", r.Syscall)
			}
		}
	}
	if c.Allow < 100 || c.Deny < 24 || c.Filter < 4 || c.Unlisted == 0 {
		t.Errorf("default's counts look wrong: %+v", c)
	}
}

func hasRuleLine(lines []string, r seccomp.Rule) bool {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == r.Syscall && strings.Contains(l, r.Why) {
			return true
		}
	}
	return false
}

func TestShowErrors(t *testing.T) {
	if _, err := Show("nosuch", "x86_64", false); err == nil || !strings.Contains(err.Error(), "no such built-in profile") {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := Show("default", "mips", false); err == nil || !strings.Contains(err.Error(), "unsupported architecture") {
		t.Errorf("unknown arch: %v", err)
	}
}

// TestShowFile: a user file that extends a built-in shows the base's
// rules with where they came from.
func TestShowFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.yaml")
	yaml := "name: mine\nextends: default\ndrop: [ptrace]\nallow:\n  - why: \"debugging\"\n    syscalls: [ptrace]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Show(path, "x86_64", false)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := Show("default", "x86_64", false)
	if s.Counts.Allow != base.Counts.Allow+1 || s.Counts.Deny != base.Counts.Deny-1 {
		t.Errorf("mine: %+v, default %+v", s.Counts, base.Counts)
	}
	var b bytes.Buffer
	WriteShow(&b, s)
	if !strings.Contains(b.String(), "extends: default") || !strings.Contains(b.String(), "(from default)") {
		t.Errorf("show of a file lacks its base:\n%s", b.String()[:400])
	}
}

func TestExplain(t *testing.T) {
	text, err := Explain("default", "ptrace")
	if err != nil || !strings.Contains(text, "x86_64: denied: EPERM") {
		t.Errorf("explain ptrace: %v\n%s", err, text)
	}
	text, err = Explain("development", "ptrace")
	if err != nil || !strings.Contains(text, "allowed") {
		t.Errorf("explain ptrace under development: %v\n%s", err, text)
	}
	if _, err := Explain("default", "no_such_call"); err == nil || !strings.Contains(err.Error(), `"no_such_call": not a syscall`) {
		t.Errorf("unknown syscall: %v", err)
	}
	if _, err := Explain("nosuch", "read"); err == nil {
		t.Error("unknown profile: no error")
	}
}

// TestBPF: the disassembly has one line per instruction and runs, in
// x/net/bpf's interpreter, to the decisions the profile names.
func TestBPF(t *testing.T) {
	c, err := BPF("default", "x86_64", true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Instructions != len(c.BPF)/8 || len(c.Disassembly) != c.Instructions || c.Bytes != len(c.BPF) {
		t.Fatalf("%d instructions, %d bytes, %d lines", c.Instructions, len(c.BPF), len(c.Disassembly))
	}
	if c.CompileNs <= 0 || c.CompileTime == "" {
		t.Errorf("compile time %q %d", c.CompileTime, c.CompileNs)
	}
	if c.Disassembly[0] != "   0: ld [4]" {
		t.Errorf("first instruction %q, want the arch load", c.Disassembly[0])
	}
	joined := strings.Join(c.Disassembly, "\n")
	for _, want := range []string{"; KILL_PROCESS", "; ALLOW", "; ERRNO(EPERM)", "; ERRNO(ENOSYS)", "; 0xc000003e: goto"} {
		if !strings.Contains(joined, want) {
			t.Errorf("disassembly lacks %q", want)
		}
	}
	var b bytes.Buffer
	WriteBPF(&b, c)
	if !strings.HasPrefix(b.String(), fmt.Sprintf("profile default on x86_64: %d instructions (%d bytes", c.Instructions, c.Bytes)) {
		t.Errorf("WriteBPF: %q", strings.SplitN(b.String(), "\n", 2)[0])
	}
	// Disassemble agrees with the bytes: run them.
	raw := make([]bpf.RawInstruction, 0, c.Instructions)
	for i := 0; i < len(c.BPF); i += 8 {
		raw = append(raw, bpf.RawInstruction{Op: uint16(c.BPF[i]) | uint16(c.BPF[i+1])<<8, Jt: c.BPF[i+2], Jf: c.BPF[i+3],
			K: uint32(c.BPF[i+4]) | uint32(c.BPF[i+5])<<8 | uint32(c.BPF[i+6])<<16 | uint32(c.BPF[i+7])<<24})
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not fully disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	// x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl), whatever the host.
	for nr, want := range map[uint32]string{39: "ALLOW" /* getpid */, 101: "ERRNO(EPERM)" /* ptrace */, 435: "ERRNO(ENOSYS)" /* clone3 */} {
		data := make([]byte, 64) // struct seccomp_data, little-endian
		data[0], data[1] = byte(nr), byte(nr>>8)
		arch := uint32(unix.AUDIT_ARCH_X86_64)
		data[4], data[5], data[6], data[7] = byte(arch), byte(arch>>8), byte(arch>>16), byte(arch>>24)
		// x/net/bpf loads big-endian; seccomp_data is host order.
		swapWords(data)
		ret, err := vm.Run(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := seccompAction(uint32(ret)); got != want {
			t.Errorf("syscall %d: %s, want %s", nr, got, want)
		}
	}
	if _, err := BPF("default", "aarch64", false); err != nil {
		t.Errorf("aarch64: %v", err)
	}
}

// swapWords turns little-endian 32-bit words into the big-endian ones
// x/net/bpf's interpreter reads.
func swapWords(b []byte) {
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
}

func TestProfiles(t *testing.T) {
	ps, err := Profiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != len(seccomp.Builtins()) {
		t.Fatalf("%d profiles, %d built-ins", len(ps), len(seccomp.Builtins()))
	}
	for _, p := range ps {
		if p.Description == "" || strings.Contains(p.Description, "\n") {
			t.Errorf("%s: description %q", p.Name, p.Description)
		}
	}
}
