package broker

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestDNSAllowed(t *testing.T) {
	d := &DNS{Domains: []string{"example.test", "*.wild.test"}}
	for name, want := range map[string]bool{
		"example.test": true, "Example.TEST.": true, "www.example.test": false,
		"a.wild.test": true, "a.b.wild.test.": true, "wild.test": false, "xwild.test": false, "test": false,
	} {
		if got := d.Allowed(name); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", name, got, want)
		}
	}
}

func query(t *testing.T, name string) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x4242, RecursionDesired: true})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	q, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestDNSAnswer: an allowed name is forwarded and its addresses admitted
// (at least MinTTL); another is answered REFUSED without asking upstream,
// and logged.
func TestDNSAnswer(t *testing.T) {
	up, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	asked := make(chan string, 4)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := up.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, _ := p.Start(buf[:n])
			q, _ := p.Question()
			asked <- q.Name.String()
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true})
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0},
				dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}})
			out, _ := b.Finish()
			_, _ = up.WriteTo(out, from)
		}
	}()
	var log bytes.Buffer
	adm := NewAdmitted()
	d := &DNS{Domains: []string{"example.test"}, Upstreams: []string{up.LocalAddr().String()}, Admitted: adm,
		Broker: &Broker{Log: &log, Profile: "p"}}
	reply := d.answer(query(t, "example.test."))
	var p dnsmessage.Parser
	if h, err := p.Start(reply); err != nil || h.RCode != dnsmessage.RCodeSuccess || h.ID != 0x4242 {
		t.Fatalf("reply %v %v", h, err)
	}
	if name, ok := adm.Lookup(netip.MustParseAddr("192.0.2.7")); !ok || name != "example.test" {
		t.Errorf("192.0.2.7 not admitted for example.test (TTL 0 gets MinTTL): %q %v", name, ok)
	}
	reply = d.answer(query(t, "evil.test."))
	if h, err := p.Start(reply); err != nil || h.RCode != dnsmessage.RCodeRefused {
		t.Fatalf("evil.test: %v %v, want REFUSED", h, err)
	}
	if got := <-asked; got != "example.test." || len(asked) != 0 {
		t.Errorf("upstream asked %q (+%d), want example.test. only", got, len(asked))
	}
	if !strings.Contains(log.String(), "zviz: broker: dns evil.test refused (REFUSED: not in network.allow_domains) [profile p]") {
		t.Errorf("log: %q", log.String())
	}
}
