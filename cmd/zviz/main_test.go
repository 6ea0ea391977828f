package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseGlobals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		root string
		rest string
		err  string
	}{
		{[]string{"--root", "/r", "list"}, "/r", "list", ""},
		{[]string{"--root=/r", "list", "-q"}, "/r", "list -q", ""},
		{[]string{"-root", "/r", "state", "x"}, "/r", "state x", ""},
		{[]string{"--log", "/l", "--log-format=json", "--debug", "--systemd-cgroup", "--root", "/r", "kill", "x", "9"}, "/r", "kill x 9", ""},
		{[]string{"--rootless", "true", "list"}, "", "list", ""},
		{[]string{"list", "--root", "/r"}, "", "list --root /r", ""},
		{[]string{"--log-format", "xml", "list"}, "", "", `"xml": must be text or json`},
		{[]string{"--bogus", "list"}, "", "", "bogus"},
		{[]string{"--root"}, "", "", "root"},
	} {
		g, rest, err := parseGlobals(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseGlobals(%q): %v, want an error containing %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || g.root != tc.root || strings.Join(rest, " ") != tc.rest {
			t.Errorf("parseGlobals(%q) = root %q rest %q, %v; want %q %q", tc.args, g.root, rest, err, tc.root, tc.rest)
		}
	}
	g, _, _ := parseGlobals([]string{"--log", "/l", "--log-format", "json", "--debug", "--systemd-cgroup", "x"})
	if g.log != "/l" || g.logFormat != "json" || !g.debug || !g.systemdCgroup {
		t.Errorf("globals: %+v", g)
	}
}

func TestFlagSetInterleave(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		interleave bool
		pos        string
		force      bool
	}{
		{[]string{"--force", "id"}, true, "id", true},
		{[]string{"id", "--force"}, true, "id", true},
		{[]string{"id", "-f", "extra"}, true, "id extra", true},
		{[]string{"id", "--", "--force"}, true, "id --force", false},
		{[]string{"--", "-x"}, true, "-x", false},
		{[]string{"cmd", "--force"}, false, "cmd --force", false},
	} {
		fs := newFlagSet("t")
		force := fs.Bool("force", false, "")
		fs.BoolVar(force, "f", false, "")
		pos, err := fs.parse(tc.args, tc.interleave)
		if err != nil || strings.Join(pos, " ") != tc.pos || *force != tc.force {
			t.Errorf("parse(%q, %v) = %q force %v, %v; want %q force %v", tc.args, tc.interleave, pos, *force, err, tc.pos, tc.force)
		}
	}
	fs := newFlagSet("delete")
	if _, err := fs.parse([]string{"--nope"}, true); err == nil || !strings.HasPrefix(err.Error(), "delete: ") {
		t.Errorf("unknown flag: %v", err)
	}
	if _, err := fs.parse([]string{"-h"}, true); err == nil || !strings.Contains(err.Error(), "usage: zviz delete") {
		t.Errorf("-h: %v", err)
	}
}

func TestNeedArgs(t *testing.T) {
	if err := needArgs("kill", []string{"a"}, 1, 2, "ID [SIGNAL]"); err != nil {
		t.Error(err)
	}
	if err := needArgs("kill", []string{"a", "b", "c"}, 1, 2, "ID [SIGNAL]"); err == nil || !strings.Contains(err.Error(), "usage: zviz kill ID [SIGNAL]") {
		t.Errorf("too many: %v", err)
	}
	if err := needArgs("state", nil, 1, 1, "ID"); err == nil {
		t.Error("too few: no error")
	}
	if err := needArgs("x", []string{"a", "b", "c"}, 0, -1, ""); err != nil {
		t.Errorf("unbounded: %v", err)
	}
}

const preserveEnv = "ZVIZ_TEST_CHECK_PRESERVE"

// TestCheckPreserve: only descriptors the caller passed count, never the
// ones this process opened itself (close-on-exec), e.g. the Go runtime's
// cgroup files.
func TestCheckPreserve(t *testing.T) {
	if os.Getenv(preserveEnv) != "" {
		return // the child's half is TestCheckPreserveChild
	}
	if err := checkPreserve(0); err != nil {
		t.Errorf("checkPreserve(0): %v", err)
	}
	if err := checkPreserve(-1); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("checkPreserve(-1): %v", err)
	}
	// Make sure fd 3 is open here, close-on-exec, as everything Go opens.
	var keep []*os.File
	for {
		f, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, f)
		if f.Fd() >= 3 {
			break
		}
	}
	defer func() {
		for _, f := range keep {
			f.Close()
		}
	}()
	if flags, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("fd 3: flags %#x, %v; want an open close-on-exec fd", flags, err)
	}
	if err := checkPreserve(1); err == nil || !strings.Contains(err.Error(), "fd 3 is not open") {
		t.Errorf("checkPreserve(1) with our own fd 3: %v, want a refusal", err)
	}
	// Passed descriptors are accepted, one too many is not.
	f1, _ := os.Open("/dev/null")
	f2, _ := os.Open("/dev/zero")
	defer f1.Close()
	defer f2.Close()
	c := exec.Command(os.Args[0], "-test.run=^TestCheckPreserveChild$", "-test.v")
	c.Env = append(os.Environ(), preserveEnv+"=1")
	c.ExtraFiles = []*os.File{f1, f2}
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Errorf("child: %v\n%s", err, out)
	}
}

func TestCheckPreserveChild(t *testing.T) {
	if os.Getenv(preserveEnv) == "" {
		return
	}
	if err := checkPreserve(2); err != nil {
		t.Errorf("checkPreserve(2) with fds 3 and 4 passed: %v", err)
	}
	if err := checkPreserve(3); err == nil || !strings.Contains(err.Error(), "fd 5 is not open") {
		t.Errorf("checkPreserve(3) with two fds passed: %v", err)
	}
}
