//go:build !amd64

package main

// The child attempts (forkDo) and the x86-only syscalls exist on amd64
// only; elsewhere those tries report an error or ENOSYS (syscall -1).
const (
	haveForkDo    = false
	sysI386Getpid = 0
	x32SyscallBit = 0

	sysIopl   = ^uintptr(0)
	sysIoperm = ^uintptr(0)
)

func forkDo(flags, mode, trap, a1, a2, a3, a4 uintptr) (pid, errno uintptr) {
	panic("forkDo: amd64 only")
}
