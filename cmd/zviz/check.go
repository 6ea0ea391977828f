package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/zviz/zviz/internal/hostcheck"
)

func init() {
	register("check", "what this host supports and what zviz will therefore do", cmdCheck)
}

// cmdCheck prints one "ok/warn/fail: item: detail" line per host feature,
// then what zviz will do. It exits 1 only when no mode of zviz can run
// here (no seccomp filters, or neither a mount namespace nor Landlock);
// see internal/hostcheck's "Exit status".
//
// `zviz check --probe-userns|--probe-mountns|--probe-notify` is the hidden
// child half of the probes: hostcheck starts this binary with the clone
// flags under test and reads one JSON line back.
func cmdCheck(g *globals, args []string) int {
	if len(args) == 1 && strings.HasPrefix(args[0], "--probe-") {
		return hostcheck.RunProbe(strings.TrimPrefix(args[0], "--probe-"), os.Stdout)
	}
	fs := newFlagSet("check")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("check", pos, 0, 0, "[--json]")
	}
	if err != nil {
		return g.fail(err)
	}
	exe, err := os.Executable()
	if err != nil {
		return g.fail(fmt.Errorf("check: find own binary for the probes: %w", err))
	}
	r := hostcheck.Default(hostcheck.NewProber(exe, os.Geteuid(), os.Getegid())).Check()
	code := 0
	if !r.Runnable {
		code = 1
	}
	if *asJSON {
		printJSON(r)
		return code
	}
	for _, l := range r.Checks {
		fmt.Println(l)
	}
	fmt.Println("\nzviz will use:")
	for _, l := range r.Conclusions {
		fmt.Println(l)
	}
	return code
}
