package wire

import specs "github.com/opencontainers/runtime-spec/specs-go"

// The exec protocol, between `zviz exec` and the process it starts, which
// has joined the container's namespaces before the Go runtime started
// (package nsenter):
//
//	zviz exec                                  zviz:[exec]
//	  open a pidfd of the init; when the
//	  policy has a listener, connect to the
//	  container's denial logger (its
//	  denials.sock); start the exec process
//	  with both ────────────────────────────▶ (C) setns into the init's
//	                                           namespaces, fork once for the
//	                                           pid namespace
//	                              ◀───────── Pid{pid} (from C)
//	  move pid into the init's cgroup
//	  Exec{process, policy} ────────────────▶
//	                                           rlimits, cwd, console,
//	                                           resolve process.args[0]
//	                              ◀───────── Ready{+ pty master fd}
//	  console to --console-socket,
//	  or relayed in the foreground
//	                                           Landlock, no_new_privs, user,
//	                                           capabilities, seccomp (its
//	                                           listeners handed over to the
//	                                           denial logger, handover.go),
//	                                           execve
//	  the socket closes at execve (close-
//	  on-exec): the process runs
//
// As with the init, Error{message} may come instead of any message.
const (
	KindPid  Kind = "pid"
	KindExec Kind = "exec"
)

// Pid is the pid of the process the nsenter constructor leaves in the
// namespaces (an exec'd process, or an init that joined some by path), as
// the caller's pid namespace sees it.
type Pid struct {
	Pid int `json:"pid"`
}

// Exec is what the exec process needs once inside the namespaces.
type Exec struct {
	Process *specs.Process `json:"process"`
	// UserNS: the container runs in a user namespace; become its root
	// (when mapped) before acting on the container's files.
	UserNS bool `json:"userNS,omitempty"`
	// PreserveFDs is the number of descriptors after stdio the process
	// keeps (--preserve-fds).
	PreserveFDs int `json:"preserveFDs"`
	// Policy is the container's, with the capabilities of Process already
	// intersected with the profile's.
	Policy Policy `json:"policy"`
}
