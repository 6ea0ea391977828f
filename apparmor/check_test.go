package apparmor

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkResult is one run of hack/apparmor-check.sh.
type checkResult struct {
	code   int
	stderr string
}

// aaCheck runs hack/apparmor-check.sh [--suite SUITE] on the given
// profile texts. The script's exit status 2 means it could not get a
// parser (the chroot build failed): that fails the test here, since CI has
// debootstrap and the Debian mirror; 0 and 1 are the parser's verdict.
func aaCheck(t *testing.T, suite string, profiles ...string) checkResult {
	t.Helper()
	requireRoot(t, "debootstrap and chroot")
	script, err := filepath.Abs("../hack/apparmor-check.sh")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--suite", suite}
	dir := t.TempDir()
	for i, p := range profiles {
		f := filepath.Join(dir, "profile"+string(rune('a'+i)))
		if err := os.WriteFile(f, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, f)
	}
	cmd := exec.Command(script, args...)
	// debootstrap and chroot live in sbin, which `go test` may not have.
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	err = cmd.Run()
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("hack/apparmor-check.sh --suite %s took %v (it builds its chroot once)", suite, d.Round(time.Second))
	}
	r := checkResult{stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", script, err)
	}
	if r.code == 2 {
		t.Fatalf("hack/apparmor-check.sh --suite %s could not build or run its %s chroot with apparmor_parser "+
			"(debootstrap from the Debian mirror apt uses):\n%s", suite, suite, r.stderr)
	}
	return r
}

// TestProfileCompiles compile-checks the rendered profiles with
// apparmor_parser 4.1 (Debian trixie's, in a chroot: the host's bookworm
// parser is 3.0.8, see TestBookwormParserRejects).
func TestProfileCompiles(t *testing.T) {
	var profiles []string
	for _, bin := range []string{DefaultBinary, "/opt/my tools/zviz-1.0+rc:2~x"} {
		p, err := Profile(bin)
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, string(p))
	}
	r := aaCheck(t, "trixie", profiles...)
	if r.code != 0 || strings.Count(r.stderr, "apparmor-check.sh: ok: ") != len(profiles) ||
		!strings.Contains(r.stderr, "AppArmor parser version 4.") {
		t.Fatalf("exit %d, want 0 and %d profiles compiled by parser 4.x:\n%s", r.code, len(profiles), r.stderr)
	}
}

// TestBrokenProfileRejected is the negative control: the same check must
// fail on profiles the parser cannot compile, or TestProfileCompiles
// proves nothing.
func TestBrokenProfileRejected(t *testing.T) {
	good, err := Profile(DefaultBinary)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ from, to, msg string }{
		"missing comma": {"  userns,\n", "  userns\n", "AppArmor parser error"},
		"unknown rule":  {"  userns,\n", "  userns,\n  frobnicate,\n", "AppArmor parser error"},
		"unknown abi":   {"abi <abi/4.0>,", "abi <abi/9.9>,", "abi/9.9"},
		"unclosed":      {"\n}\n", "\n", "AppArmor parser error"},
	} {
		t.Run(name, func(t *testing.T) {
			broken := strings.Replace(string(good), tc.from, tc.to, 1)
			if broken == string(good) {
				t.Fatalf("%q not in the profile", tc.from)
			}
			r := aaCheck(t, "trixie", broken)
			if r.code != 1 || !strings.Contains(r.stderr, tc.msg) || !strings.Contains(r.stderr, "rejected: ") {
				t.Errorf("exit %d, want 1 with %q:\n%s", r.code, tc.msg, r.stderr)
			}
		})
	}
}

// TestBookwormParserRejects records why the check needs trixie: Debian
// 12's apparmor_parser (3.0.8) knows neither the 4.0 abi nor the userns
// rule.
func TestBookwormParserRejects(t *testing.T) {
	prof, err := Profile(DefaultBinary)
	if err != nil {
		t.Fatal(err)
	}
	r := aaCheck(t, "bookworm", string(prof))
	if r.code != 1 || !strings.Contains(r.stderr, "AppArmor parser version 3.") ||
		!strings.Contains(r.stderr, "Could not open 'abi/4.0'") {
		t.Errorf("the profile: exit %d, want 1 from parser 3.x, for abi/4.0:\n%s", r.code, r.stderr)
	}
	// Without the abi line, the parser stops at the userns rule.
	noABI := strings.Replace(string(prof), "abi <abi/4.0>,\n", "", 1)
	line := 1 + strings.Count(noABI[:strings.Index(noABI, "  userns,")], "\n")
	r = aaCheck(t, "bookworm", noABI)
	if r.code != 1 || !strings.Contains(r.stderr, "parser error at line "+strconv.Itoa(line)+": syntax error") {
		t.Errorf("without the abi line: exit %d, want 1 with a syntax error at line %d (userns):\n%s", r.code, line, r.stderr)
	}
}
