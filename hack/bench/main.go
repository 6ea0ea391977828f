// Command bench measures zviz against runc, bubblewrap and a bare exec on
// this machine (run by hack/bench.sh, `make bench`; not a test). Each
// section is one benchmark; add new ones to the sections table.
//
// As root it runs every measured command as the unprivileged test user
// (-user, default zviztest); otherwise as the calling user.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zviz/zviz/tests/testutil"
)

// section is one benchmark: it prints its own table and returns results
// for the JSON report.
type section struct {
	name, desc string
	run        func(e *env) ([]result, error)
}

var sections = []section{
	{"cold-start", "run /bin/true in the busybox bundle, cold, a fresh container id each time", coldStart},
	{"syscalls", "per-syscall latency of the same probe natively, under each layer alone, and inside zviz", syscallBench},
	{"policy", "profile load/compile, Landlock and seccomp install times, and their effect on cold start", policyBench},
	{"systemd-cgroup", "cold start with --systemd-cgroup (a scope from a real systemd --user over D-Bus) against a cgroupfs cgroup", systemdCgroupBench},
	{"broker", "one brokered connect against the same connect unbrokered, and what unbrokered calls pay", brokerBench},
	{"ns-join", "cold start of a config that joins a user and a pid namespace by path against one that makes them", nsJoinBench},
	{"podman", "podman run --rm IMG /bin/true with zviz as the runtime against runc, interleaved", podmanBench},
}

// env is what sections share: the scratch directory, the bundle, the user
// commands run as, and the options.
type env struct {
	work, bundle, rootfs string
	stateDir             string // writable by the user: --root directories go here
	zviz                 string // the binary, readable by the user
	user                 string
	uid, gid             int
	n, warmup            int
	only                 map[string]bool // candidate names to run; empty: all
}

func main() {
	var (
		n        = flag.Int("n", envInt("BENCH_N", 50), "measured iterations per candidate (env BENCH_N)")
		warmup   = flag.Int("warmup", 3, "unmeasured iterations first")
		only     = flag.String("only", os.Getenv("BENCH_ONLY"), "comma-separated candidates to run, e.g. runc,bwrap,native (env BENCH_ONLY)")
		secs     = flag.String("sections", os.Getenv("BENCH_SECTIONS"), "comma-separated sections (default all; env BENCH_SECTIONS)")
		zvizBin  = flag.String("zviz", "bin/zviz", "zviz binary")
		probeBin = flag.String("probe", "", "static probe binary to put at /probe in the bundle")
		userName = flag.String("user", "", "user to measure as (default: zviztest as root, else yourself)")
		jsonOut  = flag.String("json", "", "also write the results as JSON to this file")
	)
	flag.Parse()
	if *sessionChild {
		if err := sessionMain(*zvizBin, *jsonOut, *secs, *n, *warmup); err != nil {
			fail(err)
		}
		return
	}
	if *n < 1 {
		fail(fmt.Errorf("-n must be at least 1"))
	}
	e, err := setup(*zvizBin, *probeBin, *userName)
	defer e.cleanup()
	if err != nil {
		e.cleanup()
		fail(err)
	}
	e.n, e.warmup, e.only = *n, *warmup, set(*only)
	want := set(*secs)
	report := map[string][]result{}
	for _, s := range sections {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		fmt.Printf("\n== %s: %s\n", s.name, s.desc)
		res, err := s.run(e)
		if err != nil {
			e.cleanup()
			fail(fmt.Errorf("%s: %w", s.name, err))
		}
		report[s.name] = res
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			e.cleanup()
			fail(err)
		}
	}
}

// cleanup removes the scratch and state directories.
func (e *env) cleanup() {
	for _, d := range []string{e.work, e.stateDir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	os.Exit(1)
}

// setup makes a scratch directory the user can reach, with a copy of zviz
// and a busybox bundle owned by the user.
func setup(zvizBin, probeBin, userName string) (*env, error) {
	if userName == "" {
		userName = "root"
		if os.Geteuid() == 0 {
			userName = testutil.TestUser
		} else if u, err := user.Current(); err == nil {
			userName = u.Username
		}
	}
	u, err := user.Lookup(userName)
	e := &env{user: userName}
	if err != nil {
		return e, fmt.Errorf("user %s: %w (run hack/setup.sh as root)", userName, err)
	}
	e.uid, _ = strconv.Atoi(u.Uid)
	e.gid, _ = strconv.Atoi(u.Gid)
	if e.work, err = os.MkdirTemp("", "zviz-bench-"); err != nil {
		return nil, err
	}
	e.bundle = filepath.Join(e.work, "bundle")
	e.rootfs = filepath.Join(e.bundle, "rootfs")
	e.stateDir = filepath.Join(e.work, "state")
	if e.uid != 0 {
		// runc and zviz keep rootless state under XDG_RUNTIME_DIR (a tmpfs).
		e.stateDir = filepath.Join("/run/user", u.Uid, filepath.Base(e.work))
	}
	for _, d := range []string{e.bundle, e.stateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return e, err
		}
	}
	if err := testutil.WriteRootfs(e.rootfs, probeBin, testutil.DefaultApplets); err != nil {
		return e, err
	}
	if err := os.Chmod(e.work, 0o755); err != nil {
		return e, err
	}
	// A missing zviz fails only the zviz candidates (BENCH_ONLY may skip them).
	e.zviz = filepath.Join(e.work, "zviz")
	if b, err := os.ReadFile(zvizBin); err == nil {
		if err := os.WriteFile(e.zviz, b, 0o755); err != nil {
			return e, err
		}
		if err := os.Chmod(e.zviz, 0o755); err != nil {
			return e, err
		}
	}
	return e, chownAll(e.uid, e.gid, e.bundle, e.stateDir)
}

func chownAll(uid, gid int, dirs ...string) error {
	for _, d := range dirs {
		err := filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("chown %s: %w", d, err)
		}
	}
	return nil
}

func set(list string) map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			m[s] = true
		}
	}
	return m
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
