package rootfs

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/linux"
)

// Default mounts, as in runc's spec example and libcontainer defaults.
var (
	defaultDev = specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
		Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}
	defaultPts = specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
		Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}
	defaultShm = specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
		Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}
)

// device is one node to create under /dev.
type device struct {
	path         string // container path, under /dev
	typ          uint32 // S_IFCHR, S_IFBLK or S_IFIFO
	major, minor int64
	perm         uint32
	uid, gid     uint32
}

// defaultDevices is the OCI runtime-spec's list of devices every container
// gets ("Default Devices"); nothing else from the host is reachable.
var defaultDevices = []device{
	{path: "/dev/null", typ: unix.S_IFCHR, major: 1, minor: 3, perm: 0o666},
	{path: "/dev/zero", typ: unix.S_IFCHR, major: 1, minor: 5, perm: 0o666},
	{path: "/dev/full", typ: unix.S_IFCHR, major: 1, minor: 7, perm: 0o666},
	{path: "/dev/random", typ: unix.S_IFCHR, major: 1, minor: 8, perm: 0o666},
	{path: "/dev/urandom", typ: unix.S_IFCHR, major: 1, minor: 9, perm: 0o666},
	{path: "/dev/tty", typ: unix.S_IFCHR, major: 5, minor: 0, perm: 0o666},
}

// devSymlinks are the /dev links of the runtime-spec ("Dev symbolic links").
var devSymlinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
}

// bindsDev reports whether the config bind-mounts something onto /dev: then
// /dev is the user's business and no nodes are created (as runc).
func bindsDev(mounts []specs.Mount) bool {
	for _, m := range mounts {
		if filepath.Clean("/"+m.Destination) != "/dev" {
			continue
		}
		if m.Type == "bind" || m.Type == "rbind" {
			return true
		}
		for _, o := range m.Options {
			if o == "bind" || o == "rbind" {
				return true
			}
		}
	}
	return false
}

func hasMount(mounts []specs.Mount, dst string) bool {
	for _, m := range mounts {
		if filepath.Clean("/"+m.Destination) == dst {
			return true
		}
	}
	return false
}

// setupDev fills the container's /dev: nodes, symlinks, devpts, shm.
func (s *setup) setupDev() error {
	devs, err := devices(s.c.Spec)
	if err != nil {
		return err
	}
	devfd, err := mkdirAll(s.rootfd, "/dev")
	if err != nil {
		return fmt.Errorf("create devices: %w", err)
	}
	defer unix.Close(devfd)
	for _, d := range devs {
		if err := s.createDevice(devfd, &d); err != nil {
			return fmt.Errorf("create device %s: %w", d.path, err)
		}
	}
	for _, l := range devSymlinks {
		// An existing entry is a config device of that name: it wins.
		if err := unix.Symlinkat(l[1], devfd, l[0]); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink /dev/%s -> %s: %w", l[0], l[1], err)
		}
	}
	mounts := s.c.Spec.Mounts
	if !hasMount(mounts, "/dev/pts") {
		if err := s.mount("default /dev/pts", &defaultPts); err != nil {
			return err
		}
	}
	if !hasMount(mounts, "/dev/shm") {
		if err := s.mount("default /dev/shm", &defaultShm); err != nil {
			return err
		}
	}
	return nil
}

// devices merges the default devices with linux.devices; a config entry
// replaces a default one with the same path.
func devices(spec *specs.Spec) ([]device, error) {
	if spec.Linux == nil || len(spec.Linux.Devices) == 0 {
		return defaultDevices, nil
	}
	devs := make([]device, 0, len(defaultDevices)+len(spec.Linux.Devices))
	byPath := map[string]int{}
	for _, d := range defaultDevices {
		byPath[d.path] = len(devs)
		devs = append(devs, d)
	}
	for i, cd := range spec.Linux.Devices {
		d, err := configDevice(&cd)
		if err != nil {
			return nil, fmt.Errorf("linux.devices[%d]: %w", i, err)
		}
		if j, ok := byPath[d.path]; ok {
			devs[j] = d
			continue
		}
		byPath[d.path] = len(devs)
		devs = append(devs, d)
	}
	return devs, nil
}

func configDevice(cd *specs.LinuxDevice) (device, error) {
	p := filepath.Clean("/" + cd.Path)
	if !strings.HasPrefix(p, "/dev/") {
		return device{}, fmt.Errorf("path %q: must be under /dev", cd.Path)
	}
	d := device{path: p, major: cd.Major, minor: cd.Minor, perm: 0o666}
	switch cd.Type {
	case "c", "u":
		d.typ = unix.S_IFCHR
	case "b":
		d.typ = unix.S_IFBLK
	case "p":
		d.typ = unix.S_IFIFO
	default:
		return device{}, fmt.Errorf("type %q: must be one of c, u, b, p", cd.Type)
	}
	if cd.FileMode != nil {
		d.perm = uint32(cd.FileMode.Perm())
	}
	if cd.UID != nil {
		d.uid = *cd.UID
	}
	if cd.GID != nil {
		d.gid = *cd.GID
	}
	return d, nil
}

// createDevice makes one node. mknod(2) of a device needs CAP_MKNOD in the
// initial user namespace, and nodes on a file system mounted in a user
// namespace are unusable anyway (SB_I_NODEV); so in a user namespace the
// host's node is bind-mounted onto an empty file instead, as runc does.
// FIFOs need no privilege and are always made with mknod.
func (s *setup) createDevice(devfd int, d *device) error {
	dirfd, name := devfd, strings.TrimPrefix(d.path, "/dev/")
	if strings.Contains(name, "/") {
		fd, err := mkdirAll(s.rootfd, filepath.Dir(d.path))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dirfd, name = fd, filepath.Base(d.path)
	}
	if s.c.UserNS && d.typ != unix.S_IFIFO {
		if err := unix.Mknodat(dirfd, name, unix.S_IFREG|d.perm, 0); err != nil && err != unix.EEXIST {
			return err
		}
		// dirfd is a directory this setup created or resolved in root, and
		// nothing else runs in the container yet: name is the file just made.
		return linux.Mount(d.path, procFD(dirfd)+"/"+name, "", unix.MS_BIND, "", d.path)
	}
	dev := int(unix.Mkdev(uint32(d.major), uint32(d.minor)))
	if err := unix.Mknodat(dirfd, name, d.typ|d.perm, dev); err != nil {
		return err
	}
	if d.uid != 0 || d.gid != 0 {
		return unix.Fchownat(dirfd, name, int(d.uid), int(d.gid), unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}
