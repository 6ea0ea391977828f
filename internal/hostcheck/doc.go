// Package hostcheck answers `zviz check` and `zviz policy`: what this host
// supports (user namespaces, subordinate ids and their helpers, Landlock,
// seccomp user notification, cgroup v2 delegation, the systemd bus,
// AppArmor's user-namespace restriction) and what zviz will therefore do
// (full or chdir-only isolation, limits through systemd, cgroupfs or none,
// the Landlock protections lost), plus the presentation of a profile's
// syscall lists and compiled program.
//
// It sits beside internal/container, below cmd/zviz: it reads the host and
// the mechanism packages (userns, landlock, seccomp) and never changes
// anything. The probes that need a fresh process (can a new user namespace
// mount? can a notification listener be made?) run in a child: the zviz
// binary re-executed as `zviz check --probe-userns|--probe-mountns|
// --probe-notify` (RunProbe is that child's whole job), started with the
// clone flags under test, so that nothing in the caller is touched and
// nothing is cached that could go stale (issue 6, "Detection before setup").
//
// Every path is a field of Host, so the unit tests run against fake
// /proc/sys files, mountinfo, cgroup trees and subuid files in a temporary
// directory.
//
// # Exit status
//
// Report.Runnable is false, and `zviz check` exits 1, only when no mode of
// zviz can run on this host: seccomp filters are unavailable (every mode
// installs one), or the filesystem cannot be isolated at all (no mount
// namespace and no Landlock for the chdir-only fallback). Anything weaker
// that zviz works around (no subordinate ids, no limits, an old Landlock ABI,
// no user notification) is a warn line and exit 0; a profile that requires
// the missing layer is named in the "profiles" conclusion.
package hostcheck
