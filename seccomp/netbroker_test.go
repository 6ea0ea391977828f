package seccomp

import "testing"

// TestNetworkBroker: an active allow-list moves the address-carrying
// calls the profile allows to the broker (sendto only with an address),
// for both arches and both variants; without one, or with "*", the
// profile, and so its program, is unchanged.
func TestNetworkBroker(t *testing.T) {
	base, err := Load("default")
	if err != nil {
		t.Fatal(err)
	}
	if base.WithNetworkBroker() != base {
		t.Fatal("default has no allow-list: the profile must be returned as is")
	}
	for _, allow := range [][]string{{"*"}, {"10.0.0.0/8", "*"}} {
		p := base.clone()
		p.Network = Network{Mode: "nat", Allow: allow}
		if p.NeedsNetworkBroker() || p.WithNetworkBroker() != p {
			t.Errorf("allow %v admits everything: nothing to broker", allow)
		}
	}
	p := base.clone()
	p.Network = Network{Mode: "nat", Allow: []string{"10.0.0.0/8:443"}}
	b := p.WithNetworkBroker()
	if len(p.Broker) != 0 {
		t.Fatal("WithNetworkBroker changed its receiver")
	}
	for _, s := range NetworkSyscalls {
		if class, _ := classOf(b, s); class != classBroker {
			t.Errorf("%s is %q, want broker", s, class)
		}
	}
	for _, arch := range testArches {
		for _, opts := range []CompileOptions{{}, {LogDenials: true}} {
			prog, err := CompileWith(b, arch, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !prog.Notify || prog.Denials == nil {
				t.Fatalf("%s %+v: a brokered program notifies and carries its table", arch, opts)
			}
			v := newVM(t, prog)
			for _, c := range []struct {
				name string
				args []uint64
				want string
			}{
				{"connect", []uint64{3, 0x1000, 16}, "NOTIFY"},
				{"sendmsg", []uint64{3, 0x1000, 0}, "NOTIFY"},
				{"sendmmsg", []uint64{3, 0x1000, 2, 0}, "NOTIFY"},
				{"sendto", []uint64{3, 0x1000, 10, 0, 0x2000, 16}, "NOTIFY"},
				{"sendto", []uint64{3, 0x1000, 10, 0, 0, 0}, allow},
				{"sendto", []uint64{3, 0x1000, 10, 0, 1 << 32, 0}, "NOTIFY"},
				{"recvfrom", []uint64{3, 0x1000, 10, 0, 0, 0}, allow},
				{"write", []uint64{3, 0x1000, 10}, allow},
				{"setsockopt", []uint64{3, 0, 4, 0x1000, 8}, "NOTIFY"},           // IPPROTO_IP, IP_OPTIONS
				{"setsockopt", []uint64{3, 41, 57, 0x1000, 8}, "NOTIFY"},         // IPPROTO_IPV6, IPV6_RTHDR
				{"setsockopt", []uint64{3, 1<<32 | 41, 26, 0x1000, 4}, "NOTIFY"}, // the kernel reads an int
				{"setsockopt", []uint64{3, 132, 110, 0x1000, 16}, "NOTIFY"},      // SOL_SCTP, SCTP_SOCKOPT_CONNECTX
				{"setsockopt", []uint64{3, 1, 2, 0x1000, 4}, allow},              // SOL_SOCKET, SO_REUSEADDR
				{"setsockopt", []uint64{3, 6, 1, 0x1000, 4}, allow},              // IPPROTO_TCP, TCP_NODELAY
				{"setsockopt", []uint64{3, 0xffffffff, 1, 0x1000, 4}, allow},
			} {
				if got := v.call(c.name, c.args...); got != c.want {
					t.Errorf("%s %+v: %s%v = %s, want %s", arch, opts, c.name, c.args, got, c.want)
				}
			}
		}
	}
}
