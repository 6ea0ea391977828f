package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zviz/zviz/apparmor"
	"github.com/zviz/zviz/tests/testutil"
)

// trueBinary is a root-owned binary that every Debian has, for --path:
// /bin/true, which the profile must name by its real path.
func trueBinary(t *testing.T) string {
	t.Helper()
	p, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBinaryAppArmorDryRun: the profile on stdout, byte for byte what the
// package renders for the resolved path; where it would go on stderr; no
// root needed and nothing written.
func TestBinaryAppArmorDryRun(t *testing.T) {
	zviz := testutil.BuildZviz(t)
	_, statErr := os.Stat("/etc/apparmor.d/zviz")
	want, err := apparmor.Profile(trueBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"root", testutil.TestUser} {
		t.Run(who, func(t *testing.T) {
			if who != "root" || os.Geteuid() != 0 {
				testutil.Requires(t, "unprivileged-user")
			}
			r := run(t, testutil.RunAs(t, who, nil, zviz, "apparmor", "install", "--dry-run", "--path", "/bin/true"))
			if r.code != 0 || r.stdout != string(want) {
				t.Errorf("exit %d, stdout:\n%s\nwant exit 0 and:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
			}
			if !strings.Contains(r.stderr, "would write the profile above to /etc/apparmor.d/zviz") ||
				!strings.Contains(r.stderr, "nothing changed") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q", r.stderr)
			}
		})
	}
	if _, err := os.Stat("/etc/apparmor.d/zviz"); errors.Is(statErr, os.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--dry-run created /etc/apparmor.d/zviz: %v", err)
	}
}

// TestBinaryAppArmorInstallNotRoot: one line saying root is needed, before
// anything is written.
func TestBinaryAppArmorInstallNotRoot(t *testing.T) {
	testutil.Requires(t, "unprivileged-user")
	zviz := testutil.BuildZviz(t)
	r := run(t, testutil.RunAs(t, testutil.TestUser, nil, zviz, "apparmor", "install", "--path", "/bin/true"))
	const want = "zviz: apparmor install: root needed: writing /etc/apparmor.d/zviz and loading it into the kernel (CAP_MAC_ADMIN) need root"
	if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, want) ||
		!strings.Contains(r.stderr, "sudo zviz apparmor install") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line starting %q", r.code, r.stdout, r.stderr, want)
	}
}

// TestBinaryAppArmorErrors: every mistake is one line on stderr and exit 1.
func TestBinaryAppArmorErrors(t *testing.T) {
	zviz := testutil.BuildZviz(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apparmor"}, "zviz: apparmor: usage: zviz apparmor install"},
		{[]string{"apparmor", "frob"}, `zviz: apparmor: unknown subcommand "frob" (one of: install, status)`},
		{[]string{"apparmor", "install", "extra"}, "zviz: apparmor install: usage: zviz apparmor install [--path BIN] [--dry-run]"},
		{[]string{"apparmor", "install", "--nope"}, "zviz: apparmor install: flag provided but not defined: -nope"},
		{[]string{"apparmor", "install", "--dry-run", "--path", "bin/zviz"}, `zviz: apparmor install: binary path "bin/zviz": not absolute`},
		{[]string{"apparmor", "install", "--dry-run", "--path", dir + "/none"}, "no such file or directory"},
		{[]string{"apparmor", "install", "--dry-run", "--path", dir}, "not a regular file but a directory"},
		{[]string{"apparmor", "install", "--dry-run", "--path", "/usr/bin/*"}, `character '*' would be read as AppArmor pattern`},
		{[]string{"apparmor", "status", "x"}, "zviz: apparmor status: usage: zviz apparmor status [--json]"},
	} {
		r := run(t, exec.Command(zviz, tc.args...))
		if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

// TestBinaryAppArmorStatus compares `zviz apparmor status` with what this
// host has.
func TestBinaryAppArmorStatus(t *testing.T) {
	zviz := testutil.BuildZviz(t)
	r := run(t, exec.Command(zviz, "apparmor", "status", "--json"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var st apparmor.State
	testutil.DecodeJSON(t, []byte(r.stdout), &st)
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if enabled := err == nil && strings.TrimSpace(string(b)) == "Y"; st.Enabled != enabled {
		t.Errorf("enabled %v, /sys/module/apparmor/parameters/enabled says %q (%v)", st.Enabled, b, err)
	}
	_, err = os.Stat("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
	if (st.RestrictUserns != nil) != (err == nil) {
		t.Errorf("restrict_unprivileged_userns %v, but stat says %v", st.RestrictUserns, err)
	}
	_, err = os.Stat("/etc/apparmor.d/zviz")
	if st.File != "/etc/apparmor.d/zviz" || st.Installed != (err == nil) {
		t.Errorf("file %s installed %v, but stat says %v", st.File, st.Installed, err)
	}
	if st.Exe != zviz {
		t.Errorf("exe %q, want %q", st.Exe, zviz)
	}
	if !st.Enabled && (st.Loaded || st.Current != "" || st.CurrentWhy == "") {
		t.Errorf("no AppArmor, yet loaded %v current %q (%s)", st.Loaded, st.Current, st.CurrentWhy)
	}

	r = run(t, exec.Command(zviz, "apparmor", "status"))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) < 5 {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, prefix := range []string{"apparmor: ", "userns restriction: ", "profile file: ", "profile loaded: ", "this zviz: " + zviz} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, prefix)
		}
		if !found {
			t.Errorf("no line starting %q in\n%s", prefix, r.stdout)
		}
	}
}

// TestBinaryAppArmorInstallChroot runs the built zviz's `apparmor install`
// for real, as root, in an overlay of each Debian chroot that
// hack/apparmor-check.sh caches (no /sys there: the kernel has no AppArmor
// as far as zviz can see). Trixie's apparmor_parser 4.1 compile-checks
// the profile and it lands in /etc/apparmor.d, not loaded; bookworm's
// 3.0.8 is refused before anything is written. The cached chroots stay
// untouched: writes go to the overlay's upper directory.
func TestBinaryAppArmorInstallChroot(t *testing.T) {
	testutil.Requires(t, "root")
	zviz := testutil.BuildZviz(t)
	want, err := apparmor.Profile(apparmor.DefaultBinary)
	if err != nil {
		t.Fatal(err)
	}
	for _, suite := range []string{"trixie", "bookworm"} {
		t.Run(suite, func(t *testing.T) {
			lower := aaChroot(t, suite)
			tmp := t.TempDir()
			for _, d := range []string{"u", "w", "m"} {
				if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			const script = `set -e
mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/u,workdir=$2/w" "$2/m"
install -m 0755 "$3" "$2/m/usr/local/bin/zviz"
exec chroot "$2/m" /usr/local/bin/zviz apparmor install`
			r := run(t, exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", lower, tmp, zviz))
			got, ferr := os.ReadFile(filepath.Join(tmp, "u/etc/apparmor.d/zviz"))
			switch suite {
			case "trixie":
				if r.code != 0 || !strings.Contains(r.stdout, "installed /etc/apparmor.d/zviz; not loaded: AppArmor is not enabled in this kernel") {
					t.Errorf("exit %d, stdout %q, stderr %q; want installed, not loaded", r.code, r.stdout, r.stderr)
				}
				if string(got) != string(want) {
					t.Errorf("/etc/apparmor.d/zviz in the chroot (%v):\n%s\nwant:\n%s", ferr, got, want)
				}
			case "bookworm":
				if r.code != 1 || !strings.Contains(r.stderr, "apparmor_parser is version 3.0, which predates AppArmor 4") {
					t.Errorf("exit %d, stdout %q, stderr %q; want the old parser refused", r.code, r.stdout, r.stderr)
				}
				if !errors.Is(ferr, os.ErrNotExist) {
					t.Errorf("a profile was written for a parser that cannot read it (%v):\n%s", ferr, got)
				}
			}
		})
	}
}

// aaChroot returns hack/apparmor-check.sh's chroot for suite, building it
// when it is not cached (about 30 s). A failed build fails the test: CI
// has debootstrap and the Debian mirror.
func aaChroot(t *testing.T, suite string) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "hack/apparmor-check.sh"), "--suite", suite, "--build")
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	r := run(t, cmd)
	dir := strings.TrimSpace(r.stdout)
	if r.code != 0 || !filepath.IsAbs(dir) {
		t.Fatalf("hack/apparmor-check.sh --suite %s --build: exit %d, stdout %q\n%s", suite, r.code, r.stdout, r.stderr)
	}
	return dir
}
