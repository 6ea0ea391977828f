package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
)

// A try attempts one operation of the threat model (SPEC.md) and returns
// its error. Each is harmless when it succeeds (or undone at once), and
// where the kernel allows it, the arguments are chosen so that "refused
// before the kernel looked" (seccomp's EPERM/ENOSYS, a missing capability)
// differs from "the kernel processed it" (OK, or an errno about the
// arguments such as EINVAL/EBADF/ENOENT): the comment on each says what
// the kernel answers an unprivileged caller without seccomp.
//
// Attempts that could change the probe's own process (namespaces,
// personality, ptrace, another ABI) run in a forked child (forkDo), which
// the kernel may kill: its death is the result (SIGSYS, SIGSEGV,
// KILLED:<sig>). TIOCSTI and exec run in a re-exec'd probe (hidden
// subcommands, see init).
//
// A name may carry an argument after a colon: read-file:/etc/shadow.
type tryFunc func(arg string, f fields) error

type fields map[string]string

var tries = map[string]tryFunc{
	// Namespaces. unshare and setns run in a single-threaded child (the
	// kernel refuses CLONE_NEWUSER and joining a user namespace to a
	// multithreaded process with EINVAL).
	"unshare-user":  childSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER), // OK unprivileged
	"unshare-net":   childSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWNET),  // EPERM without CAP_SYS_ADMIN
	"unshare-ns":    childSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWNS),   // EPERM without CAP_SYS_ADMIN
	"clone-fork":    childClone(0),                                      // OK: plain fork passes
	"clone-newuser": childClone(unix.CLONE_NEWUSER),                     // OK unprivileged
	"clone-newns":   childClone(unix.CLONE_NEWNS),                       // EPERM without CAP_SYS_ADMIN
	"clone3":        tryClone3,
	"setns":         trySetns("user", unix.CLONE_NEWUSER), // EINVAL: already a member
	"setns-net":     trySetns("net", unix.CLONE_NEWNET),   // EPERM without CAP_SYS_ADMIN

	// Mounts, old and new API.
	"mount":         tryMount,                                                                         // EPERM without CAP_SYS_ADMIN
	"umount":        tryUmount,                                                                        // ENOENT: the path is looked up first
	"pivot_root":    tryPivotRoot,                                                                     // EPERM: the capability is checked first
	"fsopen":        rawTry(unix.SYS_FSOPEN, strPtr("tmpfs"), 0),                                      // EPERM: capability first
	"fsconfig":      rawTry(unix.SYS_FSCONFIG, ^uintptr(0), unix.FSCONFIG_CMD_CREATE, 0, 0, 0),        // EBADF
	"fsmount":       rawTry(unix.SYS_FSMOUNT, ^uintptr(0), 0, 0),                                      // EPERM: capability first
	"fspick":        rawTry(unix.SYS_FSPICK, atFDCWD, strPtr("/"), 0),                                 // EPERM: capability first
	"open_tree":     tryOpenTree,                                                                      // OK without OPEN_TREE_CLONE
	"move_mount":    rawTry(unix.SYS_MOVE_MOUNT, ^uintptr(0), strPtr(""), ^uintptr(0), strPtr(""), 0), // EPERM: capability first
	"mount_setattr": rawTry(unix.SYS_MOUNT_SETATTR, ^uintptr(0), strPtr(""), 0, 0, 0),                 // EINVAL: size 0 is checked first

	// Processes and kernel code.
	"ptrace":            childSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME),                                             // OK
	"process_vm_readv":  tryProcessVMReadv,                                                                              // OK on itself
	"bpf":               tryBPF,                                                                                         // EPERM when unprivileged_bpf_disabled
	"perf_event_open":   tryPerfEventOpen,                                                                               // OK when perf_event_paranoid <= 2
	"io_uring_setup":    rawTry(unix.SYS_IO_URING_SETUP, 1, 0),                                                          // EFAULT: NULL params
	"keyctl":            tryKeyctl,                                                                                      // OK
	"add_key":           rawTry(unix.SYS_ADD_KEY, strPtr("zviz-probe-no-such-type"), strPtr("d"), 0, 0, keySpecProcess), // ENODEV
	"request_key":       rawTry(unix.SYS_REQUEST_KEY, strPtr("zviz-probe-no-such-type"), strPtr("d"), 0, 0),             // ENODEV
	"userfaultfd":       tryUserfaultfd,                                                                                 // OK with UFFD_USER_MODE_ONLY
	"init_module":       rawTry(unix.SYS_INIT_MODULE, 0, 0, strPtr("")),                                                 // EPERM: capability first
	"finit_module":      rawTry(unix.SYS_FINIT_MODULE, ^uintptr(0), strPtr(""), 0),                                      // EPERM: capability first
	"delete_module":     rawTry(unix.SYS_DELETE_MODULE, strPtr("zviz_probe_none"), unix.O_NONBLOCK),                     // EPERM: capability first
	"kexec_load":        rawTry(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0),                                                        // EPERM: capability first
	"kexec_file_load":   rawTry(unix.SYS_KEXEC_FILE_LOAD, ^uintptr(0), ^uintptr(0), 0, 0, 0),                            // EPERM: capability first
	"reboot":            tryReboot,                                                                                      // EPERM: capability first
	"swapon":            rawTry(unix.SYS_SWAPON, strPtr("/nonexistent-zviz-probe"), 0),                                  // EPERM: capability first
	"acct":              rawTry(unix.SYS_ACCT, strPtr("/nonexistent-zviz-probe")),                                       // EPERM: capability first
	"iopl":              rawTry(sysIopl, 0),                                                                             // OK (level unchanged), ENOSYS without CONFIG_X86_IOPL_IOPERM
	"ioperm":            rawTry(sysIoperm, 0, 0, 0),                                                                     // EINVAL (no ports), ENOSYS without CONFIG_X86_IOPL_IOPERM
	"sethostname":       trySethostname,                                                                                 // EPERM: capability first
	"chroot":            rawTry(unix.SYS_CHROOT, strPtr("/")),                                                           // EPERM; unlisted in the default profile
	"open_by_handle_at": tryOpenByHandleAt,
	"name_to_handle_at": tryNameToHandleAt, // OK
	"mknod":             tryMknod,          // EPERM without CAP_MKNOD
	"mkfifo":            tryMkfifo,         // OK
	"setuid-self":       tryChildSetuid,    // OK: to the uid it has

	// Sockets.
	"socket-packet":    trySocket(unix.AF_PACKET, unix.SOCK_RAW, 0),                   // EPERM without CAP_NET_RAW
	"socket-netlink":   trySocket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE), // OK
	"socket-vsock":     trySocket(unix.AF_VSOCK, unix.SOCK_STREAM, 0),                 // OK where vsock exists
	"socket-alg":       trySocket(unix.AF_ALG, unix.SOCK_SEQPACKET, 0),                // OK where AF_ALG exists
	"socket-raw":       trySocket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP),     // EPERM without CAP_NET_RAW
	"socket-unix":      trySocket(unix.AF_UNIX, unix.SOCK_STREAM, 0),                  // OK
	"socket-inet":      trySocket(unix.AF_INET, unix.SOCK_STREAM, 0),                  // OK
	"socket-inet6":     trySocket(unix.AF_INET6, unix.SOCK_STREAM, 0),                 // OK
	"socketpair-unix":  trySocketpair(unix.AF_UNIX),                                   // OK
	"socketpair-inet":  trySocketpair(unix.AF_INET),                                   // EOPNOTSUPP
	"connect-abstract": tryConnectAbstract,                                            // connect-abstract:NAME; EPERM under Landlock scoping

	// Terminals (a fresh pty, never the caller's terminal).
	"tiocsti":      tryTIOCSTI,                  // OK with dev.tty.legacy_tiocsti=1, else EIO
	"tioclinux":    ptyIoctl(unix.TIOCLINUX, 6), // not a VT: ENOTTY/EINVAL
	"tiocsetd":     ptyIoctl(unix.TIOCSETD, 0),  // OK: N_TTY again
	"ioctl-tcgets": ptyIoctl(unix.TCGETS, 0),    // OK: ioctl is filtered, not denied

	// Personas (in a child: they stick to the process).
	"personality-bad":     childSyscall(unix.SYS_PERSONALITY, addrNoRandomize), // OK
	"personality-rie":     childSyscall(unix.SYS_PERSONALITY, readImpliesExec), // OK
	"personality-linux32": childSyscall(unix.SYS_PERSONALITY, perLinux32),      // OK
	"personality-query":   childSyscall(unix.SYS_PERSONALITY, 0xffffffff),      // OK

	// Other ABIs on the same CPU.
	"int80": tryInt80, // OK (getpid) where IA32 emulation is on; SIGSEGV where it is off
	"x32":   tryX32,   // ENOSYS without CONFIG_X86_X32_ABI

	// Host files and kernel tunables.
	"write-proc-sys": tryOpenWrite("/proc/sys/kernel/core_pattern"),
	"write-sys":      tryWriteSys,
	"read-file":      tryReadFile, // read-file:PATH
	"chmod-suid":     tryChmodSuid,
	"exec-suid":      tryExecSuid, // exec-suid:PATH, PATH a set-user-ID copy of the probe
	"caps":           tryCaps,
}

// personality(2) values (linux/personality.h).
const (
	addrNoRandomize = 0x0040000
	readImpliesExec = 0x0400000
	perLinux32      = 0x0008
)

const (
	atFDCWD        = ^uintptr(99) // AT_FDCWD (-100)
	keySpecProcess = ^uintptr(1)  // KEY_SPEC_PROCESS_KEYRING (-2)
)

func tryNames() []string {
	var names []string
	for n := range tries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func runTries(names []string) report.TryReport {
	var out report.TryReport
	for _, n := range names {
		r := report.TryResult{Name: n, Errno: "ERROR: unknown try"}
		key, arg, _ := strings.Cut(n, ":")
		if f, ok := tries[key]; ok {
			fl := fields{}
			r.Errno = resultName(f(arg, fl))
			if len(fl) > 0 {
				r.Fields = fl
			}
		}
		out.Results = append(out.Results, r)
	}
	return out
}

// childDied is the death of a child that ran an attempt.
type childDied struct{ sig unix.Signal }

func (c childDied) Error() string {
	switch c.sig {
	case unix.SIGSYS, unix.SIGSEGV:
		return unix.SignalName(c.sig)
	}
	name := unix.SignalName(c.sig)
	if name == "" {
		name = strconv.Itoa(int(c.sig))
	}
	return "KILLED:" + name
}

func resultName(err error) string {
	var d childDied
	if errors.As(err, &d) {
		return d.Error()
	}
	return errnoName(err)
}

func errnoOf(e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// strPtr returns a pointer to a NUL-terminated copy of s that is never
// freed (the tries table is built once).
func strPtr(s string) uintptr {
	b := append([]byte(s), 0)
	keep = append(keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

var keep [][]byte

// rawTry calls the syscall with the arguments and closes a returned fd.
func rawTry(trap uintptr, args ...uintptr) tryFunc {
	return func(string, fields) error {
		var a [6]uintptr
		copy(a[:], args)
		r, _, e := unix.Syscall6(trap, a[0], a[1], a[2], a[3], a[4], a[5])
		if e != 0 {
			return e
		}
		closeIfFD(trap, r)
		return nil
	}
}

// closeIfFD closes what the fd-returning syscalls return on success.
func closeIfFD(trap, r uintptr) {
	switch trap {
	case unix.SYS_FSOPEN, unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_OPEN_TREE, unix.SYS_IO_URING_SETUP:
		unix.Close(int(r))
	}
}

// forked runs forkDo and waits for the child: its exit status is the errno
// of the attempt (0 for success); a death by signal is childDied.
func forked(flags, mode, trap, a1, a2, a3, a4 uintptr) error {
	if !haveForkDo {
		return errors.New("child attempts are implemented for amd64 only")
	}
	pid, e := forkDo(flags|uintptr(unix.SIGCHLD), mode, trap, a1, a2, a3, a4)
	if e != 0 {
		return syscall.Errno(e)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(int(pid), &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for child %d: %w", pid, err)
		}
		break
	}
	switch {
	case ws.Signaled():
		return childDied{ws.Signal()}
	case ws.Exited() && ws.ExitStatus() != 0:
		return syscall.Errno(ws.ExitStatus())
	case ws.Exited():
		return nil
	}
	return fmt.Errorf("child %d: wait status %#x", pid, uint32(ws))
}

// childSyscall runs trap(args) in a forked child.
func childSyscall(trap uintptr, args ...uintptr) tryFunc {
	return func(string, fields) error {
		var a [4]uintptr
		copy(a[:], args)
		return forked(0, 1, trap, a[0], a[1], a[2], a[3])
	}
}

// childClone forks with clone(2) flags; the child exits at once.
func childClone(flags uintptr) tryFunc {
	return func(string, fields) error { return forked(flags, 0, 0, 0, 0, 0, 0) }
}

// tryClone3 passes a zero size: the kernel answers EINVAL before it would
// create anything; the default profile answers ENOSYS without looking.
func tryClone3(string, fields) error {
	_, _, e := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	return errnoOf(e)
}

// trySetns joins the namespace the child is already in.
func trySetns(ns string, nstype uintptr) tryFunc {
	return func(string, fields) error {
		fd, err := unix.Open("/proc/self/ns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /proc/self/ns/%s: %w", ns, err)
		}
		defer unix.Close(fd)
		return forked(0, 1, unix.SYS_SETNS, uintptr(fd), nstype, 0, 0)
	}
}

// tryMount mounts a tmpfs on a fresh directory (or on / when none can be
// made) and unmounts it at once.
func tryMount(string, fields) error {
	target := "/"
	if dir, err := os.MkdirTemp("", "probe-mnt"); err == nil {
		defer os.Remove(dir)
		target = dir
	}
	if err := unix.Mount("probe", target, "tmpfs", 0, "size=4k"); err != nil {
		return err
	}
	return unix.Unmount(target, unix.MNT_DETACH)
}

// tryUmount unmounts a path that does not exist: umount2(2) looks the path
// up before it checks CAP_SYS_ADMIN, so the kernel says ENOENT.
func tryUmount(string, fields) error {
	return unix.Unmount("/nonexistent-zviz-probe", unix.MNT_DETACH)
}

// tryPivotRoot passes paths that do not exist: pivot_root(2) checks
// CAP_SYS_ADMIN first (EPERM), then looks them up (ENOENT), so nothing moves.
func tryPivotRoot(string, fields) error {
	return unix.PivotRoot("/nonexistent-probe-new", "/nonexistent-probe-old")
}

// tryOpenTree without OPEN_TREE_CLONE is an O_PATH open of "/", which any
// process may do: OK means the syscall reached the kernel.
func tryOpenTree(string, fields) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// tryProcessVMReadv reads 8 bytes of the probe's own memory.
func tryProcessVMReadv(string, fields) error {
	src := []byte("zvizprob")
	dst := make([]byte, len(src))
	local := []unix.Iovec{{Base: &dst[0], Len: uint64(len(dst))}}
	remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&src[0])), Len: len(src)}}
	_, err := unix.ProcessVMReadv(os.Getpid(), local, remote, 0)
	return err
}

// tryBPF loads "r0 = 0; exit" as a socket filter.
func tryBPF(string, fields) error {
	insns := []uint64{
		0xb7, // BPF_ALU64|BPF_MOV|BPF_K, dst r0, imm 0
		0x95, // BPF_JMP|BPF_EXIT
	}
	license := []byte("GPL\x00")
	var attr [128]byte
	*(*uint32)(unsafe.Pointer(&attr[0])) = unix.BPF_PROG_TYPE_SOCKET_FILTER
	*(*uint32)(unsafe.Pointer(&attr[4])) = uint32(len(insns))
	*(*uint64)(unsafe.Pointer(&attr[8])) = uint64(uintptr(unsafe.Pointer(&insns[0])))
	*(*uint64)(unsafe.Pointer(&attr[16])) = uint64(uintptr(unsafe.Pointer(&license[0])))
	fd, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	if e != 0 {
		return e
	}
	unix.Close(int(fd))
	return nil
}

// tryPerfEventOpen counts the probe's own task clock, user space only.
func tryPerfEventOpen(string, fields) error {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_TASK_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Bits:   unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv,
	}
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// tryKeyctl looks up the session keyring without creating one (keyctl(2)).
func tryKeyctl(string, fields) error {
	_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	return err
}

// tryUserfaultfd asks for a user-mode-only descriptor, which unprivileged
// processes get even with vm.unprivileged_userfaultfd=0.
func tryUserfaultfd(string, fields) error {
	const uffdUserModeOnly = 1
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|uffdUserModeOnly, 0, 0)
	if e != 0 {
		return e
	}
	unix.Close(int(fd))
	return nil
}

// tryReboot disables Ctrl-Alt-Del, harmless even if it succeeded (and in a
// child pid namespace the kernel refuses it with EINVAL).
func tryReboot(string, fields) error {
	return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
}

// trySethostname sets the hostname to its current value.
func trySethostname(string, fields) error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return err
	}
	return unix.Sethostname([]byte(unix.ByteSliceToString(uts.Nodename[:])))
}

// tryOpenByHandleAt opens an empty handle relative to "/": the kernel says
// EPERM without CAP_DAC_READ_SEARCH (or EINVAL for the empty handle).
func tryOpenByHandleAt(string, fields) error {
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(root)
	var h [8 + 128]byte // struct file_handle: handle_bytes, handle_type, f_handle
	fd, _, e := unix.Syscall(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(root), uintptr(unsafe.Pointer(&h[0])), unix.O_RDONLY)
	if e != 0 {
		return e
	}
	unix.Close(int(fd))
	return nil
}

// tryNameToHandleAt mints a handle for "/", which any process may do.
func tryNameToHandleAt(string, fields) error {
	_, _, err := unix.NameToHandleAt(unix.AT_FDCWD, "/", 0)
	return err
}

// scratchDir is a fresh directory in $TMPDIR, /tmp or /dev/shm.
func scratchDir() (string, error) {
	var last error
	for _, base := range []string{os.Getenv("TMPDIR"), "/tmp", "/dev/shm"} {
		if base == "" {
			continue
		}
		d, err := os.MkdirTemp(base, "probe-")
		if err == nil {
			return d, nil
		}
		last = err
	}
	return "", fmt.Errorf("no writable scratch directory: %w", last)
}

// tryMknod makes /dev/null's twin (char 1:3) in a scratch directory.
func tryMknod(_ string, f fields) error {
	d, err := scratchDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	return unix.Mknodat(unix.AT_FDCWD, filepath.Join(d, "null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3)))
}

// tryMkfifo makes a FIFO (mknodat without a device).
func tryMkfifo(_ string, f fields) error {
	d, err := scratchDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	return unix.Mknodat(unix.AT_FDCWD, filepath.Join(d, "fifo"), unix.S_IFIFO|0o600, 0)
}

// tryChildSetuid sets the uid it already has, in a child (setuid(2)
// applies to one thread when called raw).
func tryChildSetuid(_ string, f fields) error {
	return forked(0, 1, unix.SYS_SETUID, uintptr(os.Getuid()), 0, 0, 0)
}

func trySocket(domain, typ, proto int) tryFunc {
	return func(string, fields) error {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
}

func trySocketpair(domain int) tryFunc {
	return func(string, fields) error {
		fds, err := unix.Socketpair(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
		return err
	}
}

// openPTY opens a fresh pseudo-terminal pair from /dev/ptmx.
func openPTY() (master int, slave string, err error) {
	master, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(master)
		return -1, "", fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		unix.Close(master)
		return -1, "", fmt.Errorf("pty number: %w", err)
	}
	return master, "/dev/pts/" + strconv.Itoa(int(n)), nil
}

// ptyIoctl issues request on a fresh pty's master with *int argument arg.
func ptyIoctl(req uint, arg int) tryFunc {
	return func(string, fields) error {
		m, _, err := openPTY()
		if err != nil {
			return err
		}
		defer unix.Close(m)
		if req == unix.TCGETS {
			_, err := unix.IoctlGetTermios(m, unix.TCGETS)
			return err
		}
		v := int32(arg)
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(m), uintptr(req), uintptr(unsafe.Pointer(&v)))
		return errnoOf(e)
	}
}

// tryTIOCSTI pushes one byte into the input of a fresh pty that is the
// controlling terminal of a re-exec'd probe (new session): the kernel
// allows that when dev.tty.legacy_tiocsti=1 (EIO when it is 0), so EPERM
// can only come from seccomp. Never the caller's own terminal.
func tryTIOCSTI(_ string, f fields) error {
	m, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer unix.Close(m)
	s, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", slave, err)
	}
	defer s.Close()
	out, err := reexec(childTIOCSTI, nil, func(c *exec.Cmd) {
		c.Stdin = s
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	})
	if err != nil {
		return err
	}
	return errnoFromName(out)
}

// errnoFromName turns a child's report (errnoName's output) back into an
// error.
func errnoFromName(s string) error {
	s = strings.TrimSpace(s)
	if s == "OK" {
		return nil
	}
	if e := errnoValue(s); e != 0 {
		return e
	}
	return errors.New(s)
}

// reexec runs this probe with a hidden subcommand and returns its stdout.
func reexec(sub string, args []string, edit func(*exec.Cmd)) (string, error) {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	return runChild(self, append([]string{sub}, args...), edit)
}

func runChild(path string, args []string, edit func(*exec.Cmd)) (string, error) {
	c := exec.Command(path, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if edit != nil {
		edit(c)
	}
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "", childDied{unix.Signal(ws.Signal())}
		}
		return "", fmt.Errorf("%s %s: %v: %s", path, args[0], err, strings.TrimSpace(errb.String()))
	}
	if err != nil {
		return "", err // start failed: an errno such as EACCES or EPERM
	}
	return out.String(), nil
}

// tryInt80 calls getpid through the i386 ABI (int 0x80) in a child.
func tryInt80(string, fields) error {
	return forked(0, 2, sysI386Getpid, 0, 0, 0, 0)
}

// tryX32 calls getpid with __X32_SYSCALL_BIT in a child.
func tryX32(string, fields) error {
	return forked(0, 1, x32SyscallBit|unix.SYS_GETPID, 0, 0, 0, 0)
}

// tryOpenWrite opens path for writing without writing to it.
func tryOpenWrite(path string) tryFunc {
	return func(_ string, f fields) error {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	}
}

// sysTargets are sysfs files whose writing would matter on a host; the
// first that exists is opened for writing (not written).
var sysTargets = []string{
	"/sys/kernel/uevent_helper", "/sys/kernel/profiling", "/sys/kernel/mm/transparent_hugepage/enabled",
	"/sys/power/state", "/sys/kernel/rcu_expedited",
}

func tryWriteSys(_ string, f fields) error {
	for _, p := range sysTargets {
		if _, err := os.Stat(p); err == nil {
			f["path"] = p
			return tryOpenWrite(p)(p, f)
		}
	}
	return fmt.Errorf("none of %v exists", sysTargets)
}

// tryConnectAbstract connects a unix stream socket to the abstract
// address NAME (given after the colon): another network namespace's
// abstract sockets are not found (ECONNREFUSED), and Landlock's scoping
// (ABI 6) refuses one created outside the sandbox with EPERM.
func tryConnectAbstract(name string, f fields) error {
	if name == "" {
		return errors.New("connect-abstract needs a name: connect-abstract:zviz-test")
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + name})
}

// tryReadFile reads the path given after the colon; the first bytes go to
// the "data" field so a test can see what leaked.
func tryReadFile(path string, f fields) error {
	if path == "" {
		return errors.New("read-file needs a path: read-file:/etc/shadow")
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 64)
	n, err := unix.Read(fd, buf)
	if n > 0 {
		f["data"] = string(buf[:n])
	}
	return err
}

// tryChmodSuid copies the probe to a scratch directory, sets its
// set-user-ID bit and runs the copy: the errno is chmod's, "mode" is the
// mode that stuck, and exec_* are the copy's credentials (the copy belongs
// to the caller, so they must be the caller's own with no capabilities).
func tryChmodSuid(_ string, f fields) error {
	d, err := scratchDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	if err := os.Chmod(d, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(d, "suid-probe")
	if err := copySelf(dst); err != nil {
		return err
	}
	if err := unix.Chmod(dst, 0o4755); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(dst, &st); err != nil {
		return err
	}
	f["mode"] = fmt.Sprintf("%o", st.Mode&0o7777)
	return execCreds(dst, f)
}

func copySelf(dst string) error {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tryExecSuid runs PATH (a set-user-ID copy of the probe that the test
// prepared) and reports the credentials it ran with.
func tryExecSuid(path string, f fields) error {
	if path == "" {
		return errors.New("exec-suid needs a path: exec-suid:/suid-probe")
	}
	return execCreds(path, f)
}

// execCreds runs `PATH __creds` and copies its report into f with the
// exec_ prefix.
func execCreds(path string, f fields) error {
	out, err := runChild(path, []string{childCreds}, nil)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			f["exec_"+k] = v
		}
	}
	return nil
}

// tryCaps reports the capability sets, no_new_privs and the seccomp mode
// from /proc/self/status.
func tryCaps(_ string, f fields) error {
	st := procStatus()
	if len(st) == 0 {
		return errors.New("cannot read /proc/self/status")
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"} {
		if v, ok := st[k]; ok {
			f[k] = v
		}
	}
	return nil
}

// Hidden subcommands for the children of tries. They are dispatched from
// init, before main, and are not part of the probe's interface.
const (
	childTIOCSTI = "__tiocsti" // TIOCSTI on fd 0; prints OK or the errno name
	childCreds   = "__creds"   // prints uid=, euid=, CapEff=, NoNewPrivs= lines
)

func init() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case childTIOCSTI:
		c := byte('#')
		_, _, e := unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		fmt.Println(errnoName(errnoOf(e)))
		os.Exit(0)
	case childCreds:
		st := procStatus()
		ruid, euid, suid := unix.Getresuid()
		fmt.Printf("uid=%d\neuid=%d\nsuid=%d\nCapEff=%s\nCapPrm=%s\nNoNewPrivs=%s\n",
			ruid, euid, suid, st["CapEff"], st["CapPrm"], st["NoNewPrivs"])
		os.Exit(0)
	}
}

// errnoValue is unix.ErrnoName's inverse (0 when s is not an errno name).
func errnoValue(s string) syscall.Errno {
	for e := syscall.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == s {
			return e
		}
	}
	return 0
}
