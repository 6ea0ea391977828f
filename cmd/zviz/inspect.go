package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/zviz/zviz/internal/container"
)

func init() {
	register("state", "print the OCI state of a container", cmdState)
	register("list", "list containers", cmdList)
	register("kill", "send a signal to a container", cmdKill)
	register("delete", "delete a container", cmdDelete)
}

func cmdState(g *globals, args []string) int {
	pos, err := newFlagSet("state").parse(args, true)
	if err == nil {
		err = needArgs("state", pos, 1, 1, "ID")
	}
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	st, err := container.StateOf(o, pos[0])
	if err != nil {
		return g.fail(err)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	fmt.Printf("%s\n", b)
	return 0
}

func cmdList(g *globals, args []string) int {
	fs := newFlagSet("list")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	quiet := fs.Bool("quiet", false, "ids only")
	fs.BoolVar(quiet, "q", false, "ids only")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("list", pos, 0, 0, "[--format table|json] [--quiet]")
	}
	if err == nil && *format != "table" && *format != "json" {
		err = fmt.Errorf("list: --format %q: must be table or json", *format)
	}
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	all, err := container.List(o)
	if err != nil {
		return g.fail(err)
	}
	switch {
	case *quiet:
		for _, st := range all {
			fmt.Println(st.ID)
		}
	case *format == "json":
		if all == nil {
			all = []*container.State{}
		}
		b, _ := json.Marshal(all)
		fmt.Printf("%s\n", b)
	default:
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, st := range all {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", st.ID, st.Pid, st.Status, st.Bundle,
				st.Created.Format(time.RFC3339Nano), st.Owner)
		}
		w.Flush()
	}
	return 0
}

func cmdKill(g *globals, args []string) int {
	fs := newFlagSet("kill")
	all := fs.Bool("all", false, "signal every process of the container")
	fs.BoolVar(all, "a", false, "signal every process of the container")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("kill", pos, 1, 2, "[--all] ID [SIGNAL]")
	}
	if err != nil {
		return g.fail(err)
	}
	sigName := "SIGTERM"
	if len(pos) == 2 {
		sigName = pos[1]
	}
	sig, err := container.ParseSignal(sigName)
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	if err := container.Kill(o, pos[0], sig, *all); err != nil {
		return g.fail(err)
	}
	return 0
}

func cmdDelete(g *globals, args []string) int {
	fs := newFlagSet("delete")
	force := fs.Bool("force", false, "kill a running container first")
	fs.BoolVar(force, "f", false, "kill a running container first")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("delete", pos, 1, 1, "[--force] ID")
	}
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	if err := container.Delete(o, pos[0], *force); err != nil {
		return g.fail(err)
	}
	return 0
}
