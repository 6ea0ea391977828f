// Package wire owns the protocol between the zviz parent (create, run, exec)
// and the container's init process (zviz:[init]). Nothing else reads or
// writes the sync socket.
//
// The two ends share a SOCK_SEQPACKET socketpair: one datagram is one
// message (a JSON object), optionally carrying file descriptors with
// SCM_RIGHTS. The init is strictly reactive until it is told to run; every
// step is named so that a hang is easy to place (`ps` shows zviz:[init]).
//
//	parent                                   init (pid 1 of the new pid ns)
//	  peek at config.json's namespaces;
//	  clone(new namespaces) + exec zviz:[init],
//	  beside it the isolation probe (can a
//	  new namespace mount?); when it cannot,
//	  kill that init and start one in no
//	  namespace (chdir-only: ChdirRoot set)
//	  meanwhile: decode and validate the
//	  whole config, decide the policy
//	  (profile, seccomp BPF, Landlock rules,
//	  capabilities), write the state, write
//	  the uid/gid maps (newuidmap)
//	  Bootstrap{spec, rootfs, policy} ──────▶
//	                                           unshare the cgroup namespace,
//	                                           join namespaces by path,
//	                                           hostname, loopback up,
//	                                           mounts into the rootfs
//	                              ◀───────── MountsDone   ┐ only with
//	  hooks: prestart, createRuntime                       │ prestart or
//	  HooksDone ────────────────────────────▶              ┘ createRuntime
//	                                           hooks: createContainer
//	                                           pivot_root, sysctls, masked
//	                                           and read-only paths, console,
//	                                           rlimits, resolve process.args[0]
//	                              ◀───────── Ready{+ pty master fd}
//	  write state (created) and the pid file;
//	  create exits here. `start` later opens
//	  the exec fifo, which releases the init:
//	                                           hooks: startContainer, Landlock,
//	                                           no_new_privs, user and
//	                                           capabilities, seccomp (last;
//	                                           with --log-denials, a broker
//	                                           or an agent its listeners are
//	                                           handed over on DenialFD, see
//	                                           handover.go), execve
//
// In chdir-only isolation the init skips everything that needs a
// namespace (cgroup, joins, hostname, loopback, mounts, pivot_root,
// sysctls, masked paths) and resolves cwd and args[0] under ChdirRoot.
//
// At any step the init may answer Error{message} instead and exit; the
// message is the root cause and survives unchanged to the parent's last
// line of output (podman maps its strerror text to exit codes).
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Kind names one step of the protocol.
type Kind string

// The messages, in the order they are exchanged.
const (
	KindBootstrap  Kind = "bootstrap"
	KindMountsDone Kind = "mounts-done"
	KindHooksDone  Kind = "hooks-done"
	KindReady      Kind = "ready"
	KindError      Kind = "error"
)

// maxMessage bounds one datagram; a config.json larger than this is refused
// by the parent before it starts the init.
const maxMessage = 4 << 20

// Message is one datagram. Payload is the step's data (Bootstrap for
// KindBootstrap, Failure for KindError, empty otherwise). A payload too big
// for one datagram travels in a sealed memfd passed as the message's first
// descriptor instead (Spilled).
type Message struct {
	Kind    Kind            `json:"kind"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Spilled bool            `json:"spilled,omitempty"`
}

// inline is the largest encoded message sent as a datagram; the socket's
// send buffer (net.core.wmem_default, about 200 KiB) bounds a SEQPACKET
// datagram, and a big config.json must not hit that limit.
const inline = 64 << 10

// Failure is the payload of KindError.
type Failure struct {
	Message string `json:"message"`
}

// Conn is one end of the sync socket.
type Conn struct {
	f *os.File
}

// Pair returns the parent's and the init's ends of a new sync socket. Both
// are close-on-exec; the parent hands the init's end over as an ExtraFile.
func Pair() (parent, init *Conn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create sync socket: %w", err)
	}
	return &Conn{os.NewFile(uintptr(fds[0]), "zviz-sync-parent")},
		&Conn{os.NewFile(uintptr(fds[1]), "zviz-sync-init")}, nil
}

// FromFD wraps an inherited descriptor (the init's end after exec).
func FromFD(fd int) *Conn {
	unix.CloseOnExec(fd)
	return &Conn{os.NewFile(uintptr(fd), "zviz-sync")}
}

// File returns the underlying file (to pass as an ExtraFile).
func (c *Conn) File() *os.File { return c.f }

// Close closes this end.
func (c *Conn) Close() error { return c.f.Close() }

// Send sends one message of the given kind with an optional payload and
// file descriptors.
func (c *Conn) Send(kind Kind, payload any, fds ...int) error {
	m := Message{Kind: kind}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("encode %s: %w", kind, err)
		}
		m.Payload = b
	}
	if len(m.Payload) > maxMessage {
		return fmt.Errorf("send %s: message of %d bytes exceeds %d", kind, len(m.Payload), maxMessage)
	}
	if len(m.Payload) > inline {
		spill, err := spillFD(m.Payload)
		if err != nil {
			return fmt.Errorf("send %s: %w", kind, err)
		}
		defer unix.Close(spill)
		m.Payload, m.Spilled = nil, true
		fds = append([]int{spill}, fds...)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(int(c.f.Fd()), b, oob, nil, 0); err != nil {
		return fmt.Errorf("send %s: %w", kind, err)
	}
	return nil
}

// ErrClosed is returned by Recv when the other end went away without a
// word: for the parent it means the init died.
var ErrClosed = errors.New("sync socket closed by peer")

// Recv receives the next message, and any descriptors that came with it.
// A KindError message is returned as an error carrying the peer's text.
func (c *Conn) Recv() (Message, []int, error) {
	fd := int(c.f.Fd())
	// Peek with MSG_TRUNC for the datagram's real size, so that the buffer
	// fits the message (most are a few bytes; Bootstrap carries the config).
	size, _, _, _, err := unix.Recvmsg(fd, nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
	if err != nil {
		return Message{}, nil, fmt.Errorf("receive from sync socket: %w", err)
	}
	if size > maxMessage {
		return Message{}, nil, fmt.Errorf("receive from sync socket: message of %d bytes exceeds %d", size, maxMessage)
	}
	buf := make([]byte, size)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return Message{}, nil, fmt.Errorf("receive from sync socket: %w", err)
	}
	if n == 0 {
		return Message{}, nil, ErrClosed
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return Message{}, nil, fmt.Errorf("parse control message: %w", err)
		}
		for _, cm := range msgs {
			rights, err := unix.ParseUnixRights(&cm)
			if err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	var m Message
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return Message{}, fds, fmt.Errorf("decode sync message: %w", err)
	}
	if m.Spilled {
		if len(fds) == 0 {
			return Message{}, nil, fmt.Errorf("protocol: %s spilled without its memfd", m.Kind)
		}
		payload, err := readSpill(fds[0])
		unix.Close(fds[0])
		fds = fds[1:]
		if err != nil {
			return Message{}, fds, err
		}
		m.Payload = payload
	}
	if m.Kind == KindError {
		var f Failure
		_ = json.Unmarshal(m.Payload, &f)
		return m, fds, &PeerError{Message: f.Message}
	}
	return m, fds, nil
}

// spillFD returns a sealed memfd holding data.
func spillFD(data []byte) (int, error) {
	fd, err := unix.MemfdCreate("zviz-sync", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	for off := 0; off < len(data); {
		n, err := unix.Write(fd, data[off:])
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write memfd: %w", err)
		}
		off += n
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seal memfd: %w", err)
	}
	return fd, nil
}

func readSpill(fd int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat spilled message: %w", err)
	}
	if st.Size > maxMessage {
		return nil, fmt.Errorf("spilled message of %d bytes exceeds %d", st.Size, maxMessage)
	}
	buf := make([]byte, st.Size)
	if _, err := unix.Pread(fd, buf, 0); err != nil {
		return nil, fmt.Errorf("read spilled message: %w", err)
	}
	return buf, nil
}

// Expect receives the next message and checks that it is of the wanted
// kind, decoding its payload into out when out is not nil.
func (c *Conn) Expect(want Kind, out any) ([]int, error) {
	m, fds, err := c.Recv()
	if err != nil {
		return fds, err
	}
	if m.Kind != want {
		return fds, fmt.Errorf("protocol: got %q, want %q", m.Kind, want)
	}
	if out != nil {
		if err := json.Unmarshal(m.Payload, out); err != nil {
			return fds, fmt.Errorf("decode %s: %w", want, err)
		}
	}
	return fds, nil
}

// Fail sends err as the final KindError message.
func (c *Conn) Fail(err error) error {
	return c.Send(KindError, Failure{Message: err.Error()})
}

// PeerError is an error reported by the other end, verbatim.
type PeerError struct{ Message string }

func (e *PeerError) Error() string { return e.Message }

// Bootstrap is everything the init needs, sent once its user namespace
// (if any) has been mapped.
type Bootstrap struct {
	ID     string    `json:"id"`
	Bundle string    `json:"bundle"`
	Rootfs string    `json:"rootfs"`
	Spec   *InitSpec `json:"spec"`
	// Join lists namespaces to enter by path (setns), type -> path.
	Join map[specs.LinuxNamespaceType]string `json:"join,omitempty"`
	// NewUTS and NewNet say which namespaces were created at clone.
	NewUTS bool `json:"newUTS,omitempty"`
	NewNet bool `json:"newNet,omitempty"`
	// NewCgroup: unshare the cgroup namespace first thing; the parent
	// has placed the init in the container's cgroup by then.
	NewCgroup bool `json:"newCgroup,omitempty"`
	// UserNS: the init runs in a user namespace (its own or podman's).
	UserNS bool `json:"userNS,omitempty"`
	// SetgroupsDenied: setgroups(2) is not available in the namespace
	// (an unprivileged single-id gid map), so additionalGids are refused.
	SetgroupsDenied bool `json:"setgroupsDenied,omitempty"`
	NoPivot         bool `json:"noPivot,omitempty"`
	// ChdirRoot, when set, is chdir-only isolation (issue 6): no
	// namespaces and no mounts; the process's cwd and executable resolve
	// under this host directory, and Landlock is the barrier.
	ChdirRoot string `json:"chdirRoot,omitempty"`
	// Console: create a pty inside the container and send its master back.
	Console bool `json:"console,omitempty"`
	// FifoFD is the O_PATH descriptor of the exec fifo, and PreserveFDs the
	// number of descriptors after stdio the process keeps.
	FifoFD      int `json:"fifoFD"`
	PreserveFDs int `json:"preserveFDs"`
	// State is the container's state JSON for the hooks the init runs
	// itself (createContainer, startContainer).
	State json.RawMessage `json:"state,omitempty"`
	// ParentHooks: the parent has prestart/createRuntime hooks to run once
	// the mounts exist, so the init stops for MountsDone/HooksDone; without
	// them that round trip is skipped.
	ParentHooks bool `json:"parentHooks,omitempty"`
	// DebugSince, when set (--debug), is the parent's start in Unix
	// nanoseconds: the init reports its steps against it on stderr.
	DebugSince int64 `json:"debugSince,omitempty"`
	// Policy is the security layers the init applies after start, in
	// SPEC.md's order; decided and compiled by the parent.
	Policy Policy `json:"policy"`
}

// Policy carries the decided security layers: Landlock rules, and the
// seccomp programs as compiled BPF (the init only installs bytes).
type Policy struct {
	Profile  string         `json:"profile"`
	Landlock *LandlockRules `json:"landlock,omitempty"`
	Seccomp  []BPF          `json:"seccomp,omitempty"`
	// DenialFD is the process's end of the socket to the denial logger;
	// the listeners of its Notify and Agent programs are handed over
	// there right before execve (Handover, handover.go).
	DenialFD int `json:"denialFD,omitempty"`
	// DNS is where the init binds a UDP socket, in the container's network
	// namespace and before it drops its privileges, for the broker's
	// resolver (network.allow_domains); handed over with the listener.
	// "" for none, and always for a process `zviz exec` starts: the
	// container's resolver serves it.
	DNS string `json:"dns,omitempty"`
}

// LandlockRules mirror the landlock package's Rules (paths as seen after
// pivot_root); Required refuses to start when they cannot all be enforced.
type LandlockRules struct {
	ReadExec        []string `json:"readExec,omitempty"`
	ReadOnly        []string `json:"readOnly,omitempty"`
	ListOnly        []string `json:"listOnly,omitempty"`
	Writable        []string `json:"writable,omitempty"`
	RestrictNetwork bool     `json:"restrictNetwork,omitempty"`
	RestrictConnect bool     `json:"restrictConnect,omitempty"`
	TCPBind         []uint16 `json:"tcpBind,omitempty"`
	TCPConnect      []uint16 `json:"tcpConnect,omitempty"`
	Scope           bool     `json:"scope,omitempty"`
	Required        bool     `json:"required,omitempty"`
}

// BPF is one compiled seccomp program.
type BPF struct {
	Name    string `json:"name"` // the profile, or "config.json" for the config's own
	Arch    string `json:"arch"`
	Program []byte `json:"program"`
	Flags   uint   `json:"flags,omitempty"` // SECCOMP_FILTER_FLAG_* to install with
	// Notify: install with a listener and hand it over on the policy's
	// DenialFD (the log-denials variant, or a profile with a broker).
	Notify bool `json:"notify,omitempty"`
	// Agent: the config's own filter, whose listener goes to its
	// linux.seccomp.listenerPath agent (also handed over on DenialFD).
	Agent bool `json:"agent,omitempty"`
}

// InitSpec is the part of config.json the init uses. Decoding the whole
// specs.Spec costs the init about 0.4 ms more on every create (JSON
// decoders for resources, seccomp, Windows, VM... are built on first use),
// for fields only the parent reads.
type InitSpec struct {
	Process    *specs.Process `json:"process,omitempty"`
	Root       *specs.Root    `json:"root,omitempty"`
	Hostname   string         `json:"hostname,omitempty"`
	Domainname string         `json:"domainname,omitempty"`
	Mounts     []specs.Mount  `json:"mounts,omitempty"`
	Hooks      *specs.Hooks   `json:"hooks,omitempty"`
	Linux      *InitLinux     `json:"linux,omitempty"`
}

// InitLinux is the part of config.json's linux object the init uses.
type InitLinux struct {
	UIDMappings       []specs.LinuxIDMapping `json:"uidMappings,omitempty"`
	GIDMappings       []specs.LinuxIDMapping `json:"gidMappings,omitempty"`
	Sysctl            map[string]string      `json:"sysctl,omitempty"`
	Devices           []specs.LinuxDevice    `json:"devices,omitempty"`
	RootfsPropagation string                 `json:"rootfsPropagation,omitempty"`
	MaskedPaths       []string               `json:"maskedPaths,omitempty"`
	ReadonlyPaths     []string               `json:"readonlyPaths,omitempty"`
}

// NewInitSpec takes the init's part of s.
func NewInitSpec(s *specs.Spec) *InitSpec {
	is := &InitSpec{Process: s.Process, Root: s.Root, Hostname: s.Hostname, Domainname: s.Domainname,
		Mounts: s.Mounts, Hooks: s.Hooks}
	if l := s.Linux; l != nil {
		is.Linux = &InitLinux{UIDMappings: l.UIDMappings, GIDMappings: l.GIDMappings, Sysctl: l.Sysctl,
			Devices: l.Devices, RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths}
	}
	return is
}

// Spec rebuilds a specs.Spec holding the init's part.
func (is *InitSpec) Spec() *specs.Spec {
	s := &specs.Spec{Process: is.Process, Root: is.Root, Hostname: is.Hostname, Domainname: is.Domainname,
		Mounts: is.Mounts, Hooks: is.Hooks, Linux: &specs.Linux{}}
	if l := is.Linux; l != nil {
		s.Linux = &specs.Linux{UIDMappings: l.UIDMappings, GIDMappings: l.GIDMappings, Sysctl: l.Sysctl,
			Devices: l.Devices, RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths}
	}
	return s
}
