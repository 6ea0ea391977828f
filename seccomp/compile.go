package seccomp

import (
	"fmt"
	"io"
	"os"
	"strings"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Program is a compiled profile: the classic BPF the kernel runs, for one
// architecture. It is plain data; the init passes it to Install.
type Program struct {
	Profile      string `json:"profile"`
	Arch         string `json:"arch"`
	Key          string `json:"key"`          // content hash: profile rules, arch, libseccomp, compiler
	Instructions int    `json:"instructions"` // BPF instructions (the kernel allows 4096)
	Notify       bool   `json:"notify"`       // returns SECCOMP_RET_USER_NOTIF (broker rules, or LogDenials): install with SECCOMP_FILTER_FLAG_NEW_LISTENER
	LogDenials   bool   `json:"log_denials"`  // the CompileOptions.LogDenials variant
	BPF          []byte `json:"-"`            // struct sock_filter[], target byte order

	// Denials says what the plain program would have answered to each call
	// that reaches the listener; set when Notify is. Read-only: cached
	// programs share it.
	Denials *DenialTable `json:"denials,omitempty"`
}

// CompileOptions selects a variant of the program. The zero value is the
// plain program.
type CompileOptions struct {
	// LogDenials compiles every errno answer (deny → EPERM, enosys,
	// argument-filter refusals, and the default ENOSYS) to
	// SECCOMP_RET_USER_NOTIF instead, so that a listener (Listen) can log
	// the call and answer the very errno the plain program returns.
	// Allowed syscalls stay SECCOMP_RET_ALLOW and cost nothing more; the
	// other-ABI kill stays. The program has Notify set and carries the
	// Denials table the listener answers from.
	LogDenials bool
}

// Actions. Unlisted syscalls get ENOSYS so that glibc and language
// runtimes take their fallbacks (glibc falls back only on ENOSYS, e.g.
// clone3 → clone); a call through another ABI on the same CPU (i386 via
// int 0x80, x32 numbers with __X32_SYSCALL_BIT) kills the process: no
// zviz workload uses them, an errno would let a probing exploit carry on,
// and a 32-bit binary run by mistake stops at once with SIGSYS instead of
// spinning on errors.
var (
	actDefault = libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS))
	actBadArch = libseccomp.ActKillProcess
	actDeny    = libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM))
)

// Compile turns a profile into BPF for arch ("x86_64"/"amd64" or
// "aarch64"/"arm64", on any host). It is pure: same profile, same bytes.
func Compile(p *Profile, arch string) (*Program, error) {
	return CompileWith(p, arch, CompileOptions{})
}

// CompileWith is Compile for the variant opts selects.
func CompileWith(p *Profile, arch string, opts CompileOptions) (*Program, error) {
	name, target, err := canonicalArch(arch)
	if err != nil {
		return nil, fmt.Errorf("compile profile %s: %w", p.Name, err)
	}
	key, err := cacheKey(p, name, opts)
	if err != nil {
		return nil, fmt.Errorf("compile profile %s for %s: %w", p.Name, name, err)
	}
	bpf, notify, err := build(p, name, target, opts)
	if err != nil {
		return nil, fmt.Errorf("compile profile %s for %s: %w", p.Name, name, err)
	}
	prog := &Program{Profile: p.Name, Arch: name, Key: key, Instructions: len(bpf) / 8, Notify: notify, LogDenials: opts.LogDenials, BPF: bpf}
	if err := prog.addDenials(p); err != nil {
		return nil, fmt.Errorf("compile profile %s for %s: %w", p.Name, name, err)
	}
	return prog, nil
}

// addDenials attaches the listener's table to a program that notifies.
func (prog *Program) addDenials(p *Profile) error {
	if !prog.Notify {
		return nil
	}
	t, err := denialTable(p, prog.Arch)
	prog.Denials = t
	return err
}

func build(p *Profile, arch string, target libseccomp.ScmpArch, opts CompileOptions) ([]byte, bool, error) {
	// With LogDenials every errno answer becomes the default action,
	// USER_NOTIF: deny and broker rules and the refusing half of each
	// argument filter are simply not emitted (libseccomp refuses rules
	// whose action is the default's, and a call that matches no rule gets
	// the default anyway). What remains is the allow rules, so the
	// allowed set, and the kernel's constant-allow cache, are unchanged.
	def, deny, broker := actDefault, actDeny, libseccomp.ActNotify
	if opts.LogDenials {
		def, deny = libseccomp.ActNotify, libseccomp.ActNotify
	}
	f, err := newFilter(target, def)
	if err != nil {
		return nil, false, err
	}
	defer f.Release()
	if err := checkConflicts(p); err != nil {
		return nil, false, err
	}
	notify := opts.LogDenials
	plain := []struct {
		rules []Rule
		act   libseccomp.ScmpAction
	}{
		{p.Allow, libseccomp.ActAllow},
		{p.Deny, deny},
		{p.Broker, broker},
	}
	for i, l := range plain {
		for _, r := range l.rules {
			if i == 2 { // broker
				nr, ok, err := resolveOn(r, arch)
				if err != nil {
					return nil, false, err
				}
				if !ok {
					continue
				}
				if err := addBrokerRule(f, r.Syscall, nr, l.act, def); err != nil {
					return nil, false, fmt.Errorf("rule %s %s: %w", r.Syscall, l.act, err)
				}
				notify = true
				continue
			}
			if l.act == def {
				if _, _, err := resolveOn(r, arch); err != nil {
					return nil, false, err // the default action covers it; only check the name
				}
				continue
			}
			nr, ok, err := resolveOn(r, arch)
			if err != nil || !ok {
				if err != nil {
					return nil, false, err
				}
				continue
			}
			if err := f.AddRuleExact(nr, l.act); err != nil {
				return nil, false, fmt.Errorf("rule %s %s: %w", r.Syscall, l.act, err)
			}
			notify = notify || l.act == libseccomp.ActNotify
		}
	}
	for _, r := range p.ENOSYS {
		if _, _, err := resolveOn(r, arch); err != nil {
			return nil, false, err // the default action covers it; only check the name
		}
	}
	for _, r := range p.Filter {
		if err := addFilter(f, r, arch, def); err != nil {
			return nil, false, err
		}
	}
	bpf, err := export(f)
	return bpf, notify, err
}

func newFilter(target libseccomp.ScmpArch, def libseccomp.ScmpAction) (*libseccomp.ScmpFilter, error) {
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("new filter: %w", err)
	}
	fail := func(what string, err error) (*libseccomp.ScmpFilter, error) {
		f.Release()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return fail("native arch", err)
	}
	// A new filter holds the native arch only; swap it for the target.
	if native != target {
		if err := f.AddArch(target); err != nil {
			return fail("add arch "+target.String(), err)
		}
		if err := f.RemoveArch(native); err != nil {
			return fail("remove arch "+native.String(), err)
		}
	}
	if err := f.SetBadArchAction(actBadArch); err != nil {
		return fail("set bad-arch action", err)
	}
	// Binary tree by syscall number (libseccomp >= 2.5): O(log n) for
	// every syscall instead of a linear chain of ~200 comparisons.
	if err := f.SetOptimize(2); err != nil {
		return fail("set optimize level 2", err)
	}
	// Install does its own seccomp(2); the attribute only affects Load.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return fail("clear nnp attribute", err)
	}
	return f, nil
}

// resolveOn returns the number to hand libseccomp for r. libseccomp takes
// native numbers (or its negative pseudo-numbers for names the host lacks)
// and translates them by name for each arch in the filter, so the native
// resolver is the right one even when compiling for another arch.
// ok is false when r is restricted to other arches.
func resolveOn(r Rule, arch string) (libseccomp.ScmpSyscall, bool, error) {
	if len(r.Arches) > 0 && !contains(r.Arches, arch) {
		return 0, false, nil
	}
	_, on := syscallArches(r.Syscall)
	if !contains(on, arch) {
		return 0, false, fmt.Errorf("%q: not a syscall on %s", r.Syscall, arch)
	}
	nr, err := libseccomp.GetSyscallFromName(r.Syscall)
	if err != nil {
		return 0, false, fmt.Errorf("%q: %w", r.Syscall, err)
	}
	return nr, true, nil
}

// checkConflicts re-checks what the loader guarantees, for a Profile a
// caller assembled or edited by hand: each syscall in one list, once.
func checkConflicts(p *Profile) error {
	seen := map[string]string{}
	for _, l := range p.lists() {
		for _, r := range *l.rules {
			if prev, dup := seen[r.Syscall]; dup {
				return fmt.Errorf("%q is in %s and %s", r.Syscall, prev, l.class)
			}
			seen[r.Syscall] = l.class
		}
	}
	return nil
}

// argRule is one libseccomp rule of an argument filter.
type argRule struct {
	allow bool
	op    libseccomp.ScmpCompareOp
	a, b  uint64
}

// addFilter emits r's argument rules; a rule whose action is def is left
// to the default (the LogDenials variant, whose default is USER_NOTIF).
func addFilter(f *libseccomp.ScmpFilter, r Rule, arch string, def libseccomp.ScmpAction) error {
	k := findFilterKind(r.Syscall)
	if k == nil {
		return fmt.Errorf("filter %q: no argument filter for this syscall", r.Syscall)
	}
	nr, _, err := resolveOn(r, arch)
	if err != nil {
		return err
	}
	vals, err := k.parse(r)
	if err != nil {
		return err
	}
	refuse := libseccomp.ActErrno.SetReturnCode(int16(k.errno))
	if def == libseccomp.ActNotify {
		refuse = def
	}
	for _, ar := range k.rules(vals) {
		if !ar.allow && refuse == def {
			continue
		}
		c, err := libseccomp.MakeCondition(k.arg, ar.op, ar.a, ar.b)
		if err != nil {
			return fmt.Errorf("filter %s: %w", r.Syscall, err)
		}
		act := refuse
		if ar.allow {
			act = libseccomp.ActAllow
		}
		if err := f.AddRuleConditionalExact(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
			return fmt.Errorf("filter %s: rule %s arg%d %s %#x %#x: %w", r.Syscall, act, k.arg, ar.op, ar.a, ar.b, err)
		}
	}
	return nil
}

// parse resolves r's values against the kind's table.
func (k *filterKind) parse(r Rule) ([]uint64, error) {
	var vals []uint64
	for _, v := range r.Values {
		n, err := k.value(v)
		if err != nil {
			return nil, fmt.Errorf("filter %s: %w", r.Syscall, err)
		}
		vals = append(vals, n)
	}
	return vals, nil
}

// rules lays out one argument filter as libseccomp rules whose conditions
// are disjoint (libseccomp has no "otherwise": a syscall's arguments that
// match no rule get the default action, and an unconditional rule would
// override the conditional ones).
func (k *filterKind) rules(vals []uint64) []argRule {
	const low32 = 0xffffffff
	var out []argRule
	switch {
	case k.flags: // clone: refused when any listed bit is set
		var mask uint64
		for _, v := range vals {
			mask |= v
			out = append(out, argRule{false, libseccomp.CompareMaskedEqual, v, v})
		}
		return append(out, argRule{true, libseccomp.CompareMaskedEqual, mask, 0})
	case k.allow && k.errno == unix.ENOSYS: // personality: others fall to the default
		for _, v := range vals {
			out = append(out, argRule{true, libseccomp.CompareMaskedEqual, low32, v})
		}
		return out
	case k.allow: // socket: exact values; everything else refused
		// Exact 64-bit matches plus "every gap value, and above the
		// largest": disjoint and complete; garbage in the high half is
		// refused (glibc, musl and Go pass the int sign-extended).
		var max uint64
		for _, v := range vals {
			out = append(out, argRule{true, libseccomp.CompareEqual, v, 0})
			max = maxU(max, v)
		}
		for x := uint64(0); x < max; x++ {
			if !containsU(vals, x) {
				out = append(out, argRule{false, libseccomp.CompareEqual, x, 0})
			}
		}
		return append(out, argRule{false, libseccomp.CompareGreater, max, 0})
	default: // ioctl: listed values refused, every other one allowed
		var v32 []uint32
		for _, v := range vals {
			out = append(out, argRule{false, libseccomp.CompareMaskedEqual, low32, v})
			v32 = append(v32, uint32(v))
		}
		for _, c := range complementCover(v32, 31, 0) {
			out = append(out, argRule{true, libseccomp.CompareMaskedEqual, uint64(c.mask), uint64(c.value)})
		}
		return out
	}
}

type maskValue struct{ mask, value uint32 }

// complementCover returns masked-equality patterns that together match
// every 32-bit value except those in vals, each value exactly once: a walk
// down the binary trie of vals from bit 31, emitting each sibling subtree
// that holds none of them. At most 32 patterns per excluded value.
func complementCover(vals []uint32, bit int, prefix uint32) []maskValue {
	mask := ^uint32(0) << uint(bit+1)
	if bit == 31 {
		mask = 0
	}
	if len(vals) == 0 {
		return []maskValue{{mask, prefix}}
	}
	if bit < 0 {
		return nil
	}
	var zeros, ones []uint32
	for _, v := range vals {
		if v&(1<<uint(bit)) == 0 {
			zeros = appendUnique(zeros, v)
		} else {
			ones = appendUnique(ones, v)
		}
	}
	out := complementCover(zeros, bit-1, prefix)
	return append(out, complementCover(ones, bit-1, prefix|1<<uint(bit))...)
}

func appendUnique(s []uint32, v uint32) []uint32 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func containsU(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// export writes the program to a memfd (libseccomp 2.5 exports only to a
// file descriptor) and reads it back.
func export(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("zviz-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export bpf: memfd_create: %w", err)
	}
	file := os.NewFile(uintptr(fd), "zviz-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("export bpf: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("export bpf: %w", err)
	}
	bpf, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("export bpf: %w", err)
	}
	if err := checkBPF(bpf); err != nil {
		return nil, fmt.Errorf("export bpf: %w", err)
	}
	return bpf, nil
}

// checkBPF bounds a program: whole instructions, 1..BPF_MAXINSNS of them.
func checkBPF(b []byte) error {
	n := len(b) / 8
	switch {
	case len(b)%8 != 0:
		return fmt.Errorf("%d bytes is not a whole number of instructions", len(b))
	case n == 0 || n > 4096:
		return fmt.Errorf("%d instructions (the kernel takes 1 to 4096)", n)
	}
	return nil
}

func classOf(p *Profile, name string) (string, *Rule) {
	for _, l := range p.lists() {
		for i := range *l.rules {
			if (*l.rules)[i].Syscall == name {
				return l.class, &(*l.rules)[i]
			}
		}
	}
	return "", nil
}

func joinValues(v []string) string { return strings.Join(v, ", ") }
