package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// probe bench-syscalls [-n N] [-reps R] [-file PATH]
//
// Per-syscall latency, for `make bench` (hack/bench/syscalls.go), which runs
// the same binary natively and inside zviz. Each loop issues one raw
// syscall per iteration through unix.RawSyscall, so the Go scheduler adds
// nothing (no entersyscall/exitsyscall) and nothing is allocated; the
// goroutine is locked to one OS thread. A repetition times N iterations of
// every syscall in turn (so drift hits all of them alike); the report gives,
// per syscall, the median and minimum over R repetitions in ns/op, and
// every repetition.
//
// PATH (default /etc/passwd) is what openat+close and stat use; a relative
// PATH is resolved against the working directory, which lets the bench use
// the same file, on the same filesystem, with the same number of path
// components natively (cwd = the bundle's rootfs) and inside the container
// (cwd = /).

// syscallBench is the JSON report of bench-syscalls.
type syscallBench struct {
	N        int             `json:"n"`
	Reps     int             `json:"reps"`
	File     string          `json:"file"`
	Arch     string          `json:"arch"`
	Seccomp  string          `json:"seccomp"`         // /proc/self/status Seccomp: 0 none, 2 filter
	Filters  string          `json:"seccomp_filters"` // /proc/self/status Seccomp_filters
	NNP      string          `json:"no_new_privs"`
	Syscalls []syscallResult `json:"syscalls"`
}

type syscallResult struct {
	Name   string    `json:"name"`
	Median float64   `json:"median_ns"`
	Min    float64   `json:"min_ns"`
	Reps   []float64 `json:"reps_ns"`
}

// sysNewfstatat is newfstatat(2), the syscall behind stat(2) and
// fstatat(2): x/sys names it SYS_NEWFSTATAT on x86_64, SYS_FSTATAT on arm64.
var sysNewfstatat = map[string]uintptr{"amd64": 262, "arm64": 79}

// The loops' buffers live in package variables: their addresses go to
// the kernel as uintptrs, which a moving goroutine stack would invalidate.
var (
	benchBuf  [1]byte
	benchStat unix.Stat_t
	benchPath *byte
)

// benchLoop runs n iterations of one syscall and returns the first error.
type benchLoop struct {
	name string
	run  func(n int) unix.Errno
}

func benchSyscalls(args []string) {
	fs := flag.NewFlagSet("bench-syscalls", flag.ContinueOnError)
	n := fs.Int("n", 100000, "iterations per repetition")
	reps := fs.Int("reps", 7, "repetitions (the report gives their median)")
	file := fs.String("file", "/etc/passwd", "file for openat+close and stat (relative: to the working directory)")
	network := fs.Bool("net", false, "also connect(2) and send(2) a UDP socket to a UDP socket of its own on 127.0.0.1 (the broker's cost)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *n < 1 || *reps < 1 {
		usage("bench-syscalls [-n N] [-reps R] [-file PATH] [-net]")
	}
	statNR, ok := sysNewfstatat[runtime.GOARCH]
	if !ok {
		fmt.Fprintf(os.Stderr, "probe: bench-syscalls: no newfstatat number for %s\n", runtime.GOARCH)
		os.Exit(1)
	}
	runtime.LockOSThread()
	debug.SetGCPercent(-1) // nothing allocates in the loops; keep the GC out anyway

	zero, err := unix.Open("/dev/zero", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	benchCheck("open /dev/zero", err)
	null, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	benchCheck("open /dev/null", err)
	benchPath, err = unix.BytePtrFromString(*file)
	benchCheck("path", err)
	loops := syscallLoops(uintptr(zero), uintptr(null), statNR)
	if *network {
		loops = append(loops, netLoops()...)
	}

	// Warm-up: one short unmeasured pass, which also checks every call works.
	for _, l := range loops {
		if e := l.run(max(*n/10, 1)); e != 0 {
			fmt.Fprintf(os.Stderr, "probe: bench-syscalls: %s: %v\n", l.name, e)
			os.Exit(1)
		}
	}
	samples := make([][]float64, len(loops))
	for r := 0; r < *reps; r++ {
		for i, l := range loops {
			start := time.Now()
			e := l.run(*n)
			d := time.Since(start)
			if e != 0 {
				fmt.Fprintf(os.Stderr, "probe: bench-syscalls: %s: %v\n", l.name, e)
				os.Exit(1)
			}
			samples[i] = append(samples[i], float64(d.Nanoseconds())/float64(*n))
		}
	}
	unix.Close(zero)
	unix.Close(null)

	rep := syscallBench{N: *n, Reps: *reps, File: *file, Arch: runtime.GOARCH}
	status := procStatus()
	rep.Seccomp, rep.Filters, rep.NNP = status["Seccomp"], status["Seccomp_filters"], status["NoNewPrivs"]
	for i, l := range loops {
		sorted := append([]float64(nil), samples[i]...)
		sort.Float64s(sorted)
		med := sorted[len(sorted)/2]
		if len(sorted)%2 == 0 {
			med = (sorted[len(sorted)/2-1] + med) / 2
		}
		rep.Syscalls = append(rep.Syscalls, syscallResult{Name: l.name, Median: med, Min: sorted[0], Reps: samples[i]})
	}
	emit(rep)
}

// syscallLoops returns the loops, in report order, reading zero, writing
// null and resolving benchPath.
func syscallLoops(zero, null, statNR uintptr) []benchLoop {
	bufp, stp := uintptr(unsafe.Pointer(&benchBuf[0])), uintptr(unsafe.Pointer(&benchStat))
	fdcwd := unix.AT_FDCWD
	atFDCWD, path := uintptr(fdcwd), uintptr(unsafe.Pointer(benchPath))
	return []benchLoop{
		{"getpid", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
			}
			return 0
		}},
		{"read", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				if _, _, e := unix.RawSyscall(unix.SYS_READ, zero, bufp, 1); e != 0 {
					return e
				}
			}
			return 0
		}},
		{"write", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				if _, _, e := unix.RawSyscall(unix.SYS_WRITE, null, bufp, 1); e != 0 {
					return e
				}
			}
			return 0
		}},
		{"fstat", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				if _, _, e := unix.RawSyscall(unix.SYS_FSTAT, null, stp, 0); e != 0 {
					return e
				}
			}
			return 0
		}},
		{"openat+close", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, atFDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
				if e != 0 {
					return e
				}
				unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
			}
			return 0
		}},
		{"stat", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				if _, _, e := unix.RawSyscall6(statNR, atFDCWD, path, stp, 0, 0, 0); e != 0 {
					return e
				}
			}
			return 0
		}},
	}
}

func benchCheck(what string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: bench-syscalls: %s: %v\n", what, err)
		os.Exit(1)
	}
}

// benchAddr is the sockaddr the connect loop connects to: a UDP socket of
// the probe's own on 127.0.0.1, so datagrams go nowhere but its buffer
// (UDP drops what does not fit, without an error to the sender).
var benchAddr [unix.SizeofSockaddrInet4]byte

// netLoops: connect(2) on a UDP socket (a brokered call when the profile
// has an egress allow-list; it completes at once, so the loop measures
// the round trip, not a network) and send(2) on it (sendto without an
// address: never brokered).
func netLoops() []benchLoop {
	sink, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	benchCheck("socket", err)
	benchCheck("bind", unix.Bind(sink, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := unix.Getsockname(sink)
	benchCheck("getsockname", err)
	port := sa.(*unix.SockaddrInet4).Port
	*(*uint16)(unsafe.Pointer(&benchAddr[0])) = unix.AF_INET
	benchAddr[2], benchAddr[3] = byte(port>>8), byte(port)
	copy(benchAddr[4:], []byte{127, 0, 0, 1})
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	benchCheck("socket", err)
	s, addr, bufp := uintptr(fd), uintptr(unsafe.Pointer(&benchAddr[0])), uintptr(unsafe.Pointer(&benchBuf[0]))
	return []benchLoop{
		{"connect-udp", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				if _, _, e := unix.RawSyscall(unix.SYS_CONNECT, s, addr, unix.SizeofSockaddrInet4); e != 0 {
					return e
				}
			}
			return 0
		}},
		{"send-udp", func(n int) unix.Errno {
			for i := 0; i < n; i++ {
				if _, _, e := unix.RawSyscall6(unix.SYS_SENDTO, s, bufp, 1, 0, 0, 0); e != 0 {
					return e
				}
			}
			return 0
		}},
	}
}
