package seccomp

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// CompileOCI compiles a config.json's own linux.seccomp (podman's profile)
// for arch, so that the runtime can install it beside the zviz profile: the
// kernel runs both and the strictest answer wins, so choosing zviz never
// weakens the config's policy (SPEC.md, "The policy model").
//
// Only the target arch is compiled; calls through another ABI are killed,
// as zviz's own profile does. Syscall names this arch does not know are
// skipped, as runc does. It returns the program and the seccomp(2) flags
// the config asks for at install. SCMP_ACT_NOTIFY needs an agent
// (linux.seccomp.listenerPath): the program then has Notify set, and its
// listener goes to that agent.
func CompileOCI(s *specs.LinuxSeccomp, arch string) (*Program, uint, error) {
	name, target, err := canonicalArch(arch)
	if err != nil {
		return nil, 0, err
	}
	notify := s.DefaultAction == specs.ActNotify
	for _, sc := range s.Syscalls {
		notify = notify || sc.Action == specs.ActNotify
	}
	if notify && s.ListenerPath == "" {
		return nil, 0, fmt.Errorf("linux.seccomp: %s needs a seccomp agent: linux.seccomp.listenerPath is not set", specs.ActNotify)
	}
	def, err := ociAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, 0, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	flags, err := ociFlags(s.Flags)
	if err != nil {
		return nil, 0, err
	}
	f, err := newFilter(target, def)
	if err != nil {
		return nil, 0, fmt.Errorf("linux.seccomp: %w", err)
	}
	defer f.Release()
	for i, sc := range s.Syscalls {
		if err := addOCIRule(f, target, sc); err != nil {
			return nil, 0, fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
		}
	}
	bpf, err := export(f)
	if err != nil {
		return nil, 0, fmt.Errorf("linux.seccomp: %w", err)
	}
	return &Program{Profile: "config.json", Arch: name, Instructions: len(bpf) / 8, BPF: bpf, Notify: notify}, flags, nil
}

func addOCIRule(f *libseccomp.ScmpFilter, target libseccomp.ScmpArch, sc specs.LinuxSyscall) error {
	act, err := ociAction(sc.Action, sc.ErrnoRet)
	if err != nil {
		return fmt.Errorf("action: %w", err)
	}
	conds, err := ociConditions(sc.Args)
	if err != nil {
		return err
	}
	for _, n := range sc.Names {
		nr, err := libseccomp.GetSyscallFromNameByArch(n, target)
		if err != nil {
			continue // not a syscall of this arch (runc skips these too)
		}
		if err := addConditions(f, nr, act, conds); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}

// addConditions adds one rule, or one per condition when two compare the
// same argument: libseccomp refuses that in a single rule, and runc reads
// such an entry as "any of them" the same way.
func addConditions(f *libseccomp.ScmpFilter, nr libseccomp.ScmpSyscall, act libseccomp.ScmpAction, conds []libseccomp.ScmpCondition) error {
	if len(conds) == 0 {
		return f.AddRule(nr, act)
	}
	seen := map[uint]bool{}
	distinct := true
	for _, c := range conds {
		distinct = distinct && !seen[c.Argument]
		seen[c.Argument] = true
	}
	if distinct {
		return f.AddRuleConditional(nr, act, conds)
	}
	for _, c := range conds {
		if err := f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

var ociOps = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual: libseccomp.CompareNotEqual, specs.OpLessThan: libseccomp.CompareLess,
	specs.OpLessEqual: libseccomp.CompareLessOrEqual, specs.OpEqualTo: libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual, specs.OpGreaterThan: libseccomp.CompareGreater,
	specs.OpMaskedEqual: libseccomp.CompareMaskedEqual,
}

func ociConditions(args []specs.LinuxSeccompArg) ([]libseccomp.ScmpCondition, error) {
	var out []libseccomp.ScmpCondition
	for i, a := range args {
		op, ok := ociOps[a.Op]
		if !ok {
			return nil, fmt.Errorf("args[%d].op %q: unknown operator", i, a.Op)
		}
		if a.Index > 5 {
			return nil, fmt.Errorf("args[%d].index %d: syscalls have 6 arguments", i, a.Index)
		}
		var c libseccomp.ScmpCondition
		var err error
		if op == libseccomp.CompareMaskedEqual {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("args[%d]: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func ociAction(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	errno := int16(unix.EPERM)
	if errnoRet != nil {
		errno = int16(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(errno), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(errno), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return 0, fmt.Errorf("%q: unknown action", a)
}

var ociFlagBits = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

func ociFlags(flags []specs.LinuxSeccompFlag) (uint, error) {
	var out uint
	for i, f := range flags {
		b, ok := ociFlagBits[f]
		if !ok {
			return 0, fmt.Errorf("linux.seccomp.flags[%d] %q: unknown flag (known: %s)", i, f, strings.Join(flagNames(), ", "))
		}
		out |= b
	}
	return out, nil
}

func flagNames() []string {
	var n []string
	for f := range ociFlagBits {
		n = append(n, string(f))
	}
	return n
}

// OCIFeatures lists what CompileOCI accepts, for the runtime-spec features
// document: actions, operators, flags, from the tables above.
func OCIFeatures() (actions, operators, flags []string) {
	actions = []string{string(specs.ActKill), string(specs.ActKillProcess), string(specs.ActKillThread),
		string(specs.ActTrap), string(specs.ActErrno), string(specs.ActTrace), string(specs.ActAllow), string(specs.ActLog),
		string(specs.ActNotify)}
	for op := range ociOps {
		operators = append(operators, string(op))
	}
	slices.Sort(operators)
	flags = flagNames()
	slices.Sort(flags)
	return actions, operators, flags
}
