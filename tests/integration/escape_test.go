package integration

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// The escape tests run `/probe try NAME...` (tests/probe/try.go) inside a
// container and compare each attempt of the threat model with the table
// below: under `zviz run` and `zviz sandbox`, as root and as zviztest,
// with the default profile, and under `run` with the development and
// hostile-tenant profiles. TestEscapeControl runs the same probe on the
// host as zviztest (never as root), outside any container, and checks the
// kernel's own answer there, so that each container row that differs from
// its host row is proved to come from zviz's layers and not from the
// probe.

// escapeRow is the expected outcome of one try: "OK", an errno name, or
// the signal a child attempt died of (SIGSYS: seccomp's kill for another
// ABI).
type escapeRow struct {
	try string
	// want is the result under the default profile in every mode that
	// mode does not name.
	want string
	// mode overrides want, by the most specific key that matches:
	// "run/root", "sandbox/zviztest", then "run"/"sandbox", then
	// "root"/"rootless".
	mode map[string]string
	// dev and hostile are the results under --profile development and
	// hostile-tenant (run mode), when they differ from the default's.
	dev, hostile string
	// host is the kernel's answer to zviztest on the host with no zviz
	// ("" when the row is not part of the control: a path only the
	// container has).
	host string
}

// escapeTable is the expectation table. Rows whose host answer equals the
// container's (mount → EPERM both ways) are refused twice over in the
// container: seccomp first, and the kernel's capability check behind it
// (all capabilities are dropped); the control cannot tell those layers
// apart, the other rows can.
var escapeTable = []escapeRow{
	// Namespaces: unshare and setns are denied (EPERM); clone is
	// filtered by flags (EPERM for namespace flags, plain fork passes);
	// clone3 is ENOSYS on purpose (its flags are out of BPF's reach).
	{try: "unshare-user", want: "EPERM", host: "OK"},
	{try: "unshare-net", want: "EPERM", host: "EPERM"},
	{try: "unshare-ns", want: "EPERM", host: "EPERM"},
	{try: "clone-fork", want: "OK", host: "OK"},
	{try: "clone-newuser", want: "EPERM", host: "OK"},
	{try: "clone-newns", want: "EPERM", host: "EPERM"},
	{try: "clone3", want: "ENOSYS", host: "EINVAL"},
	{try: "setns", want: "EPERM", host: "EINVAL"}, // the kernel: "already a member of this user namespace"
	{try: "setns-net", want: "EPERM", host: "EPERM"},

	// Mounts, old API and new: all denied. umount, fsconfig, open_tree
	// and mount_setattr reach argument checks on the host, so the
	// control tells seccomp's EPERM from the kernel's.
	{try: "mount", want: "EPERM", host: "EPERM"},
	{try: "umount", want: "EPERM", host: "ENOENT"},
	{try: "pivot_root", want: "EPERM", host: "EPERM"},
	{try: "fsopen", want: "EPERM", host: "EPERM"},
	{try: "fsconfig", want: "EPERM", host: "EINVAL"},
	{try: "fsmount", want: "EPERM", host: "EPERM"},
	{try: "fspick", want: "EPERM", host: "EPERM"},
	{try: "open_tree", want: "EPERM", host: "OK"},
	{try: "move_mount", want: "EPERM", host: "EPERM"},
	{try: "mount_setattr", want: "EPERM", host: "EINVAL"},

	// Process inspection: denied; the development profile allows it.
	{try: "ptrace", want: "EPERM", dev: "OK", host: "OK"},
	{try: "process_vm_readv", want: "EPERM", dev: "OK", host: "OK"},

	// Kernel code and kernel-wide state. This kernel has no modules
	// (nomodule), no kexec and no iopl/ioperm (ENOSYS on the host): the
	// container's EPERM is seccomp's deny list, checked first.
	{try: "bpf", want: "EPERM", host: "EPERM"}, // kernel.unprivileged_bpf_disabled=2 here
	{try: "perf_event_open", want: "EPERM", host: "OK"},
	{try: "io_uring_setup", want: "EPERM", host: "EFAULT"},
	{try: "keyctl", want: "EPERM", host: "OK"},
	{try: "add_key", want: "EPERM", host: "ENODEV"},
	{try: "request_key", want: "EPERM", host: "ENOKEY"},
	{try: "userfaultfd", want: "EPERM", host: "OK"},
	{try: "init_module", want: "EPERM", host: "ENOSYS"},
	{try: "finit_module", want: "EPERM", host: "ENOSYS"},
	{try: "delete_module", want: "EPERM", host: "ENOSYS"},
	{try: "kexec_load", want: "EPERM", host: "ENOSYS"},
	{try: "kexec_file_load", want: "EPERM", host: "ENOSYS"},
	{try: "reboot", want: "EPERM", host: "EPERM"},
	{try: "swapon", want: "EPERM", host: "EPERM"},
	{try: "acct", want: "EPERM", host: "EPERM"},
	{try: "iopl", want: "EPERM", host: "ENOSYS"},
	{try: "ioperm", want: "EPERM", host: "ENOSYS"},
	{try: "sethostname", want: "EPERM", host: "EPERM"},
	{try: "open_by_handle_at", want: "EPERM", host: "EINVAL"},
	{try: "name_to_handle_at", want: "EPERM", host: "OK"},
	// chroot is in no list of the default profile: unlisted → ENOSYS.
	{try: "chroot", want: "ENOSYS", host: "EPERM"},
	// mknodat is allowed (FIFOs), but Landlock grants no MAKE_CHAR even
	// where the container may write, and its path hook runs before the
	// kernel's CAP_MKNOD check: EACCES, not the host's EPERM.
	{try: "mknod", want: "EACCES", host: "EPERM"},
	{try: "mkfifo", want: "OK", host: "OK"},
	// setuid to the uid it has: default allows identity calls,
	// hostile-tenant denies them.
	{try: "setuid-self", want: "OK", hostile: "EPERM", host: "OK"},

	// Sockets: the family filter answers EAFNOSUPPORT; AF_INET passes
	// the filter, so a raw socket is refused by the missing CAP_NET_RAW.
	// There is no AF_ALG in this kernel (EAFNOSUPPORT on the host too).
	{try: "socket-packet", want: "EAFNOSUPPORT", host: "EPERM"},
	{try: "socket-netlink", want: "EAFNOSUPPORT", host: "OK"},
	{try: "socket-vsock", want: "EAFNOSUPPORT", host: "OK"},
	{try: "socket-alg", want: "EAFNOSUPPORT", host: "EAFNOSUPPORT"},
	{try: "socket-raw", want: "EPERM", host: "EPERM"},
	{try: "socket-unix", want: "OK", host: "OK"},
	{try: "socket-inet", want: "OK", host: "OK"},
	{try: "socket-inet6", want: "OK", host: "OK"},
	{try: "socketpair-unix", want: "OK", host: "OK"},
	{try: "socketpair-inet", want: "EAFNOSUPPORT", host: "ENOTSUP"},

	// Terminals: TIOCSTI, TIOCLINUX and TIOCSETD are refused, other
	// ioctls pass (dev.tty.legacy_tiocsti=1 here: TIOCSTI on one's own
	// controlling terminal is OK on the host).
	{try: "tiocsti", want: "EPERM", host: "OK"},
	{try: "tioclinux", want: "EPERM", host: "ENOTTY"},
	{try: "tiocsetd", want: "EPERM", host: "OK"},
	{try: "ioctl-tcgets", want: "OK", host: "OK"},

	// Personas: refused values fall to the default action (ENOSYS).
	// development allows ADDR_NO_RANDOMIZE (gdb), not READ_IMPLIES_EXEC;
	// hostile-tenant allows only the query and PER_LINUX.
	{try: "personality-bad", want: "ENOSYS", dev: "OK", host: "OK"},
	{try: "personality-rie", want: "ENOSYS", host: "OK"},
	{try: "personality-linux32", want: "OK", hostile: "ENOSYS", host: "OK"},
	{try: "personality-query", want: "OK", host: "OK"},

	// Other ABIs kill the process (libseccomp's bad-arch action); on this
	// kernel int 0x80 getpid works natively and x32 is not built.
	{try: "int80", want: "SIGSYS", host: "OK"},
	{try: "x32", want: "SIGSYS", host: "ENOSYS"},

	// Kernel tunables. /proc/sys is a read-only bind (readonlyPaths). As
	// root without a user namespace the process owns core_pattern, so
	// the permission check passes and the read-only mount answers
	// EROFS; rootless, the file's owner (host root) is unmapped and the
	// permission check refuses first (EACCES), as on the host. Landlock
	// would say EACCES too, but the kernel checks the mount before the
	// LSM hook (do_dentry_open).
	// The file permission check (root-owned 0644) comes before the
	// read-only mount's: EACCES for any non-root uid, including root's
	// sandboxed command, which runs as nobody.
	{try: "write-proc-sys", want: "EROFS", mode: map[string]string{"rootless": "EACCES", "sandbox/root": "EACCES"}, host: "EACCES"},
	// /sys is a fresh read-only sysfs (the network namespace is new):
	// read-only superblock, EROFS before any permission check. The
	// sandbox is filled in from the first run below.
	{try: "write-sys", want: "EROFS", host: "EACCES"},
}

// escapeWant is row's result under the default profile for `zviz CMD` as
// user.
func escapeWant(row escapeRow, cmd, user string) string {
	class := "rootless"
	if user == "root" {
		class = "root"
	}
	for _, k := range []string{cmd + "/" + user, cmd, class} {
		if v, ok := row.mode[k]; ok {
			return v
		}
	}
	return row.want
}

func escapeNames() []string {
	var n []string
	for _, r := range escapeTable {
		n = append(n, r.try)
	}
	return n
}

// decodeTries decodes the report of `probe try`, which must exit 0.
func decodeTries(t *testing.T, res result) report.TryReport {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("probe try: %v", res)
	}
	var rep report.TryReport
	testutil.DecodeJSON(t, []byte(res.stdout), &rep)
	return rep
}

// checkRows compares rep with the table for a mode and profile.
func checkRows(t *testing.T, rep report.TryReport, cmd, user, profile string) {
	t.Helper()
	for _, row := range escapeTable {
		want := escapeWant(row, cmd, user)
		switch {
		case profile == "development" && row.dev != "":
			want = row.dev
		case profile == "hostile-tenant" && row.hostile != "":
			want = row.hostile
		}
		if got := rep.Errno(row.try); got != want {
			t.Errorf("%s as %s, profile %s: try %s = %q, want %q", cmd, user, profile, row.try, got, want)
		}
	}
}

// noCaps is an empty capability set in /proc/self/status.
const noCaps = "0000000000000000"

// capKill is CAP_KILL alone (bit 5): what the development profile keeps
// (it extends ci-runner, which keeps CAP_CHOWN, CAP_DAC_OVERRIDE,
// CAP_FOWNER, CAP_FSETID, CAP_SETUID, CAP_SETGID and CAP_KILL) of the
// test config's CAP_AUDIT_WRITE, CAP_KILL and CAP_NET_BIND_SERVICE: the
// intersection.
const capKill = "0000000000000020"

// checkCaps: every capability set empty, no_new_privs on, a seccomp filter.
func checkCaps(t *testing.T, rep report.TryReport, what string) {
	t.Helper()
	checkCapsKept(t, rep, what, noCaps)
}

// checkCapsKept: the bounding, permitted and effective sets are kept, the
// inheritable and ambient ones empty, no_new_privs on, a seccomp filter.
func checkCapsKept(t *testing.T, rep report.TryReport, what, kept string) {
	t.Helper()
	r := rep.Get("caps")
	if r == nil || r.Errno != "OK" {
		t.Fatalf("%s: caps: %+v", what, r)
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		want := noCaps
		if k == "CapPrm" || k == "CapEff" || k == "CapBnd" {
			want = kept
		}
		if r.Fields[k] != want {
			t.Errorf("%s: %s = %q, want %s", what, k, r.Fields[k], want)
		}
	}
	if r.Fields["NoNewPrivs"] != "1" || r.Fields["Seccomp"] != "2" {
		t.Errorf("%s: NoNewPrivs %q Seccomp %q, want 1 and 2 (filter)", what, r.Fields["NoNewPrivs"], r.Fields["Seccomp"])
	}
}

// checkChmodSuid: the probe may set the bit on its own file (it owns it),
// and the copy runs with the probe's own credentials and no capabilities.
func checkChmodSuid(t *testing.T, rep report.TryReport, what, euid string) {
	t.Helper()
	r := rep.Get("chmod-suid")
	if r == nil || r.Errno != "OK" {
		t.Errorf("%s: chmod-suid: %+v, want OK", what, r)
		return
	}
	if r.Fields["exec_euid"] != euid || r.Fields["exec_CapEff"] != noCaps || r.Fields["exec_NoNewPrivs"] != "1" {
		t.Errorf("%s: chmod-suid exec'd copy: %v, want euid %s, no capabilities, no_new_privs", what, r.Fields, euid)
	}
}

// escapeBundle is a busybox bundle whose process is `/probe try names...`,
// with a writable /tmp for the tries that need a scratch directory.
func (r *rt) escapeBundle(names []string, edit func(s *specs.Spec)) string {
	return r.bundle(func(s *specs.Spec) {
		s.Process.Args = append([]string{"/probe", "try"}, names...)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"mode=1777", "size=16m"}})
		if edit != nil {
			edit(s)
		}
	})
}

// hostSecret is a file on the host outside anything zviz mounts (a fresh
// /tmp hides it from the sandbox; the bundle's rootfs does not have it).
func hostSecret(t *testing.T, user string) string {
	t.Helper()
	d := hostTempDir(t, user)
	p := filepath.Join(d, "secret")
	if err := os.WriteFile(p, []byte("HOST-SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEscapeRun: `zviz run` with the default profile, as root and rootless.
func TestEscapeRun(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		secret := hostSecret(t, r.user)
		extra := []string{"caps", "chmod-suid", "read-file:/etc/shadow", "read-file:" + secret}
		b := r.escapeBundle(append(escapeNames(), extra...), nil)
		rep := decodeTries(t, r.run("run", "--bundle", b, "escape-"+randID()))
		t.Logf("run as %s: %s", r.user, summary(rep))
		checkRows(t, rep, "run", r.user, "default")
		checkCaps(t, rep, "run as "+r.user)
		checkChmodSuid(t, rep, "run as "+r.user, "0")
		// The bundle's rootfs has no /etc/shadow, and the host's /tmp is
		// not mounted.
		for _, p := range []string{"/etc/shadow", secret} {
			if got := rep.Errno("read-file:" + p); got != "ENOENT" {
				t.Errorf("run as %s: read %s: %q, want ENOENT (not in the container)", r.user, p, got)
			}
		}
	})
}

// TestEscapeSandbox: `zviz sandbox` with the default profile. The host's
// root is the sandbox's, read-only: the caller's credentials are hidden,
// and so is what zviz covers with fresh mounts (/tmp).
func TestEscapeSandbox(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		home, env := sandboxHome(t, r.user)
		secret := hostSecret(t, r.user)
		probeDir := hostTempDir(t, "root")
		probe := filepath.Join(probeDir, "probe")
		mustCopyExec(t, testutil.BuildProbe(t), probe)
		cwd := hostTempDir(t, r.user)
		writableBy(t, cwd, sandboxUID(t, r.user))
		ssh := filepath.Join(home, ".ssh/id_test")
		extra := []string{"caps", "chmod-suid", "read-file:" + ssh, "read-file:" + secret, "read-file:/etc/shadow"}
		args := append([]string{"--ro", probeDir, "--", probe, "try"}, append(escapeNames(), extra...)...)
		rep := decodeTries(t, r.sandbox(cwd, env, args...))
		t.Logf("sandbox as %s: %s", r.user, summary(rep))
		checkRows(t, rep, "sandbox", r.user, "default")
		checkCaps(t, rep, "sandbox as "+r.user)
		// The sandbox maps the caller to itself; root's command runs as
		// nobody, or it would still own (and read) /etc/shadow.
		euid := strconv.Itoa(sandboxUID(t, r.user))
		checkChmodSuid(t, rep, "sandbox as "+r.user, euid)
		for _, p := range []string{ssh, secret} {
			if got := rep.Errno("read-file:" + p); got != "ENOENT" {
				t.Errorf("sandbox as %s: read %s: %q, want ENOENT (hidden)", r.user, p, got)
			}
		}
		// The host's /etc is visible read-only. /etc/shadow (root:shadow
		// 0640) must stay unreadable: zviztest is refused by the file's
		// mode; root, the file's owner, only by the sandbox.
		if got := rep.Errno("read-file:/etc/shadow"); got == "OK" {
			t.Errorf("sandbox as %s: /etc/shadow readable (%q)", r.user, rep.Get("read-file:/etc/shadow").Fields["data"])
		}
	})
}

// TestEscapeProfiles: the profile changes the policy, chosen with the
// global --profile flag (development) or the run.zviz.profile annotation
// (hostile-tenant).
func TestEscapeProfiles(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		names := append(escapeNames(), "caps")
		b := r.escapeBundle(names, nil)
		rep := decodeTries(t, r.run("--profile", "development", "run", "--bundle", b, "dev-"+randID()))
		t.Logf("development as %s: %s", r.user, summary(rep))
		checkRows(t, rep, "run", r.user, "development")
		checkCapsKept(t, rep, "development as "+r.user, capKill)

		// hostile-tenant requires cgroup limits, which this host cannot
		// apply (no controllers in the v2 hierarchy, nothing delegated to
		// the unprivileged user): chosen by annotation, it is refused by
		// name.
		b = r.escapeBundle(names, func(s *specs.Spec) {
			s.Annotations = map[string]string{"run.zviz.profile": "hostile-tenant"}
		})
		if res := r.run("run", "--bundle", b, "hostile-"+randID()); res.code == 0 ||
			!strings.Contains(res.stderr, "profile hostile-tenant requires limits") {
			t.Errorf("hostile-tenant without cgroup limits must be refused: %v", res)
		}
		// Its syscall policy, through a copy that does not require limits.
		b = r.escapeBundle(names, func(s *specs.Spec) {
			s.Annotations = map[string]string{"run.zviz.profile": testutil.ProfileWithout(t, "hostile-tenant", "limits")}
		})
		res := r.run("run", "--bundle", b, "hostile-"+randID())
		rep = decodeTries(t, res)
		t.Logf("hostile-tenant as %s: %s", r.user, summary(rep))
		if res.stderr != "" {
			t.Logf("hostile-tenant stderr: %s", res.stderr)
		}
		checkRows(t, rep, "run", r.user, "hostile-tenant")
		checkCaps(t, rep, "hostile-tenant as "+r.user)

		// --profile FILE: a user's profile that extends default and lets
		// keyctl through; everything else stays as in default.
		file := filepath.Join(hostTempDir(t, r.user), "keyctl.yaml")
		if err := os.WriteFile(file, []byte(keyctlProfile), 0o644); err != nil {
			t.Fatal(err)
		}
		b = r.escapeBundle([]string{"keyctl", "add_key", "ptrace", "clone3"}, nil)
		rep = decodeTries(t, r.run("--profile", file, "run", "--bundle", b, "file-"+randID()))
		want := map[string]string{"keyctl": "OK", "add_key": "EPERM", "ptrace": "EPERM", "clone3": "ENOSYS"}
		for n, w := range want {
			if got := rep.Errno(n); got != w {
				t.Errorf("--profile %s as %s: try %s = %q, want %q", file, r.user, n, got, w)
			}
		}
	})
}

// keyctlProfile is a user's profile file: default with keyctl allowed.
const keyctlProfile = `name: escape-test-keyctl
extends: default
drop: [keyctl]
allow:
  - why: "test: keyctl reaches the kernel"
    syscalls: [keyctl]
`

// TestEscapeSuidExec: a set-user-ID binary does not raise the container's
// process (no_new_privs). Root only: it needs a second uid mapped in the
// container (uid 1000 running a file owned by nobody); rootless zviz maps
// one uid, and the kernel ignores the bit of an unmapped owner anyway.
// TestEscapeControl shows the same file does change the uid on the host.
func TestEscapeSuidExec(t *testing.T) {
	r := newRT(t, "root")
	b := r.escapeBundle([]string{"exec-suid:/suid-nobody", "caps"}, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000}
	})
	suidNobody(t, filepath.Join(b, "rootfs", "probe"), filepath.Join(b, "rootfs", "suid-nobody"))
	// The root is not nosuid, so what stops the bit is no_new_privs.
	info := r.probeInfo(r.bundle(nil))
	if m := findMount(info.Mounts, "/"); m == nil || hasOpts(m.Options, "nosuid") {
		t.Fatalf("container root %+v: want a mount without nosuid for this test", m)
	}
	rep := decodeTries(t, r.run("run", "--bundle", b, "suid-"+randID()))
	got := rep.Get("exec-suid:/suid-nobody")
	if got == nil || got.Errno != "OK" || got.Fields["exec_euid"] != "1000" || got.Fields["exec_CapEff"] != noCaps {
		t.Errorf("exec of a set-user-ID (nobody) binary as uid 1000: %+v, want OK with euid 1000 and no capabilities", got)
	}
}

// TestEscapeControl runs the probe on the host as zviztest (never root),
// outside any container: the kernel's answers without zviz. Each row's
// host value must hold, which shows that the probe reaches the kernel
// path it claims (a probe that always said EPERM would fail here).
func TestEscapeControl(t *testing.T) {
	testutil.Requires(t, "root", "unprivileged-user")
	dir := hostTempDir(t, "root")
	probe := filepath.Join(dir, "probe")
	mustCopyExec(t, testutil.BuildProbe(t), probe)

	suid := filepath.Join(dir, "suid-nobody")
	suidNobody(t, probe, suid)
	names := append(escapeNames(), "caps", "exec-suid:"+suid)
	c := testutil.RunAs(t, testutil.TestUser, nil, probe, append([]string{"try"}, names...)...)
	c.Dir = dir
	out, err := c.Output()
	if err != nil {
		t.Fatalf("probe on the host: %v", err)
	}
	var rep report.TryReport
	testutil.DecodeJSON(t, out, &rep)
	t.Logf("host as %s: %s", testutil.TestUser, summary(rep))
	distinct := 0
	for _, row := range escapeTable {
		if row.host == "" {
			continue
		}
		if got := rep.Errno(row.try); got != row.host {
			t.Errorf("host as %s: try %s = %q, want %q", testutil.TestUser, row.try, got, row.host)
		}
		if row.host != row.want {
			distinct++
		}
	}
	t.Logf("%d of %d rows differ between the host and a default container", distinct, len(escapeTable))
	caps := rep.Get("caps")
	if caps == nil || caps.Fields["NoNewPrivs"] != "0" || caps.Fields["Seccomp"] != "0" {
		t.Errorf("host: caps %+v, want no no_new_privs and no seccomp", caps)
	}
	// The set-user-ID bit works on this filesystem: the container's
	// answer in TestEscapeSuidExec is no_new_privs, not the mount.
	if s := rep.Get("exec-suid:" + suid); s == nil || s.Errno != "OK" || s.Fields["exec_euid"] != "65534" {
		t.Errorf("host: exec of a set-user-ID (nobody) binary: %+v, want euid 65534", s)
	}

	// Every try the probe knows has a row (the probe lists them when
	// called with no name), but those that take an argument and have
	// tests of their own (connect-abstract: isolation_test.go).
	c = testutil.RunAs(t, testutil.TestUser, nil, probe, "try")
	msg, _ := c.CombinedOutput()
	_, list, ok := strings.Cut(string(msg), "name at least one of: ")
	if !ok {
		t.Fatalf("probe try without names: %s", msg)
	}
	list, _, _ = strings.Cut(list, "\n")
	have := escapeNames()
	for _, n := range strings.Split(list, ", ") {
		if !slices.Contains(have, n) && !slices.Contains([]string{"caps", "chmod-suid", "connect-abstract", "exec-suid", "read-file"}, n) &&
			!slices.Contains(netTries, n) {
			t.Errorf("probe try %s has no row in escapeTable", n)
		}
	}
}

// netTries are the probe's network tries (tests/probe/net.go): traffic
// for the broker and network-mode tests (broker_test.go, netmode_test.go),
// not escape attempts.
var netTries = []string{"serve", "serve-udp", "serve-unix", "count", "connect", "connect-nb", "connect-unix",
	"sendto-udp", "sendmsg-udp", "sendmmsg-udp", "send-connected", "race", "many", "resolve", "dial", "wait", "srr", "retopts", "tos"}

// suidNobody copies the probe to dst owned by nobody (65534), mode 4755.
func suidNobody(t *testing.T, probe, dst string) {
	t.Helper()
	mustCopyExec(t, probe, dst)
	if err := os.Chown(dst, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, os.ModeSetuid|0o755); err != nil { // os.Chmod ignores 0o4000
		t.Fatal(err)
	}
}

func mustCopyExec(t *testing.T, src, dst string) {
	t.Helper()
	if err := copyExec(src, dst); err != nil {
		t.Fatal(err)
	}
}

// summary is "name=errno ..." sorted, for the log.
func summary(rep report.TryReport) string {
	var s []string
	for _, r := range rep.Results {
		s = append(s, r.Name+"="+r.Errno)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}
