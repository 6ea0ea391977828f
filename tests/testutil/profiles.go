package testutil

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// requiredLine is the required: list of a profile file.
var requiredLine = regexp.MustCompile(`(?m)^required: \[(.*)\]$`)

// ProfileWithout writes a copy of built-in profile name, with layers
// removed from its required: list, as a file every user can read, and
// returns its path. hostile-tenant requires cgroup limits, which this build
// cannot give on a host without delegated controllers (it then refuses
// to start, as it must); its syscall policy is still tested through such a
// copy.
func ProfileWithout(t testing.TB, name string, layers ...string) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "seccomp", "profiles", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := requiredLine.FindSubmatch(b)
	if m == nil {
		t.Fatalf("profile %s: no required: line", name)
	}
	var keep []string
	for _, l := range strings.Split(string(m[1]), ",") {
		l = strings.TrimSpace(l)
		drop := false
		for _, d := range layers {
			drop = drop || l == d
		}
		if !drop {
			keep = append(keep, l)
		}
	}
	out := requiredLine.ReplaceAll(b, []byte("required: ["+strings.Join(keep, ", ")+"]"))
	out = regexp.MustCompile(`(?m)^name: .*$`).ReplaceAll(out, []byte("name: "+name+"-test"))
	dir, err := os.MkdirTemp("", "zviz-profile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+"-test.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
