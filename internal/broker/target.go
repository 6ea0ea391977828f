package broker

import (
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/seccomp"
)

// target is the caller of one notification. Everything the broker learns
// about it (memory, descriptors, root and working directory) is read
// first; valid() then confirms, with SECCOMP_IOCTL_NOTIF_ID_VALID, that
// the caller is still waiting, so every read came from it and not from a
// process that reused its pid (seccomp_unotify(2), "Design goals"). The
// broker acts only on its own copies afterwards: nothing the container
// changes later reaches the call.
type target struct {
	listener int
	id       uint64
	pid      int
	pidfd    int
	mem      int // /proc/PID/mem, opened only to write results back
	fds      []int
}

// pidfdThread is PIDFD_THREAD (Linux >= 6.9): a pidfd for a thread that
// is not its process's leader.
const pidfdThread = unix.O_EXCL

// openTarget opens the caller. Its pid is the calling thread's id, which
// pidfd_open accepts only with PIDFD_THREAD; older kernels get the
// thread group's leader (from /proc/TID/status), which shares the
// descriptor table and the memory.
func openTarget(listener int, n *seccomp.Notification) (*target, unix.Errno) {
	t := &target{listener: listener, id: n.ID, pid: int(n.Pid), pidfd: -1, mem: -1}
	fd, err := unix.PidfdOpen(t.pid, pidfdThread)
	if err == unix.EINVAL {
		if tgid := threadGroup(t.pid); tgid > 0 {
			fd, err = unix.PidfdOpen(tgid, 0)
		}
	}
	if err != nil {
		return nil, unix.ESRCH
	}
	t.pidfd = fd
	return t, 0
}

func threadGroup(tid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), "\nTgid:")
	if !ok {
		return 0
	}
	line, _, _ := strings.Cut(rest, "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(line))
	return n
}

// close releases everything the broker took from the caller.
func (t *target) close() {
	for _, fd := range t.fds {
		unix.Close(fd)
	}
	t.fds = nil
	if t.mem >= 0 {
		unix.Close(t.mem)
	}
	unix.Close(t.pidfd)
}

func (t *target) valid() bool { return seccomp.IDValid(t.listener, t.id) }

// read copies n bytes at addr from the caller's memory; EFAULT when any
// of them is not readable, as the kernel would answer.
func (t *target) read(addr uint64, n int) ([]byte, unix.Errno) {
	buf := make([]byte, n)
	if n == 0 {
		return buf, 0
	}
	if addr == 0 {
		return nil, unix.EFAULT
	}
	got, err := unix.ProcessVMReadv(t.pid, []unix.Iovec{{Base: &buf[0], Len: uint64(n)}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: n}}, 0)
	if err != nil || got != n {
		return nil, unix.EFAULT
	}
	return buf, 0
}

// readv gathers the caller's iovecs into one buffer, at most max bytes.
func (t *target) readv(iov []unix.RemoteIovec, max int) ([]byte, unix.Errno) {
	total := 0
	var remote []unix.RemoteIovec
	for _, v := range iov {
		if v.Len < 0 {
			return nil, unix.EINVAL
		}
		if total+v.Len > max {
			v.Len = max - total
		}
		if v.Len > 0 {
			remote = append(remote, v)
			total += v.Len
		}
	}
	buf := make([]byte, total)
	if total == 0 {
		return buf, 0
	}
	got, err := unix.ProcessVMReadv(t.pid, []unix.Iovec{{Base: &buf[0], Len: uint64(total)}}, remote, 0)
	if err != nil || got != total {
		return nil, unix.EFAULT
	}
	return buf, 0
}

// openMem opens the caller's memory for writing results back
// (sendmmsg's msg_len). The file is bound to the caller's address space
// from now on, so opening it before valid() pins the right process.
func (t *target) openMem() unix.Errno {
	fd, err := unix.Open("/proc/"+strconv.Itoa(t.pid)+"/mem", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return unix.EFAULT
	}
	t.mem = fd
	return 0
}

func (t *target) writeU32(addr uint64, v uint32) {
	if t.mem < 0 {
		return
	}
	b := (*[4]byte)(unsafe.Pointer(&v))[:]
	_, _ = unix.Pwrite(t.mem, b, int64(addr))
}

// getfd takes a duplicate of the caller's descriptor fd (pidfd_getfd(2)):
// the same open file description, so a socket the broker connects is the
// caller's socket, with its O_NONBLOCK and options.
func (t *target) getfd(fd uint64) (int, unix.Errno) {
	// The kernel reads the argument as an int: the low 32 bits.
	n, err := unix.PidfdGetfd(t.pidfd, int(int32(fd)), 0)
	if err != nil {
		return -1, unix.EBADF
	}
	t.fds = append(t.fds, n)
	return n, 0
}

// resolveUnix opens the socket file a path sockaddr names, as the caller
// would resolve it: absolute paths inside its root, relative ones beneath
// its working directory (a relative path that climbs out with ".." is
// refused), never through magic links. The broker then connects to
// /proc/self/fd/N, which is that very inode.
func (t *target) resolveUnix(path string) (int, unix.Errno) {
	proc := "/proc/" + strconv.Itoa(t.pid)
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS}
	base := proc + "/root"
	if len(path) > 0 && path[0] == '/' {
		how.Resolve |= unix.RESOLVE_IN_ROOT
	} else {
		base = proc + "/cwd"
		how.Resolve |= unix.RESOLVE_BENEATH
	}
	dir, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, unix.ENOENT
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, path, &how)
	if err != nil {
		e, _ := err.(unix.Errno)
		if e == unix.EXDEV || e == 0 {
			e = unix.EACCES
		}
		return -1, e
	}
	t.fds = append(t.fds, fd)
	return fd, 0
}
