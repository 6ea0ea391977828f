// zviz processes live for milliseconds: the cgroup-aware GOMAXPROCS of Go
// 1.25 would keep the CPU quota files open and poll them for changes. The
// runtime still reads them once at start; nothing can switch that off.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command zviz is a rootless OCI container runtime for code nobody can
// vouch for. The verbs are runc's (podman and conmon drive zviz the way they
// drive runc) plus zviz's own: sandbox, policy, apparmor, check. Each verb
// lives in its own file and only parses flags, calls one function of
// internal/container and maps the error to an exit code.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/zviz/zviz/internal/container"
	"github.com/zviz/zviz/internal/initproc"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func init() {
	// The container's init must run on the process's main thread from the
	// start: setns, capabilities and the final execve act per thread.
	runtime.LockOSThread()
}

// verb is one subcommand: its run function gets the global options and
// the arguments after the verb, and returns the exit code.
type verb struct {
	summary string
	run     func(g *globals, args []string) int
}

var verbs = map[string]verb{}

func register(name, summary string, run func(g *globals, args []string) int) {
	verbs[name] = verb{summary, run}
}

func main() {
	if container.IsInit() {
		initproc.Main()
		os.Exit(1)
	}
	if container.IsExec() {
		initproc.ExecMain()
		os.Exit(1)
	}
	if container.IsDenialLogger() {
		os.Exit(container.DenialLoggerMain())
	}
	if container.IsNetHelper() {
		os.Exit(container.NetHelperMain())
	}
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	g, rest, err := parseGlobals(args)
	if err != nil {
		return g.fail(err)
	}
	if g.version {
		printVersion()
		return 0
	}
	if len(rest) == 0 || g.help {
		usage(os.Stdout)
		if len(rest) == 0 && !g.help {
			return 2
		}
		return 0
	}
	v, ok := verbs[rest[0]]
	if !ok {
		return g.fail(fmt.Errorf("unknown command %q (see zviz --help)", rest[0]))
	}
	return v.run(g, rest[1:])
}
