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
