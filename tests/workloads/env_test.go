package workloads

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/testutil"
)

// The zviz interface this package depends on, each in one place so that it
// can follow the runtime.
const (
	// denialFlag is the global flag that makes zviz report every denied
	// syscall on stderr.
	denialFlag = "--log-denials"
	// denialPrefix starts each such report; the syscall's name follows.
	denialPrefix = "zviz: denied:"
	// profileFlag is the global flag that picks a seccomp profile.
	profileFlag = "--profile"
	// runTimeout bounds one workload run (the slowest takes a few seconds).
	runTimeout = 3 * time.Minute
)

// zvizEnv names a zviz binary to test instead of building ./cmd/zviz (a
// release build, or a snapshot while the tree does not build). The test
// user must be able to execute it.
const zvizEnv = "ZVIZ_WORKLOADS_ZVIZ"

// Where the workloads find their scripts and the Go program inside the
// container, and their writable working directory (also HOME). Both mount
// points are made by hack/rootfs.sh.
const (
	scriptsDir = "/opt/workloads"
	workDir    = "/work"
)

// env is what every workload run needs: zviz, the cached rootfs, the
// directory bind-mounted at scriptsDir, and what this zviz supports.
type env struct {
	zviz, rootfs, scripts string
	uid, gid              int
	state                 string // --root, one per env
}

var (
	rootfsOnce sync.Once
	rootfsPath string
	rootfsErr  error
	runSeq     atomic.Int64
)

// newEnv prepares a run environment for the unprivileged test user. The
// rootfs is built (or found in the cache) once per test binary.
func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.Requires(t, "root", "userns", "unprivileged-user")
	e := &env{zviz: os.Getenv(zvizEnv), rootfs: rootfs(t)}
	if e.zviz == "" {
		e.zviz = testutil.BuildZviz(t)
	} else {
		t.Logf("%s: running %s instead of building ./cmd/zviz", zvizEnv, e.zviz)
	}
	var err error
	if e.uid, err = testutil.LookupUser(testutil.TestUser); err != nil {
		t.Fatal(err)
	}
	e.gid = e.uid
	if g, err := primaryGID(testutil.TestUser); err == nil {
		e.gid = g
	}
	e.scripts = scriptsDirFor(t)
	// Both flags are part of zviz: without them the corpus would prove
	// nothing about the profiles, so their absence is a failure, not a skip.
	if err := e.hasGlobalFlag(t, denialFlag); err != nil {
		t.Fatalf("zviz %s: %v", denialFlag, err)
	}
	if err := e.hasGlobalFlag(t, profileFlag, "default"); err != nil {
		t.Fatalf("zviz %s: %v", profileFlag, err)
	}
	e.state = filepath.Join(fmt.Sprintf("/run/user/%d", e.uid),
		fmt.Sprintf("zviz-workloads-%d-%d", os.Getpid(), time.Now().UnixNano()))
	t.Cleanup(func() { e.cleanState(t) })
	return e
}

// rootfs runs hack/rootfs.sh once per test binary and returns the path it
// prints. A failed build fails the test: CI has debootstrap and a mirror.
func rootfs(t *testing.T) string {
	t.Helper()
	rootfsOnce.Do(func() {
		root, err := testutil.ModuleRoot()
		if err != nil {
			rootfsErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "hack", "rootfs.sh"))
		// debootstrap and chroot live in sbin, which `go test` may not have.
		cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			rootfsErr = fmt.Errorf("hack/rootfs.sh: %v\n%s", err, errb.String())
			return
		}
		rootfsPath = strings.TrimSpace(out.String())
		if errb.Len() > 0 { // it only talks when it builds
			fmt.Fprintf(os.Stderr, "%s(rootfs ready after %v)\n", errb.String(), time.Since(start).Round(time.Second))
		}
		if st, err := os.Stat(filepath.Join(rootfsPath, "usr/bin/python3")); err != nil || st.IsDir() {
			rootfsErr = fmt.Errorf("hack/rootfs.sh printed %q, which has no usr/bin/python3: %v", rootfsPath, err)
		}
	})
	if rootfsErr != nil {
		t.Fatalf("build the Debian rootfs for the workloads: %v", rootfsErr)
	}
	return rootfsPath
}

// scriptsDirFor makes a directory the test user can read, with the scripts
// of ./scripts and the static Go program built from ./gostatic; it is
// bind-mounted read-only at scriptsDir.
func scriptsDirFor(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "zviz-workloads-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("scripts")
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join("scripts", ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, ent.Name())
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dst, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "gostatic")
	cmd := exec.Command(goTool(), "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", out,
		"./tests/workloads/gostatic")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tests/workloads/gostatic: %v\n%s", err, b)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hasGlobalFlag reports whether zviz accepts the global flag (with value,
// if any): nil when `zviz FLAG [VALUE] --version` succeeds, else what it said.
func (e *env) hasGlobalFlag(t *testing.T, flag string, value ...string) error {
	args := append(append([]string{flag}, value...), "--version")
	out, err := testutil.RunAs(t, testutil.TestUser, nil, e.zviz, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("zviz %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// spec is the config.json of one workload run: rootless (container root is
// the test user, host root is unmapped and so files owned by it read as
// nobody's), the cached rootfs read-only, tmpfs where the workloads write,
// the scripts read-only, a fresh loopback-only network namespace.
func (e *env) spec(args []string) *specs.Spec {
	s := testutil.DefaultSpec(true, uint32(e.uid), uint32(e.gid))
	s.Root = &specs.Root{Path: e.rootfs, Readonly: true}
	s.Hostname = "workloads"
	s.Process.Args = args
	s.Process.Cwd = workDir
	s.Process.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + workDir, "TMPDIR=/tmp", "LANG=C.UTF-8", "USER=root", "LOGNAME=root",
	}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096}}
	tmpfs := func(dst, mode string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "mode=" + mode, "size=256m"}}
	}
	s.Mounts = append(s.Mounts,
		tmpfs(workDir, "0755"), tmpfs("/tmp", "1777"), tmpfs("/var/tmp", "1777"), tmpfs("/run", "0755"),
		specs.Mount{Destination: scriptsDir, Type: "bind", Source: e.scripts,
			Options: []string{"rbind", "ro", "nosuid", "nodev"}},
	)
	return s
}

// result is one workload run.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
	denials        []string // the stderr lines starting with denialPrefix
	refused        []string // with straceEnv: "syscall ERRNO" seen failing
}

// run runs args in a fresh container as the test user with
// `zviz [--profile P] [--log-denials] run`; profile "" means no flag.
func (e *env) run(t *testing.T, profile string, args []string) result {
	t.Helper()
	bundle, err := os.MkdirTemp("", "zviz-workload-bundle-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bundle)
	b, err := json.MarshalIndent(e.spec(args), "", "\t")
	if err == nil {
		err = os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	}
	if err == nil {
		err = os.Chmod(bundle, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	var global []string
	if profile != "" {
		global = append(global, profileFlag, profile)
	}
	global = append(global, denialFlag)
	id := fmt.Sprintf("wl-%d-%d", os.Getpid(), runSeq.Add(1))
	zargs := append(append([]string{"--root", e.state}, global...), "run", "--bundle", bundle, id)
	cmd := testutil.RunAs(t, testutil.TestUser, nil, e.zviz, zargs...)
	trace := ""
	if v := os.Getenv(straceEnv); v != "" {
		trace = filepath.Join(bundle, "strace.out")
		if st, err := os.Stat(v); err == nil && st.IsDir() { // keep it there
			trace = filepath.Join(v, strings.ReplaceAll(t.Name(), "/", "_")+".strace")
		}
		cmd = straced(t, cmd, trace)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start zviz %v: %v", zargs, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(runTimeout):
		cmd.Process.Kill()
		<-done
		e.zvizCmd(t, "delete", "--force", id).Run()
		t.Fatalf("zviz %s: timed out after %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(zargs, " "), runTimeout, out.String(), errb.String())
	}
	res := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("zviz %v: %v", zargs, err)
	}
	for _, line := range strings.Split(res.stderr, "\n") {
		if strings.Contains(line, denialPrefix) {
			res.denials = append(res.denials, strings.TrimSpace(line))
		}
	}
	if trace != "" {
		res.refused = refusedIn(t, trace)
	}
	return res
}

// straceEnv, when set, runs zviz under strace -f (as root, switching to the
// test user with -u) and reports the syscalls that failed with ENOSYS or
// EPERM anywhere in the run (when it names a directory, the traces are kept
// there, one file per test): a diagnostic for finding a profile's gaps,
// which also works without the denial log. Not asserted: the kernel itself
// returns EPERM for some calls in a user namespace.
const straceEnv = "ZVIZ_WORKLOADS_STRACE"

func straced(t *testing.T, cmd *exec.Cmd, out string) *exec.Cmd {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("%s is set: %v", straceEnv, err)
	}
	args := append([]string{"-f", "-qq", "-e", "signal=none", "-o", out, "-u", testutil.TestUser, "--"}, cmd.Args...)
	c := exec.Command(strace, args...)
	c.Env = cmd.Env
	return c
}

// refusedIn lists "syscall ERRNO" for each distinct call that strace saw
// fail with ENOSYS or EPERM.
func refusedIn(t *testing.T, trace string) []string {
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Errorf("read strace output: %v", err)
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, errno := range []string{"ENOSYS", "EPERM"} {
			if !strings.Contains(line, "= -1 "+errno+" ") {
				continue
			}
			// "PID  name(args) = -1 ERRNO (text)", maybe "<... name resumed>"
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(f[1], "(")
			if name == "<..." && len(f) > 2 {
				name = f[2]
			}
			if e := name + " " + errno; !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

func (e *env) zvizCmd(t *testing.T, args ...string) *exec.Cmd {
	return testutil.RunAs(t, testutil.TestUser, nil, e.zviz, append([]string{"--root", e.state}, args...)...)
}

// cleanState deletes containers a failed run left behind, then the state
// directory, and complains about them: every run must clean up after itself.
func (e *env) cleanState(t *testing.T) {
	ents, _ := os.ReadDir(e.state)
	var left []string
	for _, ent := range ents {
		left = append(left, ent.Name())
		e.zvizCmd(t, "delete", "--force", ent.Name()).Run()
	}
	os.RemoveAll(e.state)
	if len(left) > 0 {
		t.Errorf("containers left behind in %s: %v", e.state, left)
	}
}

// syscallOf extracts the syscall's name from a denial line: the first word
// after denialPrefix, up to a parenthesis, colon, comma or space.
func syscallOf(line string) string {
	_, rest, ok := strings.Cut(line, denialPrefix)
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	if i := strings.IndexAny(rest, "( \t:,"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func primaryGID(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Gid)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
