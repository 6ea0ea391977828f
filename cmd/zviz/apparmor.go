package main

import (
	"fmt"
	"os"

	"github.com/zviz/zviz/apparmor"
)

func init() {
	register("apparmor", "install the AppArmor profile granting zviz user namespaces, or show its status (install|status)", cmdAppArmor)
}

const appArmorUsage = "install [--path BIN] [--dry-run] | status [--json]"

func cmdAppArmor(g *globals, args []string) int {
	if len(args) == 0 {
		return g.fail(fmt.Errorf("apparmor: usage: zviz apparmor %s", appArmorUsage))
	}
	switch args[0] {
	case "install":
		return cmdAppArmorInstall(g, args[1:])
	case "status":
		return cmdAppArmorStatus(g, args[1:])
	}
	return g.fail(fmt.Errorf("apparmor: unknown subcommand %q (one of: install, status)", args[0]))
}

// cmdAppArmorInstall writes /etc/apparmor.d/zviz and loads it. With
// --dry-run the profile goes to stdout (so it can be redirected into a
// file) and where it would go to stderr. Exit 0 when the profile is in
// place and, if the kernel has AppArmor, loaded.
func cmdAppArmorInstall(g *globals, args []string) int {
	fs := newFlagSet("apparmor install")
	bin := fs.String("path", apparmor.DefaultBinary, "the zviz binary the profile attaches to")
	dry := fs.Bool("dry-run", false, "print the profile and where it would go; change nothing")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("apparmor install", pos, 0, 0, "[--path BIN] [--dry-run]")
	}
	if err != nil {
		return g.fail(err)
	}
	host := apparmor.DefaultHost()
	plan, err := host.Prepare(*bin)
	if err != nil {
		return g.fail(fmt.Errorf("apparmor install: %w", err))
	}
	if *dry {
		os.Stdout.Write(plan.Profile)
		fmt.Fprintf(os.Stderr, "zviz: apparmor install --dry-run: would write the profile above to %s (mode 0644) "+
			"and load it with apparmor_parser -r; nothing changed\n", plan.File)
		return 0
	}
	res, err := host.Install(plan)
	if err != nil {
		return g.fail(fmt.Errorf("apparmor install: %w", err))
	}
	switch {
	case res.Loaded:
		fmt.Printf("installed %s and loaded it (%s -r): zviz at %s may now create user namespaces\n",
			res.File, res.Parser, plan.Binary)
	case res.KernelOff:
		fmt.Printf("installed %s; not loaded: %s. Nothing restricts user namespaces here; "+
			"the profile is loaded at boot once AppArmor is enabled\n", res.File, res.NotLoaded)
	default:
		return g.fail(fmt.Errorf("apparmor install: installed %s but did not load it: %s", res.File, res.NotLoaded))
	}
	return 0
}

// cmdAppArmorStatus prints one "item: detail" line per fact (see
// apparmor.State.Report); it exits 0 whatever it finds.
func cmdAppArmorStatus(g *globals, args []string) int {
	fs := newFlagSet("apparmor status")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("apparmor status", pos, 0, 0, "[--json]")
	}
	if err != nil {
		return g.fail(err)
	}
	exe, _ := os.Executable() // "" (unknown) without /proc
	st := apparmor.DefaultHost().Status(exe)
	if *asJSON {
		return printJSON(st)
	}
	for _, l := range st.Report() {
		fmt.Println(l)
	}
	return 0
}
