package main

import "golang.org/x/sys/unix"

// forkDo is in fork_amd64.s.
func forkDo(flags, mode, trap, a1, a2, a3, a4 uintptr) (pid, errno uintptr)

const (
	haveForkDo    = true
	sysI386Getpid = 20         // getpid in arch/x86/entry/syscalls/syscall_32.tbl
	x32SyscallBit = 0x40000000 // __X32_SYSCALL_BIT

	sysIopl   = unix.SYS_IOPL
	sysIoperm = unix.SYS_IOPERM
)
