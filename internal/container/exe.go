package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The init runs the zviz binary inside the container until it execs the
// workload, and a malicious image can make the workload's interpreter
// /proc/self/exe to run it again there. A process in the container could
// then reopen the binary through /proc/PID/exe and overwrite it, and the
// next zviz run on the host would run the attacker's code (CVE-2019-5736).
//
// The kernel stops that when nobody in the container may write the file:
// the container's ids are mapped to the caller and its subordinate ids, so
// a root-owned binary (the installed case) is safe as it is and costs
// nothing. When the container could write it (zviz run by real root
// without a user namespace, or a binary owned by the caller who is mapped
// inside), the init is started from a sealed memfd copy instead, as runc
// does; the copy costs about a millisecond.

// In chdir-only isolation (isolation.go) no copy is made: Landlock grants
// write access only beneath the rootfs, the writable bind sources and a
// few devices, and it checks the file itself, however it is reached
// (/proc/PID/exe included), so the binary can only be written where the
// workload could write it anyway. That also keeps the init's exec path a
// name AppArmor can attach to (apparmor/doc.go, "The sealed memfd copy").

// initExecutable returns the path the init is exec'd from, or the sealed
// copy to pass to it (see memfdPath), which the caller closes once the
// init has started.
func initExecutable(s *specs.Spec, plan *nsPlan) (string, *os.File, error) {
	if plan.chdirOnly {
		return "/proc/self/exe", nil, nil
	}
	// A user namespace joined by path maps, for a caller that is not
	// root, only ids the caller could map itself: as the default maps,
	// whatever mappings the config gives (they do not apply, see
	// adoptJoinedMaps).
	newUser := plan.newUser || plan.joinsUser() && os.Geteuid() != 0
	if plan.joinsUser() {
		s = &specs.Spec{Linux: &specs.Linux{}}
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", nil, fmt.Errorf("open zviz binary: %w", err)
	}
	defer exe.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(exe.Fd()), &st); err != nil {
		return "", nil, fmt.Errorf("stat zviz binary: %w", err)
	}
	inUserNS := newUser || !initialUserNS()
	if inUserNS && !writableInside(&st, s) {
		return "/proc/self/exe", nil, nil
	}
	mfd, err := sealedCopy(exe, st.Size)
	if err != nil {
		return "", nil, err
	}
	// The caller passes it to the child, which execs it as its own
	// /proc/self/fd/N (memfdPath): our /proc/PID/fd would need ptrace
	// access to us, which a child already in its new, unmapped user
	// namespace does not have.
	return "", mfd, nil
}

// memfdPath is the path the init is exec'd from when its binary is the
// sealed copy, passed to it as descriptor fd.
func memfdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// writableInside says whether some id the container has may write the
// binary: its owner or group is mapped into the container's user
// namespace with the write bit, or it is world-writable.
func writableInside(st *unix.Stat_t, s *specs.Spec) bool {
	if st.Mode&0o002 != 0 {
		return true
	}
	uids, gids := s.Linux.UIDMappings, s.Linux.GIDMappings
	if len(uids) == 0 {
		// Default maps: the caller and its subordinate ids.
		return st.Mode&0o200 != 0 && int(st.Uid) == os.Geteuid() ||
			st.Mode&0o020 != 0 && int(st.Gid) == os.Getegid()
	}
	// Owned by an id outside our user namespace (root's binary seen from
	// rootless podman's): it shows as the overflow id, which the maps may
	// well name (--userns=keep-id), but no id of the container owns it.
	ownerIn, groupIn := st.Uid != overflowID("uid") || initialUserNS(), st.Gid != overflowID("gid") || initialUserNS()
	return st.Mode&0o200 != 0 && ownerIn && mapped(uids, st.Uid) || st.Mode&0o020 != 0 && groupIn && mapped(gids, st.Gid)
}

// overflowID is the id unmapped owners show as (/proc/sys/kernel/overflowuid
// or overflowgid; user_namespaces(7), "Unmapped user and group IDs").
func overflowID(kind string) uint32 {
	b, err := os.ReadFile("/proc/sys/kernel/overflow" + kind)
	if err != nil {
		return 65534
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 65534
	}
	return uint32(n)
}

func mapped(maps []specs.LinuxIDMapping, host uint32) bool {
	for _, m := range maps {
		if host >= m.HostID && host-m.HostID < m.Size {
			return true
		}
	}
	return false
}

// sealedCopy copies the binary into a memfd that can never be written
// again (memfd_create(2), F_SEAL_*).
func sealedCopy(exe *os.File, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate("zviz", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("copy zviz binary: memfd_create: %w", err)
	}
	mfd := os.NewFile(uintptr(fd), "zviz-memfd")
	for off := int64(0); off < size; {
		n, err := unix.Sendfile(fd, int(exe.Fd()), nil, int(size-off))
		if err != nil || n == 0 {
			mfd.Close()
			return nil, fmt.Errorf("copy zviz binary to memfd: %v (%d of %d bytes)", err, off, size)
		}
		off += int64(n)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		mfd.Close()
		return nil, fmt.Errorf("seal zviz binary copy: %w", err)
	}
	return mfd, nil
}
