package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// candidate is one way to run /bin/true; cmd(i) builds the i-th run.
type candidate struct {
	name string
	cmd  func(i int) (*exec.Cmd, error)
	hint string // printed when the preflight run fails
}

// coldStart times /bin/true: bare, under bwrap, runc and zviz, interleaved
// (one run of each in turn, rotating the order) so drift hits all alike.
func coldStart(e *env) ([]result, error) {
	if err := writeRuncConfig(e); err != nil {
		return nil, err
	}
	runcRoot := filepath.Join(e.stateDir, "runc")
	zvizRoot := filepath.Join(e.stateDir, "zviz")
	all := []candidate{
		{name: "native", cmd: e.command("/bin/true")},
		{name: "bwrap", cmd: e.command("bwrap", "--unshare-all", "--bind", e.rootfs, "/",
			"--proc", "/proc", "--dev", "/dev", "/bin/true")},
		{name: "runc", cmd: e.containerCommand("runc", "--root", runcRoot, "run", "--bundle", e.bundle)},
		{name: "zviz", cmd: e.containerCommand(e.zviz, "--root", zvizRoot, "run", "--bundle", e.bundle),
			hint: "zviz run does not work yet? Measure the others with BENCH_ONLY=native,bwrap,runc"},
	}
	var cands []candidate
	for _, c := range all {
		if len(e.only) == 0 || e.only[c.name] {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil, errors.New("no candidate selected (BENCH_ONLY names: native, bwrap, runc, zviz)")
	}
	for _, c := range cands {
		if _, err := timeRun(c, -1); err != nil {
			msg := fmt.Sprintf("%s: preflight run failed: %v", c.name, err)
			if c.hint != "" {
				msg += "\n" + c.hint
			}
			return nil, errors.New(msg)
		}
	}
	results, err := interleaved(e, cands)
	if err != nil {
		return nil, err
	}
	printRatio(results, "zviz", "runc")
	printRatio(results, "zviz", "bwrap")
	return results, nil
}

// interleaved times e.warmup+e.n runs of each candidate, one of each in
// turn with the order rotating (so drift hits all alike), and prints the
// table of the measured ones.
func interleaved(e *env, cands []candidate) ([]result, error) {
	samples := make([][]time.Duration, len(cands))
	for i := 0; i < e.warmup+e.n; i++ {
		for k := range cands {
			j := (i + k) % len(cands)
			d, err := timeRun(cands[j], i)
			if err != nil {
				return nil, fmt.Errorf("%s run %d: %w", cands[j].name, i, err)
			}
			if i >= e.warmup {
				samples[j] = append(samples[j], d)
			}
		}
	}
	fmt.Printf("as %s (uid %d), N=%d after %d warm-up runs, interleaved\n", e.user, e.uid, e.n, e.warmup)
	var results []result
	for j, c := range cands {
		results = append(results, summarize(c.name, samples[j]))
	}
	printTable(results)
	return results, nil
}

// command runs name as the bench user.
func (e *env) command(name string, args ...string) func(int) (*exec.Cmd, error) {
	return func(int) (*exec.Cmd, error) { return testutil.Command(e.user, nil, name, args...) }
}

// containerCommand runs a runc-style `run` with a fresh container id.
func (e *env) containerCommand(name string, args ...string) func(int) (*exec.Cmd, error) {
	return func(i int) (*exec.Cmd, error) {
		id := "bench-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(i+1)
		cmd, err := testutil.Command(e.user, nil, name, append(args, id)...)
		if cmd != nil {
			cmd.Dir = e.bundle
		}
		return cmd, err
	}
}

// timeRun runs c once and returns its wall time; stderr is kept for errors.
func timeRun(c candidate, i int) (time.Duration, error) {
	cmd, err := c.cmd(i)
	if err != nil {
		return 0, err
	}
	errf, err := os.CreateTemp("", "zviz-bench-stderr-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	cmd.Stderr = errf
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		msg, _ := os.ReadFile(errf.Name())
		return 0, fmt.Errorf("%v: %v\n%s", cmd.Args, err, msg)
	}
	return d, nil
}

// writeRuncConfig makes config.json with `runc spec` (--rootless for a
// non-root user), run as the bench user, then sets args to /bin/true
// without a terminal. zviz runs the same bundle.
func writeRuncConfig(e *env) error {
	args := []string{"spec", "--bundle", e.bundle}
	if e.uid != 0 {
		args = append(args, "--rootless")
	}
	cmd, err := testutil.Command(e.user, nil, "runc", args...)
	if err != nil {
		return err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %v: %s", err, out)
	}
	path := filepath.Join(e.bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"/bin/true"}
	if b, err = json.MarshalIndent(&s, "", "\t"); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
