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
	th       *thread // from the broker's cache, or the target's own (owned)
	owned    bool
	fds      []int
}

// pidfdThread is PIDFD_THREAD (Linux >= 6.9): a pidfd for a thread that
// is not its process's leader.
// A variable so that tests can take the path of kernels without it.
var pidfdThread = unix.O_EXCL

// thread is what the broker keeps open for one calling thread: its pidfd
// and its memory (/proc/TID/mem, bound to its address space when
// opened). Opening both costs more than the rest of a brokered call, so
// the broker keeps them (threadCache) while the thread lives.
type thread struct {
	pidfd, mem int
	cacheable  bool // a PIDFD_THREAD pidfd: alive means this very thread
}

func openThread(tid int) (*thread, unix.Errno) {
	th := &thread{pidfd: -1, mem: -1, cacheable: true}
	fd, err := unix.PidfdOpen(tid, pidfdThread)
	if err == unix.EINVAL {
		// Before Linux 6.9: the thread group's leader, which shares the
		// descriptor table and the memory, but outlives the thread.
		th.cacheable = false
		if tgid := threadGroup(tid); tgid > 0 {
			fd, err = unix.PidfdOpen(tgid, 0)
		}
	}
	if err != nil {
		return nil, unix.ESRCH
	}
	th.pidfd = fd
	if m, err := unix.Open("/proc/"+strconv.Itoa(tid)+"/mem", unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
		th.mem = m
	}
	return th, 0
}

func (th *thread) close() {
	unix.Close(th.pidfd)
	if th.mem >= 0 {
		unix.Close(th.mem)
	}
}

// threadCache keeps the threads of one listener's callers, by tid. A
// cached thread that has exited fails pidfd_getfd with ESRCH (its tid may
// have been reused since, and its /proc/TID/mem may read another address
// space): Handle then drops it and starts the call again with the thread
// opened afresh, so nothing read through a stale entry is acted upon.
// Only the listener's goroutine uses it (Session).
type threadCache struct {
	m map[int]*thread
}

const maxThreads = 256 // two descriptors each

func (c *threadCache) get(tid int) (*thread, unix.Errno) {
	if th, ok := c.m[tid]; ok {
		return th, 0
	}
	th, e := openThread(tid)
	if e != 0 || !th.cacheable {
		return th, e
	}
	if c.m == nil {
		c.m = map[int]*thread{}
	}
	if len(c.m) >= maxThreads {
		for k, old := range c.m {
			old.close()
			delete(c.m, k)
			break
		}
	}
	c.m[tid] = th
	return th, 0
}

func (c *threadCache) drop(tid int) {
	if th, ok := c.m[tid]; ok {
		th.close()
		delete(c.m, tid)
	}
}

// close closes every cached thread.
func (c *threadCache) close() {
	for tid, th := range c.m {
		th.close()
		delete(c.m, tid)
	}
}

// openTarget opens the caller (its pid is the calling thread's id).
func openTarget(listener int, n *seccomp.Notification, cache *threadCache) (*target, unix.Errno) {
	t := &target{listener: listener, id: n.ID, pid: int(n.Pid)}
	th, e := cache.get(t.pid)
	if e != 0 {
		return nil, e
	}
	t.th, t.owned = th, !th.cacheable
	return t, 0
}

// detach gives the target its own copy of the cached memory descriptor,
// for an operation that outlives the listener's turn (the cache may close
// its copy meanwhile).
func (t *target) detach() {
	if t.owned {
		return
	}
	mem := -1
	if t.th.mem >= 0 {
		if m, err := unix.Dup(t.th.mem); err == nil {
			mem = m
			unix.CloseOnExec(m)
		}
	}
	t.th, t.owned = &thread{pidfd: -1, mem: mem}, true
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
	if t.owned && t.th != nil {
		if t.th.pidfd >= 0 {
			unix.Close(t.th.pidfd)
		}
		if t.th.mem >= 0 {
			unix.Close(t.th.mem)
		}
		t.th = nil
	}
}

func (t *target) valid() bool { return seccomp.IDValid(t.listener, t.id) }

// read copies n bytes at addr from the caller's memory; EFAULT when any
// of them is not readable, as the kernel would answer. Through the cached
// /proc/TID/mem when it still reads (a thread that exec'd has another
// address space), else process_vm_readv(2).
func (t *target) read(addr uint64, n int) ([]byte, unix.Errno) {
	buf := make([]byte, n)
	if n == 0 {
		return buf, 0
	}
	if addr == 0 {
		return nil, unix.EFAULT
	}
	if t.th.mem >= 0 && int64(addr) > 0 {
		if got, err := unix.Pread(t.th.mem, buf, int64(addr)); err == nil && got == n {
			return buf, 0
		}
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

// writeU32 writes a result back into the caller's memory (sendmmsg's
// msg_len), through /proc/TID/mem, which like ptrace writes even where
// the caller could not; a caller whose memory is gone gets nothing.
func (t *target) writeU32(addr uint64, v uint32) {
	if t.th.mem < 0 || int64(addr) <= 0 {
		return
	}
	b := (*[4]byte)(unsafe.Pointer(&v))[:]
	_, _ = unix.Pwrite(t.th.mem, b, int64(addr))
}

// getfd takes a duplicate of the caller's descriptor fd (pidfd_getfd(2)):
// the same open file description, so a socket the broker connects is the
// caller's socket, with its O_NONBLOCK and options.
func (t *target) getfd(fd uint64) (int, unix.Errno) {
	// The kernel reads the argument as an int: the low 32 bits.
	n, err := unix.PidfdGetfd(t.th.pidfd, int(int32(fd)), 0)
	if err == unix.ESRCH {
		return -1, unix.ESRCH // the thread has exited: see threadCache
	}
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
