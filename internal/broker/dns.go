package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// network.allow_domains works for every program that uses the system
// resolver, without trusting the program's view of names:
//
//   - The container's /etc/resolv.conf names one nameserver, DNSAddr, on
//     the container's own loopback (the parent bind-mounts a copy of the
//     configured file with only that nameserver).
//   - The container's init binds a UDP socket there before it drops its
//     privileges, and hands it to the broker with the seccomp listener.
//   - The broker (DNS.Serve) answers every query on it: a name that
//     allow_domains admits ("example.com", or "*.example.com" for its
//     subdomains) is forwarded to the upstream nameservers the container
//     was configured with (as the host resolves), the answer is relayed,
//     and each A/AAAA address in it is admitted (Admitted) for the
//     record's TTL, but at least MinTTL, since programs connect right
//     after resolving and a TTL of 0 would race them. Other names are
//     answered REFUSED and logged.
//   - connect/sendto/... to an admitted address pass the broker's check
//     like a network.allow rule ("domain NAME" in the log).
//
// So a program can reach example.com's addresses only after it asked for
// example.com, and only for as long as the answer is valid; asking an
// outside resolver directly is a connect to port 53 that network.allow
// refuses.

// DNSAddr is the address the container's resolver is pointed at.
const DNSAddr = "127.0.0.53:53"

// MinTTL is the shortest time an answered address stays admitted.
const MinTTL = 10 * time.Second

// DNS is the broker's resolver for one container.
type DNS struct {
	Domains   []string // network.allow_domains
	Upstreams []string // "ADDR:53" nameservers to forward to
	Admitted  *Admitted
	Broker    *Broker // logging
	Timeout   time.Duration
}

// Allowed reports whether name (any case, with or without the final dot)
// is one of the domains, or under a "*." one.
func (d *DNS) Allowed(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, dom := range d.Domains {
		if suffix, ok := strings.CutPrefix(dom, "*."); ok {
			if strings.HasSuffix(name, "."+suffix) {
				return true
			}
		} else if name == dom {
			return true
		}
	}
	return false
}

// Serve answers queries on conn (the socket in the container's network
// namespace) until it is closed.
func (d *DNS) Serve(conn net.PacketConn) error {
	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("dns: %w", err)
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if reply := d.answer(q); reply != nil {
				_, _ = conn.WriteTo(reply, from)
			}
		}()
	}
}

// answer returns the reply to query q, or nil to drop it (unparsable).
func (d *DNS) answer(q []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil || h.Response {
		return nil
	}
	question, err := p.Question()
	if err != nil {
		return nil
	}
	name := question.Name.String()
	if !d.Allowed(name) {
		d.Broker.dnsDecision(name, false, "not in network.allow_domains")
		return rcodeReply(h, question, dnsmessage.RCodeRefused)
	}
	reply, err := d.forward(q)
	if err != nil {
		d.Broker.dnsDecision(name, true, "upstream failed: "+err.Error())
		return rcodeReply(h, question, dnsmessage.RCodeServerFailure)
	}
	admitted := d.admit(name, reply)
	d.Broker.dnsDecision(name, true, fmt.Sprintf("%d addresses admitted", admitted))
	return reply
}

// forward asks each upstream in turn.
func (d *DNS) forward(q []byte) ([]byte, error) {
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	var errs []error
	for _, up := range d.Upstreams {
		c, err := net.Dial("udp", up)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(timeout))
		buf := make([]byte, 65535)
		_, err = c.Write(q)
		var n int
		if err == nil {
			n, err = c.Read(buf)
		}
		c.Close()
		if err == nil && n >= 2 && buf[0] == q[0] && buf[1] == q[1] {
			return buf[:n], nil
		}
		errs = append(errs, fmt.Errorf("%s: %v", up, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("no upstream nameserver")
	}
	return nil, errors.Join(errs...)
}

// admit admits the A and AAAA records of reply for name; it returns how
// many.
func (d *DNS) admit(name string, reply []byte) int {
	var p dnsmessage.Parser
	if _, err := p.Start(reply); err != nil {
		return 0
	}
	if err := p.SkipAllQuestions(); err != nil {
		return 0
	}
	n := 0
	for {
		h, err := p.AnswerHeader()
		if err != nil {
			return n
		}
		ttl := max(time.Duration(h.TTL)*time.Second, MinTTL)
		switch h.Type {
		case dnsmessage.TypeA:
			r, err := p.AResource()
			if err != nil {
				return n
			}
			d.Admitted.Admit(strings.TrimSuffix(name, "."), netip.AddrFrom4(r.A), ttl)
			n++
		case dnsmessage.TypeAAAA:
			r, err := p.AAAAResource()
			if err != nil {
				return n
			}
			d.Admitted.Admit(strings.TrimSuffix(name, "."), netip.AddrFrom16(r.AAAA), ttl)
			n++
		default:
			if err := p.SkipAnswer(); err != nil {
				return n
			}
		}
	}
}

func rcodeReply(h dnsmessage.Header, q dnsmessage.Question, rcode dnsmessage.RCode) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode})
	if b.StartQuestions() != nil || b.Question(q) != nil {
		return nil
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// dnsDecision logs a refused name always, an answered one with Verbose:
//
//	zviz: broker: dns evil.test refused (REFUSED: not in network.allow_domains) [profile p]
//	zviz: broker: dns example.test answered (2 addresses admitted) [profile p]
func (b *Broker) dnsDecision(name string, ok bool, why string) {
	if b == nil || ok && !b.Verbose {
		return
	}
	verdict := "answered (" + why + ")"
	if !ok {
		verdict = "refused (REFUSED: " + why + ")"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Log == nil {
		return
	}
	if _, err := fmt.Fprintf(b.Log, "zviz: broker: dns %s %s [profile %s]\n", strings.TrimSuffix(name, "."), verdict, b.Profile); err != nil {
		b.Log = io.Discard
	}
}

// Upstreams reads the nameservers of a resolv.conf, as "ADDR:53".
func Upstreams(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, netip.AddrPortFrom(a, 53).String())
			}
		}
	}
	return out
}
