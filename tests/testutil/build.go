package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const modulePath = "github.com/zviz/zviz"

var (
	binDirOnce sync.Once
	binDir     string
	binDirErr  error

	zvizOnce, probeOnce sync.Once
	zvizPath, probePath string
	zvizErr, probeErr   error
)

// BuildZviz builds ./cmd/zviz (CGO_ENABLED=1) once per test binary and
// returns the path of the binary, which every user may execute.
func BuildZviz(t testing.TB) string {
	t.Helper()
	zvizOnce.Do(func() {
		zvizPath, zvizErr = build("zviz", "./cmd/zviz", "CGO_ENABLED=1", "-tags", "osusergo,netgo",
			"-ldflags", "-s -w -extldflags -static -X main.version=test")
	})
	if zvizErr != nil {
		t.Fatal(zvizErr)
	}
	return zvizPath
}

// BuildProbe builds the static tests/probe once per test binary and returns
// the path of the binary.
func BuildProbe(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		probePath, probeErr = build("probe", "./tests/probe", "CGO_ENABLED=0", "-ldflags", "-s -w")
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probePath
}

var (
	nomountOnce sync.Once
	nomountPath string
	nomountErr  error
)

// BuildNoMount builds the static tests/nomount once per test binary: it
// runs a program with mount, pivot_root and the new mount API failing
// with EPERM, as under Ubuntu's AppArmor user-namespace restriction.
func BuildNoMount(t testing.TB) string {
	t.Helper()
	nomountOnce.Do(func() {
		nomountPath, nomountErr = build("nomount", "./tests/nomount", "CGO_ENABLED=0", "-ldflags", "-s -w")
	})
	if nomountErr != nil {
		t.Fatal(nomountErr)
	}
	return nomountPath
}

// Main runs the tests and then removes what BuildZviz and BuildProbe built.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build compiles pkg (relative to the module root) into the shared binary
// directory with the given CGO_ENABLED setting and extra build flags.
func build(name, pkg, cgo string, flags ...string) (string, error) {
	binDirOnce.Do(func() {
		binDir, binDirErr = os.MkdirTemp("", "zviz-test-bin-")
		if binDirErr == nil {
			binDirErr = os.Chmod(binDir, 0o755)
		}
	})
	if binDirErr != nil {
		return "", fmt.Errorf("make build directory: %w", binDirErr)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(binDir, name)
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-o", out}, flags...)
	cmd := exec.Command(goTool(), append(args, pkg)...)
	cmd.Dir = root
	// The same JSON implementation as `make build` (see the Makefile).
	cmd.Env = append(os.Environ(), cgo, "GOEXPERIMENT=jsonv2")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return out, os.Chmod(out, 0o755)
}

// ModuleRoot returns the directory holding zviz's go.mod, found by walking
// up from the working directory (go test runs in the package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isModule(string(b), modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod for " + modulePath + " above the working directory")
		}
		dir = parent
	}
}

func isModule(gomod, path string) bool {
	for _, line := range strings.Split(gomod, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == path {
			return true
		}
	}
	return false
}

// goTool finds the go command: on PATH (go test puts GOROOT/bin there), or
// where hack/setup.sh expects it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
