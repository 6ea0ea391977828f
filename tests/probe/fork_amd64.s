#include "textflag.h"

// func forkDo(flags, mode, trap, a1, a2, a3, a4 uintptr) (pid, errno uintptr)
//
// clone(flags, NULL stack) like fork(2); the child touches no Go state: it
// runs at most one system call from registers and leaves with exit_group,
// so it is safe in a multithreaded Go process (the same reason the
// runtime's forkAndExecInChild is nosplit). Child, by mode:
//   0: exit_group(0) at once
//   1: SYSCALL trap(a1, a2, a3, a4), then exit_group(errno or 0)
//   2: INT $0x80 with eax=trap, ebx=a1, ecx=a2, edx=a3 (the i386 ABI),
//      then exit_group(errno or 0)
// A child killed by seccomp (SIGSYS) or a fault (SIGSEGV) shows in wait4.
TEXT ·forkDo(SB),NOSPLIT,$0-72
	MOVQ	flags+0(FP), DI
	MOVQ	$0, SI	// no new stack: the child runs on a copy of this one
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX	// SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $-4095
	JCC	parentErr
	MOVQ	AX, pid+56(FP)
	MOVQ	$0, errno+64(FP)
	RET
parentErr:
	NEGQ	AX
	MOVQ	$0, pid+56(FP)
	MOVQ	AX, errno+64(FP)
	RET

child:
	MOVQ	mode+8(FP), BX
	CMPQ	BX, $1
	JEQ	native
	CMPQ	BX, $2
	JEQ	i386
	MOVQ	$0, AX
	JMP	leave
native:
	MOVQ	trap+16(FP), AX
	MOVQ	a1+24(FP), DI
	MOVQ	a2+32(FP), SI
	MOVQ	a3+40(FP), DX
	MOVQ	a4+48(FP), R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	SYSCALL
	JMP	leave
i386:
	MOVQ	trap+16(FP), AX
	MOVQ	a1+24(FP), BX
	MOVQ	a2+32(FP), CX
	MOVQ	a3+40(FP), DX
	INT	$0x80
	MOVLQSX	AX, AX	// the i386 ABI returns in eax
leave:
	MOVQ	$0, DI
	CMPQ	AX, $-4095
	JCS	exit
	NEGQ	AX
	MOVQ	AX, DI
exit:
	MOVQ	$231, AX	// SYS_exit_group
	SYSCALL
	HLT
