package broker

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Policy is a profile's egress allow-list (network.allow), parsed.
type Policy struct {
	Rules []Rule
	// LocalFree allows loopback destinations (127.0.0.0/8, ::1, and the
	// unspecified addresses, which Linux connects to the local host)
	// without a rule: right when the container has a network namespace of
	// its own, where they never leave it. With the host's network they are
	// the host's services and go through the rules like any other.
	LocalFree bool
	// Domains admits the addresses a resolver handed out for
	// network.allow_domains (nil: none).
	Domains *Admitted
}

// Rule is one network.allow entry: an address prefix and a port (0: any).
type Rule struct {
	Prefix netip.Prefix
	Port   uint16
	Text   string // as written in the profile, for log lines
}

// ParseAllow parses network.allow entries: ADDR, PREFIX or "*", each with
// an optional ":PORT" ("[v6]:PORT" for IPv6). The profile loader has
// validated them already; this is the same grammar.
func ParseAllow(allow []string) (*Policy, error) {
	p := &Policy{}
	for i, s := range allow {
		r, err := parseRule(s)
		if err != nil {
			return nil, fmt.Errorf("network.allow[%d] %q: %w", i, s, err)
		}
		p.Rules = append(p.Rules, r...)
	}
	return p, nil
}

func parseRule(s string) ([]Rule, error) {
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		i := strings.Index(s, "]")
		if i < 0 || (i+1 < len(s) && s[i+1] != ':') {
			return nil, errors.New("want [IPv6]:PORT")
		}
		host, port = s[1:i], strings.TrimPrefix(s[i+1:], ":")
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	var n uint64
	if port != "" {
		var err error
		if n, err = strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("port %q: want 1-65535", port)
		}
	}
	var prefixes []netip.Prefix
	switch {
	case host == "*":
		prefixes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return nil, err
		}
		prefixes = []netip.Prefix{p.Masked()}
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, err
		}
		a = a.Unmap().WithZone("")
		prefixes = []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}
	}
	var out []Rule
	for _, p := range prefixes {
		out = append(out, Rule{Prefix: p, Port: uint16(n), Text: s})
	}
	return out, nil
}

// AllowsAll reports whether the list admits every destination ("*"
// without a port): then nothing needs brokering.
func AllowsAll(allow []string) bool {
	for _, s := range allow {
		if s == "*" {
			return true
		}
	}
	return false
}

// Decide says whether the container may send to addr:port, and why: the
// rule that admits it, "loopback", "domain NAME", or "" when refused.
// addr must be unmapped (an IPv4-mapped IPv6 address is its IPv4 one).
func (p *Policy) Decide(addr netip.Addr, port uint16) (ok bool, why string) {
	if p.LocalFree && local(addr) {
		return true, "loopback"
	}
	for _, r := range p.Rules {
		if r.Prefix.Contains(addr) && (r.Port == 0 || r.Port == port) {
			return true, r.Text
		}
	}
	if p.Domains != nil {
		if name, ok := p.Domains.Lookup(addr); ok {
			return true, "domain " + name
		}
	}
	return false, ""
}

// local is what never leaves the network namespace: loopback, and the
// unspecified address (connect(2) to 0.0.0.0 or :: reaches the local
// host on Linux).
func local(a netip.Addr) bool {
	return a.IsLoopback() || a.IsUnspecified()
}
