package apparmor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantDefault is the whole profile for the default path, byte for byte.
const wantDefault = `# AppArmor profile for zviz, written by ` + "`zviz apparmor install`" + `.
#
# It confines nothing (flags=(unconfined)): it exists to grant ` + "`userns`" + `,
# which Ubuntu 24.04 and later withhold from unprivileged programs
# (kernel.apparmor_restrict_unprivileged_userns=1) unless a profile
# attached to them allows it. Without it zviz falls back to chdir-only
# isolation. Re-run ` + "`zviz apparmor install`" + ` instead of editing this file;
# local additions go in /etc/apparmor.d/local/zviz.
abi <abi/4.0>,
include <tunables/global>

profile zviz /usr/local/bin/zviz flags=(unconfined) {
  userns,

  # Site-specific additions and overrides.
  include if exists <local/zviz>
}
`

func TestProfileDefault(t *testing.T) {
	got, err := Profile(DefaultBinary)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != wantDefault {
		t.Errorf("profile for %s:\n%s\nwant:\n%s", DefaultBinary, got, wantDefault)
	}
}

func TestProfileAttachment(t *testing.T) {
	for _, tc := range []struct{ bin, line string }{
		{"/opt/zviz/bin/zviz", "profile zviz /opt/zviz/bin/zviz flags=(unconfined) {"},
		{"/usr/local/bin/zviz-1.2_rc+3", "profile zviz /usr/local/bin/zviz-1.2_rc+3 flags=(unconfined) {"},
		{"/home/u/~x:y/zviz", "profile zviz /home/u/~x:y/zviz flags=(unconfined) {"},
		// A space needs quotes, nothing else.
		{"/opt/my tools/zviz", `profile zviz "/opt/my tools/zviz" flags=(unconfined) {`},
	} {
		got, err := Profile(tc.bin)
		if err != nil {
			t.Errorf("%q: %v", tc.bin, err)
			continue
		}
		if n := strings.Count(string(got), tc.line+"\n"); n != 1 {
			t.Errorf("%q: want the line %q once, got %d times in\n%s", tc.bin, tc.line, n, got)
		}
		if a := attachmentIn(string(got)); a != tc.bin {
			t.Errorf("%q: attachmentIn reads it back as %q", tc.bin, a)
		}
	}
}

func TestProfileRefusesPaths(t *testing.T) {
	for _, tc := range []struct{ bin, want string }{
		{"zviz", "not absolute"},
		{"./bin/zviz", "not absolute"},
		{"", "not absolute"},
		{"/", "not a clean file path"},
		{"/usr/local/bin/", "not a clean file path"},
		{"/usr//bin/zviz", "not a clean file path"},
		{"/usr/local/bin/../bin/zviz", "not a clean file path"},
		{"/usr/./bin/zviz", "not a clean file path"},
		{"/usr/bin/zv*z", `'*'`},
		{"/usr/bin/zviz?", `'?'`},
		{"/usr/bin/[z]viz", `'['`},
		{"/usr/bin/z]viz", `']'`},
		{"/usr/bin/{a,b}/zviz", `'{'`},
		{"/usr/bin/z}viz", `'}'`},
		{"/usr/bin/[^a]viz", `'['`},
		{"/usr/bin/z^viz", `'^'`},
		{`/usr/bin/z\viz`, `'\\'`},
		{"/@{HOME}/zviz", `'@'`},
		{`/usr/bin/"zviz`, `'"'`},
		{"/usr/bin/z#viz", `'#'`},
		{"/usr/bin/z,viz", `','`},
		{"/usr/bin/z=viz", `'='`},
		{"/usr/bin/z(viz)", `'('`},
		{"/usr/bin/z$viz", `'$'`},
		{"/usr/bin/z'viz", `'\''`},
		{"/usr/bin/z\nviz", `'\n'`},
		{"/usr/bin/z\tviz", `'\t'`},
		{"/usr/bin/z\x00viz", `'\x00'`},
		{"/usr/bin/zvíz", `'í'`},
	} {
		got, err := Profile(tc.bin)
		if err == nil {
			t.Errorf("%q: accepted:\n%s", tc.bin, got)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q, want it to mention %s", tc.bin, err, tc.want)
		}
	}
}

// requireRoot skips a test that needs root, saying so.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("requires root: running as uid %d (%s)", euid, why)
	}
}

func TestCheckBinary(t *testing.T) {
	requireRoot(t, "files owned by root and by others")
	dir := t.TempDir() // root-owned, under sticky /tmp
	mk := func(rel string, mode os.FileMode, uid, gid int) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/true\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mkdir := func(rel string, mode os.FileMode, uid int) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	good := mk("bin/zviz", 0o755, 0, 0)
	if err := os.Symlink(good, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	mkdir("userdir", 0o755, 65534)
	mkdir("opendir", 0o777, 0)
	mkdir("stickydir", os.ModeSticky|0o777, 0)
	mkdir("spaced dir", 0o755, 0)

	for _, tc := range []struct {
		path, want, err string
	}{
		{good, good, ""},
		{filepath.Join(dir, "link"), good, ""},
		{mk("rootgroup", 0o775, 0, 0), filepath.Join(dir, "rootgroup"), ""},
		{mk("stickydir/zviz", 0o755, 0, 0), filepath.Join(dir, "stickydir/zviz"), ""},
		{mk("spaced dir/zviz", 0o755, 0, 0), filepath.Join(dir, "spaced dir/zviz"), ""},
		{filepath.Join(dir, "missing"), "", "no such file or directory"},
		{filepath.Join(dir, "bin"), "", "not a regular file but a directory"},
		{"bin/zviz", "", "not absolute"},
		{mk("userfile", 0o755, 65534, 0), "", "owned by uid 65534, not root"},
		{mk("worldfile", 0o757, 0, 0), "", "writable by everyone"},
		{mk("groupfile", 0o775, 0, 100), "", "writable by group 100"},
		{mk("userdir/zviz", 0o755, 0, 0), "", "userdir is owned by uid 65534"},
		{mk("opendir/zviz", 0o755, 0, 0), "", "opendir is writable by everyone"},
	} {
		got, err := CheckBinary(tc.path)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%s: resolved to %s, want %s", tc.path, got, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got (%q, %v), want an error with %q", tc.path, got, err, tc.err)
		}
	}
}
