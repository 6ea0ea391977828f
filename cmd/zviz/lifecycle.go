package main

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/container"
)

func init() {
	register("create", "create a container (its process waits for start)", cmdCreate)
	register("start", "start the process of a created container", cmdStart)
	register("run", "create and start a container, wait for it", cmdRun)
}

// createFlags are the flags create and run share.
func createFlags(name string, c *container.CreateOptions) *flagSet {
	fs := newFlagSet(name)
	fs.StringVar(&c.Bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&c.Bundle, "b", ".", "bundle directory")
	fs.StringVar(&c.PidFile, "pid-file", "", "write the init's pid here")
	fs.StringVar(&c.ConsoleSocket, "console-socket", "", "unix socket receiving the pty master")
	fs.IntVar(&c.PreserveFDs, "preserve-fds", 0, "pass this many fds after stdio")
	fs.BoolVar(&c.NoPivot, "no-pivot", false, "chroot instead of pivot_root")
	fs.BoolVar(&c.NoNewKeyring, "no-new-keyring", false, "accepted for runc compatibility")
	fs.StringVar(&c.Network, "network", "", "none|host|slirp4netns|pasta (default: the config's, or the profile's mode)")
	fs.Var((*multi)(&c.Publish), "p", "publish HOSTPORT:CONTAINERPORT[/tcp|udp] (repeatable; slirp4netns, pasta)")
	fs.Var((*multi)(&c.Publish), "publish", "same as -p")
	return fs
}

func cmdCreate(g *globals, args []string) int {
	var c container.CreateOptions
	o, err := parseCreate(g, createFlags("create", &c), args, &c)
	if err != nil {
		return g.fail(err)
	}
	if err := container.Create(o, &c); err != nil {
		return g.fail(err)
	}
	return 0
}

// parseCreate parses create's and run's flags and the id into c, checks
// --preserve-fds and returns the global options.
func parseCreate(g *globals, fs *flagSet, args []string, c *container.CreateOptions) (*container.Options, error) {
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs(fs.Name(), pos, 1, 1, "[flags] ID")
	}
	if err != nil {
		return nil, err
	}
	c.ID = pos[0]
	if err := checkPreserve(c.PreserveFDs); err != nil {
		return nil, err
	}
	return g.options()
}

func cmdStart(g *globals, args []string) int {
	fs := newFlagSet("start")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("start", pos, 1, 1, "ID")
	}
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	if err := container.Start(o, pos[0]); err != nil {
		return g.fail(err)
	}
	return 0
}

func cmdRun(g *globals, args []string) int {
	var c container.CreateOptions
	var detach bool
	fs := createFlags("run", &c)
	fs.BoolVar(&detach, "detach", false, "return once the process runs")
	fs.BoolVar(&detach, "d", false, "return once the process runs")
	o, err := parseCreate(g, fs, args, &c)
	if err != nil {
		return g.fail(err)
	}
	code, err := container.Run(o, &c, detach)
	if err != nil {
		g.fail(err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// checkPreserve refuses --preserve-fds beyond what the caller passed us.
// An inherited descriptor is never close-on-exec (it would not have
// survived our execve); the ones the Go runtime opens before main (since
// Go 1.25 it keeps the cgroup CPU limit files open, at the lowest free
// numbers) all are, and must not leak into the container.
func checkPreserve(n int) error {
	if n < 0 {
		return fmt.Errorf("--preserve-fds %d: must not be negative", n)
	}
	for fd := 3; fd < 3+n; fd++ {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			return fmt.Errorf("--preserve-fds %d: fd %d is not open (not passed to zviz)", n, fd)
		}
	}
	return nil
}
