package seccomp

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// DenialTable is what the plain program would have answered to each call
// that reaches the listener of a program that notifies (CompileOptions.
// LogDenials, or broker rules). It is plain data (JSON-serialisable, so a
// helper process can be handed it) and read-only once built.
type DenialTable struct {
	Profile  string            `json:"profile"`
	Arch     string            `json:"arch"`
	Default  unix.Errno        `json:"default"`  // syscalls no list names: ENOSYS
	Syscalls map[int32]*Denial `json:"syscalls"` // by number on Arch
	names    sync.Map          // int32 → string, for unlisted numbers
}

// Denial is one listed syscall that is not plainly allowed.
type Denial struct {
	Name  string     `json:"name"`
	Class string     `json:"class"`           // deny | enosys | filter | broker
	Errno unix.Errno `json:"errno,omitempty"` // deny, enosys; filter: its refusal errno
	Arg   uint       `json:"arg,omitempty"`   // filter: the argument the rules read
	Rules []ArgRule  `json:"rules,omitempty"` // filter: the compiled rules, disjoint, in order
}

// ArgRule is one argument rule of a filter exactly as the plain program
// was compiled from it: Op is "eq" (arg == A), "masked_eq" (arg&A == B)
// or "gt" (arg > A), on the full 64-bit value as libseccomp compares it.
// A call that matches no rule gets the table's Default, as in BPF.
type ArgRule struct {
	Allow bool       `json:"allow"`
	Op    string     `json:"op"`
	A     uint64     `json:"a"`
	B     uint64     `json:"b,omitempty"`
	Errno unix.Errno `json:"errno,omitempty"` // refusing rules
}

func (r ArgRule) match(v uint64) bool {
	switch r.Op {
	case "eq":
		return v == r.A
	case "masked_eq":
		return v&r.A == r.B
	case "gt":
		return v > r.A
	}
	return false
}

var opNames = map[libseccomp.ScmpCompareOp]string{
	libseccomp.CompareEqual: "eq", libseccomp.CompareMaskedEqual: "masked_eq", libseccomp.CompareGreater: "gt",
}

// denialTable builds the table for p on arch (a canonical name) from the
// same lists and argument rules build() compiles.
func denialTable(p *Profile, arch string) (*DenialTable, error) {
	_, target, err := canonicalArch(arch)
	if err != nil {
		return nil, err
	}
	t := &DenialTable{Profile: p.Name, Arch: arch, Default: unix.ENOSYS, Syscalls: map[int32]*Denial{}}
	add := func(r Rule, d *Denial) error {
		if len(r.Arches) > 0 && !contains(r.Arches, arch) {
			return nil
		}
		nr, err := libseccomp.GetSyscallFromNameByArch(r.Syscall, target)
		if err != nil || nr < 0 {
			return fmt.Errorf("%q: not a syscall on %s", r.Syscall, arch)
		}
		d.Name = r.Syscall
		t.Syscalls[int32(nr)] = d
		return nil
	}
	for _, r := range p.Deny {
		if err := add(r, &Denial{Class: classDeny, Errno: unix.EPERM}); err != nil {
			return nil, err
		}
	}
	for _, r := range p.ENOSYS {
		if err := add(r, &Denial{Class: classENOSYS, Errno: unix.ENOSYS}); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Broker {
		if err := add(r, &Denial{Class: classBroker}); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Filter {
		k := findFilterKind(r.Syscall)
		if k == nil {
			return nil, fmt.Errorf("filter %q: no argument filter for this syscall", r.Syscall)
		}
		vals, err := k.parse(r)
		if err != nil {
			return nil, err
		}
		d := &Denial{Class: classFilter, Errno: k.errno, Arg: k.arg}
		for _, ar := range k.rules(vals) {
			rule := ArgRule{Allow: ar.allow, Op: opNames[ar.op], A: ar.a, B: ar.b}
			if !ar.allow {
				rule.Errno = k.errno
			}
			d.Rules = append(d.Rules, rule)
		}
		if err := add(r, d); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Answer returns the syscall's name, its class ("deny", "enosys",
// "filter", "broker", or "unlisted") and the errno the plain program
// returns for nr(args). A filtered call whose arguments the plain program
// would allow never reaches a listener (the notify program allows it in
// BPF); should one arrive anyway it is refused with the filter's errno:
// the listener fails closed and never lets a call continue.
func (t *DenialTable) Answer(nr int32, args [6]uint64) (name, class string, errno unix.Errno) {
	d, ok := t.Syscalls[nr]
	if !ok {
		return t.Name(nr), "unlisted", t.Default
	}
	if d.Class != classFilter {
		return d.Name, d.Class, d.Errno
	}
	for _, r := range d.Rules {
		if r.match(args[d.Arg]) {
			if r.Allow {
				return d.Name, d.Class, d.Errno
			}
			return d.Name, d.Class, r.Errno
		}
	}
	return d.Name, d.Class, t.Default
}

// Name returns the syscall name of nr on the table's arch, or "syscall_NR"
// for a number libseccomp does not know.
func (t *DenialTable) Name(nr int32) string {
	if d, ok := t.Syscalls[nr]; ok {
		return d.Name
	}
	if n, ok := t.names.Load(nr); ok {
		return n.(string)
	}
	name := "syscall_" + strconv.Itoa(int(nr))
	if _, target, err := canonicalArch(t.Arch); err == nil {
		if n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(target); err == nil {
			name = n
		}
	}
	t.names.Store(nr, name)
	return name
}

// Notification is struct seccomp_notif (include/uapi/linux/seccomp.h),
// with struct seccomp_data inlined: one call waiting for its answer.
// Pid is the calling thread's id in the listener's pid namespace.
type Notification struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32 // AUDIT_ARCH_*
	IP    uint64
	Args  [6]uint64
}

// response is struct seccomp_notif_resp.
type response struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// The kernel checks the sizes the ioctl numbers encode.
var (
	_ [unsafe.Sizeof(Notification{}) - 80]byte
	_ [80 - unsafe.Sizeof(Notification{})]byte
	_ [unsafe.Sizeof(response{}) - 24]byte
	_ [24 - unsafe.Sizeof(response{})]byte
)

func notifIoctl(fd int, req uint, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// Recv takes the next notification from listener fd
// (SECCOMP_IOCTL_NOTIF_RECV). It blocks while none is pending. ENOENT
// means the caller went away (killed, or interrupted by a signal) between
// being queued and received, or, on kernels with the 2024 change that
// wakes RECV when the last user goes, that no process uses the filter any
// more. Older kernels (Ubuntu's 6.8, for one) leave a blocked RECV
// waiting forever once the container is gone: poll for POLLIN first, as
// Listen does.
func Recv(fd int) (*Notification, error) {
	var n Notification // the kernel insists on a zeroed buffer
	if err := notifIoctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
		return nil, err
	}
	return &n, nil
}

// RespondErrno answers notification id with -errno, or with val when errno
// is 0 (SECCOMP_IOCTL_NOTIF_SEND, never SECCOMP_USER_NOTIF_FLAG_CONTINUE).
// ENOENT means the caller is no longer waiting (killed, or interrupted by a
// signal before the listener received it): not an error for a logger.
func RespondErrno(fd int, id uint64, val int64, errno unix.Errno) error {
	r := response{ID: id, Val: val, Error: -int32(errno)}
	return notifIoctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
}

// IDValid reports whether notification id is still pending
// (SECCOMP_IOCTL_NOTIF_ID_VALID): a broker checks it after reading the
// caller's memory, before acting on what it read.
func IDValid(fd int, id uint64) bool {
	return notifIoctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

// SetSyncWakeUp sets SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on listener fd
// (Linux >= 6.6; EINVAL before): the kernel hands the CPU straight from
// the caller to the listener and back, which is most of a round trip's
// cost when both would otherwise wait to be scheduled.
func SetSyncWakeUp(fd int) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	if e != 0 {
		return e
	}
	return nil
}

var listenerFlags = sync.OnceValue(func() uint {
	// seccomp(2) validates the flags before it reads the program, so a
	// NULL program answers EFAULT when they are known and EINVAL when not
	// (libseccomp probes flags the same way). Nothing is installed.
	f := uint(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f), 0); e == unix.EFAULT {
		return f
	}
	return unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
})

// ListenerFlags are the flags to Install a program that notifies with:
// SECCOMP_FILTER_FLAG_NEW_LISTENER, plus WAIT_KILLABLE_RECV where the
// kernel has it (Linux >= 5.19). Without it a signal that reaches a caller
// while the listener holds its notification (Go's preemption SIGURG, a
// timer) withdraws the call: the listener's answer is lost (ENOENT), the
// call restarts and is notified, and logged, a second time, or fails with
// EINTR where the handler is not SA_RESTART, an errno the plain program
// never returns. With it the caller waits for the answer and only a fatal
// signal ends the wait. (A signal before the listener receives the
// notification still interrupts the wait; the listener then never sees
// the call.) Add SECCOMP_FILTER_FLAG_TSYNC|SECCOMP_FILTER_FLAG_TSYNC_ESRCH
// for a multithreaded installer: the kernel refuses TSYNC with
// NEW_LISTENER alone.
func ListenerFlags() uint { return listenerFlags() }

// ListenOptions tune Listen.
type ListenOptions struct {
	// Profile names the profile in log lines; "" means the table's.
	Profile string
	// NoSyncWakeUp leaves SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP off (for
	// measurements; the flag only changes latency).
	NoSyncWakeUp bool
	// Broker answers the calls of the profile's broker: list (the later
	// network broker plugs in here; it may read the caller's memory and
	// must check IDValid before acting). Nil refuses them with ENOSYS,
	// what the kernel answers when there is no listener: fail closed.
	// Broker answers are not logged as denials.
	// A call that may block is answered later: answered true means the
	// broker has handed it to a goroutine that calls RespondErrno itself.
	Broker func(fd int, n *Notification) (val int64, errno unix.Errno, answered bool)
}

// Listen answers every notification on listener fd until no process uses
// the filter any more, then returns nil. Each denied call is answered with
// the errno the plain program returns (table.Answer), never let through,
// and logged to w as one line:
//
//	zviz: denied: ptrace(0x10, 0x1, 0x0, 0x0, 0x0, 0x0) = EPERM pid 4242 [profile default]
//
// with all six argument registers in hex (the kernel does not say how many
// the call takes) and the calling thread's id as the listener's pid
// namespace sees it (the pid, for a single-threaded process or its main
// thread). The answer is sent before the line is written, so a slow w
// delays the next denied call, never this one.
//
// Listen is one goroutine: it waits in poll(2) (POLLIN: a call is waiting;
// POLLHUP: no task uses the filter any more, since Linux 5.8), then
// receives and answers; EINTR is retried, and ENOENT (the caller died
// first) is not an error. It does not close fd. It returns an error only
// when fd stops being a working listener.
func Listen(fd int, table *DenialTable, w io.Writer, opts ListenOptions) error {
	if table == nil {
		return errors.New("listen: no denial table (compile with CompileOptions.LogDenials)")
	}
	if !opts.NoSyncWakeUp {
		_ = SetSyncWakeUp(fd) // EINVAL before Linux 6.6: only slower
	}
	profile := opts.Profile
	if profile == "" {
		profile = table.Profile
	}
	var line []byte
	for {
		// poll first: only recent kernels wake a RECV that waits with no
		// caller when the last user goes; POLLHUP works since Linux 5.8,
		// for about a microsecond more per call.
		gone, err := waitReadable(fd)
		if err != nil || gone {
			return err
		}
		n, err := Recv(fd)
		switch {
		case err == nil:
		case err == unix.ENOENT, err == unix.EINTR:
			continue // the caller was killed meanwhile; poll again (HUP ends)
		default:
			return fmt.Errorf("listen: SECCOMP_IOCTL_NOTIF_RECV: %w", err)
		}
		name, class, errno := table.Answer(n.Nr, n.Args)
		var val int64
		if class == classBroker {
			if opts.Broker == nil {
				errno = unix.ENOSYS
			} else {
				var answered bool
				if val, errno, answered = opts.Broker(fd, n); answered {
					continue
				}
			}
		}
		if err := RespondErrno(fd, n.ID, val, errno); err != nil && err != unix.ENOENT {
			return fmt.Errorf("listen: SECCOMP_IOCTL_NOTIF_SEND: %w", err)
		}
		if class == classBroker && opts.Broker != nil {
			continue
		}
		line = appendDenial(line[:0], name, n, errno, profile)
		if _, err := w.Write(line); err != nil {
			// The log is gone (a closed terminal): keep answering, since
			// the container depends on it; stop trying to write.
			w = io.Discard
		}
	}
}

func appendDenial(b []byte, name string, n *Notification, errno unix.Errno, profile string) []byte {
	b = append(b, "zviz: denied: "...)
	b = append(b, name...)
	b = append(b, '(')
	for i, a := range n.Args {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, a, 16)
	}
	b = append(b, ") = "...)
	if s := unix.ErrnoName(errno); s != "" {
		b = append(b, s...)
	} else {
		b = strconv.AppendInt(b, int64(errno), 10)
	}
	b = append(b, " pid "...)
	b = strconv.AppendUint(b, uint64(n.Pid), 10)
	b = append(b, " [profile "...)
	b = append(b, profile...)
	return append(b, "]\n"...)
}

// waitReadable waits until a notification is pending on listener fd, or
// reports gone when no task uses the filter any more.
func waitReadable(fd int) (gone bool, err error) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		pfd[0].Revents = 0
		if _, err := unix.Poll(pfd, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return false, fmt.Errorf("listen: poll: %w", err)
		}
		ev := pfd[0].Revents
		switch {
		case ev&unix.POLLNVAL != 0:
			return false, errors.New("listen: poll: listener fd is not open")
		case ev&unix.POLLIN != 0:
			return false, nil
		case ev&unix.POLLHUP != 0:
			return true, nil // the container is gone
		}
	}
}
