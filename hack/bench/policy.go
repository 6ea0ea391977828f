package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/landlock"
	"github.com/zviz/zviz/seccomp"
	"github.com/zviz/zviz/tests/testutil"
)

// The policy section times the pieces of zviz's policy stack: loading
// and compiling a profile (as `zviz run` does in the parent), and applying
// Landlock and installing the seccomp program (as the init does). The
// installing half runs in a re-executed copy of this binary (childFlag),
// as the bench user, one fresh process per sample: a filter or a Landlock
// domain cannot be taken off again, and the bench process must stay free
// of both. Then it times `zviz run /bin/true` under three profiles, with the
// cache warm and cold, since zviz has no mode without its layers.

// childFlag, as the first argument, turns this binary into the child:
//
//	bench -zviz-bench-child policy CACHEDIR
//	    time Load, Compile, CompileCached, landlock.Apply and Install;
//	    print policyTimes as JSON
//	bench -zviz-bench-child exec LAYERS PROFILE ROOT -- PROG ARGS...
//	    apply LAYERS (seccomp, landlock or seccomp+landlock: PROFILE's
//	    program; read/execute beneath ROOT; or allow-all: a one-instruction
//	    filter; or seccomp-uncached: PROFILE's program made opaque to the
//	    kernel's verdict cache) to this thread, then exec PROG
const childFlag = "-zviz-bench-child"

func init() {
	if len(os.Args) > 2 && os.Args[1] == childFlag {
		runtime.LockOSThread() // init runs on the main thread; keep it
		var err error
		switch os.Args[2] {
		case "policy":
			err = policyChild(os.Args[3:])
		case "exec":
			err = execChild(os.Args[3:])
		default:
			err = fmt.Errorf("unknown child mode %q", os.Args[2])
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench child: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// policyTimes is one child's sample, in µs.
type policyTimes struct {
	LoadCold     float64 `json:"load_cold_us"`     // first Load("default") in a fresh process
	LoadAgain    float64 `json:"load_again_us"`    // the same, again (still no cache: Load parses every time)
	CachedDisk   float64 `json:"cached_disk_us"`   // CompileCached: a hit on disk, memory cache empty
	CompileCold  float64 `json:"compile_cold_us"`  // first Compile in the process
	CompileAgain float64 `json:"compile_again_us"` // Compile again
	Landlock     float64 `json:"landlock_us"`      // landlock.Apply, typical rules
	Install      float64 `json:"install_us"`       // seccomp.Install, default profile
	InstallRaw   float64 `json:"install_raw_us"`   // seccomp(2) alone, the same program stacked
	DiskHit      bool    `json:"disk_hit"`
	Instructions int     `json:"instructions"`
	LandlockABI  int     `json:"landlock_abi"`
}

func policyChild(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("policy: want CACHEDIR")
	}
	dir := args[0]
	us := func(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) / 1e3 }
	var pt policyTimes
	t := time.Now()
	p, err := seccomp.Load("default")
	pt.LoadCold = us(t)
	if err != nil {
		return err
	}
	t = time.Now()
	_, _ = seccomp.Load("default")
	pt.LoadAgain = us(t)
	ents, _ := os.ReadDir(dir)
	pt.DiskHit = len(ents) > 0
	t = time.Now()
	prog, err := seccomp.CompileCached(p, runtime.GOARCH, dir)
	pt.CachedDisk = us(t)
	if err != nil {
		return err
	}
	t = time.Now()
	_, err = seccomp.Compile(p, runtime.GOARCH)
	pt.CompileCold = us(t)
	if err != nil {
		return err
	}
	t = time.Now()
	_, _ = seccomp.Compile(p, runtime.GOARCH)
	pt.CompileAgain = us(t)
	pt.Instructions = prog.Instructions

	// The init's order: Landlock, no_new_privs, seccomp. no_new_privs
	// first here so that neither timing includes it.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	t = time.Now()
	rep, err := landlock.Apply(typicalRules("/"), false)
	pt.Landlock = us(t)
	if err != nil {
		return err
	}
	pt.LandlockABI = rep.Applied
	t = time.Now()
	_, err = seccomp.Install(prog, 0)
	pt.Install = us(t)
	if err != nil {
		return err
	}
	// The kernel's share: the same program once more, straight through
	// seccomp(2), stacked on the first (the child exits right after).
	insns := make([]unix.SockFilter, len(prog.BPF)/8)
	for i := range insns {
		b := prog.BPF[i*8:]
		insns[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	fprog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	t = time.Now()
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	pt.InstallRaw = us(t)
	runtime.KeepAlive(insns)
	if e != 0 {
		return fmt.Errorf("seccomp(2) again: %w", e)
	}
	return json.NewEncoder(os.Stdout).Encode(pt)
}

// typicalRules is what zviz derives for the busybox bundle (read-only
// root, internal/container's landlockRules), with root as the root.
func typicalRules(root string) *landlock.Rules {
	r := &landlock.Rules{ReadExec: []string{root}, Scope: true}
	for _, d := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
		"/dev/tty", "/dev/ptmx", "/dev/pts", "/dev/console", "/dev/shm", "/dev/mqueue"} {
		if _, err := os.Stat(d); err == nil {
			r.Writable = append(r.Writable, d)
		}
	}
	return r
}

// execChild applies the layers and execs the program from this thread.
func execChild(args []string) error {
	if len(args) < 5 || args[3] != "--" {
		return fmt.Errorf("exec: want LAYERS PROFILE ROOT -- PROG ARGS, have %q", args)
	}
	layers, profile, root, argv := args[0], args[1], args[2], args[4:]
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	if layers == "landlock" || layers == "seccomp+landlock" {
		r := typicalRules(root)
		r.ReadOnly = []string{"/proc"} // the probe reads /proc/self/status; in the container / covers it
		if _, err := landlock.Apply(r, true); err != nil {
			return err
		}
	}
	if layers == "allow-all" {
		// The floor of any seccomp filter: one RET_ALLOW instruction,
		// which the kernel's verdict cache also answers without running it.
		insns := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
		fprog := unix.SockFprog{Len: 1, Filter: &insns[0]}
		if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
			return fmt.Errorf("install allow-all filter: %w", e)
		}
		runtime.KeepAlive(insns)
	}
	if layers == "seccomp" || layers == "seccomp+landlock" || layers == "seccomp-uncached" {
		p, err := seccomp.Load(profile)
		if err != nil {
			return err
		}
		prog, err := seccomp.Compile(p, runtime.GOARCH)
		if err != nil {
			return err
		}
		if layers == "seccomp-uncached" {
			// The same program behind one load of seccomp_data's
			// instruction pointer, which the next instruction (ld arch)
			// overwrites: the verdicts are unchanged, but the kernel's
			// verdict cache cannot prove any syscall constant-allow any
			// more, so the whole program runs on every call, as it would
			// if the hot syscalls carried argument checks.
			ldIP := make([]byte, 8)
			binary.NativeEndian.PutUint16(ldIP[0:], unix.BPF_LD|unix.BPF_W|unix.BPF_ABS)
			binary.NativeEndian.PutUint32(ldIP[4:], 8) // offsetof(struct seccomp_data, instruction_pointer)
			prog.BPF = append(ldIP, prog.BPF...)
		}
		if _, err := seccomp.Install(prog, 0); err != nil {
			return err
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return unix.Exec(path, argv, os.Environ())
}

// childBinary copies this binary where the bench user can run it.
func (e *env) childBinary() (string, error) {
	dst := filepath.Join(e.work, "bench-child")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		return "", err
	}
	return dst, os.Chmod(dst, 0o755)
}

func policyBench(e *env) ([]result, error) {
	res, err := policyComponents(e)
	if err != nil {
		return nil, err
	}
	if len(e.only) > 0 && !e.only["zviz"] {
		return res, nil
	}
	ms := map[string]float64{}
	for _, r := range res {
		ms[r.Name] = r.Median
	}
	cs, err := policyColdStart(e)
	if err != nil {
		return nil, err
	}
	med := map[string]float64{}
	for _, r := range cs {
		med[r.Name] = r.Median
	}
	init, parent := ms["policy landlock"]+ms["policy install"], ms["policy load"]+ms["policy compile"]
	fmt.Printf("policy share: the init's landlock.Apply + Install = %.2f ms of default's %.2f ms median (%.1f%%);\n",
		init, med["default"], 100*init/med["default"])
	fmt.Printf("without a cache the parent adds Load + Compile = %.2f ms (measured: default-nocache - default = %.2f ms)\n",
		parent, med["default-nocache"]-med["default"])
	for i := range cs {
		cs[i].Name = "cold-start " + cs[i].Name
	}
	return append(res, cs...), nil
}

// policyComponents runs warmup+n children, interleaved with nothing (each
// is its own fresh process), and prints medians in µs.
func policyComponents(e *env) ([]result, error) {
	child, err := e.childBinary()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.stateDir, "policy-cache") // created by the first child, as the user
	var samples []policyTimes
	warmup := max(e.warmup, 1) // the first child fills the disk cache
	for i := 0; i < warmup+e.n; i++ {
		cmd, err := testutil.Command(e.user, nil, child, childFlag, "policy", dir)
		if err != nil {
			return nil, err
		}
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("policy child: %v\n%s", err, stderr.Bytes())
		}
		var pt policyTimes
		if err := json.Unmarshal(out.Bytes(), &pt); err != nil {
			return nil, fmt.Errorf("policy child: decode %q: %w", out.Bytes(), err)
		}
		if i >= warmup {
			if !pt.DiskHit {
				return nil, fmt.Errorf("policy child: the cache in %s was empty after the warm-up", dir)
			}
			samples = append(samples, pt)
		}
	}
	last := samples[len(samples)-1]
	fmt.Printf("as %s, default profile, %s; N=%d fresh processes after %d warm-up\n", e.user, runtime.GOARCH, e.n, warmup)
	fmt.Printf("Landlock ABI applied: %d; BPF instructions:", last.LandlockABI)
	for _, name := range []string{"default", "development", "hostile-tenant"} {
		// Compiling is pure: it may run here, unlike Install.
		p, err := seccomp.Load(name)
		if err != nil {
			return nil, err
		}
		prog, err := seccomp.Compile(p, runtime.GOARCH)
		if err != nil {
			return nil, err
		}
		fmt.Printf(" %s %d", name, prog.Instructions)
	}
	fmt.Println()
	rows := []struct {
		name, desc string
		get        func(policyTimes) float64
	}{
		{"load", "seccomp.Load(\"default\"), first call in a fresh process (parse + validate the embedded YAML)", func(p policyTimes) float64 { return p.LoadCold }},
		{"load-again", "seccomp.Load(\"default\") again in the same process (Load has no cache)", func(p policyTimes) float64 { return p.LoadAgain }},
		{"compile", "seccomp.Compile(default, " + runtime.GOARCH + "), first call in the process (libseccomp)", func(p policyTimes) float64 { return p.CompileCold }},
		{"compile-again", "seccomp.Compile again in the same process", func(p policyTimes) float64 { return p.CompileAgain }},
		{"cached-disk", "seccomp.CompileCached: hit on disk, memory cache empty", func(p policyTimes) float64 { return p.CachedDisk }},
		{"landlock", "landlock.Apply, rules as for the busybox bundle (ro root, 11 /dev paths, scoping)", func(p policyTimes) float64 { return p.Landlock }},
		{"install", "seccomp.Install(default program), after no_new_privs", func(p policyTimes) float64 { return p.Install }},
		{"install-raw", "seccomp(2) alone, the same program again (stacked): the kernel's share of install", func(p policyTimes) float64 { return p.InstallRaw }},
	}
	fmt.Printf("%-14s %9s %9s %9s  %s\n", "", "median µs", "p90 µs", "min µs", "")
	var results []result
	for _, r := range rows {
		xs := make([]float64, len(samples))
		for i, s := range samples {
			xs[i] = r.get(s)
		}
		sort.Float64s(xs)
		fmt.Printf("%-14s %9.1f %9.1f %9.1f  %s\n", r.name, quantile(xs, 0.5), quantile(xs, 0.9), xs[0], r.desc)
		res := nsResult("policy "+r.name, xs, xs[0]) // µs in, scale to ms below
		res.Median, res.P90, res.Min, res.Mean = res.Median*1e3, res.P90*1e3, res.Min*1e3, res.Mean*1e3
		results = append(results, res)
	}
	return results, nil
}

const coldStartNote = `zviz has no mode without its layers (by design: nothing ever disables one),
so there is no "zviz without policy" run to subtract: the policy's share of a
cold start is the component costs above. With a warm cache the parent reads
its cached profile and program (no Load, no Compile) and the init pays
landlock.Apply + Install; without a cache the parent also pays
Load + Compile (+ writing the cache), once per profile, user and boot (the cache is in the runtime directory). Profiles
differ by their program and their other settings (hostile-tenant: no
network, read-only root, cgroup limits), which is what their rows show.`

// policyColdStart times `zviz run /bin/true` under the default profile,
// development (the fewest denials) and hostile-tenant, with the cache
// warm, and default with a cold cache (a fresh state directory, so a fresh
// cache beside it, each run: Load + Compile in the parent), interleaved.
func policyColdStart(e *env) ([]result, error) {
	if _, err := os.Stat(filepath.Join(e.bundle, "config.json")); err != nil {
		if err := writeRuncConfig(e); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(e.stateDir, "zviz-policy")
	// zviz keeps its cache beside the state directory: a fresh --root
	// parent each run means an empty cache.
	coldRoot := func(i int) string { return filepath.Join(e.stateDir, "cold-cache", strconv.Itoa(i+2), "zviz") }
	nocache := func(i int) (*exec.Cmd, error) { return e.zvizRun(coldRoot(i), e.bundle, "cs-cold", nil)(i) }
	cands := []candidate{
		{name: "default", cmd: e.zvizRun(root, e.bundle, "cs-default", nil)},
		{name: "development", cmd: e.zvizRun(root, e.bundle, "cs-dev", nil, "--profile", "development")},
		{name: "hostile-tenant", cmd: e.zvizRun(root, e.bundle, "cs-hostile", nil, "--profile", "hostile-tenant")},
		{name: "default-nocache", cmd: nocache},
	}
	var kept []candidate
	for _, c := range cands {
		if _, err := timeRun(c, -1); err != nil {
			if c.name != "hostile-tenant" {
				return nil, fmt.Errorf("%s: preflight run failed: %w", c.name, err)
			}
			fmt.Printf("%s: skipped, zviz refuses it here: %s\n", c.name, lastLine(err))
			continue
		}
		kept = append(kept, c)
	}
	cands = kept
	// The preflight's cold-cache run (i = -1) must have filled its cache,
	// or the row would measure something else.
	if ents, err := os.ReadDir(filepath.Join(filepath.Dir(coldRoot(-1)), "zviz-cache")); err != nil || len(ents) == 0 {
		return nil, fmt.Errorf("default-nocache: zviz wrote no cache beside its state directory (%v)", err)
	}
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
	fmt.Printf("\ncold start: zviz run /bin/true, as %s, N=%d after %d warm-up runs, interleaved\n", e.user, e.n, e.warmup)
	fmt.Println("(default, development, hostile-tenant: cache warm; default-nocache: a fresh --root, so an empty cache, each run)")
	var results []result
	fmt.Printf("%-16s %10s %10s %10s %10s %8s\n", "", "median ms", "p90 ms", "min ms", "mean ms", "/default")
	for j, c := range cands {
		r := summarize(c.name, samples[j])
		results = append(results, r)
		fmt.Printf("%-16s %10.2f %10.2f %10.2f %10.2f %7.2fx\n", r.Name, r.Median, r.P90, r.Min, r.Mean, r.Median/results[0].Median)
	}
	fmt.Println(coldStartNote)
	return results, nil
}

// lastLine is the last non-empty line of err (zviz's own message, after
// the command line timeRun puts first).
func lastLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	return lines[len(lines)-1]
}
