package landlock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Landlock cannot be undone, so every test that enforces it re-executes the
// test binary (-test.run=^TestX$) with childEnv set; the child applies the
// rules, runs its checks and writes a childResult as JSON to fd 3.
const (
	childEnv    = "ZVIZ_LANDLOCK_CHILD" // the scenario: "enforce" or "timing"
	dirEnv      = "ZVIZ_LANDLOCK_DIR"   // the t.TempDir() tree the parent built
	abiEnv      = "ZVIZ_LANDLOCK_ABI"   // the kernel ABI to simulate
	requiredEnv = "ZVIZ_LANDLOCK_REQUIRED"
	abstractEnv = "ZVIZ_LANDLOCK_ABSTRACT" // an abstract socket the parent listens on
)

type childResult struct {
	Report *Report            `json:"report"`
	Err    string             `json:"err"`
	Checks map[string]string  `json:"checks"` // check name -> "ok" or errno name
	Info   map[string]string  `json:"info"`   // observed, not asserted
	Times  []int64            `json:"times"`  // Apply durations in ns (timing)
	Extra  map[string]float64 `json:"extra"`
}

// requireLandlock skips unless the kernel has Landlock ABI n or newer, and
// returns the kernel's version.
func requireLandlock(t *testing.T, n int) int {
	t.Helper()
	abi := ABI()
	if abi < n {
		t.Skipf("requires landlock>=%d: kernel Landlock ABI is %d", n, abi)
	}
	return abi
}

// runChild re-executes the test binary for test with env added, and decodes
// what the child wrote to fd 3.
func runChild(t *testing.T, test string, env ...string) *childResult {
	t.Helper()
	return runChildIn(t, test, nil, env...)
}

// runChildIn is runChild with the child's SysProcAttr.
func runChildIn(t *testing.T, test string, attr *syscall.SysProcAttr, env ...string) *childResult {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	w.Close()
	data, readErr := io.ReadAll(r)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child %s: %v\n%s", test, err, out.String())
	}
	var res childResult
	if readErr != nil || json.Unmarshal(data, &res) != nil {
		t.Fatalf("child %s wrote no result (%v): %q\n%s", test, readErr, data, out.String())
	}
	return &res
}

// writeResult sends the child's result home over fd 3, which Landlock does
// not check (it is already open).
func writeResult(res *childResult) {
	f := os.NewFile(3, "result")
	if err := json.NewEncoder(f).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "child: write result:", err)
		os.Exit(2)
	}
	f.Close()
}

func envInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: %s=%q: %v\n", name, os.Getenv(name), err)
		os.Exit(2)
	}
	return n
}

// errName is "ok" for nil, else the errno's name (EACCES, EXDEV ...).
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
	}
	return err.Error()
}

// tree is the throwaway filesystem the enforcement tests run in.
type tree struct {
	dir  string
	root bool // device nodes could be made (CAP_MKNOD)
}

func (tr *tree) p(elem ...string) string { return filepath.Join(append([]string{tr.dir}, elem...)...) }

// buildTree makes: rx/ (read-exec), ro/ (read-only), rw/ (writable), out/
// (no rule), each with a file.txt and a copy of /bin/true; rename and link
// sources; and, as root, a /dev/null twin under rx/ and as rwdev/null.
func buildTree(t *testing.T) *tree {
	t.Helper()
	tr := &tree{dir: t.TempDir()}
	trueBin, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatalf("read /bin/true for the exec checks: %v", err)
	}
	for _, d := range []string{"rx", "ro", "rw", "out"} {
		mkdirs(t, tr.dir, d)
		writeFile(t, tr.p(d, "file.txt"), "hello "+d)
		if err := os.WriteFile(tr.p(d, "true"), trueBin, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdirs(t, tr.dir, "rw/a", "rw/b", "rwdev")
	for _, f := range []string{"rw/a/ren", "rw/a/lnk", "rw/a/same", "rw/x", "rw/del", "rx/y", "rx/del"} {
		writeFile(t, tr.p(f), f)
	}
	if os.Geteuid() == 0 {
		for _, f := range []string{"rx/null", "rwdev/null"} {
			if err := unix.Mknod(tr.p(f), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
				t.Fatalf("mknod %s: %v", f, err)
			}
		}
		tr.root = true
	}
	return tr
}

// rules is the rule set of the enforcement tests. /usr, /lib and /lib64
// are there for the dynamic loader of the copied /bin/true (and sleep).
func (tr *tree) rules(bindPort, connectPort uint16) *Rules {
	return &Rules{
		ReadExec:        []string{tr.p("rx"), "/usr", "/lib", "/lib64"},
		ReadOnly:        []string{tr.p("ro")},
		Writable:        []string{tr.p("rw"), tr.p("rwdev", "null"), tr.p("missing")},
		RestrictNetwork: true,
		TCPBind:         []uint16{bindPort},
		TCPConnect:      []uint16{connectPort},
		Scope:           true,
	}
}
