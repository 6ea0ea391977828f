package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// These run in the test process: resolution needs no privilege. The
// symlinks point at a directory of the test's own, so an escape would be
// harmless and visible.
func TestResolveStaysInRoot(t *testing.T) {
	dir := t.TempDir()
	root, outside := filepath.Join(dir, "x", "root"), filepath.Join(dir, "outside")
	must(t, os.MkdirAll(filepath.Join(root, "in"), 0o755))
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "in", "file"), []byte("root"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(root, "abs")))
	must(t, os.Symlink("../../outside", filepath.Join(root, "rel")))
	must(t, os.Symlink("/proc/self/root", filepath.Join(root, "magic")))

	for _, p := range []string{"abs/secret", "rel/secret", "../outside/secret", "/../../outside/secret", "magic/etc/passwd"} {
		f, err := OpenInRoot(root, p, unix.O_RDONLY)
		if err == nil {
			f.Close()
			t.Errorf("OpenInRoot(%q) opened %s: escaped the root", p, f.Name())
		}
	}
	f, err := OpenInRoot(root, "/in/../in/file", unix.O_RDONLY)
	must(t, err)
	b := make([]byte, 8)
	n, _ := f.Read(b)
	f.Close()
	if string(b[:n]) != "root" {
		t.Errorf("OpenInRoot read %q", b[:n])
	}

	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(rootfd)
	for _, p := range []string{"/abs/d1/d2", "/rel/d3"} {
		fd, err := mkdirAll(rootfd, p)
		if err == nil {
			unix.Close(fd)
		}
		// abs and rel dangle inside the root: creating through them is refused.
		if err == nil {
			t.Errorf("mkdirAll(%q) succeeded through a dangling symlink", p)
		}
	}
	must(t, os.MkdirAll(filepath.Join(root, outside), 0o755))
	fd, err := mkdirAll(rootfd, "/abs/d1/d2")
	must(t, err)
	unix.Close(fd)
	fd, err = mkfileAll(rootfd, "/abs/d1/f", 0o644)
	must(t, err)
	unix.Close(fd)
	for _, p := range []string{"d1", "d3"} {
		if _, err := os.Lstat(filepath.Join(outside, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s created outside the root (%v)", p, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, outside, "d1", "f")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("file mount point not created inside the root: %v", err)
	}
}
