// Package rootfs builds the container's root filesystem from inside the
// container's init: it runs in the init's fresh mount namespace (and
// possibly a user namespace), on one locked OS thread, between the
// namespace setup and the capability/Landlock/seccomp steps of
// internal/initproc, which calls, in order:
//
//	Prepare  propagation of "/", rootfs bound onto itself, config mounts,
//	         default /dev with its nodes, symlinks, devpts, shm, console
//	Enter    pivot_root(2) into the rootfs (or MS_MOVE + chroot with --no-pivot)
//	Finish   readonlyPaths, maskedPaths, read-only root
//
// Before Enter every path inside the rootfs is resolved with openat2(2)
// RESOLVE_IN_ROOT and mounted through its /proc/self/fd handle, so a
// symlink planted in the image cannot redirect a mount to the host
// (CVE-2021-30465). After Enter "/" is the rootfs, so plain paths are safe.
//
// Semantics follow runc's libcontainer/rootfs_linux.go. Deliberate
// differences are noted where they occur; the main ones: "tmpcopyup" and
// idmapped mounts are not supported, cgroup mounts are always cgroup v2,
// readonlyPaths are made read-only recursively, and --no-pivot does not
// hide the host's procfs/sysfs mounts left under the moved root.
//
// Needs Linux 5.6 (openat2); recursive mount attributes and the user
// namespace sysfs/cgroup fallbacks need 5.12 (mount_setattr).
package rootfs
