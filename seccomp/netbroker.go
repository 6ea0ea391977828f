package seccomp

import (
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// NetworkSyscalls are the calls that carry a destination address behind
// a pointer, which an egress allow-list needs the broker to read, and
// setsockopt, at the IPv4 and IPv6 levels only, where source routing
// (IP_OPTIONS with LSRR/SSRR, IPv6 routing headers) would send a packet
// for an allowed destination to a forbidden first hop.
var NetworkSyscalls = []string{"connect", "sendto", "sendmsg", "sendmmsg", "setsockopt"}

// Levels of setsockopt(2) brokered under an allow-list: IPPROTO_IP and
// IPPROTO_IPV6 (source routing), and IPPROTO_SCTP, whose options connect
// to lists of addresses (SCTP_SOCKOPT_CONNECTX) without connect(2). Every
// other level stays a plain allowed call.
var brokeredLevels = []uint32{0, 41, 132}

// NeedsNetworkBroker reports whether p's egress allow-list restricts
// anything: a network.allow or network.allow_domains list that does not
// admit every destination ("*" without a port).
func (p *Profile) NeedsNetworkBroker() bool {
	n := p.Network
	if len(n.Allow)+len(n.AllowDomains) == 0 {
		return false
	}
	for _, a := range n.Allow {
		if a == "*" {
			return false
		}
	}
	return true
}

// WithNetworkBroker returns a copy of p whose NetworkSyscalls that p
// allows are brokered instead (SECCOMP_RET_USER_NOTIF), so that an
// allow-list can be enforced on their addresses. Without an active
// allow-list p is returned unchanged: nothing pays for a broker then.
// sendto is brokered only with an address (argument 4 non-NULL): send(2)
// on a connected socket, whose peer connect(2) checked, stays a plain
// allowed call.
func (p *Profile) WithNetworkBroker() *Profile {
	if !p.NeedsNetworkBroker() {
		return p
	}
	c := p.clone()
	var allow []Rule
	for _, r := range c.Allow {
		if contains(NetworkSyscalls, r.Syscall) {
			r.Why = "network.allow is active: the broker checks the destination address; was allowed: " + r.Why
			switch r.Syscall {
			case "sendto":
				r.Why += " (without an address, send(2) on a connected socket, it stays allowed in BPF)"
			case "setsockopt":
				r.Why += " (brokered at the IP, IPv6 and SCTP levels only, where source routing and multi-address connects are set; others stay allowed in BPF)"
			}
			c.Broker = append(c.Broker, r)
			continue
		}
		allow = append(allow, r)
	}
	c.Allow = allow
	return c
}

// addBrokerRule emits a broker rule. sendto with a NULL address is
// allowed in BPF (see WithNetworkBroker); with def == act (the
// LogDenials variant, whose default is USER_NOTIF) only that exception
// is emitted.
func addBrokerRule(f *libseccomp.ScmpFilter, name string, nr libseccomp.ScmpSyscall, act, def libseccomp.ScmpAction) error {
	if name == "sendto" {
		null, err := libseccomp.MakeCondition(4, libseccomp.CompareEqual, 0)
		if err != nil {
			return err
		}
		if err := f.AddRuleConditionalExact(nr, libseccomp.ActAllow, []libseccomp.ScmpCondition{null}); err != nil {
			return err
		}
		if act == def {
			return nil
		}
		addr, err := libseccomp.MakeCondition(4, libseccomp.CompareNotEqual, 0)
		if err != nil {
			return err
		}
		return f.AddRuleConditionalExact(nr, act, []libseccomp.ScmpCondition{addr})
	}
	if name == "setsockopt" {
		// Every level but IP and IPv6 is allowed (a disjoint cover of the
		// other 32-bit values, as for ioctl); those two get act, or the
		// default when it is the same.
		for _, c := range complementCover(brokeredLevels, 31, 0) {
			cond, err := libseccomp.MakeCondition(1, libseccomp.CompareMaskedEqual, uint64(c.mask), uint64(c.value))
			if err != nil {
				return err
			}
			if err := f.AddRuleConditionalExact(nr, libseccomp.ActAllow, []libseccomp.ScmpCondition{cond}); err != nil {
				return err
			}
		}
		if act == def {
			return nil
		}
		for _, level := range brokeredLevels {
			cond, err := libseccomp.MakeCondition(1, libseccomp.CompareMaskedEqual, 0xffffffff, uint64(level))
			if err != nil {
				return err
			}
			if err := f.AddRuleConditionalExact(nr, act, []libseccomp.ScmpCondition{cond}); err != nil {
				return err
			}
		}
		return nil
	}
	if act == def {
		return nil
	}
	return f.AddRuleExact(nr, act)
}
