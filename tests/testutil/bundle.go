package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// busyboxPath is where Debian's busybox-static puts a static busybox.
const busyboxPath = "/usr/bin/busybox"

// DefaultApplets are the busybox applets every bundle links into /bin.
var DefaultApplets = []string{
	"sh", "ash", "true", "false", "echo", "printf", "cat", "ls", "id", "whoami",
	"sleep", "hostname", "mount", "umount", "ps", "env", "pwd", "mkdir", "rm",
	"touch", "grep", "head", "tail", "wc", "kill", "ip", "ln", "stat", "test", "nc",
	"uname", "readlink", "chmod", "cp", "mv", "sed", "awk", "find", "nproc", "date",
}

// BundleOptions describes a throwaway bundle.
type BundleOptions struct {
	// Spec is written as config.json; nil means DefaultSpec for User.
	Spec *specs.Spec
	// User is who will run the container: "" or "root", or TestUser, in
	// which case the bundle is chowned to it.
	User string
	// Probe is the probe binary to copy to /probe; "" builds it.
	Probe string
	// Applets are linked to busybox in /bin besides DefaultApplets.
	Applets []string
}

// BusyboxBundle makes a bundle in a directory every user can traverse and
// returns its path: rootfs/ with busybox, applet links in /bin, the probe at
// /probe and minimal /etc files, and config.json. It is removed when the
// test ends.
func BusyboxBundle(t testing.TB, opts BundleOptions) string {
	t.Helper()
	Requires(t, "busybox")
	if opts.Probe == "" {
		opts.Probe = BuildProbe(t)
	}
	uid, gid := 0, 0
	if opts.User != "" && opts.User != "root" {
		u, err := user.Lookup(opts.User)
		if err != nil {
			t.Fatalf("bundle for %s: %v (run hack/setup.sh as root)", opts.User, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	dir, err := os.MkdirTemp("", "zviz-bundle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove bundle: %v", err)
		}
	})
	spec := opts.Spec
	if spec == nil {
		spec = DefaultSpec(uid != 0, uint32(uid), uint32(gid))
	}
	applets := append(append([]string{}, DefaultApplets...), opts.Applets...)
	if err := WriteBundle(dir, spec, opts.Probe, applets); err != nil {
		t.Fatal(err)
	}
	if uid != 0 || gid != 0 {
		if err := chownTree(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// WriteBundle fills bundle dir (mode 0755) with rootfs/ (see WriteRootfs) and
// config.json from spec.
func WriteBundle(dir string, spec *specs.Spec, probe string, applets []string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("make bundle: %w", err)
	}
	if err := WriteRootfs(filepath.Join(dir, "rootfs"), probe, applets); err != nil {
		return err
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("encode config.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	return nil
}

// WriteRootfs makes a busybox root filesystem at rootfs: /usr/bin/busybox,
// /bin/APPLET links to it, probe (if not "") at /probe, /etc/passwd and
// /etc/group with root and nobody, and the usual empty mount points.
func WriteRootfs(rootfs, probe string, applets []string) error {
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "root", "run", "sys", "tmp", "usr/bin", "var"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return fmt.Errorf("make rootfs: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), os.ModeSticky|0o777); err != nil {
		return fmt.Errorf("make rootfs: %w", err)
	}
	if err := copyFile(busyboxPath, filepath.Join(rootfs, "usr/bin/busybox"), 0o755); err != nil {
		return err
	}
	for _, a := range applets {
		link := filepath.Join(rootfs, "bin", filepath.Base(a))
		if err := os.Symlink("/usr/bin/busybox", link); err != nil && !os.IsExist(err) {
			return fmt.Errorf("link applet: %w", err)
		}
	}
	if probe != "" {
		if err := copyFile(probe, filepath.Join(rootfs, "probe"), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":    "root:x:0:\nnogroup:x:65534:\n",
		"etc/hostname": "zviz\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("make rootfs: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return os.Chmod(dst, mode) // WriteFile's mode is filtered by the umask
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("chown bundle: %w", err)
		}
		return nil
	})
}
