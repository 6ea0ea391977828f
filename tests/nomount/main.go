// Command nomount runs a program the way Ubuntu 24.04's AppArmor
// restriction (kernel.apparmor_restrict_unprivileged_userns=1) leaves an
// unprivileged process: it may still create namespaces, but mounting
// fails with EPERM. It sets no_new_privs, installs a seccomp filter that
// makes mount(2), umount2(2), pivot_root(2) and the new mount API
// (open_tree, move_mount, fsopen, fsconfig, fsmount, fspick,
// mount_setattr) fail with EPERM, and execs its arguments:
//
//	nomount PROGRAM [ARGS...]
//
// The filter is inherited by every child and survives execve
// (seccomp(2)), so zviz, its probe and its init all run under it. The
// integration tests use it to make zviz's isolation probe fail for real
// (issue 6). Built static (CGO_ENABLED=0).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// denied are the syscalls the filter refuses with EPERM.
var denied = []uint32{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT,
	unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
}

// auditArch is the AUDIT_ARCH_* of the native ABI (seccomp_data.arch).
var auditArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}

func main() {
	runtime.LockOSThread()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nomount PROGRAM [ARGS...]")
		os.Exit(2)
	}
	if err := install(); err != nil {
		fmt.Fprintf(os.Stderr, "nomount: %v\n", err)
		os.Exit(2)
	}
	bin, err := exec.LookPath(os.Args[1])
	if err == nil {
		err = unix.Exec(bin, os.Args[1:], os.Environ())
	}
	fmt.Fprintf(os.Stderr, "nomount: exec %s: %v\n", os.Args[1], err)
	os.Exit(127)
}

// program is the filter: another ABI is killed (a 32-bit call could
// reach mount under another number), the listed syscalls get EPERM,
// everything else is allowed.
func program() ([]unix.SockFilter, error) {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("no seccomp arch for %s", runtime.GOARCH)
	}
	n := uint8(len(denied))
	p := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: arch, Jt: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
	}
	for i, nr := range denied {
		// Jump to the EPERM return after the last comparison.
		p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: nr, Jt: n - uint8(i)})
	}
	return append(p,
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
	), nil
}

func install() error {
	p, err := program()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	// TSYNC: every thread of this Go process, not only the one that execs.
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", e)
	}
	return nil
}
