package rootfs

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/linux"
)

// Finish runs after Enter: readonlyPaths, maskedPaths, the console, then a
// read-only /dev and root if asked. Paths are plain strings here: "/" is the rootfs,
// so a symlink in the image can no longer point outside it.
func Finish(c *Config) error {
	if c.Spec == nil {
		return errors.New("finish rootfs: no spec")
	}
	if l := c.Spec.Linux; l != nil {
		for i, p := range l.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return fmt.Errorf("linux.readonlyPaths[%d] %q: %w", i, p, err)
			}
		}
		for i, p := range l.MaskedPaths {
			if err := maskPath(p); err != nil {
				return fmt.Errorf("linux.maskedPaths[%d] %q: %w", i, p, err)
			}
		}
	}
	if c.Console != "" {
		if err := bindConsole(c.Console); err != nil {
			return err
		}
	}
	if c.st != nil && c.st.devRO {
		if err := makeReadonly("/dev", unix.AT_RECURSIVE); err != nil {
			return fmt.Errorf("mounts: /dev read-only: %w", err)
		}
	}
	if c.Spec.Root != nil && c.Spec.Root.Readonly {
		if err := makeReadonly("/", 0); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	return nil
}

// readonlyPath binds p onto itself and makes the copy read-only. Unlike
// runc, the whole subtree is made read-only (a later submount such as
// binfmt_misc under /proc/sys would otherwise stay writable). A missing
// path is not an error (runtime-spec).
func readonlyPath(p string) error {
	err := linux.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, "", p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	return makeReadonly(p, unix.AT_RECURSIVE)
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over a
// directory (runc's maskPath: the bind fails with ENOTDIR on a directory).
// A missing path is not an error.
func maskPath(p string) error {
	err := linux.Mount("/dev/null", p, "", unix.MS_BIND, "", p)
	if errors.Is(err, unix.ENOTDIR) {
		err = linux.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "", p)
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// makeReadonly sets MOUNT_ATTR_RDONLY on the mount at p. mount_setattr(2)
// changes only that bit, so the flags locked by a user namespace (nosuid,
// nodev, noexec, atime) are kept without reading them. Before Linux 5.12
// it falls back to runc's way: a bind remount with the flags from
// statfs(2) ORed in (top mount only).
func makeReadonly(p string, flags uint) error {
	err := unix.MountSetattr(unix.AT_FDCWD, p, flags, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("mount_setattr %s read-only: %w", p, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", p, err)
	}
	ms := unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | lockedFlags(st.Flags, 0, 0)
	return linux.Mount("", p, "", ms, "", p)
}

// bindConsole binds the pty slave onto /dev/console (runtime-spec
// process.terminal). It runs after the pivot because the slave normally
// lives in the container's own devpts (/dev/pts/N); a /proc/self/fd/N path
// works as well. The file is created first as a mount point.
func bindConsole(slave string) error {
	err := unix.Mknodat(unix.AT_FDCWD, "/dev/console", unix.S_IFREG|0o666, 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	return linux.Mount(slave, "/dev/console", "", unix.MS_BIND, "", "/dev/console")
}
