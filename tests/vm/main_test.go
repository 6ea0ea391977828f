package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zviz/zviz/tests/testutil"
)

// EnableEnv must be 1 for the tests here to boot a VM (make test-vm sets
// it): `go test ./...` (make test) must not spend minutes on them. Tests
// that need a VM get it from bookworm(t), or guest(t, "trixie") for kernel
// 6.12, systemd 257 and AppArmor 4.1 (which mediates user-namespace creation).
const EnableEnv = "ZVIZ_TEST_VM"

// The VMs of this test binary, one per suite: each booted by the first test
// that needs it, all powered off by TestMain after the last test.
var (
	vmsMu sync.Mutex
	vms   = map[string]*sharedVM{}
)

type sharedVM struct {
	once sync.Once
	vm   *VM
	err  error
	skip string
}

// What buildStatic built, removed by TestMain.
var (
	binsMu sync.Mutex
	bins   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range vms {
		if s.vm == nil {
			continue
		}
		start := time.Now()
		if err := s.vm.Down(func(l string) { fmt.Fprintln(os.Stderr, l) }); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		fmt.Fprintf(os.Stderr, "vm: %s down in %v\n", s.vm.Name, time.Since(start).Round(100*time.Millisecond))
	}
	if bins != "" {
		os.RemoveAll(bins)
	}
	os.Exit(code)
}

// bookworm returns the bookworm VM (kernel 6.1, systemd 252, AppArmor 3.0).
func bookworm(t *testing.T) *VM { t.Helper(); return guest(t, "bookworm") }

// guest returns this test binary's VM of suite, booting it on first use; it
// skips t when VM tests are not enabled or cannot run here, and fails it
// when the VM does not come up.
func guest(t *testing.T, suite string) *VM {
	t.Helper()
	vmsMu.Lock()
	s := vms[suite]
	if s == nil {
		s = &sharedVM{}
		vms[suite] = s
	}
	vmsMu.Unlock()
	s.once.Do(func() {
		if os.Getenv(EnableEnv) != "1" {
			s.skip = fmt.Sprintf("requires %s=1 (make test-vm): boots a qemu VM, about a minute "+
				"plus a few for the first image build", EnableEnv)
			return
		}
		if err := Available(); err != nil {
			feature := "qemu"
			if os.Geteuid() != 0 {
				feature = "root"
			}
			s.skip = "requires " + feature + ": " + err.Error()
			return
		}
		ReapStale(func(l string) { t.Log(l) })
		name := fmt.Sprintf("gotest-%d-%s", os.Getpid(), suite)
		s.vm, s.err = Up(suite, name, func(l string) { t.Log(l) })
		if s.vm != nil {
			t.Logf("vm: %s up: boot to ssh %v, vm.sh up %v in all (image %s)", name,
				s.vm.BootTime, s.vm.UpTime.Round(100*time.Millisecond), s.vm.Image)
		}
	})
	if s.skip != "" {
		t.Skip(s.skip)
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.vm
}

// buildStatic builds the module's package pkg as a static binary named name
// (the zviz binary as `make build` makes it, or the probe) once per test
// binary and returns its host path.
func buildStatic(t *testing.T, name string) string {
	t.Helper()
	binsMu.Lock()
	defer binsMu.Unlock()
	if bins == "" {
		dir, err := os.MkdirTemp("", "zviz-vm-bin-")
		if err != nil {
			t.Fatal(err)
		}
		bins = dir
	}
	out := filepath.Join(bins, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	var env, args []string
	switch name {
	case "zviz": // the flags of the Makefile's build target
		env = []string{"CGO_ENABLED=1"}
		args = []string{"-tags", "osusergo,netgo", "-ldflags", "-s -w -extldflags -static -X main.version=vm-test", "./cmd/zviz"}
	case "probe":
		env = []string{"CGO_ENABLED=0"}
		args = []string{"-ldflags", "-s -w", "./tests/probe"}
	default:
		t.Fatalf("buildStatic: unknown binary %q", name)
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool(), append([]string{"build", "-trimpath", "-buildvcs=false", "-o", out}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), append(env, "GOEXPERIMENT=jsonv2")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
