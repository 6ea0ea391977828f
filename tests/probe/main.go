// Command probe runs inside containers during zviz's integration tests and
// reports what the process can see and do, as one JSON object on stdout
// (types in tests/probe/report). It is built static (CGO_ENABLED=0) so it runs
// in any rootfs. Never run it as root on the host: `try` attempts privileged
// syscalls.
//
//	probe info                 process, namespace, mount, fd, cap, seccomp view
//	probe exit N               exit with status N
//	probe kill-self SIG        die by signal SIG (default action; not as pid 1)
//	probe sleep SECONDS        sleep (fractions allowed), then exit 0
//	probe wait-signal SIG      print "ready", wait for SIG, print its name, exit 0
//	probe write PATH           try to create/truncate PATH and write to it
//	probe read PATH            try to read PATH
//	probe try NAME...          attempt syscalls by name (see tries in try.go)
//	probe bench-syscalls [-n N] per-syscall latency in ns/op (see bench.go)
//
// Usage errors exit 2; reporting an errno is not an error (exit 0).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"
)

func main() {
	if len(os.Args) < 2 {
		usage("missing command")
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "info":
		emit(collectInfo())
	case "exit":
		n, err := strconv.Atoi(arg(args, 0))
		if err != nil {
			usage("exit: " + err.Error())
		}
		os.Exit(n)
	case "kill-self":
		killSelf(parseSignal(arg(args, 0)))
	case "sleep":
		s, err := strconv.ParseFloat(arg(args, 0), 64)
		if err != nil {
			usage("sleep: " + err.Error())
		}
		time.Sleep(time.Duration(s * float64(time.Second)))
	case "wait-signal":
		waitSignal(parseSignal(arg(args, 0)))
	case "write":
		emit(writeFile(arg(args, 0)))
	case "read":
		emit(readFile(arg(args, 0)))
	case "try":
		if len(args) == 0 {
			usage("try: name at least one of: " + strings.Join(tryNames(), ", "))
		}
		emit(runTries(args))
	case "bench-syscalls":
		benchSyscalls(args)
	default:
		usage("unknown command " + strconv.Quote(cmd))
	}
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "probe: %s\nusage: probe info | exit N | kill-self SIG | sleep SECONDS | "+
		"wait-signal SIG | write PATH | read PATH | try NAME... | bench-syscalls [-n N]\n", msg)
	os.Exit(2)
}

func arg(args []string, i int) string {
	if i >= len(args) {
		usage("missing argument")
	}
	return args[i]
}

func emit(v any) {
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "probe: write report: %v\n", err)
		os.Exit(1)
	}
}

// errnoName is "OK" for nil, the errno's name (EPERM) when err carries one.
func errnoName(err error) string {
	if err == nil {
		return "OK"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		if name := unix.ErrnoName(e); name != "" {
			return name
		}
		return fmt.Sprintf("errno %d", int(e))
	}
	return "ERROR: " + err.Error()
}

// parseSignal accepts TERM, SIGTERM or 15.
func parseSignal(s string) unix.Signal {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n)
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		usage("unknown signal " + strconv.Quote(s))
	}
	return sig
}

// killSelf resets sig to its default action in the kernel behind the Go
// runtime's back (whose own handlers turn SIGQUIT and SIGABRT into exit 2),
// then sends it to the whole process, so the parent sees a death by signal.
func killSelf(sig unix.Signal) {
	var dfl struct{ handler, flags, restorer, mask uint64 } // SIG_DFL
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	if e != 0 && sig != unix.SIGKILL && sig != unix.SIGSTOP {
		fmt.Fprintf(os.Stderr, "probe: reset %v: %v\n", sig, e)
		os.Exit(1)
	}
	if err := unix.Kill(os.Getpid(), sig); err != nil {
		fmt.Fprintf(os.Stderr, "probe: kill %d %v: %v\n", os.Getpid(), sig, err)
		os.Exit(1)
	}
	time.Sleep(2 * time.Second)
	if os.Getpid() == 1 {
		// pid_namespaces(7): the init of a namespace gets only the signals
		// it has handlers for, when sent from inside the namespace.
		fmt.Fprintf(os.Stderr, "probe: still alive after %v: pid 1 cannot kill itself\n", unix.SignalName(sig))
	} else {
		fmt.Fprintf(os.Stderr, "probe: still alive after %v\n", unix.SignalName(sig))
	}
	os.Exit(1)
}

func waitSignal(sig unix.Signal) {
	if sig == unix.SIGKILL || sig == unix.SIGSTOP {
		usage(unix.SignalName(sig) + " cannot be caught")
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, sig)
	fmt.Println("ready")
	got := <-c
	fmt.Println(unix.SignalName(got.(unix.Signal)))
}

func writeFile(path string) report.FileOp {
	r := report.FileOp{Op: "write", Path: path}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err == nil {
		_, err = unix.Write(fd, []byte("zviz probe\n"))
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
	}
	r.Errno = errnoName(err)
	return r
}

func readFile(path string) report.FileOp {
	r := report.FileOp{Op: "read", Path: path}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		buf := make([]byte, 64<<10)
		var n int
		n, err = unix.Read(fd, buf)
		if n > 0 {
			r.Data = string(buf[:n])
		}
		unix.Close(fd)
	}
	r.Errno = errnoName(err)
	return r
}
