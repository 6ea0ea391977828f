package broker

import (
	"net/netip"
	"sync"
	"time"
)

// Admitted is the set of addresses zviz's resolver handed out for names
// in network.allow_domains, each until its TTL runs out.
type Admitted struct {
	mu    sync.Mutex
	addrs map[netip.Addr]admission
	now   func() time.Time // injectable for tests
}

type admission struct {
	name  string
	until time.Time
}

// NewAdmitted returns an empty set.
func NewAdmitted() *Admitted {
	return &Admitted{addrs: map[netip.Addr]admission{}, now: time.Now}
}

// Admit lets the container reach addr (an answer for name) for ttl; an
// address already admitted keeps the later expiry.
func (a *Admitted) Admit(name string, addr netip.Addr, ttl time.Duration) {
	addr = addr.Unmap().WithZone("")
	until := a.now().Add(ttl)
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.addrs[addr]; ok && old.until.After(until) {
		return
	}
	a.addrs[addr] = admission{name, until}
}

// Lookup returns the name addr was admitted for, while it is admitted.
func (a *Admitted) Lookup(addr netip.Addr) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ad, ok := a.addrs[addr]
	if !ok {
		return "", false
	}
	if !a.now().Before(ad.until) {
		delete(a.addrs, addr)
		return "", false
	}
	return ad.name, true
}
