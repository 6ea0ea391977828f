// Package nsenter is the one piece of C in zviz: a constructor that runs
// in every zviz process before the Go runtime starts, and acts only in
// the two processes marked for it:
//
//   - the process `zviz exec` starts to become the exec'd process
//     (_ZVIZ_NSENTER set);
//   - a container's init whose config names a user, mount or pid
//     namespace by path (_ZVIZ_INITNS set by create).
//
// Why C: the process must join a user namespace (rootless containers,
// podman's user namespace, a pod's), and setns(2) refuses to enter a user
// namespace (EINVAL) or a mount namespace from a multithreaded process,
// which a Go program is before main runs. A constructor runs on the only
// thread there is. It does this and nothing else:
//
//  1. PR_SET_DUMPABLE 0: the zviz binary is about to hold the privileges
//     of namespaces other processes live in;
//  2. exec: one setns on a pidfd of the container's init, with the
//     CLONE_NEW* flags of the namespaces that differ from the caller's
//     (the kernel enters the user namespace first and the rest with its
//     capabilities). init: one setns per namespace file create opened and
//     checked, the user namespace first, then unshare(2) of the
//     namespaces the config asks to be new, so that they belong to the
//     joined user namespace;
//  3. when a pid (or time) namespace is among them, fork once, since
//     those apply to children only; the intermediate reports the child's
//     pid on the sync socket and exits, and the child is reparented to
//     the subreaper (`zviz exec` or `zviz create` itself, then conmon);
//  4. setsid, so that a --tty terminal can become the controlling one.
//
// Everything else (the process spec, the policy, the cgroup, the console,
// the init's mounts) happens in Go afterwards, in internal/initproc, with
// the code every init and exec'd process runs. See README.md for the
// alternatives that were rejected.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
*/
import "C"
