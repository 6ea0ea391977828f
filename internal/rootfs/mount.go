package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/linux"
)

// setup is the state Prepare hands on to Enter and Finish.
type setup struct {
	c      *Config
	rootfd int  // O_PATH handle on the rootfs after it was bind-mounted onto itself
	devRO  bool // the config's /dev is read-only: remounted so in Finish, after the nodes exist
}

// procWhitelist are the only paths inside /proc that a config mount may
// cover: the files lxcfs emulates so that top/free see the container's
// limits (same list as runc's checkProcMount). Covering anything else in
// procfs (/proc/self/attr/current, /proc/sys/...) is how CVE-2019-16884 and
// CVE-2019-19921 switched off LSM and sysctl protections.
var procWhitelist = []string{
	"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
	"/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
	"/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory",
	"/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled",
}

// mount performs one mount; label names it in errors ("mounts[3]").
func (s *setup) mount(label string, m *specs.Mount) error {
	o, err := parseOptions(m.Options)
	if err != nil {
		return fmt.Errorf("%s.options: %w", label, err)
	}
	if m.Destination == "" {
		return fmt.Errorf("%s.destination: must not be empty", label)
	}
	// runc treats a relative destination as relative to "/"; so do we.
	dst := filepath.Clean("/" + m.Destination)
	if m.Type == "proc" {
		// A container's /proc is always nosuid, nodev and noexec, whatever
		// the config says (SPEC.md, enforcement layer 2): nothing there is
		// meant to be executed or to be a device.
		o.flags |= unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	}
	if m.Type == "proc" && dst != "/proc" {
		return fmt.Errorf("%s.destination %q: proc may only be mounted on /proc", label, m.Destination)
	}
	if m.Type == "bind" || m.Type == "rbind" {
		o.flags |= unix.MS_BIND
	}
	if dst == "/" {
		return s.mountRoot(label, m, &o)
	}
	if dst == "/dev" && o.flags&(unix.MS_BIND|unix.MS_RDONLY) == unix.MS_RDONLY {
		// The nodes are created after this mount; runc too makes a
		// read-only /dev read-only only at the end (Finish).
		o.flags &^= unix.MS_RDONLY
		s.devRO = true
	}
	fd, err := s.resolveDest(m, dst, o.flags&unix.MS_BIND != 0)
	if err != nil {
		return fmt.Errorf("%s.destination %q: %w", label, m.Destination, err)
	}
	defer unix.Close(fd)
	if err := s.mountAt(fd, m, dst, &o); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

// resolveDest opens (creating if missing) the mount point inside the root
// and refuses a destination that resolved into procfs outside procWhitelist.
func (s *setup) resolveDest(m *specs.Mount, dst string, bind bool) (int, error) {
	var fd int
	var err error
	if bind && !isDir(m.Source) {
		fd, err = mkfileAll(s.rootfd, dst, 0o644)
	} else {
		fd, err = mkdirAll(s.rootfd, dst)
	}
	if err != nil {
		return -1, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return -1, wrapPath("statfs", dst, err)
	}
	// A new /proc may cover an old one (zviz sandbox starts from the host's
	// tree); anything else inside procfs is checked.
	if st.Type == unix.PROC_SUPER_MAGIC && !(dst == "/proc" && m.Type == "proc") {
		// Compared with the kernel's name for the root, so that a
		// non-canonical Rootfs cannot make the check miss.
		real, err := os.Readlink(procFD(fd))
		root, rerr := os.Readlink(procFD(s.rootfd))
		inRootfs, ok := strings.CutPrefix(real, root)
		ok = ok && rerr == nil
		if err != nil || !ok || !slices.Contains(procWhitelist, inRootfs) {
			unix.Close(fd)
			return -1, fmt.Errorf("resolves to %q inside procfs: only %s may be covered", real, strings.Join(procWhitelist, ", "))
		}
	}
	return fd, nil
}

// mountRoot covers the rootfs itself with a bind mount (zviz sandbox binds
// the host's "/" there). Later destinations must resolve in the new mount,
// not in the directory under it, so the root handle is reopened by path,
// which lands on the topmost mount.
func (s *setup) mountRoot(label string, m *specs.Mount, o *mountOpts) error {
	if o.flags&unix.MS_BIND == 0 {
		return fmt.Errorf("%s.destination \"/\": only a bind mount may cover the container's root", label)
	}
	if err := linux.Mount(m.Source, procFD(s.rootfd), "", unix.MS_BIND|o.flags&unix.MS_REC, "", "/"); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	fd, err := unix.Open(s.c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: reopen %s: %w", label, s.c.Rootfs, err)
	}
	unix.Close(s.rootfd)
	s.rootfd = fd
	if err := s.after("/", o); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

// isDir reports whether a bind source is a directory. A missing source is
// treated as a directory so that the mount itself reports ENOENT with the
// full mount error.
func isDir(src string) bool {
	fi, err := os.Stat(src)
	return err != nil || fi.IsDir()
}

// mountAt mounts m onto the handle fd, with the fallbacks a user namespace
// needs for sysfs, cgroup, mqueue and devpts.
func (s *setup) mountAt(fd int, m *specs.Mount, dst string, o *mountOpts) error {
	if o.flags&unix.MS_BIND != 0 {
		return s.bind(fd, m.Source, dst, o)
	}
	data := strings.Join(o.data, ",")
	src, fstype := m.Source, m.Type
	if fstype == "cgroup" {
		// Only cgroup v2 is offered: on a hybrid host the v1 hierarchies
		// belong to the machine and must never be touched.
		src, fstype = "cgroup2", "cgroup2"
	}
	err := linux.Mount(src, procFD(fd), fstype, o.flags, data, dst)
	if err != nil && m.Type == "devpts" && strings.Contains(data, "gid=") {
		// In a user namespace gid 5 (tty) is often unmapped: devpts then
		// fails with EINVAL (devpts: "gid=" must map). Drop it, as crun does.
		data = dropOption(data, "gid=")
		err = linux.Mount(src, procFD(fd), fstype, o.flags, data, dst)
	}
	if err != nil {
		return s.fallback(fd, m, dst, o, err)
	}
	return s.after(dst, o)
}

// fallback handles file systems a user namespace may not mount itself by
// binding the host's instance read-only instead. The host's copy is only
// ever bound, never written to or unmounted.
func (s *setup) fallback(fd int, m *specs.Mount, dst string, o *mountOpts, err error) error {
	var src string
	switch {
	case m.Type == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)):
		// sysfs(5) may only be mounted by the owner of the network
		// namespace; with a shared netns that is not us. EBUSY: the host's
		// sysfs of this netns is already mounted right there (zviz sandbox
		// binds the host's tree first); runc falls back on both errors.
		src = "/sys"
	case m.Type == "cgroup" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)):
		// cgroup2 needs a cgroup namespace owned by our user namespace.
		src = "/sys/fs/cgroup"
		var st unix.Statfs_t
		if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			src = "/sys/fs/cgroup/unified"
		}
	case m.Type == "mqueue" && errors.Is(err, unix.EPERM):
		// mqueue needs an IPC namespace owned by our user namespace;
		// the host's /dev/mqueue, if mounted, is the next best thing.
		src = "/dev/mqueue"
	default:
		return err
	}
	bo := mountOpts{flags: unix.MS_BIND | unix.MS_REC, prop: o.prop,
		recSet: unix.MOUNT_ATTR_RDONLY | mountAttrs(o.flags)}
	if m.Type == "mqueue" {
		bo.recSet = mountAttrs(o.flags)
	}
	if berr := s.bind(fd, src, dst, &bo); berr != nil {
		return fmt.Errorf("%w (fallback: %w)", err, berr)
	}
	return nil
}

// mountAttrs converts the per-mount MS_* flags to MOUNT_ATTR_* bits.
func mountAttrs(flags uintptr) uint64 {
	var a uint64
	for ms, attr := range map[uintptr]uint64{
		unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
		unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
	} {
		if flags&ms != 0 {
			a |= attr
		}
	}
	return a
}

func dropOption(data, prefix string) string {
	opts := strings.Split(data, ",")
	opts = slices.DeleteFunc(opts, func(o string) bool { return strings.HasPrefix(o, prefix) })
	return strings.Join(opts, ",")
}

// bind bind-mounts src onto the handle fd. mount(2) ignores every flag
// but MS_REC with MS_BIND, so the others are applied by a second
// MS_REMOUNT|MS_BIND call, on the new mount (mount(2), "Creating a bind
// mount").
func (s *setup) bind(fd int, src, dst string, o *mountOpts) error {
	if err := linux.Mount(src, procFD(fd), "", unix.MS_BIND|o.flags&unix.MS_REC, "", dst); err != nil {
		return err
	}
	return s.after(dst, o)
}

// after applies what needs the new mount itself (not the directory under
// it, which is what the O_PATH handle still points at): the bind remount,
// propagation changes and recursive attributes.
func (s *setup) after(dst string, o *mountOpts) error {
	remount := o.flags&unix.MS_BIND != 0 && o.flags&^(unix.MS_BIND|unix.MS_REC) != 0
	if !remount && len(o.prop) == 0 && !o.hasRec() {
		return nil
	}
	fd, err := openPath(s.rootfd, dst)
	if err != nil {
		return fmt.Errorf("reopen %s after mount: %w", dst, err)
	}
	defer unix.Close(fd)
	if remount {
		if err := remountBind(fd, dst, o.flags&^unix.MS_REC, o.clear); err != nil {
			return err
		}
	}
	for _, p := range o.prop {
		if err := linux.Mount("", procFD(fd), "", p, "", dst); err != nil {
			return err
		}
	}
	if o.hasRec() {
		return setattr(fd, dst, unix.AT_RECURSIVE, o.attr())
	}
	return nil
}

// remountBind changes the per-mount flags of the bind mount at fd. In a
// user namespace the flags the source mount had when it was handed to us
// are locked (mount_namespaces(7), "Restrictions on mount namespaces"):
// a remount that would clear them fails with EPERM. Then, like runc, retry
// with the source's nosuid/nodev/noexec/ro/atime flags added back, except
// those the config explicitly cleared.
func remountBind(fd int, dst string, flags, clear uintptr) error {
	flags |= unix.MS_REMOUNT | unix.MS_BIND
	err := linux.Mount("", procFD(fd), "", flags, "", dst)
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if serr := unix.Fstatfs(fd, &st); serr != nil {
		return err
	}
	return linux.Mount("", procFD(fd), "", flags|lockedFlags(st.Flags, flags, clear), "", dst)
}

// lockedFlags maps statfs(2) f_flags to the mount(2) flags a bind remount
// must keep. The source's atime mode is kept only when the config asked
// for none.
func lockedFlags(stFlags int64, flags, clear uintptr) uintptr {
	const atime = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_NODIRATIME
	var l uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME,
		unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if stFlags&st != 0 {
			l |= ms
		}
	}
	if flags&atime != 0 {
		l &^= atime
	}
	return l &^ clear
}

// setattr is mount_setattr(2) on the mount at fd, reported as a mount error.
func setattr(fd int, dst string, flags uint, attr *unix.MountAttr) error {
	if err := unix.MountSetattr(fd, "", flags|unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("mount_setattr %s (set %#x, clear %#x, flags %#x): %w", dst, attr.Attr_set, attr.Attr_clr, flags, err)
	}
	return nil
}
