package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/internal/container"
)

func init() {
	register("pause", "freeze every process of a container", cmdPause)
	register("resume", "thaw a paused container", cmdResume)
	register("ps", "list the processes of a container", cmdPs)
	register("update", "change the resource limits of a running container", cmdUpdate)
}

func cmdPause(g *globals, args []string) int  { return oneID(g, "pause", args, container.Pause) }
func cmdResume(g *globals, args []string) int { return oneID(g, "resume", args, container.Resume) }

func oneID(g *globals, verb string, args []string, f func(*container.Options, string) error) int {
	pos, err := newFlagSet(verb).parse(args, true)
	if err == nil {
		err = needArgs(verb, pos, 1, 1, "ID")
	}
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	if err := f(o, pos[0]); err != nil {
		return g.fail(err)
	}
	return 0
}

// cmdPs is runc's ps: --format json prints the pids, table runs ps(1)
// (with the arguments after the id, -ef by default) and keeps the header
// and the container's lines.
func cmdPs(g *globals, args []string) int {
	fs := newFlagSet("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	pos, err := fs.parse(args, false)
	if err == nil {
		err = needArgs("ps", pos, 1, -1, "[--format table|json] ID [PS_ARGS...]")
	}
	if err == nil && *format != "table" && *format != "json" {
		err = fmt.Errorf("ps: --format %q: must be table or json", *format)
	}
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	pids, err := container.Pids(o, pos[0])
	if err != nil {
		return g.fail(err)
	}
	if *format == "json" {
		if pids == nil {
			pids = []int{}
		}
		b, _ := json.Marshal(pids)
		fmt.Printf("%s\n", b)
		return 0
	}
	psArgs := pos[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return g.fail(fmt.Errorf("ps: run ps %s: %w", strings.Join(psArgs, " "), err))
	}
	if err := filterPs(os.Stdout, out, pids); err != nil {
		return g.fail(err)
	}
	return 0
}

// filterPs writes ps(1)'s header and the lines whose PID column is one of
// pids.
func filterPs(w io.Writer, out []byte, pids []int) error {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		return fmt.Errorf("ps: the output has no PID column (header %q)", lines[0])
	}
	fmt.Fprintln(w, lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if pid, err := strconv.Atoi(f[col]); err == nil && slices.Contains(pids, pid) {
			fmt.Fprintln(w, l)
		}
	}
	return nil
}

// cmdUpdate is runc's update: --resources FILE (a linux.resources JSON
// document, "-" for stdin), or the common limits as flags.
func cmdUpdate(g *globals, args []string) int {
	fs := newFlagSet("update")
	file := fs.String("resources", "", "linux.resources as JSON (- for stdin)")
	fs.StringVar(file, "r", "", "linux.resources as JSON (- for stdin)")
	memory := fs.String("memory", "", "memory limit (bytes, or with k, m, g)")
	swap := fs.String("memory-swap", "", "memory plus swap limit (-1: unlimited)")
	pids := fs.String("pids-limit", "", "maximum number of processes")
	quota := fs.String("cpu-quota", "", "CPU time per period, µs (-1: unlimited)")
	period := fs.String("cpu-period", "", "CPU period, µs")
	shares := fs.String("cpu-share", "", "CPU shares (converted to cpu.weight)")
	pos, err := fs.parse(args, true)
	if err == nil {
		err = needArgs("update", pos, 1, 1, "[--resources FILE | limit flags] ID")
	}
	if err != nil {
		return g.fail(err)
	}
	var res *specs.LinuxResources
	if *file != "" {
		res, err = readResources(*file)
	} else {
		res, err = flagResources(*memory, *swap, *pids, *quota, *period, *shares)
	}
	if err != nil {
		return g.fail(err)
	}
	o, err := g.options()
	if err != nil {
		return g.fail(err)
	}
	if err := container.Update(o, pos[0], res); err != nil {
		return g.fail(err)
	}
	return 0
}

func readResources(file string) (*specs.LinuxResources, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("update: --resources %s: %w", file, err)
	}
	var r specs.LinuxResources
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("update: --resources %s: %w", file, err)
	}
	return &r, nil
}

func flagResources(memory, swap, pids, quota, period, shares string) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	num := func(flag, v string, bytes bool) (*int64, error) {
		if v == "" {
			return nil, nil
		}
		n, err := parseSize(v, bytes)
		if err != nil {
			return nil, fmt.Errorf("update: --%s %q: %w", flag, v, err)
		}
		return &n, nil
	}
	var err error
	var mem, sw, p, q, per, sh *int64
	for _, f := range []struct {
		flag, v string
		bytes   bool
		dst     **int64
	}{{"memory", memory, true, &mem}, {"memory-swap", swap, true, &sw}, {"pids-limit", pids, false, &p},
		{"cpu-quota", quota, false, &q}, {"cpu-period", period, false, &per}, {"cpu-share", shares, false, &sh}} {
		if *f.dst, err = num(f.flag, f.v, f.bytes); err != nil {
			return nil, err
		}
	}
	if mem != nil || sw != nil {
		r.Memory = &specs.LinuxMemory{Limit: mem, Swap: sw}
	}
	if p != nil {
		r.Pids = &specs.LinuxPids{Limit: p}
	}
	if q != nil || per != nil || sh != nil {
		r.CPU = &specs.LinuxCPU{Quota: q}
		if per != nil {
			v := uint64(*per)
			r.CPU.Period = &v
		}
		if sh != nil {
			v := uint64(*sh)
			r.CPU.Shares = &v
		}
	}
	if r.Memory == nil && r.Pids == nil && r.CPU == nil {
		return nil, fmt.Errorf("update: nothing to change: give --resources FILE or a limit flag")
	}
	return r, nil
}

// parseSize reads a number, -1 for unlimited, and with bytes a k, m or g
// suffix (powers of 1024, as runc and docker take them).
func parseSize(v string, bytes bool) (int64, error) {
	if v == "-1" {
		return -1, nil
	}
	mult := int64(1)
	if bytes && v != "" {
		switch strings.ToLower(v[len(v)-1:]) {
		case "k":
			mult = 1 << 10
		case "m":
			mult = 1 << 20
		case "g":
			mult = 1 << 30
		}
		if mult > 1 {
			v = strings.TrimSuffix(strings.TrimSuffix(v, v[len(v)-1:]), "b")
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a non-negative number")
	}
	return n * mult, nil
}
