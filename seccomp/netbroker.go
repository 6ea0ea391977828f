package seccomp

import (
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// NetworkSyscalls are the calls that carry a destination address behind
// a pointer, which an egress allow-list needs the broker to read.
var NetworkSyscalls = []string{"connect", "sendto", "sendmsg", "sendmmsg"}

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
			if r.Syscall == "sendto" {
				r.Why += " (without an address, send(2) on a connected socket, it stays allowed in BPF)"
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
	if act == def {
		return nil
	}
	return f.AddRuleExact(nr, act)
}
