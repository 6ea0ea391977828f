package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Install loads prog into the calling thread with seccomp(2)
// SECCOMP_SET_MODE_FILTER. It is the init's last step before execve: the
// caller has locked its OS thread (the filter attaches to this thread and
// is inherited across execve; pass SECCOMP_FILTER_FLAG_TSYNC to cover all
// threads) and has set no_new_privs, which Install checks rather than sets
// so that the init's ordering stays visible in the init. flags are
// SECCOMP_FILTER_FLAG_* from x/sys/unix; with
// SECCOMP_FILTER_FLAG_NEW_LISTENER the listener fd is returned (else -1).
// The kernel refuses TSYNC together with NEW_LISTENER unless TSYNC_ESRCH
// is also given (seccomp(2)).
func Install(prog *Program, flags uint) (listener int, err error) {
	fail := func(err error) (int, error) {
		return -1, fmt.Errorf("install seccomp filter %s/%s (flags %#x): %w", prog.Profile, prog.Arch, flags, err)
	}
	if err := checkBPF(prog.BPF); err != nil {
		return fail(err)
	}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return fail(err)
	}
	if name, _, err := canonicalArch(native.String()); err != nil || name != prog.Arch {
		return fail(fmt.Errorf("program is for %s, this machine is %s", prog.Arch, native))
	}
	if prog.Notify && flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		return fail(errors.New("the profile brokers syscalls: install with SECCOMP_FILTER_FLAG_NEW_LISTENER"))
	}
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || nnp != 1 {
		return fail(errors.New("no_new_privs is not set (set it before seccomp)"))
	}
	insns := make([]unix.SockFilter, len(prog.BPF)/8)
	for i := range insns {
		b := prog.BPF[i*8:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]), Jt: b[2], Jf: b[3],
			K: binary.NativeEndian.Uint32(b[4:]),
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(insns)
	if errno != 0 {
		return fail(errno)
	}
	// With TSYNC (and without TSYNC_ESRCH) a thread that cannot be
	// synchronised makes the call fail by returning its tid (seccomp(2)).
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && flags&(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH) == 0 && r != 0 {
		return fail(fmt.Errorf("thread %d could not be synchronised", r))
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r), nil
	}
	return -1, nil
}
