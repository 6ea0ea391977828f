package initproc

import (
	"encoding/json"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/internal/hooks"
	"github.com/zviz/zviz/internal/rootfs"
	"github.com/zviz/zviz/internal/wire"
)

// build is the init's setup recipe, up to the point where the container is
// "created". One line per step; the order is load-bearing and each
// constraint is commented. The security layers follow in launch.
func build(conn *wire.Conn, b *wire.Bootstrap) (*process, error) {
	if b.ChdirRoot != "" {
		return buildChdirOnly(conn, b)
	}
	s := b.Spec.Spec()
	rc := &rootfs.Config{Rootfs: b.Rootfs, Spec: s, UserNS: b.UserNS, NoPivot: b.NoPivot}

	// The parent has written our id maps: act as the namespace's root from
	// now on, or files we create would belong to an unmapped id (EOVERFLOW).
	if err := becomeRoot(b.UserNS); err != nil {
		return nil, err
	}
	// Namespaces given by path are entered first: every later step (mounts,
	// hostname, sysctls) must act inside them.
	if err := joinNamespaces(b.Join); err != nil {
		return nil, err
	}
	// The cgroup namespace is made here, not at clone: its root is the
	// cgroup the init is in, which the parent chose before the bootstrap.
	if err := unshareCgroup(b.NewCgroup); err != nil {
		return nil, err
	}
	// Only a namespace of our own may be renamed or configured.
	if err := setHostname(b); err != nil {
		return nil, err
	}
	if err := loopbackUp(b.NewNet); err != nil {
		return nil, err
	}
	// Mount sources are host paths: all mounts happen before pivot_root.
	if err := rootfs.Prepare(rc); err != nil {
		return nil, err
	}
	step("mounts done")
	// prestart and createRuntime hooks run in the parent, in the runtime's
	// namespaces, once the mounts exist and before pivot_root.
	if err := waitParentHooks(conn, b.ParentHooks); err != nil {
		return nil, err
	}
	// createContainer hooks: in the container's namespaces, before pivot_root
	// (runtime-spec config.md).
	if s.Hooks != nil {
		if err := hooks.Run("createContainer", s.Hooks.CreateContainer, b.State); err != nil {
			return nil, err
		}
	}
	if err := rootfs.Enter(rc); err != nil {
		return nil, err
	}
	step("pivot_root done")
	// Sysctls go through the container's own /proc/sys, before Finish makes
	// it read-only.
	if err := writeSysctls(s.Linux); err != nil {
		return nil, err
	}
	// The pty comes from the container's devpts, so after pivot_root; its
	// slave is bound on /dev/console before /dev is finished.
	con, err := openConsole(b.Console, s.Process)
	if err != nil {
		return nil, err
	}
	if con != nil {
		rc.Console = con.slave.Name()
	}
	if err := rootfs.Finish(rc); err != nil {
		return nil, err
	}
	step("masked and read-only paths done")
	return ready(conn, b, s, con)
}

// ready resolves the process and tells the parent the container is
// created.
func ready(conn *wire.Conn, b *wire.Bootstrap, s *specs.Spec, con *console) (*process, error) {
	p, err := prepareProcess(b, s, con)
	if err != nil {
		return nil, err
	}
	// startContainer hooks get the state too (runtime-spec runtime.md).
	if p.state, err = createdState(b.State); err != nil {
		return nil, err
	}
	var fds []int
	if con != nil {
		fds = append(fds, int(con.master.Fd()))
	}
	if err := conn.Send(wire.KindReady, nil, fds...); err != nil {
		return nil, err
	}
	if con != nil {
		// The parent holds the master now; keeping ours open would keep the
		// terminal alive after the parent is done with it.
		con.master.Close()
	}
	_ = conn.Close()
	return p, nil
}

// waitParentHooks tells the parent the mounts exist and waits until its
// hooks have run.
func waitParentHooks(conn *wire.Conn, want bool) error {
	if !want {
		return nil
	}
	if err := conn.Send(wire.KindMountsDone, nil); err != nil {
		return err
	}
	_, err := conn.Expect(wire.KindHooksDone, nil)
	return err
}

// launch turns the init into the user's process. It runs after `zviz start`.
func (p *process) launch() error {
	s := p.spec
	if s.Hooks != nil {
		if err := hooks.Run("startContainer", s.Hooks.StartContainer, p.state); err != nil {
			return err
		}
	}
	// The terminal becomes stdio (and the controlling tty of our session).
	if err := p.attachConsole(); err != nil {
		return err
	}
	// Every descriptor but stdio and the preserved ones is closed at execve,
	// so no host directory or file reaches the container (CVE-2024-21626).
	if err := closeExtraFDs(p.preserve); err != nil {
		return err
	}
	// The broker's resolver socket is bound while the init may still bind
	// port 53 (before the capabilities go); close-on-exec like the rest.
	dns, err := openDNS(p.policy.DNS)
	if err != nil {
		return err
	}
	// Landlock after the mounts and pivot_root, which it forbids, and after
	// the hooks, which run host tools (landlock.rst, "Filesystem topology
	// modification").
	step("started")
	if err := applyLandlock(p.policy.Landlock); err != nil {
		return err
	}
	// no_new_privs: Landlock set it already (landlock_restrict_self needs
	// it); it stays on whatever the config says (SPEC.md layer 3).
	if err := setNoNewPrivs(true); err != nil {
		return err
	}
	// Capability bounding set and the user switch: the bounding set needs
	// CAP_SETPCAP, which the switch to a non-root uid would take away.
	if err := p.dropBounding(); err != nil {
		return err
	}
	if err := p.switchUser(); err != nil {
		return err
	}
	// The working directory is entered as the target user, so a directory
	// the user may not search fails here rather than in the workload.
	if err := os.Chdir(p.cwd); err != nil {
		return fmt.Errorf("chdir to cwd %q set in config.json: %w", p.cwd, err)
	}
	if err := applyCaps(p.caps); err != nil {
		return err
	}
	// seccomp last, right before execve: the runtime's own setup above
	// must not be filtered, and everything after it is the workload's.
	step("user, capabilities and landlock done")
	if err := installSeccomp(p.policy.Seccomp, p.policy.DenialFD, dns); err != nil {
		return err
	}
	return p.exec()
}

// createdState is the state the parent sent for the hooks, with the status
// the container has when startContainer hooks run: created (the parent's
// copy says creating, as it was taken before the container was ready).
func createdState(state json.RawMessage) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(state, &m); err != nil {
		return nil, fmt.Errorf("decode container state for hooks: %w", err)
	}
	m["status"] = json.RawMessage(`"created"`)
	return json.Marshal(m)
}
