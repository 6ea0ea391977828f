// Package vm runs zviz's tests that need a real kernel with systemd as PID
// 1 — cgroup v2 limits through the user manager's delegated subtree,
// AppArmor — in a Debian VM under qemu (../shared/TEST-ENVIRONMENTS.md §B
// and §C). hack/vm.sh builds the image (cached) and boots it; this package
// drives it: Up boots an instance, a VM runs commands in the guest over ssh
// as root or as the unprivileged user zviztest (Run), passes files in
// through the 9p share mounted on /mnt/host in the guest (Copy) and results
// out (HostPath), and Down powers it off.
//
// The tests in this directory boot one bookworm VM per test binary, lazily
// (the first test that asks for it) and only when ZVIZ_TEST_VM=1 (`make
// test-vm`): booting costs about a minute under software emulation, plus a
// few minutes the first time the image is built.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zviz/zviz/tests/testutil"
)

// TestUser is the guest's unprivileged user (uid 1000, subordinate ids,
// lingering: its systemd --user manager runs from boot).
const TestUser = testutil.TestUser

// GuestShare is where the guest mounts the share.
const GuestShare = "/mnt/host"

// DefaultTimeout bounds one Run: a hung guest must not hang the test binary.
const DefaultTimeout = 10 * time.Minute

// VM is a running instance of hack/vm.sh.
type VM struct {
	Name      string
	Suite     string
	Image     string        // the cached image directory
	BootTime  time.Duration // from starting qemu to ssh answering, as vm.sh measured it
	UpTime    time.Duration // the whole `vm.sh up` (including an image build)
	script    string
	share     string // the host side of GuestShare
	sshConfig string
	console   string
}

// Available reports why VMs cannot run here (nil when they can): vm.sh needs
// root (the image and its key are root's) and qemu-system-x86_64.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("running as uid %d, not root (try: sudo make test-vm)", os.Geteuid())
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return errors.New("qemu-system-x86_64 not on PATH (run hack/setup.sh as root)")
	}
	return nil
}

// Up builds the image of suite unless cached and boots instance name (see
// hack/vm.sh up). Messages from vm.sh go to log.
func Up(suite, name string, log func(string)) (*VM, error) {
	root, err := testutil.ModuleRoot()
	if err != nil {
		return nil, err
	}
	v := &VM{Name: name, Suite: suite, script: filepath.Join(root, "hack", "vm.sh")}
	start := time.Now()
	out, err := v.vmsh(log, "up", "--suite", suite)
	v.UpTime = time.Since(start)
	if err != nil {
		return nil, err
	}
	kv := parseKV(out)
	v.Image, v.share, v.sshConfig, v.console = kv["image"], kv["share"], kv["ssh_config"], kv["console"]
	if s, err := strconv.ParseFloat(kv["boot_seconds"], 64); err == nil {
		v.BootTime = time.Duration(s * float64(time.Second))
	}
	if v.share == "" || v.sshConfig == "" || kv["guest_share"] != GuestShare {
		return nil, fmt.Errorf("vm.sh up: unexpected status output:\n%s", out)
	}
	return v, nil
}

// ReapStale powers off the instances named gotest-PID-... whose test binary
// PID is gone: one that panicked or hit -timeout never reached its TestMain's
// Down, and its qemu runs on (daemonized).
func ReapStale(log func(string)) {
	root := os.Getenv("ZVIZ_VM_STATE")
	if root == "" {
		root = "/run/zviz-vm"
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "gotest-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // still running (or a reused pid: left alone)
		}
		if log != nil {
			log(fmt.Sprintf("vm: powering off %s: its test binary (pid %d) is gone", e.Name(), pid))
		}
		v := &VM{Name: e.Name()}
		if r, err := testutil.ModuleRoot(); err == nil {
			v.script = filepath.Join(r, "hack", "vm.sh")
			if err := v.Down(log); err != nil && log != nil {
				log(err.Error())
			}
		}
	}
}

// Down powers the instance off and removes it (vm.sh down).
func (v *VM) Down(log func(string)) error {
	_, err := v.vmsh(log, "down")
	return err
}

// vmsh runs hack/vm.sh CMD --name v.Name ARGS and returns its stdout; its
// stderr lines go to log as they come.
func (v *VM) vmsh(log func(string), cmd string, args ...string) (string, error) {
	c := exec.Command(v.script, append([]string{cmd, "--name", v.Name}, args...)...)
	var stdout bytes.Buffer
	c.Stdout = &stdout
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", err
	}
	c.Stderr = pw
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if log != nil {
				log(sc.Text())
			}
		}
	}()
	err = c.Start()
	pw.Close()
	if err == nil {
		err = c.Wait()
	}
	pr.Close()
	<-done
	if err != nil {
		if len(lines) > 5 { // all of them went to log
			lines = lines[len(lines)-5:]
		}
		return stdout.String(), fmt.Errorf("vm.sh %s --name %s: %w\n%s", cmd, v.Name, err, strings.Join(lines, "\n"))
	}
	return stdout.String(), nil
}

// Run runs cmd (a shell command line) in the guest as user ("" or "root",
// or TestUser) over ssh, in that user's login session (pam_systemd: as
// TestUser, XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS point at its
// systemd --user manager and bus). code is cmd's exit status as the shell
// reports it (128+N when killed by signal N); 255 is also what ssh returns
// when it cannot reach the guest, and -1 means ssh could not be started or
// DefaultTimeout passed (stderr says which).
func (v *VM) Run(user, cmd string) (stdout, stderr string, code int) {
	return v.RunTimeout(user, cmd, DefaultTimeout)
}

// RunTimeout is Run with another bound than DefaultTimeout; when it passes,
// the local ssh is killed (the guest's command may go on: bound it in the
// guest too, e.g. with timeout(1), when that matters).
func (v *VM) RunTimeout(user, cmd string, d time.Duration) (stdout, stderr string, code int) {
	if user == "" {
		user = "root"
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	// The guest's shell runs cmd and then exits with its status: were cmd
	// exec'd in place of the shell (what bash does with a lone command) and
	// killed by a signal, ssh would say 255 instead of 128+N.
	c := exec.CommandContext(ctx, "ssh", "-F", v.sshConfig, "-l", user, "zviz-vm", "--", cmd+"\nexit $?")
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0
	case ctx.Err() != nil:
		return o.String(), e.String() + fmt.Sprintf("\nvm: %s: no result after %v", cmd, d), -1
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return o.String(), e.String(), 128 + int(ws.Signal())
		}
		return o.String(), e.String(), exit.ExitCode()
	default:
		return o.String(), e.String() + "\nvm: " + err.Error(), -1
	}
}

// MustRun is Run that fails t unless cmd exits 0; it returns stdout.
func (v *VM) MustRun(t testing.TB, user, cmd string) string {
	t.Helper()
	out, errOut, code := v.Run(user, cmd)
	if code != 0 {
		t.Fatalf("in the guest as %s: %s: exit %d\nstdout:\n%s\nstderr:\n%s", userName(user), cmd, code, out, errOut)
	}
	return out
}

// Copy puts the file src into the share under its base name and returns its
// path in the guest (readable by every guest user; executable if src is).
func (v *VM) Copy(src string) (string, error) {
	return v.CopyAs(src, filepath.Base(src))
}

// CopyAs is Copy under another name (a plain file name).
func (v *VM) CopyAs(src, name string) (string, error) {
	out, err := v.vmsh(nil, "copy", src, name)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// HostPath returns where the guest path p (under GuestShare) is on the host:
// what the guest writes there is the way results come out.
func (v *VM) HostPath(p string) (string, error) {
	rel, err := filepath.Rel(GuestShare, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s is not under %s", p, GuestShare)
	}
	return filepath.Join(v.share, rel), nil
}

// Console returns the last n lines of the guest's serial console (kernel
// and systemd messages): worth logging when something in the guest fails.
func (v *VM) Console(n int) string {
	b, err := os.ReadFile(v.console)
	if err != nil {
		return "(no console log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func userName(u string) string {
	if u == "" {
		return "root"
	}
	return u
}

// parseKV parses vm.sh status's KEY=VALUE lines.
func parseKV(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			m[k] = val
		}
	}
	return m
}
