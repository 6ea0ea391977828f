package apparmor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeParser is an apparmor_parser stand-in: it appends each invocation's
// arguments to log, prints the version for --version, keeps a copy of the
// file -Q checks, and for -Q and -r exits as fail told it (else 0).
type fakeParser struct {
	dir, path, log string
}

func newFakeParser(t *testing.T, version string) *fakeParser {
	t.Helper()
	d := t.TempDir()
	f := &fakeParser{dir: d, path: filepath.Join(d, "apparmor_parser"), log: filepath.Join(d, "log")}
	script := `#!/bin/sh
echo "$*" >>` + f.log + `
case $1 in
--version) echo "AppArmor parser version ` + version + `"; echo "Copyright (C) 1999-2008 Novell Inc."; exit 0 ;;
-Q) cp "$3" ` + filepath.Join(d, "checked") + `; key=Q ;;
-r) key=r ;;
*) key=other ;;
esac
if [ -f ` + d + `/$key ]; then
	code=$(head -n1 ` + d + `/$key)
	tail -n +2 ` + d + `/$key >&2
	exit "$code"
fi
exit 0
`
	if err := os.WriteFile(f.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// fail makes the parser exit with code and message for -Q or -r.
func (f *fakeParser) fail(t *testing.T, key string, code int, msg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, key), []byte(strings.Join([]string{strconv.Itoa(code), msg}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// calls returns the invocations, with the temporary file's random name
// replaced by TMP.
func (f *fakeParser) calls(t *testing.T, profileDir string) []string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fields := strings.Fields(l)
		for i, w := range fields {
			if strings.HasPrefix(w, filepath.Join(profileDir, ".zviz.tmp")) {
				fields[i] = "TMP"
			}
		}
		out = append(out, strings.Join(fields, " "))
	}
	return out
}

// fakeHost makes a host tree: an empty profile dir, and a sysfs where
// AppArmor is enabled or not.
func fakeHost(t *testing.T, enabled bool, parser string) Host {
	t.Helper()
	root := t.TempDir()
	h := Host{ProfileDir: filepath.Join(root, "etc/apparmor.d"), Parser: parser,
		Sys: filepath.Join(root, "sys"), Proc: filepath.Join(root, "proc")}
	if enabled {
		writeFile(t, filepath.Join(h.Sys, "module/apparmor/parameters/enabled"), "Y\n")
	}
	return h
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// plan is a Plan for the default path that does not depend on the host
// having /usr/local/bin/zviz.
func plan(t *testing.T, h Host) *Plan {
	t.Helper()
	prof, err := Profile(DefaultBinary)
	if err != nil {
		t.Fatal(err)
	}
	return &Plan{Binary: DefaultBinary, File: filepath.Join(h.ProfileDir, ProfileName), Profile: prof}
}

// installedFile checks that the profile file has exactly want, mode 0644,
// and that no temporary file is left next to it.
func installedFile(t *testing.T, h Host, want string) {
	t.Helper()
	path := filepath.Join(h.ProfileDir, ProfileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("profile file: %v", err)
	}
	if string(b) != want {
		t.Errorf("%s has:\n%s\nwant:\n%s", path, b, want)
	}
	if fi, _ := os.Stat(path); fi.Mode() != 0o644 {
		t.Errorf("%s: mode %v, want 0644", path, fi.Mode())
	}
	left, _ := filepath.Glob(filepath.Join(h.ProfileDir, ".*"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestInstall(t *testing.T) {
	requireRoot(t, "Install refuses other users")
	t.Run("loaded", func(t *testing.T) {
		fp := newFakeParser(t, "4.1.0")
		h := fakeHost(t, true, fp.path)
		// An old profile is replaced (by rename: a new inode).
		writeFile(t, filepath.Join(h.ProfileDir, ProfileName), "old\n")
		oldIno := inode(t, filepath.Join(h.ProfileDir, ProfileName))
		res, err := h.Install(plan(t, h))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Loaded || res.NotLoaded != "" || res.KernelOff || res.Parser != fp.path {
			t.Errorf("result %+v, want loaded with %s", res, fp.path)
		}
		installedFile(t, h, wantDefault)
		if inode(t, filepath.Join(h.ProfileDir, ProfileName)) == oldIno {
			t.Error("profile file rewritten in place, not replaced by rename")
		}
		want := []string{"--version", "-Q -K TMP", "-r " + filepath.Join(h.ProfileDir, ProfileName)}
		if got := fp.calls(t, h.ProfileDir); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("parser calls %q, want %q", got, want)
		}
		if b, _ := os.ReadFile(filepath.Join(fp.dir, "checked")); string(b) != wantDefault {
			t.Errorf("the parser checked:\n%s", b)
		}
	})
	t.Run("kernel without AppArmor", func(t *testing.T) {
		fp := newFakeParser(t, "4.0.3")
		h := fakeHost(t, false, fp.path)
		res, err := h.Install(plan(t, h))
		if err != nil {
			t.Fatal(err)
		}
		if res.Loaded || !res.KernelOff || !strings.Contains(res.NotLoaded, "AppArmor is not enabled in this kernel") ||
			!strings.Contains(res.NotLoaded, "module/apparmor/parameters/enabled") {
			t.Errorf("result %+v, want not loaded because the kernel has no AppArmor", res)
		}
		installedFile(t, h, wantDefault)
		want := []string{"--version", "-Q -K TMP"} // checked, never loaded
		if got := fp.calls(t, h.ProfileDir); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("parser calls %q, want %q", got, want)
		}
	})
	t.Run("AppArmor disabled at boot", func(t *testing.T) {
		fp := newFakeParser(t, "4.1.0")
		h := fakeHost(t, false, fp.path)
		writeFile(t, filepath.Join(h.Sys, "module/apparmor/parameters/enabled"), "N\n")
		res, err := h.Install(plan(t, h))
		if err != nil {
			t.Fatal(err)
		}
		if res.Loaded || !res.KernelOff || !strings.Contains(res.NotLoaded, `is "N"`) {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("no parser", func(t *testing.T) {
		for _, enabled := range []bool{true, false} {
			h := fakeHost(t, enabled, filepath.Join(t.TempDir(), "no-apparmor_parser"))
			res, err := h.Install(plan(t, h))
			if err != nil {
				t.Fatal(err)
			}
			installedFile(t, h, wantDefault)
			if res.Loaded || res.Parser != "" || res.KernelOff == enabled {
				t.Errorf("enabled=%v: result %+v", enabled, res)
			}
			if enabled && !strings.Contains(res.NotLoaded, "apparmor_parser not found") {
				t.Errorf("enabled, no parser: NotLoaded %q", res.NotLoaded)
			}
		}
	})
	t.Run("parser too old", func(t *testing.T) {
		fp := newFakeParser(t, "3.0.8")
		h := fakeHost(t, true, fp.path)
		writeFile(t, filepath.Join(h.ProfileDir, ProfileName), "old\n")
		_, err := h.Install(plan(t, h))
		if err == nil || !strings.Contains(err.Error(), "is version 3.0, which predates AppArmor 4") ||
			!strings.Contains(err.Error(), "nothing installed") {
			t.Errorf("error %v, want a refusal naming version 3.0", err)
		}
		installedFile(t, h, "old\n")
		if got := fp.calls(t, h.ProfileDir); len(got) != 1 {
			t.Errorf("parser calls %q, want only --version", got)
		}
	})
	t.Run("profile rejected", func(t *testing.T) {
		fp := newFakeParser(t, "4.1.0")
		fp.fail(t, "Q", 1, "AppArmor parser error at line 13: syntax error")
		h := fakeHost(t, true, fp.path)
		writeFile(t, filepath.Join(h.ProfileDir, ProfileName), "old\n")
		_, err := h.Install(plan(t, h))
		if err == nil || !strings.Contains(err.Error(), "rejects it (nothing installed)") ||
			!strings.Contains(err.Error(), "at line 13: syntax error") {
			t.Errorf("error %v, want the parser's message", err)
		}
		installedFile(t, h, "old\n") // untouched, and no temporary left
	})
	t.Run("load fails", func(t *testing.T) {
		fp := newFakeParser(t, "4.1.0")
		fp.fail(t, "r", 1, "apparmor_parser: Unable to replace \"zviz\".  Permission denied; attempted to load a profile while confined?")
		h := fakeHost(t, true, fp.path)
		res, err := h.Install(plan(t, h))
		if err == nil || !strings.Contains(err.Error(), "load "+filepath.Join(h.ProfileDir, ProfileName)) ||
			!strings.Contains(err.Error(), "Unable to replace") {
			t.Errorf("error %v, want the load failure", err)
		}
		if res == nil || res.Loaded {
			t.Errorf("result %+v", res)
		}
		installedFile(t, h, wantDefault)
	})
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestPrepare(t *testing.T) {
	requireRoot(t, "a root-owned binary")
	h := fakeHost(t, true, "")
	bin := filepath.Join(t.TempDir(), "zviz")
	writeFile(t, bin, "#!/bin/true\n")
	link := filepath.Join(t.TempDir(), "zviz-link")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	p, err := h.Prepare(link)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Profile(bin)
	if p.Binary != bin || p.File != filepath.Join(h.ProfileDir, "zviz") || string(p.Profile) != string(want) {
		t.Errorf("plan %+v, want the profile for %s (the link's target) in %s", p, bin, h.ProfileDir)
	}
	if _, err := os.Stat(p.File); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Prepare touched %s: %v", p.File, err)
	}
	if _, err := h.Prepare("/usr/bin/zv*z"); err == nil || !strings.Contains(err.Error(), `'*'`) {
		t.Errorf("a glob path: %v", err)
	}
}
