package container

import (
	"encoding/json"
	"fmt"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// agentConfig is the config's seccomp agent (linux.seccomp.listenerPath):
// the listener of the config's own filter, which has SCMP_ACT_NOTIFY
// rules, goes there with the container's process state, as the runtime
// spec's config-linux.md ("Seccomp", listenerPath) describes; so does
// the listener of each process `zviz exec` starts. The denial logger
// receives the listener (wire.Handover) and sends it; if that fails, the
// process does not exec.
type agentConfig struct {
	Path     string      `json:"path"`
	Metadata string      `json:"metadata,omitempty"`
	State    specs.State `json:"state"`
}

// prepareAgent records the state the agent gets: the container as it is
// when its process starts.
func prepareAgent(lp *listenerPlan, rec *record) {
	if lp == nil || lp.Agent == nil {
		return
	}
	lp.Agent.State = specs.State{Version: specs.Version, ID: rec.ID, Status: specs.StateRunning,
		Pid: rec.Pid, Bundle: rec.Bundle, Annotations: rec.Annotations}
}

// send connects to the agent's socket (AF_UNIX, SOCK_STREAM), sends one
// container process state with the listener as SCM_RIGHTS (named
// "seccompFd" in fds), and closes the connection: one state per
// connection, never reused. pid is the process whose filter it is, the
// init's or an exec'd process's, as the runtime sees it; the state is the
// container's.
func (a *agentConfig) send(listener, pid int) error {
	st := specs.ContainerProcessState{Version: specs.Version, Fds: []string{specs.SeccompFdName},
		Pid: pid, Metadata: a.Metadata, State: a.State}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: a.Path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("seccomp agent linux.seccomp.listenerPath %s: %w", a.Path, err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix(b, unix.UnixRights(listener), nil); err != nil {
		return fmt.Errorf("seccomp agent linux.seccomp.listenerPath %s: send: %w", a.Path, err)
	}
	return nil
}
