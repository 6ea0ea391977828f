package wire

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// The listener handover, on Policy.DenialFD (a SOCK_SEQPACKET socket: one
// datagram is one message). A process whose seccomp filters have a
// listener, the container's init or a process `zviz exec` starts, sends
// its listeners to the process that answers them (the denial logger,
// package container) once the filters are installed, and execs only
// once that process has taken them:
//
//	process (filters installed)                  denial logger
//	  from a thread the filters do not cover:
//	  Handover: "listener agent dns" +
//	  SCM_RIGHTS + SCM_CREDENTIALS ────────────▶ serve the listener, send
//	                                             the agent's to its agent,
//	                                             serve the resolver
//	                                ◀──────────── "ok", or the reason not
//	                                              to exec
//	  close its copies, execve
//
// The init's DenialFD is one end of a socketpair made at create; an
// exec'd process's is a connection `zviz exec` made to the denial
// logger's socket in the container's state directory. The credentials
// give the sender's pid as the logger sees it (the kernel checks and
// translates it), which a seccomp agent is told.

// HandoverOK is the answer that lets the process exec.
const HandoverOK = "ok"

// Handover is the descriptors one process hands over: the listener of
// the profile's program, the listener of the config's own filter for its
// agent (linux.seccomp.listenerPath), the socket of the broker's resolver
// (the init only). -1 for none. They are the sender's descriptors before
// sending and the receiver's after DecodeHandover.
type Handover struct {
	Listener, Agent, DNS int
}

// NoHandover has no descriptor.
var NoHandover = Handover{Listener: -1, Agent: -1, DNS: -1}

// HandoverOOB is the room a receiver needs for a handover's control
// messages (three descriptors and the credentials).
var HandoverOOB = unix.CmsgSpace(3*4) + unix.CmsgSpace(unix.SizeofUcred)

// slot is one descriptor of a Handover and its name in the announcement.
type slot struct {
	name string
	fd   *int
}

// slots are h's descriptors in the order they travel.
func (h *Handover) slots() []slot {
	return []slot{{"listener", &h.Listener}, {"agent", &h.Agent}, {"dns", &h.DNS}}
}

// Encode is the datagram that hands h over from process pid, whose
// credentials (in its user namespace) are uid and gid: the announcement,
// which names the descriptors in the order SCM_RIGHTS carries them, and
// the control messages.
func (h Handover) Encode(pid, uid, gid int) (text, oob []byte) {
	var names []string
	var fds []int
	for _, s := range h.slots() {
		if *s.fd >= 0 {
			names = append(names, s.name)
			fds = append(fds, *s.fd)
		}
	}
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	oob = append(oob, unix.UnixCredentials(&unix.Ucred{Pid: int32(pid), Uid: uint32(uid), Gid: uint32(gid)})...)
	return []byte(strings.Join(names, " ")), oob
}

// DecodeHandover reads a received handover (recvflags as recvmsg(2)
// returned them): the descriptors, now the receiver's, and the sender's
// pid in the receiver's pid namespace (0 when it came without
// credentials: the receiving socket needs SO_PASSCRED). On error every
// descriptor that came is closed.
func DecodeHandover(text, oob []byte, recvflags int) (h Handover, pid int, err error) {
	h = NoHandover
	fds, pid, err := controls(oob)
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			h = NoHandover
		}
	}()
	if err != nil {
		return h, 0, err
	}
	if recvflags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
		return h, 0, fmt.Errorf("handover %q: truncated", text)
	}
	names := strings.Fields(string(text))
	if len(names) == 0 || len(names) != len(fds) {
		return h, 0, fmt.Errorf("handover %q: %d descriptors for %d names", text, len(fds), len(names))
	}
	for i, name := range names {
		if err := h.set(name, fds[i]); err != nil {
			return h, 0, fmt.Errorf("handover %q: %w", text, err)
		}
	}
	return h, pid, nil
}

// set records fd under name, once.
func (h *Handover) set(name string, fd int) error {
	for _, s := range h.slots() {
		if s.name == name {
			if *s.fd >= 0 {
				return fmt.Errorf("%s twice", name)
			}
			*s.fd = fd
			return nil
		}
	}
	return fmt.Errorf("unknown descriptor %q", name)
}

// controls parses the control messages: the descriptors, in order, and
// the sender's pid.
func controls(oob []byte) (fds []int, pid int, err error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, 0, fmt.Errorf("handover: control message: %w", err)
	}
	for i := range msgs {
		if rights, rerr := unix.ParseUnixRights(&msgs[i]); rerr == nil {
			fds = append(fds, rights...)
		} else if cred, cerr := unix.ParseUnixCredentials(&msgs[i]); cerr == nil {
			pid = int(cred.Pid)
		} else {
			err = errors.New("handover: unexpected control message")
		}
	}
	return fds, pid, err
}
