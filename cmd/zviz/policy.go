package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/zviz/zviz/internal/hostcheck"
)

func init() {
	register("policy", "show, explain and compile security profiles (show|explain|bpf|list)", cmdPolicy)
}

var policyVerbs = map[string]func(g *globals, args []string) int{
	"show":    cmdPolicyShow,
	"explain": cmdPolicyExplain,
	"bpf":     cmdPolicyBPF,
	"list":    cmdPolicyList,
}

const policyUsage = "show [PROFILE] [--json] [--arch A] [--unlisted] | explain SYSCALL [--profile P] | " +
	"bpf [PROFILE] [--dump] [--arch A] [--json] | list [--json]"

func cmdPolicy(g *globals, args []string) int {
	if len(args) == 0 {
		return g.fail(fmt.Errorf("policy: usage: zviz policy %s", policyUsage))
	}
	run, ok := policyVerbs[args[0]]
	if !ok {
		names := make([]string, 0, len(policyVerbs))
		for n := range policyVerbs {
			names = append(names, n)
		}
		sort.Strings(names)
		return g.fail(fmt.Errorf("policy: unknown subcommand %q (one of: %s)", args[0], strings.Join(names, ", ")))
	}
	return run(g, args[1:])
}

// profileArg is the optional PROFILE positional, else the global
// --profile, else "default".
func profileArg(g *globals, pos []string) string {
	switch {
	case len(pos) > 0:
		return pos[0]
	case g.profile != "":
		return g.profile
	}
	return "default"
}

func printJSON(v any) int {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Printf("%s\n", b)
	return 0
}

func cmdPolicyShow(g *globals, args []string) int {
	fs := newFlagSet("policy show")
	asJSON := fs.Bool("json", false, "print JSON")
	arch := fs.String("arch", hostcheck.HostArch(), "x86_64 or aarch64")
	names := fs.Bool("unlisted", false, "also name every unlisted syscall")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("policy show", pos, 0, 1, "[PROFILE] [--json] [--arch A] [--unlisted]")
	}
	if err != nil {
		return g.fail(err)
	}
	s, err := hostcheck.Show(profileArg(g, pos), *arch, *names)
	if err != nil {
		return g.fail(err)
	}
	if *asJSON {
		return printJSON(s)
	}
	hostcheck.WriteShow(os.Stdout, s)
	return 0
}

func cmdPolicyExplain(g *globals, args []string) int {
	fs := newFlagSet("policy explain")
	profile := fs.String("profile", profileArg(g, nil), "built-in profile name or file")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("policy explain", pos, 1, 1, "SYSCALL [--profile P]")
	}
	if err != nil {
		return g.fail(err)
	}
	text, err := hostcheck.Explain(*profile, pos[0])
	if err != nil {
		return g.fail(err)
	}
	fmt.Print(text)
	return 0
}

func cmdPolicyBPF(g *globals, args []string) int {
	fs := newFlagSet("policy bpf")
	dump := fs.Bool("dump", false, "print the disassembled program")
	arch := fs.String("arch", hostcheck.HostArch(), "x86_64 or aarch64")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("policy bpf", pos, 0, 1, "[PROFILE] [--dump] [--arch A] [--json]")
	}
	if err != nil {
		return g.fail(err)
	}
	c, err := hostcheck.BPF(profileArg(g, pos), *arch, *dump)
	if err != nil {
		return g.fail(err)
	}
	if *asJSON {
		return printJSON(c)
	}
	hostcheck.WriteBPF(os.Stdout, c)
	return 0
}

func cmdPolicyList(g *globals, args []string) int {
	fs := newFlagSet("policy list")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("policy list", pos, 0, 0, "[--json]")
	}
	if err != nil {
		return g.fail(err)
	}
	ps, err := hostcheck.Profiles()
	if err != nil {
		return g.fail(err)
	}
	if *asJSON {
		return printJSON(ps)
	}
	w := tabwriter.NewWriter(os.Stdout, 8, 1, 2, ' ', 0)
	for _, p := range ps {
		fmt.Fprintf(w, "%s\t%s\n", p.Name, p.Description)
	}
	w.Flush()
	return 0
}
