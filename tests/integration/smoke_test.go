package integration

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRunExitCode is the smallest end-to-end check: run propagates the
// workload's exit status and removes the container.
func TestRunExitCode(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "echo hello; exit 7"} })
		res := r.run("run", "--bundle", b, "smoke")
		if res.code != 7 || strings.TrimSpace(res.stdout) != "hello" {
			t.Fatalf("want exit 7 and hello, got %v", res)
		}
	})
}
