package rootfs

import (
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The mounting tests run each scenario in a re-executed copy of the test
// binary, in fresh namespaces, on a throwaway busybox rootfs: mounts and
// pivot_root cannot be undone in the test process itself.

const (
	envScenario = "ZVIZ_ROOTFS_SCENARIO"
	envDir      = "ZVIZ_ROOTFS_DIR"
)

type scenario struct {
	userns bool    // CLONE_NEWUSER with the caller's uid mapped to 0
	clone  uintptr // namespaces besides mount and pid
	config func(dir string) *Config
	// wantErr, if set, are substrings of the error Prepare must return,
	// and wantErrno its errno (errors.Is), if not 0.
	wantErr   []string
	wantErrno unix.Errno
	// check runs in the child after Finish, inside the container's root.
	check func(t *testing.T, c *Config)
	// hostCheck runs in the parent after the child exited.
	hostCheck func(t *testing.T, dir string)
}

const otherNS = unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

func specWithDevice(path, typ string) *specs.Spec {
	return &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{{Path: path, Type: typ}}}}
}

// makeRootfs builds dir/a/b/rootfs with busybox, a few marker files and the
// hostile symlinks a malicious image could ship.
func makeRootfs(t *testing.T, dir string) {
	t.Helper()
	root := filepath.Join(dir, "a", "b", "rootfs")
	// The directories an image has (proc, dev, sys); the others are created.
	for _, d := range []string{"bin", "etc", "secretdir", "rodir", "outside", "proc", "dev", "sys"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(t, os.MkdirAll(filepath.Join(root, dir, "outside"), 0o755))
	for _, d := range []string{"src-ro", "src-rw", "outside"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	bb := filepath.Join(root, "bin", "busybox")
	if err := os.Link("/usr/bin/busybox", bb); err != nil {
		copyFile(t, "/usr/bin/busybox", bb)
	}
	write := func(p, s string) { must(t, os.WriteFile(p, []byte(s), 0o644)) }
	write(filepath.Join(root, "marker"), "rootfs")
	write(filepath.Join(root, "etc", "image-etc"), "image")
	write(filepath.Join(root, "secret.txt"), "secret")
	write(filepath.Join(root, "secretdir", "key"), "secret")
	write(filepath.Join(dir, "src-ro", "data"), "ro")
	write(filepath.Join(dir, "hostfile"), "hostfile")
	// evil -> /etc: as a host path this is the host's /etc.
	must(t, os.Symlink("/etc", filepath.Join(root, "evil")))
	// up -> ../..: on the host it climbs to dir/a, outside the rootfs.
	must(t, os.Symlink("../..", filepath.Join(root, "up")))
	// away -> DIR/outside: a host directory of ours; inside the root the
	// same path exists too, so only an escape would create DIR/outside/probe.
	must(t, os.Symlink(filepath.Join(dir, "outside"), filepath.Join(root, "away")))
}

func rootfsOf(dir string) string { return filepath.Join(dir, "a", "b", "rootfs") }

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	must(t, err)
	_, err = io.Copy(out, in)
	must(t, err)
	must(t, out.Close())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// runScenario re-executes the test binary as the scenario's child.
func runScenario(t *testing.T, name string) {
	sc := scenarios[name]
	if !sc.userns && os.Getuid() != 0 {
		t.Skip("requires root (for mknod outside a user namespace)")
	}
	if sc.userns {
		if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
			t.Skip("requires userns")
		}
	}
	dir := t.TempDir()
	makeRootfs(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), envScenario+"="+name, envDir+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | sc.clone,
		Pdeathsig:  syscall.SIGKILL,
	}
	if sc.userns {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) && sc.userns {
		t.Skipf("requires userns: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "PASS: TestChild") {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
	t.Logf("child %s:\n%s", name, grepLines(string(out), "setup took"))
	if sc.hostCheck != nil {
		sc.hostCheck(t, dir)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}

// TestChild is the child side; it does nothing unless re-executed.
func TestChild(t *testing.T) {
	name := os.Getenv(envScenario)
	runtime.LockOSThread()
	sc := scenarios[name]
	c := sc.config(os.Getenv(envDir))
	start := time.Now()
	err := Prepare(c)
	if sc.wantErr != nil {
		if err == nil {
			t.Fatalf("Prepare succeeded, want error %q", sc.wantErr)
		}
		for _, w := range sc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Prepare error = %v, want it to contain %q", err, w)
			}
		}
		if sc.wantErrno != 0 && !errors.Is(err, sc.wantErrno) {
			t.Errorf("errors.Is(%v, %v) = false", err, sc.wantErrno)
		}
		t.Logf("Prepare failed as expected: %v", err)
		return
	}
	must(t, err)
	prepared := time.Now()
	must(t, Enter(c))
	entered := time.Now()
	if sc.check != nil && c.Console == "" && wantConsole[name] {
		c.Console = openPty(t)
	}
	finishStart := time.Now()
	must(t, Finish(c))
	t.Logf("setup took %v (prepare %v, enter %v, finish %v)", time.Since(start)-finishStart.Sub(entered),
		prepared.Sub(start), entered.Sub(prepared), time.Since(finishStart))
	sc.check(t, c)
}

var wantConsole = map[string]bool{"full-userns": true, "full-root": true}

// openPty opens a pty in the container's devpts and returns its slave path.
func openPty(t *testing.T) string {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	must(t, err)
	must(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	must(t, err)
	return "/dev/pts/" + strconv.Itoa(n)
}

// TestMain keeps TestChild, the re-executed child's entry point, out of
// ordinary runs: it only means something inside the child's namespaces.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(envScenario) == "" {
		if f := flag.Lookup("test.skip"); f != nil && f.Value.String() == "" {
			_ = f.Value.Set("^TestChild$")
		}
	}
	os.Exit(m.Run())
}
