package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// The stage itself: the guest is what the cgroup and AppArmor tests need.

func TestVMBootsWithSystemdAsPID1(t *testing.T) {
	v := bookworm(t)
	if comm := strings.TrimSpace(v.MustRun(t, "root", "cat /proc/1/comm")); comm != "systemd" {
		t.Fatalf("guest PID 1 is %q, want systemd", comm)
	}
	// Bounded in the guest: a unit stuck in activation must fail the test, not hang it.
	state, _, _ := v.Run("root", "timeout 120 systemctl is-system-running --wait")
	if state = strings.TrimSpace(state); state != "running" {
		failed, _, _ := v.Run("root", "systemctl --failed --no-legend; systemctl list-jobs --no-legend")
		t.Fatalf("guest systemd is %q, want running; failed units and jobs:\n%s\nconsole:\n%s", state, failed, v.Console(30))
	}
	lsm := v.MustRun(t, "root", "cat /sys/kernel/security/lsm")
	if !slices.Contains(strings.Split(strings.TrimSpace(lsm), ","), "apparmor") {
		t.Errorf("guest LSMs %q do not include apparmor", lsm)
	}
	t.Logf("guest: %s, kernel %s, LSMs %s; %s", v.Suite, strings.TrimSpace(v.MustRun(t, "root", "uname -r")),
		strings.TrimSpace(lsm), strings.TrimSpace(v.MustRun(t, "root", "systemd-analyze time | head -n1")))
}

func TestVMCommandLatency(t *testing.T) {
	v := bookworm(t)
	for _, user := range []string{"root", TestUser} {
		var d []time.Duration
		for range 10 {
			start := time.Now()
			v.MustRun(t, user, "true")
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		t.Logf("ssh `true` as %s (ControlMaster up): median %v, min %v, max %v over %d", user,
			d[len(d)/2].Round(time.Millisecond), d[0].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d))
	}
}

// The unprivileged user's manager (started at boot: lingering) owns a
// delegated subtree with the cpu, memory and pids controllers; an ssh login
// is a real session in user-UID.slice with the user's bus in its environment.
func TestVMUserManagerHasControllers(t *testing.T) {
	v := bookworm(t)
	state, _, _ := v.Run(TestUser, "timeout 60 systemctl --user is-system-running --wait")
	if state = strings.TrimSpace(state); state != "running" {
		t.Fatalf("systemd --user of %s is %q, want running", TestUser, state)
	}
	uid := strings.TrimSpace(v.MustRun(t, TestUser, "id -u"))
	env := v.MustRun(t, TestUser, `echo "$XDG_RUNTIME_DIR $DBUS_SESSION_BUS_ADDRESS"`)
	if want := fmt.Sprintf("/run/user/%s unix:path=/run/user/%s/bus", uid, uid); strings.TrimSpace(env) != want {
		t.Errorf("session environment %q, want %q", strings.TrimSpace(env), want)
	}
	cg := strings.TrimSpace(v.MustRun(t, TestUser, "cat /proc/self/cgroup"))
	if prefix := fmt.Sprintf("0::/user.slice/user-%s.slice/session-", uid); !strings.HasPrefix(cg, prefix) {
		t.Errorf("ssh session cgroup %q, want %s*.scope", cg, prefix)
	}
	dir := fmt.Sprintf("/sys/fs/cgroup/user.slice/user-%s.slice/user@%s.service", uid, uid)
	controllers := strings.Fields(v.MustRun(t, TestUser, "cat "+dir+"/cgroup.controllers"))
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !slices.Contains(controllers, c) {
			t.Errorf("%s/cgroup.controllers = %v, want %s in it", dir, controllers, c)
		}
	}
	owner := strings.TrimSpace(v.MustRun(t, "root", "stat -c %U "+dir))
	if owner != TestUser {
		t.Errorf("%s is owned by %s, want %s (delegated)", dir, owner, TestUser)
	}
	t.Logf("%s: controllers %v, owner %s; session cgroup %s", dir, controllers, owner, cg)
}

// A memory hog in a transient scope the user's manager makes with
// MemoryMax=64M is killed by the kernel's memcg OOM killer, and the kernel
// names that scope. tail(1) on /dev/zero buffers one endless line; without
// the limit it would run into timeout(1)'s 60 s (exit 124).
func TestVMMemoryMaxOOMKillsInUserScope(t *testing.T) {
	v := bookworm(t)
	unit := fmt.Sprintf("zviz-vmtest-oom-%d", time.Now().UnixNano())
	start := time.Now()
	out, errOut, code := v.Run(TestUser, "systemd-run --user --scope --quiet --unit="+unit+
		" -p MemoryMax=64M -p MemorySwapMax=0 -- timeout 60 tail /dev/zero")
	took := time.Since(start)
	if code != 128+9 {
		t.Fatalf("memory hog under MemoryMax=64M: exit %d after %v, want 137 (SIGKILL by the OOM killer)\nstdout:\n%s\nstderr:\n%s",
			code, took, out, errOut)
	}
	uid := strings.TrimSpace(v.MustRun(t, TestUser, "id -u"))
	memcg := fmt.Sprintf("oom_memcg=/user.slice/user-%s.slice/user@%s.service/app.slice/%s.scope", uid, uid, unit)
	kmsg := v.MustRun(t, "root", "dmesg")
	if !strings.Contains(kmsg, memcg) {
		t.Fatalf("kernel log has no OOM kill with %s; its OOM lines:\n%s", memcg, grepLines(kmsg, "oom"))
	}
	t.Logf("memory hog OOM-killed in %v (%s)", took.Round(time.Millisecond), lastLine(grepLines(kmsg, "Killed process")))
}

// zviz and the probe, built static on the host, run in the guest as the
// unprivileged user from the share.
func TestVMRunsStaticZvizAndProbe(t *testing.T) {
	v := bookworm(t)
	zviz, err := v.Copy(buildStatic(t, "zviz"))
	if err != nil {
		t.Fatal(err)
	}
	out := v.MustRun(t, TestUser, zviz+" --version")
	if !strings.Contains(out, "zviz version vm-test") {
		t.Errorf("zviz --version in the guest: %q, want it to name version vm-test", out)
	}
	checkOut, checkErr, code := v.Run(TestUser, zviz+" check")
	if code == 126 || code == 127 || code < 0 {
		t.Fatalf("zviz check did not run: exit %d\n%s%s", code, checkOut, checkErr)
	}
	t.Logf("zviz check as %s in the guest (exit %d):\n%s%s", TestUser, code, checkOut, checkErr)

	probe, err := v.Copy(buildStatic(t, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	var info report.Info
	testutil.DecodeJSON(t, []byte(v.MustRun(t, TestUser, probe+" info")), &info)
	if info.UID != 1000 || info.EUID != 1000 {
		t.Errorf("probe as %s: uid %d euid %d, want 1000", TestUser, info.UID, info.EUID)
	}
	if !slices.ContainsFunc(info.Mounts, func(m report.Mount) bool { return m.Point == GuestShare && m.FSType == "9p" }) {
		t.Errorf("probe sees no 9p mount on %s: %+v", GuestShare, info.Mounts)
	}
}

// Files go in through Copy and results come out through the share.
func TestVMShareCarriesFilesBothWays(t *testing.T) {
	v := bookworm(t)
	src := buildStatic(t, "probe")
	guest, err := v.CopyAs(src, "probe-copy")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	got := strings.Fields(v.MustRun(t, TestUser, "sha256sum "+guest))
	if len(got) == 0 || got[0] != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 of %s in the guest %v, want %x", guest, got, sum)
	}

	out := fmt.Sprintf("%s/result-%d", GuestShare, time.Now().UnixNano())
	v.MustRun(t, TestUser, "uname -n >"+out)
	host, err := v.HostPath(out)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(host)
	b, err = os.ReadFile(host)
	if err != nil {
		t.Fatalf("the guest's result is not on the host: %v", err)
	}
	if strings.TrimSpace(string(b)) != "zviz-vm" {
		t.Errorf("%s on the host holds %q, want the guest's host name zviz-vm", host, b)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(strings.ToLower(l), strings.ToLower(sub)) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
