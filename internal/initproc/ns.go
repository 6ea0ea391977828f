package initproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
)

// joinable are the namespaces a running Go process can enter with setns on
// one thread. user and mnt refuse a multithreaded caller (setns(2)), and pid
// only applies to children: package nsenter's constructor entered those
// before the Go runtime started.
var joinable = map[specs.LinuxNamespaceType]int{
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

func joinNamespaces(join map[specs.LinuxNamespaceType]string) error {
	for typ, path := range join {
		flag, ok := joinable[typ]
		if !ok {
			return fmt.Errorf("linux.namespaces: joining a %s namespace by path is not supported", typ)
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace %s: %w", typ, path, err)
		}
		err = unix.Setns(fd, flag)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", typ, path, err)
		}
	}
	return nil
}

// becomeRoot switches to uid and gid 0 of our user namespace when they are
// mapped, as runc's nsexec does once the maps are written. The init keeps
// the ids it was cloned with otherwise, which need not be mapped at all
// (real root with uidMappings {0, 100000, 65536} shows as the overflow id):
// files it creates would then belong to no id (EOVERFLOW). Without a
// mapped 0 (zviz sandbox maps the caller to itself) the ids are kept.
// syscall's set*id act on every thread.
func becomeRoot(inUserNS bool) error {
	if !inUserNS {
		return nil
	}
	if os.Getgid() != 0 && idMapped(0, "/proc/self/gid_map") {
		if err := unix.Setresgid(0, 0, 0); err != nil {
			return fmt.Errorf("become gid 0 in the user namespace: %w", err)
		}
	}
	if os.Getuid() != 0 && idMapped(0, "/proc/self/uid_map") {
		if err := unix.Setresuid(0, 0, 0); err != nil {
			return fmt.Errorf("become uid 0 in the user namespace: %w", err)
		}
	}
	return nil
}

// idMapped reports whether id (as seen inside) is in a uid_map/gid_map.
func idMapped(id int, mapFile string) bool {
	b, err := readSmall(mapFile)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(b, "\n") {
		var inside, outside, count uint64
		if _, err := fmt.Sscan(l, &inside, &outside, &count); err == nil && uint64(id) >= inside && uint64(id)-inside < count {
			return true
		}
	}
	return false
}

// unshareCgroup makes the container's cgroup namespace. Unlike a user or
// mount namespace, a cgroup namespace can be unshared by one thread of a
// multithreaded process; the main thread, which execs, is the one.
func unshareCgroup(want bool) error {
	if !want {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("unshare cgroup namespace: %w", err)
	}
	return nil
}

func setHostname(b *wire.Bootstrap) error {
	if b.Spec.Hostname != "" {
		if !b.NewUTS {
			return fmt.Errorf("hostname %q: needs a new uts namespace", b.Spec.Hostname)
		}
		if err := unix.Sethostname([]byte(b.Spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", b.Spec.Hostname, err)
		}
	}
	if b.Spec.Domainname != "" {
		if !b.NewUTS {
			return fmt.Errorf("domainname %q: needs a new uts namespace", b.Spec.Domainname)
		}
		if err := unix.Setdomainname([]byte(b.Spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", b.Spec.Domainname, err)
		}
	}
	return nil
}

// loopbackUp brings lo up in a new network namespace, which the kernel
// creates with lo down and nothing else.
func loopbackUp(newNet bool) error {
	if !newNet {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: set flags: %w", err)
	}
	return nil
}

// writeSysctls writes linux.sysctl through the container's /proc/sys. Keys
// may use dots or slashes; ".." is refused so a key cannot leave /proc/sys.
func writeSysctls(l *specs.Linux) error {
	if l == nil {
		return nil
	}
	for k, v := range l.Sysctl {
		rel := strings.ReplaceAll(k, ".", "/")
		p := filepath.Join("/proc/sys", rel)
		if !strings.HasPrefix(p, "/proc/sys/") || strings.Contains(k, "..") {
			return fmt.Errorf("linux.sysctl %q: invalid key", k)
		}
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("set linux.sysctl %q to %q: %w", k, v, unwrapPath(err))
		}
	}
	return nil
}

func readSmall(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
