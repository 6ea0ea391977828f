// Package seccomp is zviz's seccomp layer: security profiles as data, a
// pure compiler from a profile to classic BPF, and the one side effect,
// Install. It is a mechanism package: it imports nothing from zviz, and
// the core decides when each step runs.
//
//	profiles/*.yaml ──Load/Parse──▶ *Profile ──Compile/CompileCached──▶ *Program ──Install──▶ kernel
//	  (embedded, or a user file      (validated,      (parent: pure,        (init: last step
//	   that extends: a built-in)      extends resolved) cached by hash)       before execve)
//
// # Profiles
//
// A profile names syscalls, never numbers, so one file compiles for x86_64
// and aarch64 alike. Each syscall is in at most one list:
//
//   - allow: reaches the kernel with no argument checks, so that kernels
//     >= 5.11 cache the decision and hot syscalls cost nothing;
//   - deny: EPERM, the dangerous classics, each group with its reason;
//   - enosys: ENOSYS on purpose (clone3: glibc and Go fall back to clone);
//   - filter: socket, clone, ioctl and personality, checked inline by
//     argument (see filterKinds in tables.go for each one's meaning);
//   - broker: SECCOMP_RET_USER_NOTIF, for a later userspace broker;
//   - anything else: ENOSYS, so libc and runtimes take their fallbacks;
//   - another ABI on the same CPU (i386 int 0x80, x32): the process is
//     killed (see actBadArch).
//
// A group whose syscalls exist on one arch only (open, iopl) says
// arch: [x86_64]; a name unknown to libseccomp, or on an arch the group
// does not declare, is an error. A profile also carries what the other
// layers read: capabilities kept (default none), network mode and
// allow-lists, filesystem write paths, cgroup limits, and the layers it
// requires. Loading validates everything at once and reports every
// problem as `profile FILE: FIELD[i] "value": problem`; nothing is
// skipped or guessed.
//
// extends: NAME starts from a built-in profile. Lists add to the base's; a
// syscall the base already lists must be named in drop: before it can be
// listed again (so development can allow ptrace, which default denies, and
// no file can do it by accident). network, filesystem and limits override
// key by key, capabilities replaces, required only grows.
//
// # Compiling
//
// Compile uses libseccomp (binary-tree optimisation, the target arch only,
// KILL_PROCESS for other arches and x32) and exports the program through a
// memfd. It runs in the parent for any target arch. libseccomp has no
// "otherwise" for argument rules (an unconditional rule overrides the
// conditional ones), so each filter is laid out as disjoint rules that
// cover every argument value; ioctl's "everything but TIOCSTI, TIOCLINUX,
// TIOCSETD" becomes a cover of ~40 masked comparisons. All argument
// comparisons look at the low 32 bits the kernel reads, so garbage in the
// high half cannot smuggle TIOCSTI through (CVE-2019-10063).
//
// CompileCached keys programs by a hash of the rules, the arch, the
// libseccomp version and the compiler version, in memory and, if given a
// directory, on disk (checksummed; a bad entry is recompiled).
//
// # Installing
//
// Install is seccomp(SECCOMP_SET_MODE_FILTER) on the calling thread (or
// all threads with TSYNC), after checking that no_new_privs is already
// set. With SECCOMP_FILTER_FLAG_NEW_LISTENER it returns the listener fd
// for the broker and for --log-denials.
//
// # Logging denials
//
// `--verbose` / `--log-denials` must show every refused call without
// changing what is refused. CompileWith(p, arch, CompileOptions{LogDenials:
// true}) (or CompileCachedWith: the variant is part of the cache key, the
// plain key is unchanged) compiles the same profile with every errno
// answer — deny, enosys, the refusing half of each argument filter, and
// the default ENOSYS — turned into SECCOMP_RET_USER_NOTIF. Allowed
// syscalls stay SECCOMP_RET_ALLOW with the same rules (the same
// constant-allow cache, the same cost); other ABIs are still killed. The
// program is smaller than the plain one (the deny rules and refusals are
// the default action now) and carries Denials, a table of what the plain
// program answers to each call that can reach the listener: by syscall
// number, with each filtered syscall's compiled argument rules, so
// socket(AF_PACKET) is answered EAFNOSUPPORT and an unlisted call ENOSYS.
// Listen receives each notification, answers it with that errno (never
// SECCOMP_USER_NOTIF_FLAG_CONTINUE) and writes
//
//	zviz: denied: ptrace(0x2, 0x7ffffff0, 0x0, 0x0, 0x0, 0x0) = EPERM pid 4242 [profile default]
//
// A refused call then costs a round trip through the listener (about
// 5-8 µs median here with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, which
// Listen sets on Linux >= 6.6; 30-50 µs without it when the two processes
// run on different CPUs); allowed calls cost what they cost before.
//
// The runtime integrates it so that the container's lifetime bounds the
// listener's:
//
//  1. The parent compiles the variant when denial logging is on, keeps
//     prog.Denials for the listener (a helper process can be handed it as
//     JSON, or recompile: the cache makes that cheap) and passes only the
//     BPF to the init, as for the plain program. Notify is true for the
//     variant: it no longer means "the profile has broker rules" (check
//     len(p.Broker) for that).
//  2. The init, last step before execve: no_new_privs, then
//     Install(prog, ListenerFlags()) on its locked main thread, without
//     TSYNC, so that the filter covers that thread only; then, from
//     another thread (which has no filter), sendmsg the listener fd with
//     SCM_RIGHTS over the unix socket it shares with the listener process,
//     wait for its answer, close its own copy, execve (which ends the
//     other threads). On the filtered thread sendmsg may itself be a call
//     the filter sends to the listener being passed (a network broker's),
//     and every call the profile refuses waits for that listener: the
//     filtered thread only waits for the other one, and Go runtime calls
//     it makes meanwhile are answered once the listener runs. The fd is
//     O_CLOEXEC, but close it anyway: a container process holding its own
//     listener could answer its own calls and let them through.
//  3. The listener process is outside the container: the foreground
//     `zviz run` runs Listen(fd, prog.Denials, os.Stderr, ...) in one
//     goroutine and waits for it after the container exits; for
//     create/start (podman, run -d) create forks a per-container helper
//     that holds only the listener fd and the log, runs Listen and exits
//     when it returns. Listen returns nil when no task uses the filter any
//     more (POLLHUP on the listener, Linux >= 5.8): the kernel drops a task
//     from the filter's users when it is released, at the latest when it
//     is reaped (on Linux 6.18 already at exit). Processes forked in the
//     container inherit the filter and keep the listener; no polling of
//     state files is needed. `zviz exec` processes get their own filter
//     and listener, which they hand over the same way to the same
//     listener process, which runs one Listen for each.
//  4. Exactly one copy of the listener fd stays open, in the listener
//     process: the parent closes its copy once the helper has it.
//
// If the listener dies — precisely, when the last file reference to the
// listener is closed — the kernel answers -ENOSYS to every notification
// then pending and to every later one (seccomp_notify_detach, then
// seccomp_do_user_notification finds no listener); TestListenerGone checks
// both. Nothing refused becomes allowed, but the errnos change: a denied
// call gets ENOSYS instead of EPERM, socket(AF_PACKET) ENOSYS instead of
// EAFNOSUPPORT, which programs may read as "not implemented" and take
// another path. The integrator should report a listener that fails (stderr,
// zviz state). A listener process that dies while some other process still
// holds a copy of the fd leaves the refused calls waiting instead: hence
// step 4.
//
// Further details: the logged pid is the caller's pid in the listener's
// pid namespace (the host's view), not the container's. With WAIT_KILLABLE_RECV
// (ListenerFlags, Linux >= 5.19) a caller whose notification the listener
// has received waits for the answer through non-fatal signals; without it
// Go's preemption signal can withdraw a call, which then restarts and is
// logged twice. Under podman zviz's filter is stacked with podman's: a call
// podman's filter refuses gets its ERRNO, which takes precedence over
// USER_NOTIF, so it is refused as before but not logged.
//
// # Tables
//
// Show lists a profile's rules per arch with counts (allowed, denied,
// filtered, brokered, unlisted → ENOSYS), Explain says what happens to one
// syscall and why, and Features returns the actions, operators, arches,
// filters and layers the compiler uses, for `zviz features` and
// `zviz policy`.
//
// # Building
//
// libseccomp-golang needs cgo and libseccomp-dev (headers, pkg-config
// file, and libseccomp.a for static builds). zviz's static build needs
// nothing more: `CGO_ENABLED=1 go build -tags osusergo,netgo -ldflags
// '-extldflags -static'` links libseccomp.a through pkg-config's
// -lseccomp. Cross-building for arm64 needs an aarch64 C compiler and
// libseccomp-dev:arm64.
package seccomp
