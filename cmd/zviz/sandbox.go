package main

import (
	"fmt"
	"strings"

	"github.com/zviz/zviz/internal/container"
)

func init() {
	register("sandbox", "run a command on the host's root, read-only, isolated", cmdSandbox)
}

// multi collects a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func cmdSandbox(g *globals, args []string) int {
	var so container.SandboxOptions
	var rw, ro, env multi
	fs := newFlagSet("sandbox")
	fs.Var(&rw, "rw", "host path to make writable (repeatable)")
	fs.Var(&ro, "ro", "host path to expose read-only (repeatable)")
	fs.Var(&env, "env", "K=V for the command's environment (repeatable)")
	fs.Var(&env, "e", "K=V for the command's environment (repeatable)")
	fs.BoolVar(&so.Net, "net", false, "share the host's network (same as --network host)")
	fs.StringVar(&so.Network, "network", "", "none|host|slirp4netns|pasta (default none)")
	var publish multi
	fs.Var(&publish, "p", "publish HOSTPORT:CONTAINERPORT[/tcp|udp] (repeatable; slirp4netns, pasta)")
	fs.Var(&publish, "publish", "same as -p")
	profile := fs.String("profile", "", "security profile: a built-in name or a file")
	fs.BoolVar(&so.TTY, "tty", false, "allocate a terminal")
	fs.BoolVar(&so.TTY, "t", false, "allocate a terminal")
	pos, err := fs.parse(args, false)
	if err != nil {
		return g.fail(err)
	}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return g.fail(fmt.Errorf("sandbox --env %q: want KEY=VALUE", kv))
		}
	}
	so.Args, so.RW, so.RO, so.Env, so.Publish = pos, rw, ro, env, publish
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	if *profile != "" {
		o.Profile = *profile
	}
	code, err := container.Sandbox(o, &so)
	if err != nil {
		g.fail(err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
