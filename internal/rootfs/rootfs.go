package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/linux"
)

// Config describes the root filesystem to build. The same *Config must be
// passed to Prepare, Enter and Finish: Prepare leaves state in it.
type Config struct {
	Rootfs  string      // absolute host path of the bundle's rootfs (already resolved)
	Spec    *specs.Spec // mounts, linux.rootfsPropagation, root.readonly, masked/readonly paths, devices
	UserNS  bool        // inside a user namespace: no mknod, locked mount flags, fallbacks
	NoPivot bool        // --no-pivot: MS_MOVE + chroot instead of pivot_root
	Console string      // pty slave to bind onto /dev/console in Finish (a container path such as /dev/pts/N, or /proc/self/fd/N), or ""

	st *setup
}

// Prepare does everything before the pivot: propagation of "/", the rootfs
// bound onto itself, every config mount in order, and a default /dev.
func Prepare(c *Config) error {
	if c.Spec == nil {
		return errors.New("prepare rootfs: no spec")
	}
	if !filepath.IsAbs(c.Rootfs) {
		return fmt.Errorf("prepare rootfs: root.path %q: must be resolved to an absolute path", c.Rootfs)
	}
	prop, err := propagation(rootfsPropagation(c.Spec))
	if err != nil {
		return err
	}
	// The mode arguments below are exact (0755 dirs, device modes): the
	// umask is per process, and the init is single-threaded here.
	defer unix.Umask(unix.Umask(0))
	if err := prepareRoot(c.Rootfs, prop); err != nil {
		return fmt.Errorf("prepare rootfs: %w", err)
	}
	rootfd, err := unix.Open(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("prepare rootfs: open %s: %w", c.Rootfs, err)
	}
	s := &setup{c: c, rootfd: rootfd}
	c.st = s
	if err := s.mounts(); err != nil {
		unix.Close(rootfd)
		c.st = nil
		return err
	}
	return nil
}

// mounts performs the config mounts and fills /dev.
func (s *setup) mounts() error {
	mounts := s.c.Spec.Mounts
	setupDev := !bindsDev(mounts)
	if setupDev && !hasMount(mounts, "/dev") {
		if err := s.mount("default /dev", &defaultDev); err != nil {
			return err
		}
	}
	for i := range mounts {
		if err := s.mount(fmt.Sprintf("mounts[%d]", i), &mounts[i]); err != nil {
			return err
		}
	}
	if setupDev {
		return s.setupDev()
	}
	return nil
}

func rootfsPropagation(spec *specs.Spec) string {
	if spec.Linux == nil {
		return ""
	}
	return spec.Linux.RootfsPropagation
}

// prepareRoot sets the propagation of "/" and makes the rootfs a mount
// point, as pivot_root(2) requires. pivot_root also refuses a shared
// current root, new root or new-root parent (pivot_root(2), EINVAL), so a
// requested shared propagation is applied only after the pivot, by Enter,
// and "/" is made rslave meanwhile so no setup mount reaches the host.
func prepareRoot(rootfs string, prop uintptr) error {
	if prop&unix.MS_SHARED != 0 {
		prop = unix.MS_SLAVE | unix.MS_REC
	}
	if err := linux.Mount("", "/", "", prop, "", "/"); err != nil {
		return err
	}
	if prop&unix.MS_REC == 0 {
		// Only "/" itself changed: the mount holding the rootfs may still
		// be shared, and the bind below would join its peer group.
		if err := parentPrivate(rootfs); err != nil {
			return err
		}
	}
	return linux.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, "", rootfs)
}

// parentPrivate makes the mount that contains rootfs private if it is
// shared (runc's rootfsParentMountPrivate). It reads mountinfo, so it runs
// only on the rare non-recursive rootfsPropagation values.
func parentPrivate(rootfs string) error {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, rootfs, 0, unix.STATX_MNT_ID, &stx); err != nil {
		return wrapPath("statx", rootfs, err)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	id := strconv.FormatUint(stx.Mnt_id, 10) + " "
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, id) {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 7 || !strings.Contains(line, " shared:") {
			return nil
		}
		mp := linux.UnescapeMountinfo(fields[4])
		return linux.Mount("", mp, "", unix.MS_PRIVATE, "", mp)
	}
	return sc.Err()
}

// Enter makes the rootfs the process's "/". With pivot_root the old root
// is detached, so nothing of the host's tree stays reachable.
func Enter(c *Config) error {
	rootfd := -1
	if c.st != nil {
		rootfd, c.st.rootfd = c.st.rootfd, -1
	}
	if rootfd < 0 {
		fd, err := unix.Open(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("enter rootfs: open %s: %w", c.Rootfs, err)
		}
		rootfd = fd
	}
	defer unix.Close(rootfd)
	var err error
	if c.NoPivot {
		err = moveRoot(rootfd, c.Rootfs)
	} else {
		err = pivotRoot(rootfd, c.Rootfs)
	}
	if err != nil {
		return err
	}
	// Applied again to the new "/", as runc does: in Prepare it applied to
	// the host's "/" copy, and shared could not be set before the pivot.
	if p := rootfsPropagation(c.Spec); p != "" {
		prop, err := propagation(p)
		if err != nil {
			return err
		}
		if err := linux.Mount("", "/", "", prop, "", "/"); err != nil {
			return fmt.Errorf("linux.rootfsPropagation %q: %w", p, err)
		}
	}
	return nil
}

// pivotRoot uses pivot_root(".", ".") (pivot_root(2) NOTES): it needs no
// put_old directory in the image, which could be read-only. The old root
// ends up stacked on the new one; it is made rslave first so that
// detaching it cannot propagate an unmount to the host.
func pivotRoot(rootfd int, rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pivot_root: open /: %w", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Fchdir(rootfd); err != nil {
		return fmt.Errorf("pivot_root: chdir %s: %w", rootfs, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("pivot_root: chdir to old root: %w", err)
	}
	if err := linux.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, "", "old root"); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("pivot_root: unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("pivot_root: chdir /: %w", err)
	}
	return nil
}

// moveRoot is --no-pivot, for roots pivot_root cannot leave (an initramfs):
// the rootfs mount is moved over "/" and chrooted into. The host's mounts
// stay in the namespace, under the new root; runc additionally hides host
// procfs/sysfs mounts there, which this does not (see package doc).
func moveRoot(rootfd int, rootfs string) error {
	if err := unix.Fchdir(rootfd); err != nil {
		return fmt.Errorf("move root: chdir %s: %w", rootfs, err)
	}
	if err := linux.Mount(".", "/", "", unix.MS_MOVE, "", "/"); err != nil {
		return fmt.Errorf("move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("move root: chroot %s: %w", rootfs, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("move root: chdir /: %w", err)
	}
	return nil
}
