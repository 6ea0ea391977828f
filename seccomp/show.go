package seccomp

import (
	"fmt"
	"strings"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Listing is a profile's syscall lists as they apply on one arch, for
// `zviz policy show`. Unlisted counts the syscalls the arch has that no
// list names: they get ENOSYS.
type Listing struct {
	Profile  string `json:"profile"`
	Arch     string `json:"arch"`
	Allow    []Rule `json:"allow"`
	Deny     []Rule `json:"deny"`
	ENOSYS   []Rule `json:"enosys"`
	Filter   []Rule `json:"filter"`
	Broker   []Rule `json:"broker"`
	Unlisted int    `json:"unlisted"`
}

// Show lists p's rules for arch.
func Show(p *Profile, arch string) (*Listing, error) {
	name, target, err := canonicalArch(arch)
	if err != nil {
		return nil, fmt.Errorf("show profile %s: %w", p.Name, err)
	}
	l := &Listing{Profile: p.Name, Arch: name}
	dst := map[string]*[]Rule{
		classAllow: &l.Allow, classDeny: &l.Deny, classENOSYS: &l.ENOSYS,
		classFilter: &l.Filter, classBroker: &l.Broker,
	}
	listed := map[string]bool{}
	for _, c := range p.lists() {
		for _, r := range *c.rules {
			if len(r.Arches) == 0 || contains(r.Arches, name) {
				*dst[c.class] = append(*dst[c.class], r)
				listed[r.Syscall] = true
			}
		}
	}
	for _, s := range archSyscalls(target) {
		if !listed[s] {
			l.Unlisted++
		}
	}
	return l, nil
}

// archSyscalls lists the names libseccomp knows for arch by number.
func archSyscalls(arch libseccomp.ScmpArch) []string {
	var names []string
	for nr := 0; nr < 1024; nr++ {
		if n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch); err == nil {
			names = append(names, n)
		}
	}
	return names
}

// Explain says what happens to syscall name under p, and why, on each arch.
func Explain(p *Profile, name string) string {
	known, on := syscallArches(name)
	if !known {
		return fmt.Sprintf("%s: not a syscall name libseccomp %s knows; a call by number that no list names gets ENOSYS",
			name, libseccompVersion())
	}
	class, r := classOf(p, name)
	var b strings.Builder
	fmt.Fprintf(&b, "%s under profile %s:\n", name, p.Name)
	for _, a := range archNames() {
		fmt.Fprintf(&b, "  %s: %s\n", a, explainOn(class, r, a, contains(on, a)))
	}
	if r != nil {
		fmt.Fprintf(&b, "  why: %s\n", r.Why)
		if r.From != p.Name {
			fmt.Fprintf(&b, "  listed by: %s\n", r.From)
		}
	}
	if name == "clone" || name == "clone3" || name == "unshare" {
		b.WriteString("  note: calls through another ABI (i386 int 0x80, x32) kill the process on every path\n")
	}
	return b.String()
}

func explainOn(class string, r *Rule, arch string, exists bool) string {
	switch {
	case !exists:
		return "not a syscall on this arch"
	case r != nil && len(r.Arches) > 0 && !contains(r.Arches, arch):
		return "unlisted here: ENOSYS"
	}
	switch class {
	case classAllow:
		return "allowed: reaches the kernel, no argument checks"
	case classDeny:
		return "denied: EPERM"
	case classENOSYS:
		return "ENOSYS on purpose, so libc and runtimes fall back"
	case classBroker:
		return "sent to the broker (SECCOMP_RET_USER_NOTIF); ENOSYS when no broker listens"
	case classFilter:
		k := findFilterKind(r.Syscall)
		return "filtered inline: " + fmt.Sprintf(k.explain, joinValues(r.Values))
	}
	return "not listed: ENOSYS (every syscall a profile does not name gets ENOSYS)"
}
