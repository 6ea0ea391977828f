// Package initproc is the container's init: the zviz binary re-executed by
// the parent inside the new namespaces (it shows as zviz:[init] in ps). It
// receives a wire.Bootstrap, builds the container step by step as the
// parent/init protocol in package wire describes, parks until `zviz start`
// opens the exec fifo, and finally turns itself into the user's process
// with execve: zviz keeps no supervisor inside the container.
//
// Everything here runs on the process's main OS thread, which the caller
// locked before the Go runtime started any goroutine: setns, capabilities
// and the final execve act on the calling thread only.
package initproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
)

// EnvSyncFD names the environment variable that carries the sync socket's
// descriptor number to the init. The init's environment is replaced by the
// process's own at execve, so it never reaches the workload.
const EnvSyncFD = "_ZVIZ_SYNC_FD"

// EnvDebugSince carries the parent's start (--debug) to the init, so that
// it can report its own start-up before the bootstrap arrives.
const EnvDebugSince = "_ZVIZ_DEBUG_SINCE"

// Main is the init's whole life. It returns only on failure, after the
// failure has been reported to the parent; the caller exits non-zero.
func Main() {
	fd, err := strconv.Atoi(os.Getenv(EnvSyncFD))
	if err != nil {
		fmt.Fprintln(os.Stderr, "zviz init: started without a sync socket; this is zviz's internal entry point")
		os.Exit(2)
	}
	if v, err := strconv.ParseInt(os.Getenv(EnvDebugSince), 10, 64); err == nil {
		debugSince = v
		step("main")
	}
	conn := wire.FromFD(fd)
	var b wire.Bootstrap
	if _, err := conn.Expect(wire.KindBootstrap, &b); err != nil {
		// The parent starts us before it has validated everything; when it
		// gives up it closes the socket and reports the reason itself.
		if !errors.Is(err, wire.ErrClosed) {
			fmt.Fprintf(os.Stderr, "zviz init: %v\n", err)
		}
		os.Exit(1)
	}
	// Until execve, this process runs the zviz binary inside the container's
	// namespaces: keep it undumpable so that nothing in the container can
	// open /proc/1/exe, /proc/1/mem or its fds (CVE-2019-5736). execve of the
	// workload resets dumpability. Not earlier: the parent writes our uid and
	// gid maps through /proc/PID, which needs us dumpable, and Bootstrap
	// only comes once that is done.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	debugSince = b.DebugSince
	step("bootstrap received")
	err = run(conn, &b)
	// run only returns on failure: the process image is replaced otherwise.
	_ = conn.Fail(err)
	os.Exit(1)
}

// run is the recipe's driver: build the container, wait for start, exec.
func run(conn *wire.Conn, b *wire.Bootstrap) error {
	p, err := build(conn, b)
	if err != nil {
		return err
	}
	// From here on the parent that ran create is gone: errors go to the
	// container's stderr as well.
	err = waitForStart(b.FifoFD)
	if err == nil {
		err = p.launch()
	}
	fmt.Fprintf(os.Stderr, "zviz: %v\n", err)
	return err
}

// waitForStart blocks on opening the exec fifo for writing; `zviz start`
// opening it for reading releases us (runc's exec.fifo protocol: no daemon
// is needed between create and start). The O_PATH descriptor was opened by
// the parent before pivot_root; reopening it through /proc/self/fd works
// after it. The write end stays open, close-on-exec: `zviz start` sees it
// close when the process has been executed (or the init died), and only
// then runs the poststart hooks, after our startContainer ones
// (runtime-spec config.md).
func waitForStart(fifoFD int) error {
	path := "/proc/self/fd/" + strconv.Itoa(fifoFD)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	_ = unix.Close(fifoFD)
	if _, err := unix.Write(fd, []byte{0}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("write exec fifo: %w", err)
	}
	return nil
}

// lookupEnv returns the value of key in a KEY=VALUE list.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
