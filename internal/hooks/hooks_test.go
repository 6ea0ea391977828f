package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunPassesStateArgsAndEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `cat > "$1"; echo "$0 $V" >> "$1"`, "hook0", out}, Env: []string{"V=x"}}
	if err := Run("prestart", []specs.Hook{h}, []byte(`{"id":"c"}`)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "{\"id\":\"c\"}hook0 x\n" {
		t.Errorf("hook saw %q", got)
	}
}

func TestRunFailureNamesHook(t *testing.T) {
	hs := []specs.Hook{{Path: "/bin/true"}, {Path: "/bin/sh", Args: []string{"sh", "-c", "echo boom >&2; exit 3"}}}
	err := Run("createRuntime", hs, nil)
	if err == nil || !strings.Contains(err.Error(), "createRuntime hook #1 /bin/sh") ||
		!strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want an error naming hook #1 with its status and output, got %v", err)
	}
}

func TestRunTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	one := 1
	// The hook leaves a background child: the timeout must kill it too.
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `sleep 30 & echo $! > "$1"; wait`, "sh", pidFile}, Timeout: &one}
	start := time.Now()
	err := Run("poststop", []specs.Hook{h}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("want a timeout error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
	b, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			return
		}
		if st, _ := os.ReadFile("/proc/" + pid + "/stat"); strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the hook's child %s survived the timeout", pid)
}

func TestRunRefusesBadTimeout(t *testing.T) {
	zero := 0
	if err := Run("prestart", []specs.Hook{{Path: "/bin/true", Timeout: &zero}}, nil); err == nil {
		t.Fatal("a zero timeout must be refused")
	}
}
