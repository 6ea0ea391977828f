// Package nsenter is the one piece of C in zviz: a constructor that runs
// in every zviz process before the Go runtime starts, and acts only in the
// process `zviz exec` starts to become the exec'd process
// (_ZVIZ_NSENTER set).
//
// Why C: the process must join the container's user namespace (rootless
// containers, and podman's user namespace), and setns(2) refuses to enter a
// user namespace (EINVAL) or a mount namespace from a multithreaded
// process, which a Go program is before main runs. A constructor runs on
// the only thread there is. It does three things and nothing else:
//
//  1. setns on a pidfd of the container's init, with the CLONE_NEW* flags
//     of the namespaces that differ from the caller's (the kernel enters
//     the user namespace first and the rest with its capabilities);
//  2. when the pid (or time) namespace is among them, fork once, since
//     those apply to children only; the intermediate reports the child's
//     pid and exits, and the child is reparented to the subreaper (`zviz
//     exec` itself, or conmon);
//  3. setsid, so that a --tty terminal can become the controlling one.
//
// Everything else (the process spec, the policy, the cgroup, the console)
// happens in Go afterwards, in internal/initproc, with the init's own
// launch code. See README.md for the alternatives that were rejected.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
*/
import "C"
