package hostcheck

import (
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/seccomp"
)

// The `zviz policy` side: a profile's lists, one syscall's fate and the
// compiled program, as data for --json and as text. The rules themselves
// come from seccomp.Show, Explain and Compile; nothing here decides policy.

// HostArch is the arch `zviz policy` shows when none is given.
func HostArch() string { return runtime.GOARCH }

// Counts are the sizes of a Listing's lists.
type Counts struct {
	Allow    int `json:"allow"`
	Deny     int `json:"deny"`
	Filter   int `json:"filter"`
	ENOSYS   int `json:"enosys"`
	Broker   int `json:"broker"`
	Unlisted int `json:"unlisted"`
}

// Shown is `zviz policy show`: seccomp.Show's listing plus the profile's
// identity and the counts.
type Shown struct {
	*seccomp.Listing
	Source      string   `json:"source"`
	Description string   `json:"description,omitempty"`
	Extends     []string `json:"extends,omitempty"`
	Required    []string `json:"required,omitempty"`
	Counts      Counts   `json:"counts"`
	// Effects says, per filtered syscall, what its values mean on this
	// arch (seccomp.Explain's wording).
	Effects       map[string]string `json:"effects,omitempty"`
	UnlistedNames []string          `json:"unlisted_names,omitempty"`
}

// Show loads profile ref (a built-in name or a file) and lists it for
// arch. withUnlisted also names every syscall that no list names.
func Show(ref, arch string, withUnlisted bool) (*Shown, error) {
	p, err := seccomp.Load(ref)
	if err == nil {
		p = p.WithNetworkBroker() // what the container gets: its network calls brokered under an allow-list
	}
	if err != nil {
		return nil, err
	}
	l, err := seccomp.Show(p, arch)
	if err != nil {
		return nil, err
	}
	s := &Shown{
		Listing: l, Source: p.Source, Description: oneLine(p.Description),
		Extends: p.Extends, Required: p.Required,
		Counts: Counts{len(l.Allow), len(l.Deny), len(l.Filter), len(l.ENOSYS), len(l.Broker), l.Unlisted},
	}
	for _, r := range l.Filter {
		if s.Effects == nil {
			s.Effects = map[string]string{}
		}
		s.Effects[r.Syscall] = effectOn(seccomp.Explain(p, r.Syscall), l.Arch)
	}
	if withUnlisted {
		if s.UnlistedNames, err = unlisted(l); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// unlisted names the syscalls of l.Arch that no list of l names.
func unlisted(l *seccomp.Listing) ([]string, error) {
	a, err := libseccomp.GetArchFromString(scmpArchName(l.Arch))
	if err != nil {
		return nil, fmt.Errorf("show profile %s: %w", l.Profile, err)
	}
	listed := map[string]bool{}
	for _, list := range [][]seccomp.Rule{l.Allow, l.Deny, l.Filter, l.ENOSYS, l.Broker} {
		for _, r := range list {
			listed[r.Syscall] = true
		}
	}
	names := []string{}
	for nr := 0; nr < 1024; nr++ {
		if n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(a); err == nil && !listed[n] {
			names = append(names, n)
		}
	}
	return names, nil
}

// effectOn picks arch's line out of seccomp.Explain's text
// ("  x86_64: filtered inline: ..."); "" when there is none.
func effectOn(explained, arch string) string {
	for _, l := range strings.Split(explained, "\n") {
		if e, ok := strings.CutPrefix(l, "  "+arch+": "); ok {
			return e
		}
	}
	return ""
}

// scmpArchName is libseccomp's name for a kernel arch name.
func scmpArchName(arch string) string {
	switch arch {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return arch
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WriteShow prints s as text: a header with the counts, then each list
// with one syscall per line and the reason it is there.
func WriteShow(w io.Writer, s *Shown) {
	fmt.Fprintf(w, "profile %s (%s) on %s\n", s.Profile, s.Source, s.Arch)
	if s.Description != "" {
		fmt.Fprintf(w, "  %s\n", s.Description)
	}
	if len(s.Extends) > 0 {
		fmt.Fprintf(w, "  extends: %s\n", strings.Join(s.Extends, " → "))
	}
	if len(s.Required) > 0 {
		fmt.Fprintf(w, "  required layers: %s\n", strings.Join(s.Required, ", "))
	}
	c := s.Counts
	fmt.Fprintf(w, "counts: %d allowed, %d denied (EPERM), %d filtered, %d enosys, %d brokered, %d unlisted → ENOSYS\n",
		c.Allow, c.Deny, c.Filter, c.ENOSYS, c.Broker, c.Unlisted)
	for _, sec := range []struct {
		title string
		rules []seccomp.Rule
	}{
		{"allowed (reach the kernel, no argument checks)", s.Allow},
		{"denied (EPERM)", s.Deny},
		{"filtered (argument checks inline in BPF)", s.Filter},
		{"enosys (ENOSYS on purpose, so libc falls back)", s.ENOSYS},
		{"brokered (SECCOMP_RET_USER_NOTIF)", s.Broker},
	} {
		fmt.Fprintf(w, "\n%s: %d\n", sec.title, len(sec.rules))
		for _, r := range sec.rules {
			writeRule(w, r, s.Profile, s.Effects[r.Syscall])
		}
	}
	fmt.Fprintf(w, "\nunlisted → ENOSYS: %d", c.Unlisted)
	if s.UnlistedNames == nil {
		fmt.Fprintf(w, " (--unlisted names them)\n")
		return
	}
	fmt.Fprintln(w)
	for _, n := range s.UnlistedNames {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

func writeRule(w io.Writer, r seccomp.Rule, profile, effect string) {
	name := r.Syscall
	if len(r.Arches) > 0 {
		name += " [" + strings.Join(r.Arches, ",") + "]"
	}
	why := r.Why
	if r.From != "" && r.From != profile {
		why += " (from " + r.From + ")"
	}
	if effect == "" && len(r.Values) > 0 {
		effect = "values: " + strings.Join(r.Values, " ")
	}
	if effect != "" {
		fmt.Fprintf(w, "  %-24s %s\n  %-24s   → %s\n", name, why, "", effect)
		return
	}
	fmt.Fprintf(w, "  %-24s %s\n", name, why)
}

// Explain says what happens to syscall under profile ref, and why. A name
// that is a syscall on neither x86_64 nor aarch64 is an error.
func Explain(ref, syscall string) (string, error) {
	known := false
	for _, a := range []libseccomp.ScmpArch{libseccomp.ArchAMD64, libseccomp.ArchARM64} {
		if _, err := libseccomp.GetSyscallFromNameByArch(syscall, a); err == nil {
			known = true
		}
	}
	if !known {
		return "", fmt.Errorf("explain %q: not a syscall on x86_64 or aarch64", syscall)
	}
	p, err := seccomp.Load(ref)
	if err == nil {
		p = p.WithNetworkBroker() // what the container gets: its network calls brokered under an allow-list
	}
	if err != nil {
		return "", err
	}
	return seccomp.Explain(p, syscall), nil
}

// Compiled is `zviz policy bpf`: the program's size, how long compiling
// took, and optionally its disassembly.
type Compiled struct {
	*seccomp.Program
	Bytes       int      `json:"bytes"`
	CompileTime string   `json:"compile_time"`
	CompileNs   int64    `json:"compile_ns"`
	Disassembly []string `json:"disassembly,omitempty"`
}

// BPF compiles profile ref for arch (uncached, so the time is a real
// compile) and, with dump, disassembles it.
func BPF(ref, arch string, dump bool) (*Compiled, error) {
	p, err := seccomp.Load(ref)
	if err == nil {
		p = p.WithNetworkBroker() // what the container gets: its network calls brokered under an allow-list
	}
	if err != nil {
		return nil, err
	}
	start := time.Now()
	prog, err := seccomp.Compile(p, arch)
	if err != nil {
		return nil, err
	}
	d := time.Since(start)
	c := &Compiled{Program: prog, Bytes: len(prog.BPF), CompileTime: d.Round(time.Microsecond).String(), CompileNs: d.Nanoseconds()}
	if dump {
		c.Disassembly = Disassemble(prog.BPF)
	}
	return c, nil
}

// Disassemble renders struct sock_filter[] (little-endian: both x86_64
// and aarch64 are) one instruction a line, numbered, in x/net/bpf's
// assembler syntax. Jump offsets are relative, as in the kernel.
func Disassemble(b []byte) []string {
	const size = 8 // u16 code, u8 jt, u8 jf, u32 k
	raw := make([]bpf.RawInstruction, 0, len(b)/size)
	for i := 0; i+size <= len(b); i += size {
		raw = append(raw, bpf.RawInstruction{
			Op: binary.LittleEndian.Uint16(b[i:]), Jt: b[i+2], Jf: b[i+3], K: binary.LittleEndian.Uint32(b[i+4:]),
		})
	}
	insts, _ := bpf.Disassemble(raw)
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = fmt.Sprintf("%4d: %s", i, instString(in, i))
	}
	return out
}

// instString is x/net/bpf's syntax, with absolute jump targets and
// seccomp return values spelled out.
func instString(in bpf.Instruction, pc int) string {
	switch x := in.(type) {
	case bpf.JumpIf:
		next := pc + 1
		return fmt.Sprintf("%-28s ; %#x: goto %d else %d", x.String(), x.Val, next+int(x.SkipTrue), next+int(x.SkipFalse))
	case bpf.Jump:
		return fmt.Sprintf("%-28s ; goto %d", x.String(), pc+1+int(x.Skip))
	case bpf.RetConstant:
		return fmt.Sprintf("%-28s ; %s", x.String(), seccompAction(x.Val))
	}
	if st, ok := in.(fmt.Stringer); ok {
		return st.String()
	}
	return fmt.Sprint(in)
}

// seccompAction names a seccomp filter return value (seccomp(2),
// "Filter return values").
func seccompAction(v uint32) string {
	data := v & unix.SECCOMP_RET_DATA
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_TRAP:
		return "TRAP"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%s)", unix.ErrnoName(unix.Errno(data)))
	case unix.SECCOMP_RET_USER_NOTIF:
		return "USER_NOTIF"
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("TRACE(%d)", data)
	case unix.SECCOMP_RET_LOG:
		return "LOG"
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	}
	return fmt.Sprintf("%#x", v)
}

// WriteBPF prints c as text.
func WriteBPF(w io.Writer, c *Compiled) {
	fmt.Fprintf(w, "profile %s on %s: %d instructions (%d bytes; the kernel allows 4096), compiled in %s\n",
		c.Profile, c.Arch, c.Instructions, c.Bytes, c.CompileTime)
	fmt.Fprintf(w, "key %s", c.Key)
	if c.Notify {
		fmt.Fprintf(w, "; has broker rules: installed with SECCOMP_FILTER_FLAG_NEW_LISTENER")
	}
	fmt.Fprintln(w)
	for _, l := range c.Disassembly {
		fmt.Fprintln(w, l)
	}
}

// ProfileInfo is one line of `zviz policy list`.
type ProfileInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Extends     []string `json:"extends,omitempty"`
	Required    []string `json:"required,omitempty"`
}

// Profiles describes the built-in profiles.
func Profiles() ([]ProfileInfo, error) {
	var out []ProfileInfo
	for _, n := range seccomp.Builtins() {
		p, err := seccomp.Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, ProfileInfo{Name: n, Description: firstSentence(p.Description), Extends: p.Extends, Required: p.Required})
	}
	return out, nil
}

// firstSentence keeps a description to one line.
func firstSentence(s string) string {
	s = oneLine(s)
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
