package container

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/broker"
	"github.com/zviz/zviz/internal/wire"
	"github.com/zviz/zviz/seccomp"
)

// listenerPlan is what the process holding a container's seccomp listener
// needs: the answers for denied calls (--log-denials) and, when the
// profile has an egress allow-list, the broker's configuration. It is
// plain data, handed to a zviz:[denials] helper as JSON.
type listenerPlan struct {
	Table  *seccomp.DenialTable `json:"table"` // nil: no profile listener (only an agent's)
	Broker *brokerConfig        `json:"broker,omitempty"`
	Agent  *agentConfig         `json:"agent,omitempty"`

	broker *broker.Broker // built by buildBroker
}

// brokerConfig is the network broker of one container (package broker).
type brokerConfig struct {
	Profile     string   `json:"profile"`
	Allow       []string `json:"allow,omitempty"`
	Domains     []string `json:"domains,omitempty"`
	Upstreams   []string `json:"upstreams,omitempty"` // the container's configured nameservers`
	HostNetwork bool     `json:"hostNetwork,omitempty"`
	Verbose     bool     `json:"verbose,omitempty"`
}

// networkBroker returns the broker configuration for profile p in the
// container s, or nil when p has no active allow-list (then the program
// brokers nothing and every network call runs at BPF speed).
func networkBroker(p *seccomp.Profile, s *specs.Spec, verbose bool) *brokerConfig {
	if !p.NeedsNetworkBroker() {
		return nil
	}
	return &brokerConfig{Profile: p.Name, Allow: p.Network.Allow, Domains: p.Network.AllowDomains,
		HostNetwork: !ownNetNS(s), Verbose: verbose}
}

// ownNetNS reports whether the container gets a network namespace of its
// own (new, or joined by path): otherwise it shares the runtime's.
func ownNetNS(s *specs.Spec) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return true
		}
	}
	return false
}

// buildBroker builds the network broker once, for every listener the
// container's processes hand over (their sessions share its policy and
// the addresses its resolver admitted); it logs its decisions to w.
func (lp *listenerPlan) buildBroker(w io.Writer) error {
	bc := lp.Broker
	if bc == nil {
		return nil
	}
	pol, err := broker.ParseAllow(bc.Allow)
	if err != nil {
		return err
	}
	pol.LocalFree = !bc.HostNetwork
	if len(bc.Domains) > 0 {
		pol.Domains = broker.NewAdmitted()
	}
	lp.broker = &broker.Broker{Policy: pol, Profile: bc.Profile, Log: w, Verbose: bc.Verbose, HostNetwork: bc.HostNetwork}
	return nil
}

// serveDNS answers the container's name queries on the socket the init
// bound (fd, ours now) until the socket is closed.
func (lp *listenerPlan) serveDNS(fd int, w io.Writer) error {
	bc := lp.Broker
	if bc == nil || lp.broker == nil || len(bc.Domains) == 0 {
		unix.Close(fd)
		return errors.New("resolver socket without network.allow_domains")
	}
	f := os.NewFile(uintptr(fd), "resolver")
	conn, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("resolver socket: %w", err)
	}
	d := &broker.DNS{Domains: bc.Domains, Upstreams: bc.Upstreams, Admitted: lp.broker.Policy.Domains, Broker: lp.broker}
	go func() {
		if err := d.Serve(conn); err != nil {
			fmt.Fprintf(w, "zviz: %v\n", err)
		}
	}()
	return nil
}

// provisionDNS sets up network.allow_domains for the container in s: the
// init binds the broker's resolver socket (policy.DNS), and the
// container's /etc/resolv.conf becomes a copy of the configured one (from
// a bind mount in the config, else the rootfs, else the host's) with that
// address as its only nameserver; the configured nameservers are what the
// broker forwards to. The copy lives in the container's state directory
// dir. It needs a network namespace of the container's own: the
// resolver's loopback address would otherwise be the host's.
func provisionDNS(dir string, s *specs.Spec, rootfs string, policy *wire.Policy, lp *listenerPlan) error {
	if lp == nil || lp.Broker == nil || len(lp.Broker.Domains) == 0 {
		return nil
	}
	if lp.Broker.HostNetwork {
		return errors.New("network.allow_domains needs a network namespace of the container's own (the config shares the host's)")
	}
	src := filepath.Join(rootfs, "etc", "resolv.conf")
	keep := -1
	for i, m := range s.Mounts {
		if path.Clean(m.Destination) == "/etc/resolv.conf" {
			src, keep = m.Source, i
		}
	}
	if _, err := os.Stat(src); err != nil {
		src = "/etc/resolv.conf"
	}
	lp.Broker.Upstreams = broker.Upstreams(src)
	var b strings.Builder
	b.WriteString("# zviz: names are answered by the broker (network.allow_domains)\n")
	fmt.Fprintf(&b, "nameserver %s\n", strings.TrimSuffix(broker.DNSAddr, ":53"))
	if old, err := os.ReadFile(src); err == nil {
		for _, line := range strings.Split(string(old), "\n") {
			if f := strings.Fields(line); len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
				b.WriteString(line + "\n")
			}
		}
	}
	file := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	m := specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: file,
		Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}}
	if keep >= 0 {
		s.Mounts[keep] = m
	} else {
		s.Mounts = append(s.Mounts, m)
	}
	policy.DNS = broker.DNSAddr
	return nil
}
