package main

import (
	"github.com/zviz/zviz/internal/container"
)

func init() {
	register("exec", "run a new process in a running container", cmdExec)
}

// stringList is a repeatable string flag (-e A=1 -e B=2).
type stringList []string

func (l *stringList) String() string     { return "" }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdExec(g *globals, args []string) int {
	var e container.ExecOptions
	fs := newFlagSet("exec")
	fs.StringVar(&e.ProcessFile, "process", "", "process.json of the process to run")
	fs.StringVar(&e.ProcessFile, "p", "", "process.json of the process to run")
	fs.BoolVar(&e.Detach, "detach", false, "return once the process runs")
	fs.BoolVar(&e.Detach, "d", false, "return once the process runs")
	fs.StringVar(&e.PidFile, "pid-file", "", "write the process's pid here")
	fs.BoolVar(&e.Tty, "tty", false, "allocate a pty (inline form)")
	fs.BoolVar(&e.Tty, "t", false, "allocate a pty (inline form)")
	fs.StringVar(&e.ConsoleSocket, "console-socket", "", "unix socket receiving the pty master")
	fs.IntVar(&e.PreserveFDs, "preserve-fds", 0, "pass this many fds after stdio")
	fs.Var((*stringList)(&e.Env), "env", "add KEY=VALUE to the environment (inline form)")
	fs.Var((*stringList)(&e.Env), "e", "add KEY=VALUE to the environment (inline form)")
	fs.StringVar(&e.Cwd, "cwd", "", "working directory (inline form)")
	fs.StringVar(&e.User, "user", "", "UID[:GID] (inline form)")
	fs.StringVar(&e.User, "u", "", "UID[:GID] (inline form)")
	// Flags and the id may interleave; everything after the id is the
	// command (its own flags included).
	pos, err := fs.parse(args, false)
	if err == nil {
		err = needArgs("exec", pos, 1, -1, "[flags] ID [COMMAND [ARG...]]")
	}
	if err != nil {
		return g.fail(err)
	}
	e.ID, e.Args = pos[0], pos[1:]
	if err := checkPreserve(e.PreserveFDs); err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	code, err := container.Exec(o, &e)
	if err != nil {
		g.fail(err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
