package vm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zviz/zviz/tests/testutil"
)

// Issue 6 in a trixie guest (kernel 6.12, AppArmor 4.1, whose kernel
// mediates user-namespace creation; TEST-ENVIRONMENTS.md §C). Trixie has
// no kernel.apparmor_restrict_unprivileged_userns, so Ubuntu's restriction
// is reproduced on one binary: a copy of zviz, zviz-restricted, runs under
// an enforcing profile with `userns,` and `audit deny capability,` (and
// newuidmap/newgidmap unconfined): it may create a user namespace but not
// write its maps or mount in it. The installed zviz runs under the shipped
// profile (apparmor/), which grants userns and is otherwise unconfined.

// restrictedProfile is the emulation; everything but capabilities is
// allowed, so what fails is what fails on Ubuntu.
const restrictedProfile = `abi <abi/4.0>,
include <tunables/global>

profile zviz-restricted /usr/local/bin/zviz-restricted {
  userns,
  audit deny capability,
  /usr/bin/newuidmap Ux,
  /usr/bin/newgidmap Ux,
  /{,**} rwlkmix,
  network,
  signal,
  unix,
  ptrace,
  mount,
  umount,
  pivot_root,
}
`

// aaScript runs a container of the bundle $B with the binary $Z in the
// background (the process sleeps 4 s), and prints KEY=VALUE facts: the
// AppArmor label of zviz itself and of the container's process
// (/proc/PID/attr/current), the isolation in state, whether the host file
// $SECRET is readable from inside (a second container), zviz's stderr.
const aaScript = `
cd "$B" || exit 90
"$Z" $ZFLAGS --root "$B/state" run --bundle "$B" c1 >/dev/null 2>"$B/c1.err" &
zp=$!
for i in $(seq 100); do
	st=$("$Z" $ZFLAGS --root "$B/state" state c1 2>/dev/null) && echo "$st" | grep -q '"status": "running"' && break
	sleep 0.1
done
pid=$(echo "$st" | grep -o '"pid": [0-9]*' | grep -o '[0-9]*$')
echo "zviz=$(cat /proc/$zp/attr/current 2>&1)"
echo "workload=$(cat /proc/$pid/attr/current 2>&1)"
echo "isolation=$(echo "$st" | grep -o '"isolation": "[^"]*"' | cut -d'"' -f4)"
wait $zp
echo "exit=$?"
echo "announced=$(grep -c 'isolation: chdir-only (' "$B/c1.err")"
sed -i 's|"sleep","4"|"read","'"$SECRET"'"|' "$B/config.json"
echo "read=$("$Z" $ZFLAGS --root "$B/state" run --bundle "$B" c2 2>/dev/null | grep -o '"errno": *"[A-Z]*"' | cut -d'"' -f4)"
`

func TestVMAppArmorProfileAndFallback(t *testing.T) {
	v := guest(t, "trixie")
	zviz, err := v.Copy(buildStatic(t, "zviz"))
	if err != nil {
		t.Fatal(err)
	}
	probe, err := v.Copy(buildStatic(t, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prof := filepath.Join(dir, "zviz-restricted.profile")
	if err := os.WriteFile(prof, []byte(restrictedProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	profGuest, err := v.Copy(prof)
	if err != nil {
		t.Fatal(err)
	}
	uid := uint32(1000)
	cfgs := map[string]string{}
	for who, rootless := range map[string]bool{"user": true, "root": false} {
		u := uid
		if !rootless {
			u = 0
		}
		s := testutil.DefaultSpec(rootless, u, u)
		s.Process.Args = []string{"/probe", "sleep", "4"}
		b, err := json.Marshal(s) // one line: aaScript's sed edits the args
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "aa-"+who+".json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if cfgs[who], err = v.Copy(f); err != nil {
			t.Fatal(err)
		}
	}

	// As root: install zviz root-owned and its profile; load the emulation.
	out := v.MustRun(t, "root", "set -e; install -o root -g root -m 0755 "+zviz+" /usr/local/bin/zviz; "+
		"install -o root -g root -m 0755 "+zviz+" /usr/local/bin/zviz-restricted; "+
		"/usr/local/bin/zviz apparmor install; install -m 0644 "+profGuest+" /etc/apparmor.d/zviz-restricted; "+
		"apparmor_parser -r /etc/apparmor.d/zviz-restricted; cat /sys/kernel/security/apparmor/features/namespaces/mask; "+
		"/usr/local/bin/zviz apparmor status; grep -E '^zviz(-restricted)? ' /sys/kernel/security/apparmor/profiles")
	t.Logf("guest set-up:\n%s", out)
	if !strings.Contains(out, "userns_create") || !strings.Contains(out, "zviz (unconfined)") ||
		!strings.Contains(out, "zviz-restricted (enforce)") {
		t.Fatalf("the guest lacks userns mediation or a loaded profile:\n%s", out)
	}
	secret := "/var/tmp/zviz-aa-secret"
	v.MustRun(t, "root", "echo HOST > "+secret+" && chmod 0644 "+secret)

	run := func(user, bin, cfg, flags, script string) map[string]string {
		t.Helper()
		setup := "B=$HOME/aa-" + filepath.Base(bin) + "; rm -rf $B; mkdir -p $B/rootfs && cp " + probe +
			" $B/rootfs/probe && cp " + cfg + " $B/config.json && export B Z=" + bin + " ZFLAGS='" + flags +
			"' SECRET=" + secret + "\n"
		o, e, code := v.Run(user, setup+script)
		if code != 0 {
			t.Fatalf("as %s with %s: exit %d\n%s\n%s", user, bin, code, o, e)
		}
		t.Logf("as %s with %s:\n%s", user, bin, o)
		return parseKV(o)
	}

	// The shipped profile: zviz and the container's process run under it
	// (unconfined mode), with full isolation.
	kv := run(TestUser, "/usr/local/bin/zviz", cfgs["user"], "", aaScript)
	want(t, "installed zviz as "+TestUser, kv, map[string]string{
		"zviz": "zviz (unconfined)", "workload": "zviz (unconfined)", "isolation": "full", "exit": "0",
		"announced": "0", "read": "ENOENT"})

	// The restriction: the same binary under the emulation falls back to
	// chdir-only isolation, says so, and the host file is refused.
	kv = run(TestUser, "/usr/local/bin/zviz-restricted", cfgs["user"], "", aaScript)
	want(t, "zviz-restricted as "+TestUser, kv, map[string]string{
		"zviz": "zviz-restricted (enforce)", "workload": "zviz-restricted (enforce)", "isolation": "chdir-only",
		"exit": "0", "announced": "1", "read": "EACCES"})
	chk, _, _ := v.Run(TestUser, "/usr/local/bin/zviz-restricted check | grep -E 'isolation|userns'; /usr/local/bin/zviz check | grep -E 'isolation'")
	t.Logf("zviz check as %s, restricted then installed:\n%s", TestUser, chk)
	if !strings.Contains(chk, "warn: isolation: chdir-only fallback") || !strings.Contains(chk, "ok: isolation: full") {
		t.Errorf("zviz check does not report the modes:\n%s", chk)
	}

	// Root without a user namespace: the init starts from the sealed memfd
	// copy (internal/container/exe.go) and still carries zviz's label, and
	// so does the workload it execs (apparmor/doc.go, "The sealed memfd
	// copy"). --systemd-cgroup: root's ssh session scope is not a cgroup
	// zviz can nest a container in.
	kv = run("root", "/usr/local/bin/zviz", cfgs["root"], "--systemd-cgroup", memfdScript)
	want(t, "installed zviz as root", kv, map[string]string{
		"init_exe": "/memfd:zviz (deleted)", "init": "zviz (unconfined)", "workload_exe": "/probe",
		"workload": "zviz (unconfined)"})
}

// memfdScript creates a container (its init parks before the workload),
// prints the init's executable and label, starts it and prints the
// workload's.
const memfdScript = `
cd "$B" || exit 90
"$Z" $ZFLAGS --root "$B/state" create --bundle "$B" m1 >/dev/null 2>&1 </dev/null || exit 91
pid=$("$Z" --root "$B/state" state m1 | grep -o '"pid": [0-9]*' | grep -o '[0-9]*$')
echo "init_exe=$(readlink /proc/$pid/exe)"
echo "init=$(cat /proc/$pid/attr/current)"
"$Z" --root "$B/state" start m1
for i in $(seq 50); do [ "$(readlink /proc/$pid/exe)" = /probe ] && break; sleep 0.1; done
echo "workload_exe=$(readlink /proc/$pid/exe)"
echo "workload=$(cat /proc/$pid/attr/current)"
"$Z" --root "$B/state" delete --force m1
`

func want(t *testing.T, what string, got, w map[string]string) {
	t.Helper()
	for k, v := range w {
		if got[k] != v {
			t.Errorf("%s: %s=%q, want %q", what, k, got[k], v)
		}
	}
}
