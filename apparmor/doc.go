// Package apparmor ships zviz's AppArmor profile and installs it.
//
// Ubuntu 24.04 and later (kernel.apparmor_restrict_unprivileged_userns=1)
// let an unprivileged process create a user namespace but give it no
// capabilities there (no mount, no pivot_root, no uid_map write) unless
// the AppArmor profile it runs under grants `userns`. The profile here,
// rendered from zviz.profile.tmpl for the installed binary's path, grants
// exactly that and is otherwise unconfined (flags=(unconfined)):
//
//	abi <abi/4.0>,
//	include <tunables/global>
//	profile zviz /usr/local/bin/zviz flags=(unconfined) {
//	  userns,
//	  include if exists <local/zviz>
//	}
//
// It is AppArmor 4 syntax: parsers before 4.0 (Debian bookworm's 3.0.8)
// reject both the abi line and the rule, so Install refuses them, and
// hack/apparmor-check.sh compile-checks the profile with trixie's 4.1.
//
// The package sits beside the other mechanism packages: cmd/zviz's
// `apparmor` verb calls it directly, nothing else in zviz imports it, and
// it imports nothing of zviz's. Detecting the restriction and falling back
// to chdir-only isolation is internal/hostcheck's and the core's business.
//
// # Which processes run under the profile
//
// AppArmor attaches a profile at exec, by the path of the file exec'd as
// the kernel names it (not argv[0], not a symlink: the resolved path; so
// Prepare resolves symlinks). zviz creates the container's user namespace
// in the parent, with clone(CLONE_NEWUSER), so the grant is needed by the
// zviz process the user started, the one the profile attaches to. The
// child then execs the init, and the init execs the workload; both
// inherit the zviz profile, because an exec from a profile in unconfined
// mode behaves as from unconfined: it attaches a profile whose attachment
// matches the new file, else keeps the current one ("pix"; John Johansen,
// apparmor mailing list, 2013-05-17,
// https://www.mail-archive.com/apparmor@lists.ubuntu.com/msg02007.html;
// security/apparmor/domain.c, profile_transition: "unconfined exec no
// attachment" returns the current label).
//
// # The sealed memfd copy (internal/container/exe.go)
//
// When the container could write the zviz binary, the init is exec'd from
// a sealed memfd copy through /proc/PID/fd/N. Opening that magic link
// yields the memfd itself: a pseudo file (alloc_file_pseudo) on the
// kernel-internal shmem mount (MNT_INTERNAL). "/memfd:zviz (deleted)" is
// only what readlink shows (simple_dname); AppArmor cannot name the file.
// For internal mounts d_namespace_path takes dentry_path(), which for a
// pseudo dentry (its own parent) is a bare "/", and passes it to
// disconnect(): unless the current profile has attach_disconnected the
// lookup fails with EACCES, "Failed name lookup - disconnected path"
// (security/apparmor/path.c, d_namespace_path; its MNT_INTERNAL branch
// still calls disconnect() in Ryan Lee's March 2025 patch to it,
// lists.ubuntu.com apparmor, "[PATCH 1/5] apparmor: pass complain-mode
// information to aa_path_name path lookup"). On a failed lookup
// profile_transition never looks for an attachment: a profile in
// unconfined mode (or one flagged ix-on-name-error) keeps its label, any
// other profile's exec is denied (so since kernel commit 038165070aa5,
// 2013, "apparmor: allow setting any profile into the unconfined state").
// So:
//
//   - No attachment can match the memfd (there is no name to match), and
//     the profile has no second attachment for it.
//   - The init exec'd from the memfd keeps the "zviz" label of the parent,
//     the label the user namespace was created under anyway.
//   - Were the profile ever made enforcing, that exec would be denied;
//     keep flags=(unconfined), or add attach_disconnected and an ix rule.
//
// And the memfd path is not taken for an installed zviz run by a user:
// CheckBinary refuses a binary that anyone but root could write, and the
// copy is made only when the container could write the binary, i.e. when
// zviz runs as real root without a user namespace, or maps host root into
// one. Root is not subject to the restriction. Nor is it taken in
// chdir-only isolation (internal/container/exe.go). Observed in the trixie
// VM stage (tests/vm, kernel 6.12, AppArmor 4.1): root's init parked
// before start has /proc/PID/exe "/memfd:zviz (deleted)" and
// /proc/PID/attr/current "zviz (unconfined)", and so has the workload it
// execs.
package apparmor
