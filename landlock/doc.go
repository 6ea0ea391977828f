// Package landlock is zviz's Landlock layer (SPEC.md, "Enforcement layers",
// layer 4): it turns a small list of paths, ports and switches into one
// Landlock domain on the calling thread, and reports honestly how much of it
// the running kernel could enforce.
//
// It sits below the init: internal/initproc calls [Apply] on its locked OS
// thread after the mounts and pivot_root and before capabilities and seccomp,
// then execs the workload from that same thread. The chdir-only fallback of
// issue 6 uses it the same way with host paths. The package imports nothing
// from zviz; rulesets, ABI tables and rule validation come from
// github.com/landlock-lsm/go-landlock.
//
// References below are to the kernel's Documentation/userspace-api/landlock.rst
// ("landlock.rst").
//
// # Ordering
//
// Landlock must come after the mounts: "Threads sandboxed with filesystem
// restrictions cannot modify filesystem topology, whether via mount(2) or
// pivot_root(2)" (landlock.rst, "Filesystem topology modification").
// landlock_restrict_self(2) needs no_new_privs or CAP_SYS_ADMIN in the
// thread's user namespace (landlock.rst, "Enforcing a ruleset"); [Apply]
// sets no_new_privs itself, since zviz always sets it anyway (SPEC.md layer
// 3) and nothing between Landlock and execve relies on gaining privileges
// through execve. The init's later no_new_privs step is then a no-op.
//
// # One thread
//
// A Landlock domain belongs to a thread's credentials, and
// landlock_restrict_self(2) without LANDLOCK_RESTRICT_SELF_TSYNC (ABI 8)
// restricts only the calling thread: "one process's thread may apply
// Landlock rules to itself, but they will not be automatically applied to
// other sibling threads", while its clone(2) children and the program it
// execs inherit them (landlock.rst, "Inheritance").
// That is all the container needs: the init execs the workload from the
// restricted thread. [Apply] therefore locks the calling goroutine to its OS
// thread and never unlocks it, so that the Go runtime can never hand the
// restricted thread to another goroutine and terminates it if the goroutine
// exits (runtime.LockOSThread). We do not use go-landlock's Config.Restrict,
// which restricts every thread with libpsx signals (ABI < 8) and does not say
// which access rights it ended up enforcing.
//
// # What the rules mean
//
// The ruleset handles (denies unless a rule grants) every filesystem right
// up to ABI 5, TCP bind/connect (ABI 4) when [Rules.RestrictNetwork] is set,
// and abstract unix socket and signal scoping (ABI 6) when [Rules.Scope] is
// set. Rules are "path beneath" rules: a right granted on a directory holds
// for everything under it, mounts included (landlock.rst, "Landlock rules"
// and "Bind mounts and OverlayFS").
//
//   - ReadExec: execute, read_file, read_dir.
//   - ReadOnly: read_file, read_dir.
//   - ListOnly: read_dir.
//   - Writable: ReadExec plus write_file, truncate (ABI 3), remove_file,
//     remove_dir, make_reg, make_dir, make_sym, make_fifo, make_sock, refer
//     (ABI 2) and ioctl_dev (ABI 5). So symlinks, FIFOs, unix sockets,
//     cross-directory rename(2) and link(2), and terminal ioctls on writable
//     device files keep working. make_char and make_block are never granted:
//     a container has no business creating device nodes.
//
// Landlock checks at open(2), so files the init already holds (stdio, the
// console, sync pipes) keep working. Reopening one by path, as a shell's
// "> /dev/stderr" does through /proc/self/fd, is checked like any open: it
// works for pipes and sockets (landlock.rst, "Special filesystems") and for
// files under a Writable path such as the container's /dev/pts, but not for
// a host terminal inherited from outside the container's tree.
//
// On a path that is not a directory only the file rights apply (the kernel
// rejects directory rights on a file with EINVAL: landlock.rst, "Extending
// a ruleset", sys_landlock_add_rule). A path that does not exist is skipped with a note: a
// missing rule can only take access away. A path that resolves through a
// symlink gets a note saying where the rule really lands, since the kernel
// ties rules to the inode the path resolves to when [Apply] runs.
//
// # Not requested on purpose
//
//   - resolve_unix (ABI 9) would cut the workload off from pathname unix
//     sockets created outside the container (bind-mounted host sockets).
//   - UDP port rules (ABI 10) would need UDP port lists; the profile's
//     network switch is about TCP, and DNS must keep working.
//   - Audit logging flags (ABI 7) stay at the kernel default.
//
// Known gap: Landlock's TCP rules cover TCP sockets only, not Multipath TCP
// (socket(2) with IPPROTO_MPTCP), which reaches the same ports
// (https://github.com/landlock-lsm/linux/issues/54). Where the port rules
// matter, the seccomp layer has to refuse IPPROTO_MPTCP.
//
// # Downgrades
//
// landlock.rst ("Backward and forward compatibility") "strongly
// encourage[s]" a best-effort approach: "checking the Landlock ABI version
// at runtime and only enforcing the supported features"; "Previous
// limitations" says what each older ABI cannot restrict. [Apply] plans the
// downgrade up front against go-landlock's own per-ABI tables
// (landlock.V1...V11), then hands go-landlock a strict (not best-effort)
// config: go-landlock's best-effort mode hides what it dropped, and drops
// everything when a rule asks for "refer" on ABI 1, which would silently
// turn Landlock off. Every lost protection becomes a line in
// [Report.Downgrades]; with required=true any line is an error and nothing
// is applied.
package landlock
