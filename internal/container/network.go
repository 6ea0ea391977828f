package container

import (
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/internal/broker"
	"github.com/zviz/zviz/seccomp"
)

// listenerPlan is what the process holding a container's seccomp listener
// needs: the answers for denied calls (--log-denials) and, when the
// profile has an egress allow-list, the broker's configuration. It is
// plain data, handed to a zviz:[denials] helper as JSON.
type listenerPlan struct {
	Table  *seccomp.DenialTable `json:"table"`
	Broker *brokerConfig        `json:"broker,omitempty"`
}

// brokerConfig is the network broker of one container (package broker).
type brokerConfig struct {
	Profile     string   `json:"profile"`
	Allow       []string `json:"allow,omitempty"`
	Domains     []string `json:"domains,omitempty"`
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

// listenOptions builds the listener's options: the broker answers the
// brokered calls and logs its decisions to w.
func (lp *listenerPlan) listenOptions(w io.Writer) (seccomp.ListenOptions, error) {
	var opts seccomp.ListenOptions
	bc := lp.Broker
	if bc == nil {
		return opts, nil
	}
	pol, err := broker.ParseAllow(bc.Allow)
	if err != nil {
		return opts, err
	}
	pol.LocalFree = !bc.HostNetwork
	b := &broker.Broker{Policy: pol, Profile: bc.Profile, Log: w, Verbose: bc.Verbose, HostNetwork: bc.HostNetwork}
	opts.Broker = b.Handle
	return opts, nil
}
