package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// The syscalls section runs `probe bench-syscalls` (tests/probe/bench.go):
// natively; natively under each of zviz's per-syscall layers alone (a
// re-executed bench binary, see policy.go, installs them and execs the
// probe): +allow-all (a one-instruction filter: the cost of being under
// seccomp at all), +seccomp (the default profile's program), +uncached (the
// same program made opaque to the kernel's verdict cache: what argument
// checks on hot syscalls would cost), +landlock and +both; and inside `zviz
// run` with the default and the hostile-tenant profiles (if zviz refuses the
// latter on this host, its seccomp program alone is measured instead). The
// same probe binary and the same file (the rootfs's etc/passwd, opened
// relative to the working directory so that the path has the same
// components everywhere), interleaved in rounds.
//
// Knobs: BENCH_SYSCALL_ITERS (iterations per repetition, default 30000),
// BENCH_SYSCALL_REPS (repetitions per run, default 7), BENCH_SYSCALL_ROUNDS
// (runs of each candidate, default 5).

// syscallTarget is issue 3's budget for an allowed syscall inside zviz.
const syscallTarget = 1.05

// probeReport is what `probe bench-syscalls` prints (tests/probe/bench.go).
type probeReport struct {
	Seccomp  string `json:"seccomp"`
	Filters  string `json:"seccomp_filters"`
	NNP      string `json:"no_new_privs"`
	Syscalls []struct {
		Name   string    `json:"name"`
		Median float64   `json:"median_ns"`
		Min    float64   `json:"min_ns"`
		Reps   []float64 `json:"reps_ns"`
	} `json:"syscalls"`
}

// probeCand is one way to run the probe; zviz says it runs in a container.
type probeCand struct {
	name     string
	zviz     bool // in a container (and so filtered)
	filtered bool // expects a seccomp filter
	cmd      func(i int) (*exec.Cmd, error)
	fallback *probeCand // measured instead when zviz refuses this one
}

// landlockNote explains the openat/stat rows; printed under the table.
const landlockNote = `openat+close pays Landlock, not seccomp (for seccomp openat is the same cached
constant ALLOW as getpid). Landlock's file_open hook checks every open(2) by
walking from the file up through its parent directories and mounts, looking
up each inode in the ruleset; since it also resolves the optional truncate
right, which a read-only tree never grants, the walk does not stop at the
read/execute rule but runs to the root of the mount tree: inside zviz the
container's root (etc/passwd, etc, /), under +landlock the host's / four
levels further up, which is why +landlock costs more than zviz here. Deeper
paths cost more. stat (newfstatat) is not a Landlock access right (no
getattr hook): what differs there is path lookup in the container's mount
namespace and the user namespace's uid/gid translation, not a policy check.`

func syscallBench(e *env) ([]result, error) {
	iters, reps := envInt("BENCH_SYSCALL_ITERS", 30000), envInt("BENCH_SYSCALL_REPS", 7)
	rounds := envInt("BENCH_SYSCALL_ROUNDS", 5)
	if iters < 1 || reps < 1 || rounds < 1 {
		return nil, errors.New("BENCH_SYSCALL_ITERS, _REPS and _ROUNDS must be at least 1")
	}
	cands, err := syscallCandidates(e, []string{"bench-syscalls", "-n", strconv.Itoa(iters),
		"-reps", strconv.Itoa(reps), "-file", "etc/passwd"})
	if err != nil {
		return nil, err
	}
	// One unmeasured run of each container first: it fills zviz's profile
	// cache, and a profile zviz refuses here drops out with a note.
	var kept []probeCand
	for _, c := range cands {
		if c.zviz {
			if _, err := runProbe(c, -1); err != nil {
				if c.name == "zviz" {
					return nil, fmt.Errorf("preflight: %w", err)
				}
				fmt.Printf("%s: skipped, zviz refuses it here: %s\n", c.name, lastLine(err))
				if c.fallback != nil {
					fmt.Printf("%s: measured instead: the profile's seccomp program alone, natively\n", c.fallback.name)
					kept = append(kept, *c.fallback)
				}
				continue
			}
		}
		kept = append(kept, c)
	}
	cands = kept
	// samples[c][s]: per run, the probe's median over its repetitions;
	// mins[c][s]: the fastest repetition of all runs.
	samples := make([]map[string][]float64, len(cands))
	mins := make([]map[string]float64, len(cands))
	var order []string
	for i := range cands {
		samples[i], mins[i] = map[string][]float64{}, map[string]float64{}
	}
	for r := 0; r < rounds; r++ {
		for k := range cands {
			j := (r + k) % len(cands)
			rep, err := runProbe(cands[j], r)
			if err != nil {
				return nil, err
			}
			if err := checkLayers(cands[j], rep); err != nil {
				return nil, err
			}
			for _, s := range rep.Syscalls {
				if len(samples[j][s.Name]) == 0 && j == 0 {
					order = append(order, s.Name)
				}
				samples[j][s.Name] = append(samples[j][s.Name], s.Median)
				if m, ok := mins[j][s.Name]; !ok || s.Min < m {
					mins[j][s.Name] = s.Min
				}
			}
		}
	}
	fmt.Printf("as %s (uid %d): %d rounds, interleaved; each run: %d repetitions x %d iterations per syscall\n",
		e.user, e.uid, rounds, reps, iters)
	fmt.Println("ns/op: median over rounds of each run's median (in brackets: the fastest repetition of all runs)")
	return printSyscalls(cands, order, samples, mins), nil
}

// syscallCandidates: native first (the reference), then the layers alone,
// then zviz (unless BENCH_ONLY leaves zviz out).
func syscallCandidates(e *env, probeArgs []string) ([]probeCand, error) {
	probe := filepath.Join(e.rootfs, "probe")
	child, err := e.childBinary()
	if err != nil {
		return nil, err
	}
	host := func(pre ...string) func(int) (*exec.Cmd, error) {
		return func(int) (*exec.Cmd, error) {
			args := append(append(pre, probe), probeArgs...)
			cmd, err := testutil.Command(e.user, nil, args[0], args[1:]...)
			if cmd != nil {
				cmd.Dir = e.rootfs // etc/passwd is the rootfs's
			}
			return cmd, err
		}
	}
	layered := func(layers, profile string) func(int) (*exec.Cmd, error) {
		return host(child, childFlag, "exec", layers, profile, e.rootfs, "--")
	}
	cands := []probeCand{
		{name: "native", cmd: host()},
		{name: "+allow-all", filtered: true, cmd: layered("allow-all", "default")},
		{name: "+seccomp", filtered: true, cmd: layered("seccomp", "default")},
		{name: "+uncached", filtered: true, cmd: layered("seccomp-uncached", "default")},
		{name: "+landlock", cmd: layered("landlock", "default")},
		{name: "+both", filtered: true, cmd: layered("seccomp+landlock", "default")},
	}
	if len(e.only) > 0 && !e.only["zviz"] {
		return cands, nil
	}
	bundle := filepath.Join(e.work, "bundle-syscalls")
	if err := e.writeBundle(bundle, append([]string{"/probe"}, probeArgs...)); err != nil {
		return nil, err
	}
	root := filepath.Join(e.stateDir, "zviz-syscalls")
	return append(cands,
		probeCand{name: "zviz", zviz: true, filtered: true, cmd: e.zvizRun(root, bundle, "sys-default", nil)},
		probeCand{name: "zviz-hostile", zviz: true, filtered: true, cmd: e.zvizRun(root, bundle, "sys-hostile", nil,
			"--profile", "hostile-tenant"),
			// Its seccomp program at least, natively, when zviz refuses
			// the profile on this host (a required layer it cannot apply).
			fallback: &probeCand{name: "+hostile-sc", filtered: true, cmd: layered("seccomp", "hostile-tenant")}},
	), nil
}

// zvizRun builds `zviz --root ROOT [global...] run --bundle BUNDLE ID` as
// the bench user, with a fresh container id per run and extra environment.
func (e *env) zvizRun(root, bundle, idPrefix string, env func(i int) []string, global ...string) func(int) (*exec.Cmd, error) {
	return func(i int) (*exec.Cmd, error) {
		id := fmt.Sprintf("bench-%d-%s-%d", os.Getpid(), idPrefix, i+1)
		args := append(append([]string{"--root", root}, global...), "run", "--bundle", bundle, id)
		var extra []string
		if env != nil {
			extra = env(i)
		}
		cmd, err := testutil.Command(e.user, extra, e.zviz, args...)
		if cmd != nil {
			cmd.Dir = bundle
		}
		return cmd, err
	}
}

// writeBundle makes a bundle that shares the busybox rootfs (root.path is
// absolute) and runs args, from the runc-style config of the cold-start
// section (written here if that section did not run).
func (e *env) writeBundle(dir string, args []string) error {
	base := filepath.Join(e.bundle, "config.json")
	if _, err := os.Stat(base); err != nil {
		if err := writeRuncConfig(e); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode %s: %w", base, err)
	}
	s.Root.Path = e.rootfs
	s.Process.Args = args
	s.Process.Cwd = "/"
	if b, err = json.MarshalIndent(&s, "", "\t"); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return err
	}
	return chownAll(e.uid, e.gid, dir)
}

// runProbe runs one candidate and decodes the probe's report.
func runProbe(c probeCand, i int) (*probeReport, error) {
	cmd, err := c.cmd(i)
	if err != nil {
		return nil, err
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %v\n%s", c.name, cmd.Args, err, stderr.Bytes())
	}
	var rep probeReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Syscalls) == 0 {
		return nil, fmt.Errorf("%s: decode probe report %q: %v (stderr: %s)", c.name, out.Bytes(), err, stderr.Bytes())
	}
	return &rep, nil
}

// checkLayers refuses to compare against a run that lacks the layer it is
// named for (a seccomp filter inside zviz, none natively).
func checkLayers(c probeCand, rep *probeReport) error {
	filtered := rep.Seccomp == "2"
	if filtered != c.filtered {
		return fmt.Errorf("%s: probe reports Seccomp: %s (filters %s), want filter mode: %v", c.name, rep.Seccomp, rep.Filters, c.filtered)
	}
	return nil
}

// printSyscalls prints the ns/op table and the ratio table, and returns
// one result per candidate and syscall (in ms, like every section).
func printSyscalls(cands []probeCand, order []string, samples []map[string][]float64, mins []map[string]float64) []result {
	fmt.Printf("%-13s", "")
	for _, c := range cands {
		fmt.Printf(" %13s", c.name)
	}
	fmt.Println()
	var results []result
	for _, s := range order {
		fmt.Printf("%-13s", s)
		for j := range cands {
			fmt.Printf(" %13s", fmt.Sprintf("%.0f [%.0f]", median(samples[j][s]), mins[j][s]))
			results = append(results, nsResult(cands[j].name+" "+s, samples[j][s], mins[j][s]))
		}
		fmt.Println()
	}
	printRatios(cands, order, samples, mins)
	printAttribution(cands, order, mins)
	return results
}

// printAttribution splits the cost by layer from the fastest repetitions
// (the least disturbed by other load on the machine), in ns per call:
// seccomp's entry (any filter: +allow-all - native), what the profile's
// program adds to that (+seccomp - +allow-all: ~0 when the kernel's
// verdict cache answers), what running the program would cost
// (+uncached - +seccomp), Landlock (+landlock - native), and what zviz adds
// beyond both layers (zviz - +both: namespaces, the container's mounts).
func printAttribution(cands []probeCand, order []string, mins []map[string]float64) {
	idx := map[string]int{}
	for i, c := range cands {
		idx[c.name] = i
	}
	cols := []struct{ title, a, b string }{
		{"seccomp entry", "+allow-all", "native"},
		{"profile", "+seccomp", "+allow-all"},
		{"if uncached", "+uncached", "+seccomp"},
		{"landlock", "+landlock", "native"},
		{"zviz - both", "zviz", "+both"},
		{"zviz total", "zviz", "native"},
	}
	fmt.Println("\nwhere the time goes, ns per call, from the fastest repetitions:")
	fmt.Printf("%-13s", "")
	for _, c := range cols {
		fmt.Printf(" %13s", c.title)
	}
	fmt.Println()
	for _, s := range order {
		fmt.Printf("%-13s", s)
		for _, c := range cols {
			a, okA := idx[c.a]
			b, okB := idx[c.b]
			if !okA || !okB {
				fmt.Printf(" %13s", "-")
				continue
			}
			fmt.Printf(" %+13.0f", mins[a][s]-mins[b][s])
		}
		fmt.Println()
	}
}

// printRatios prints each candidate's ratio to native, flags those over
// the target and sums up zviz against the target.
func printRatios(cands []probeCand, order []string, samples []map[string][]float64, mins []map[string]float64) {
	fmt.Printf("\nratio to native: median [fastest]; ! marks a median over %.2fx\n", syscallTarget)
	fmt.Printf("%-13s", "")
	for _, c := range cands[1:] {
		fmt.Printf(" %14s", c.name)
	}
	fmt.Printf(" %8s\n", "spread")
	var over []string
	for _, s := range order {
		fmt.Printf("%-13s", s)
		base, baseMin := median(samples[0][s]), mins[0][s]
		for j := 1; j < len(cands); j++ {
			r := median(samples[j][s]) / base
			flag := " "
			if r > syscallTarget {
				flag = "!"
				if cands[j].zviz {
					over = append(over, fmt.Sprintf("%s %s %.2fx", cands[j].name, s, r))
				}
			}
			fmt.Printf(" %14s", fmt.Sprintf("%.2f%s [%.2f]", r, flag, mins[j][s]/baseMin))
		}
		fmt.Printf(" %7.1f%%\n", spread(samples[0][s]))
	}
	fmt.Println("spread: (slowest - fastest) / median of the native runs' medians, the noise floor of the medians")
	if len(over) == 0 {
		fmt.Printf("target <= %.2fx native: met by every syscall inside zviz\n", syscallTarget)
	} else {
		fmt.Printf("over the %.2fx target inside zviz (medians): %s\n", syscallTarget, strings.Join(over, ", "))
	}
	fmt.Println(landlockNote)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return quantile(s, 0.5)
}

func spread(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return 100 * (s[len(s)-1] - s[0]) / quantile(s, 0.5)
}

// nsResult is a result for per-run values in ns (converted to ms).
func nsResult(name string, ns []float64, minNS float64) result {
	s := append([]float64(nil), ns...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return result{Name: name, N: len(s), Median: quantile(s, 0.5) / 1e6, P90: quantile(s, 0.9) / 1e6,
		Min: minNS / 1e6, Mean: sum / float64(len(s)) / 1e6}
}
