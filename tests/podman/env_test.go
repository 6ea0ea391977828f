// Package podman drives the real podman (4.3, with conmon 2.1) as the
// unprivileged test user, with zviz as its OCI runtime: the outer ring of
// tests (STYLE.md), written against podman's behaviour rather than zviz's
// internals. Every test shares one isolated podman environment, made
// once: its own XDG_RUNTIME_DIR (so podman's pause process, network
// namespaces and zviz's state are private), HOME, containers.conf,
// storage.conf (graph and run roots in a temporary directory), and one
// image imported from a busybox-static rootfs tarball with the probe in
// it (no registry is reachable). TestMain removes all of it.
package podman

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zviz/zviz/tests/testutil"
)

// image is the name the busybox image is imported under.
const image = "localhost/zviz-test/busybox:latest"

// env is the shared podman environment.
type env struct {
	dir     string // temporary base directory, owned by the test user
	runtime string // XDG_RUNTIME_DIR
	zviz    string // the zviz binary podman runs
	conf    string // containers.conf naming zviz the default runtime
	vars    []string
}

var (
	envOnce sync.Once
	shared  *env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.destroy()
	}
	testutil.RemoveBuilt()
	os.Exit(code)
}

// podmanEnv returns the shared environment, making it on first use; tests
// skip when a host feature it needs is missing.
func podmanEnv(t *testing.T) *env {
	t.Helper()
	testutil.Requires(t, "root", "unprivileged-user", "subuid", "newuidmap", "podman", "busybox")
	envOnce.Do(func() { shared, envErr = newEnv(t) })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return shared
}

func newEnv(t *testing.T) (*env, error) {
	uid, err := testutil.LookupUser(testutil.TestUser)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "zviz-podman-")
	if err != nil {
		return nil, err
	}
	// A short XDG_RUNTIME_DIR: podman's sockets and conmon's exit files
	// live below it, and with a long one podman 4.3 misses the container's
	// exit and waits out conmon's 20 s timeout on every run --rm.
	e := &env{dir: dir, runtime: fmt.Sprintf("/run/user/%d/zp%d", uid, os.Getpid())}
	// The binary podman runs must be reachable by the test user.
	e.zviz = filepath.Join(dir, "zviz")
	if err := copyExec(testutil.BuildZviz(t), e.zviz); err != nil {
		return e, err
	}
	for _, d := range []string{"home", "storage", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return e, err
		}
	}
	if err := os.Mkdir(e.runtime, 0o700); err != nil {
		return e, err
	}
	e.conf = filepath.Join(dir, "containers.conf")
	files := map[string]string{
		e.conf: containersConf(e.zviz),
		filepath.Join(dir, "storage.conf"): fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(dir, "storage"), filepath.Join(dir, "run")),
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return e, err
		}
	}
	for _, p := range []string{dir, e.runtime} {
		if err := chownTree(p, uid); err != nil {
			return e, err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return e, err
	}
	home := filepath.Join(dir, "home")
	e.vars = []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + e.runtime, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local/share"), "CONTAINERS_CONF=" + e.conf,
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf")}
	tarball := filepath.Join(dir, "busybox.tar")
	if err := rootfsTarball(t, tarball); err != nil {
		return e, err
	}
	if res := e.run(t, "import", tarball, image); res.code != 0 {
		return e, fmt.Errorf("podman import: %v", res)
	}
	return e, nil
}

// containersConf is the configuration README.md shows: zviz as a named
// runtime and the default one, in runtime_supports_json so that podman
// reads its errors from --log. cgroupfs and a file event log: the test
// user has no systemd user session here. (Not tmp_dir: podman's exit
// command then loses track of containers, and `docker run --rm` waits
// forever; the private XDG_RUNTIME_DIR isolates podman's tmp already.)
func containersConf(zviz string) string {
	return fmt.Sprintf(`[engine]
runtime = "zviz"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "zviz"]
cgroup_manager = "cgroupfs"
events_logger = "file"

[engine.runtimes]
zviz = [%q]
`, zviz)
}

// rootfsTarball writes the image's root filesystem: busybox-static with
// its applets, the probe at /probe, /etc/passwd and /etc/group.
func rootfsTarball(t *testing.T, out string) error {
	root, err := os.MkdirTemp("", "zviz-podman-rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	applets := append(append([]string{}, testutil.DefaultApplets...), "wget", "tty", "stty", "seq")
	if err := testutil.WriteRootfs(root, testutil.BuildProbe(t), applets); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = strings.TrimPrefix(p, root+"/"), 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.Chmod(out, 0o644)
}

// result is one podman invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// cmd is `podman ARGS` as the test user in the environment.
func (e *env) cmd(t testing.TB, args ...string) *exec.Cmd {
	c := testutil.RunAs(t, testutil.TestUser, e.vars, "podman", args...)
	c.SysProcAttr.Setsid = true
	return c
}

// run runs podman to completion (bounded: 120 s).
func (e *env) run(t testing.TB, args ...string) result {
	t.Helper()
	c := e.cmd(t, args...)
	// Files, not pipes: conmon inherits podman's stdio and outlives it
	// until its exit command has run; a pipe would keep us waiting.
	out, errf := tempFile(t), tempFile(t)
	c.Stdout, c.Stderr = out, errf
	c.Dir = e.dir
	if err := c.Start(); err != nil {
		t.Fatalf("start podman %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(120 * time.Second):
		c.Process.Kill()
		<-done
		t.Fatalf("podman %v: timed out\nstdout: %s\nstderr: %s", args, readAll(out), readAll(errf))
	}
	res := result{stdout: readAll(out), stderr: readAll(errf)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("podman %v: %v", args, err)
	}
	return res
}

// ok runs podman and fails the test unless it exits 0.
func (e *env) ok(t testing.TB, args ...string) result {
	t.Helper()
	res := e.run(t, args...)
	if res.code != 0 {
		t.Fatalf("podman %v: %v", args, res)
	}
	return res
}

// zrun is `podman --runtime ZVIZ ARGS`: the form the issue names.
func (e *env) zrun(t testing.TB, args ...string) result {
	t.Helper()
	return e.run(t, append([]string{"--runtime", e.zviz}, args...)...)
}

func (e *env) zok(t testing.TB, args ...string) result {
	t.Helper()
	return e.ok(t, append([]string{"--runtime", e.zviz}, args...)...)
}

// name is a container name unique to the test; the container is removed
// when the test ends.
func (e *env) name(t *testing.T) string {
	n := fmt.Sprintf("zt-%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = e.cmd(t, "--runtime", e.zviz, "rm", "-f", "-t", "0", n).Run() })
	return n
}

// destroy removes every container, the storage (its files belong to the
// user's subordinate ids: removed from inside podman's user namespace),
// podman's pause process and the directories.
func (e *env) destroy() {
	run := func(args ...string) {
		c, err := testutil.Command(testutil.TestUser, e.vars, "podman", args...)
		if err == nil {
			c.Dir = e.dir
			_ = c.Run()
		}
	}
	run("--runtime", e.zviz, "rm", "-a", "-f", "-t", "0")
	run("unshare", "rm", "-rf", filepath.Join(e.dir, "storage"), filepath.Join(e.dir, "run"))
	for _, p := range []string{filepath.Join(e.runtime, "libpod", "tmp", "pause.pid")} {
		if b, err := os.ReadFile(p); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	killUnder(e.dir)
	os.RemoveAll(e.runtime)
	os.RemoveAll(e.dir)
}

// killUnder kills what podman leaves running for this environment: the
// conmon of an exec session waits out an exit delay (five minutes) before
// its cleanup. Only processes whose command line names dir (a temporary
// directory of ours) are touched.
func killUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), dir+"/") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func copyExec(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func chownTree(dir string, uid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

func tempFile(t testing.TB) *os.File {
	t.Helper()
	f, err := os.CreateTemp("", "zviz-podman-out-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(f.Name())
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(f *os.File) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	return string(b)
}
