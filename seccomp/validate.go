package seccomp

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// The lists a syscall can be in, in the order Show prints them.
const (
	classAllow  = "allow"
	classDeny   = "deny"
	classENOSYS = "enosys"
	classFilter = "filter"
	classBroker = "broker"
)

// where remembers the first place a syscall was listed, for conflicts.
type where struct{ class, loc, from string }

// merger applies one file (sp) on top of its resolved base.
type merger struct {
	name string
	p    *Profile
	seen map[string]where
	errs []error
}

func (m *merger) bad(format string, a ...any) { m.errs = append(m.errs, fmt.Errorf(format, a...)) }

// merge checks one file and applies it to base (nil for a root profile).
// Syscall lists add to the base's; a name the base already lists must be
// in drop: first. Mapping sections override key by key, capabilities:
// replaces, required: only adds (a derived profile cannot quietly
// un-require a layer).
func merge(name, source string, sp *spec, base *Profile) (*Profile, error) {
	m := &merger{name: name, seen: map[string]where{}}
	if base != nil {
		m.p = base.clone()
		m.p.Extends = append([]string{base.Name}, base.Extends...)
		for _, c := range m.p.lists() {
			for _, r := range *c.rules {
				m.seen[r.Syscall] = where{c.class, c.class, r.From}
			}
		}
	} else {
		m.p = &Profile{Network: Network{Mode: "none"}}
	}
	m.p.Name, m.p.Source, m.p.Description = name, source, sp.Description
	m.drop(sp.Drop, base != nil)
	m.p.Allow = append(m.p.Allow, m.groups(classAllow, sp.Allow)...)
	m.p.Deny = append(m.p.Deny, m.groups(classDeny, sp.Deny)...)
	m.p.ENOSYS = append(m.p.ENOSYS, m.groups(classENOSYS, sp.ENOSYS)...)
	m.p.Broker = append(m.p.Broker, m.groups(classBroker, sp.Broker)...)
	for _, sc := range sortedKeys(sp.Filter) {
		m.filter(sc, sp.Filter[sc])
	}
	m.capabilities(sp.Capabilities)
	m.network(sp.Network)
	m.filesystem(sp.Filesystem)
	m.limits(sp.Limits)
	m.required(sp.Required)
	return m.p, errors.Join(m.errs...)
}

func (m *merger) drop(names []string, hasBase bool) {
	if len(names) > 0 && !hasBase {
		m.bad("drop: only a profile that extends another can drop syscalls")
		return
	}
	done := map[string]bool{}
	for i, s := range names {
		at := fmt.Sprintf("drop[%d] %q", i, s)
		switch {
		case done[s]:
			m.bad("%s: listed twice", at)
		case m.seen[s].class == "":
			m.bad("%s: not in base profile %q", at, m.p.Extends[0])
		default:
			m.p.remove(s)
			delete(m.seen, s)
			done[s] = true
		}
	}
}

func (m *merger) groups(class string, groups []group) []Rule {
	var rules []Rule
	for gi, g := range groups {
		loc := fmt.Sprintf("%s[%d]", class, gi)
		if strings.TrimSpace(g.Why) == "" {
			m.bad("%s: why: missing (say which workload needs these, or why they are refused)", loc)
		}
		var only []string
		for ai, a := range g.Arch {
			name, _, err := canonicalArch(a)
			if err != nil {
				m.bad("%s.arch[%d]: %v", loc, ai, err)
				continue
			}
			only = append(only, name)
		}
		if len(g.Syscalls) == 0 {
			m.bad("%s.syscalls: empty", loc)
		}
		archOK := len(only) == len(g.Arch)
		for si, s := range g.Syscalls {
			at := fmt.Sprintf("%s.syscalls[%d] %q", loc, si, s)
			if m.claim(s, class, at, only, archOK) {
				rules = append(rules, Rule{Syscall: s, Why: strings.TrimSpace(g.Why), Arches: only, From: m.name})
			}
		}
	}
	return rules
}

// claim records that s is in class at location at; false when s is unknown,
// on the wrong arches, or already listed somewhere. The arch-specific
// marking is enforced both ways: a group without arch: holds only syscalls
// that every arch has, a group with arch: only syscalls that exist on
// exactly those arches.
func (m *merger) claim(s, class, at string, only []string, checkArch bool) bool {
	known, on := syscallArches(s)
	switch {
	case !known:
		m.bad("%s: unknown syscall", at)
		return false
	case !checkArch:
	case len(only) == 0 && len(on) == 0:
		m.bad("%s: not a syscall on %s", at, strings.Join(archNames(), " or "))
		return false
	case len(only) == 0 && len(on) != len(arches):
		m.bad("%s: exists only on %s: put it in a group with arch: [%s]", at, strings.Join(on, ", "), strings.Join(on, ", "))
		return false
	case len(only) > 0 && !sameSet(on, only):
		m.bad("%s: exists on [%s], the group says arch: [%s]", at, strings.Join(on, ", "), strings.Join(only, ", "))
		return false
	}
	if prev, dup := m.seen[s]; dup {
		if prev.from == m.name {
			m.bad("%s: already in %s (a syscall is listed once, in one list)", at, prev.loc)
		} else {
			m.bad("%s: already in %s of base profile %q; add it to drop: to move it", at, prev.class, prev.from)
		}
		return false
	}
	m.seen[s] = where{class, at, m.name}
	return true
}

func (m *merger) filter(sc string, f filterSpec) {
	loc := "filter." + sc
	k := findFilterKind(sc)
	if k == nil {
		m.bad("%s: no inline argument filter for this syscall (zviz has them for %s)", loc, strings.Join(filterSyscalls(), ", "))
		return
	}
	fields := map[string][]string{
		"allow_families": f.AllowFamilies, "deny_flags": f.DenyFlags,
		"deny_requests": f.DenyRequests, "allow_values": f.AllowValues,
	}
	for _, key := range sortedKeys(fields) {
		if key != k.field && len(fields[key]) > 0 {
			m.bad("%s.%s: %s is filtered by %s", loc, key, sc, k.field)
		}
	}
	values := fields[k.field]
	if len(values) == 0 {
		m.bad("%s.%s: empty (list the values, or move %s to allow/deny)", loc, k.field, sc)
	}
	if strings.TrimSpace(f.Why) == "" {
		m.bad("%s: why: missing", loc)
	}
	seenV := map[uint64]string{}
	for i, v := range values {
		at := fmt.Sprintf("%s.%s[%d]", loc, k.field, i)
		if sc == "clone" && v == "CLONE_NEWTIME" {
			m.bad("%s: CLONE_NEWTIME shares its bit with clone(2)'s exit signal; the kernel takes it only from clone3 and unshare, which are refused elsewhere", at)
			continue
		}
		n, err := k.value(v)
		if err != nil {
			m.bad("%s: %v", at, err)
			continue
		}
		if prev, dup := seenV[n]; dup {
			m.bad("%s %q: same value as %q", at, v, prev)
		}
		seenV[n] = v
	}
	if m.claim(sc, classFilter, loc, nil, true) {
		m.p.Filter = append(m.p.Filter, Rule{Syscall: sc, Why: strings.TrimSpace(f.Why), Values: values, From: m.name})
	}
}

func (m *merger) capabilities(caps *[]string) {
	if caps == nil {
		return
	}
	m.p.Capabilities = nil
	for i, c := range *caps {
		switch {
		case !contains(capabilities, c):
			m.bad("capabilities[%d] %q: unknown capability (names are CAP_*, e.g. CAP_NET_BIND_SERVICE)", i, c)
		case contains(m.p.Capabilities, c):
			m.bad("capabilities[%d] %q: listed twice", i, c)
		default:
			m.p.Capabilities = append(m.p.Capabilities, c)
		}
	}
}

func (m *merger) network(n *networkSpec) {
	if n != nil {
		if n.Mode != nil {
			m.p.Network.Mode = *n.Mode
		}
		if n.Allow != nil {
			m.p.Network.Allow = append([]string(nil), (*n.Allow)...)
		}
		if n.AllowDomains != nil {
			m.p.Network.AllowDomains = append([]string(nil), (*n.AllowDomains)...)
		}
	}
	net := m.p.Network
	if !contains(networkModes, net.Mode) {
		m.bad("network.mode %q: unknown (one of %s)", net.Mode, strings.Join(networkModes, ", "))
	}
	if net.Mode == "none" && len(net.Allow)+len(net.AllowDomains) > 0 {
		m.bad("network: allow and allow_domains have no effect with mode none")
	}
	for i, a := range net.Allow {
		if err := checkEndpoint(a); err != nil {
			m.bad("network.allow[%d] %q: %v", i, a, err)
		}
	}
	for i, d := range net.AllowDomains {
		if len(d) > 253 || !domainRE().MatchString(d) {
			m.bad("network.allow_domains[%d] %q: not a lower-case DNS name (a leading \"*.\" is allowed)", i, d)
		}
	}
}

// domainRE is compiled on first use: its bounded repetitions make a large
// program, and building it at package init cost every zviz process (the
// container's init included) about 0.3 ms.
var domainRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
})

// checkEndpoint accepts ADDR, PREFIX or "*", each with an optional :PORT;
// IPv6 with a port is written [ADDR]:PORT or [PREFIX]:PORT.
func checkEndpoint(s string) error {
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		i := strings.Index(s, "]")
		if i < 0 || (i+1 < len(s) && s[i+1] != ':') {
			return errors.New("want [IPv6]:PORT")
		}
		host, port = s[1:i], strings.TrimPrefix(s[i+1:], ":")
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	if host != "*" {
		var err error
		if strings.Contains(host, "/") {
			_, err = netip.ParsePrefix(host)
		} else {
			_, err = netip.ParseAddr(host)
		}
		if err != nil {
			return fmt.Errorf("not an address, prefix or *: %v", err)
		}
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1-65535", port)
		}
	}
	return nil
}

func (m *merger) filesystem(f *filesystemSpec) {
	if f == nil {
		return
	}
	if f.ReadonlyRoot != nil {
		m.p.Filesystem.ReadonlyRoot = *f.ReadonlyRoot
	}
	if f.Writable == nil {
		return
	}
	m.p.Filesystem.Writable = nil
	for i, w := range *f.Writable {
		switch {
		case !path.IsAbs(w) || path.Clean(w) != w:
			m.bad("filesystem.writable[%d] %q: want an absolute, clean path", i, w)
		case w == "/":
			m.bad("filesystem.writable[%d] %q: say readonly_root: false instead", i, w)
		case contains(m.p.Filesystem.Writable, w):
			m.bad("filesystem.writable[%d] %q: listed twice", i, w)
		default:
			m.p.Filesystem.Writable = append(m.p.Filesystem.Writable, w)
		}
	}
}

func (m *merger) limits(l *limitsSpec) {
	if l == nil {
		return
	}
	if l.Memory != nil {
		v, err := parseBytes(*l.Memory)
		if err != nil {
			m.bad("limits.memory %q: %v", *l.Memory, err)
		}
		m.p.Limits.Memory = v
	}
	if l.Pids != nil {
		v, err := parseCount(*l.Pids)
		if err != nil {
			m.bad("limits.pids %q: %v", *l.Pids, err)
		}
		m.p.Limits.Pids = v
	}
	if l.CPU != nil {
		v, err := parseCPU(*l.CPU)
		if err != nil {
			m.bad("limits.cpu %q: %v", *l.CPU, err)
		}
		m.p.Limits.CPU = v
	}
}

// parseBytes reads "max", a byte count, or a count with K/M/G/T (or
// Ki/Mi/Gi/Ti, the same binary units).
func parseBytes(s string) (int64, error) {
	if s == "max" {
		return 0, nil
	}
	num := strings.TrimRight(s, "KMGTi")
	unit := strings.TrimSuffix(s[len(num):], "i")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, errors.New("want max, or a positive size such as 512M or 8G")
	}
	if n > math.MaxInt64>>sh {
		return 0, errors.New("too large")
	}
	if v := n << sh; v >= 1<<20 {
		return v, nil
	}
	return 0, errors.New("below 1M, too small for any process")
}

func parseCount(s string) (int64, error) {
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, errors.New("want max or a positive integer")
	}
	return n, nil
}

func parseCPU(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0.01 && f <= 4096) {
		return 0, errors.New("want max or a number of cores between 0.01 and 4096")
	}
	return f, nil
}

func (m *merger) required(req []string) {
	mine := map[string]bool{}
	for i, r := range req {
		switch {
		case !contains(layers, r):
			m.bad("required[%d] %q: unknown layer (one of %s)", i, r, strings.Join(layers, ", "))
		case mine[r]:
			m.bad("required[%d] %q: listed twice", i, r)
		case !contains(m.p.Required, r):
			m.p.Required = append(m.p.Required, r)
		}
		mine[r] = true
	}
}

// syscallArches says whether libseccomp knows name at all, and on which of
// zviz's arches it is a real syscall (libseccomp answers a negative
// pseudo-number for names that exist elsewhere only).
func syscallArches(name string) (known bool, on []string) {
	for _, a := range arches {
		nr, err := libseccomp.GetSyscallFromNameByArch(name, a.scmp)
		if err != nil {
			continue
		}
		known = true
		if nr >= 0 {
			on = append(on, a.name)
		}
	}
	return known, on
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !contains(b, x) {
			return false
		}
	}
	return true
}

type list struct {
	class string
	rules *[]Rule
}

func (p *Profile) lists() []list {
	return []list{
		{classAllow, &p.Allow}, {classDeny, &p.Deny}, {classENOSYS, &p.ENOSYS},
		{classFilter, &p.Filter}, {classBroker, &p.Broker},
	}
}

func (p *Profile) remove(name string) {
	for _, l := range p.lists() {
		out := (*l.rules)[:0]
		for _, r := range *l.rules {
			if r.Syscall != name {
				out = append(out, r)
			}
		}
		*l.rules = out
	}
}

func (p *Profile) clone() *Profile {
	c := *p
	for _, l := range c.lists() {
		*l.rules = append([]Rule(nil), (*l.rules)...)
	}
	c.Capabilities = append([]string(nil), p.Capabilities...)
	c.Network.Allow = append([]string(nil), p.Network.Allow...)
	c.Network.AllowDomains = append([]string(nil), p.Network.AllowDomains...)
	c.Filesystem.Writable = append([]string(nil), p.Filesystem.Writable...)
	c.Required = append([]string(nil), p.Required...)
	c.Extends = append([]string(nil), p.Extends...)
	return &c
}
