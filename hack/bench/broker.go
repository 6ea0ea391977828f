package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/zviz/zviz/tests/testutil"
)

// The broker section runs `probe bench-syscalls -net` (tests/probe/bench.go)
// natively, inside zviz with the default profile (no allow-list: nothing
// is brokered) and inside zviz with a profile whose network.allow is
// active (connect is brokered: read the sockaddr, pidfd_getfd, check,
// connect on the broker's side, answer), interleaved in rounds. The
// connect loop connects a UDP socket to 127.0.0.1 (loopback is admitted
// without a rule in the container's own network namespace, and a UDP
// connect completes at once), so the difference between the two zviz
// runs is the broker's round trip. send-udp is send(2) without an
// address, which stays a plain call under the allow-list.
//
// Knobs: BENCH_BROKER_ITERS (iterations per repetition, default 3000),
// BENCH_SYSCALL_REPS (default 7), BENCH_SYSCALL_ROUNDS (default 5).

// brokerTarget is issue 7's budget for one brokered call's round trip.
const brokerTarget = 20000.0 // ns

func brokerBench(e *env) ([]result, error) {
	iters, reps := envInt("BENCH_BROKER_ITERS", 3000), envInt("BENCH_SYSCALL_REPS", 7)
	rounds := envInt("BENCH_SYSCALL_ROUNDS", 5)
	if iters < 1 || reps < 1 || rounds < 1 {
		return nil, errors.New("BENCH_BROKER_ITERS, BENCH_SYSCALL_REPS and _ROUNDS must be at least 1")
	}
	args := []string{"/probe", "bench-syscalls", "-net", "-n", strconv.Itoa(iters), "-reps", strconv.Itoa(reps), "-file", "etc/passwd"}
	bundle := filepath.Join(e.work, "bundle-broker")
	if err := e.writeBundle(bundle, args); err != nil {
		return nil, err
	}
	prof := filepath.Join(e.work, "egress.yaml")
	if err := os.WriteFile(prof, []byte("extends: default\nnetwork:\n  mode: nat\n  allow: [\"10.0.0.0/8:443\"]\n"), 0o644); err != nil {
		return nil, err
	}
	root := filepath.Join(e.stateDir, "zviz-broker")
	run := func(name string, global ...string) probeCand {
		return probeCand{name: name, zviz: true, filtered: true, cmd: func(i int) (*exec.Cmd, error) {
			id := fmt.Sprintf("bench-%d-%s-%d", os.Getpid(), name, i+1)
			a := append(append([]string{"--root", root}, global...), "run", "--network", "none", "--bundle", bundle, id)
			cmd, err := testutil.Command(e.user, nil, e.zviz, a...)
			if cmd != nil {
				cmd.Dir = bundle
			}
			return cmd, err
		}}
	}
	cands := []probeCand{
		{name: "native", cmd: func(int) (*exec.Cmd, error) {
			cmd, err := testutil.Command(e.user, nil, filepath.Join(e.rootfs, "probe"), args[1:]...)
			if cmd != nil {
				cmd.Dir = e.rootfs
			}
			return cmd, err
		}},
		run("zviz"),
		run("zviz-allowlist", "--profile", prof),
	}
	for _, c := range cands[1:] {
		if _, err := runProbe(c, -1); err != nil { // fills the profile cache
			return nil, fmt.Errorf("preflight %s: %w", c.name, err)
		}
	}
	samples := make([]map[string][]float64, len(cands))
	var order []string
	for i := range cands {
		samples[i] = map[string][]float64{}
	}
	for r := 0; r < rounds; r++ {
		for k := range cands {
			j := (r + k) % len(cands)
			rep, err := runProbe(cands[j], r)
			if err != nil {
				return nil, err
			}
			for _, s := range rep.Syscalls {
				if j == 0 && len(samples[0][s.Name]) == 0 {
					order = append(order, s.Name)
				}
				samples[j][s.Name] = append(samples[j][s.Name], s.Median)
			}
		}
	}
	fmt.Printf("as %s (uid %d): %d rounds, interleaved; each run: %d repetitions x %d iterations\n", e.user, e.uid, rounds, reps, iters)
	return printBroker(cands, order, samples), nil
}

// printBroker prints the table and the derived numbers: the broker's round
// trip (a brokered connect minus the same connect unbrokered) against the
// target, and what unbrokered calls pay with and without an allow-list.
func printBroker(cands []probeCand, order []string, samples []map[string][]float64) []result {
	fmt.Printf("ns/op, median over rounds of each run's median\n%-13s", "")
	for _, c := range cands {
		fmt.Printf(" %15s", c.name)
	}
	fmt.Println()
	var results []result
	for _, s := range order {
		fmt.Printf("%-13s", s)
		for j, c := range cands {
			fmt.Printf(" %15.0f", median(samples[j][s]))
			results = append(results, nsResult(c.name+" "+s, samples[j][s], median(samples[j][s])))
		}
		fmt.Println()
	}
	brokered, plain := median(samples[2]["connect-udp"]), median(samples[1]["connect-udp"])
	verdict := "within"
	if brokered-plain > brokerTarget {
		verdict = "OVER"
	}
	fmt.Printf("\nbroker round trip (connect-udp, allow-list - default): %.1f µs median; target <= %.0f µs: %s\n",
		(brokered-plain)/1000, brokerTarget/1000, verdict)
	for _, s := range []string{"getpid", "read", "send-udp"} {
		fmt.Printf("%s without an allow-list: %+.0f ns vs native; with one: %+.0f ns vs without (unbrokered calls)\n",
			s, median(samples[1][s])-median(samples[0][s]), median(samples[2][s])-median(samples[1][s]))
	}
	fmt.Printf("connect-udp without an allow-list: %+.0f ns vs native (plain BPF allow: no broker)\n",
		plain-median(samples[0]["connect-udp"]))
	return results
}
