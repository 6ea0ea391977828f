package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/zviz/zviz/tests/testutil"
)

// The podman section: `podman run --rm IMG true` with zviz as the runtime
// against the same with runc, interleaved, as the bench user, in a private
// podman environment (its own XDG_RUNTIME_DIR, storage and
// containers.conf; the image is imported from the bench's busybox rootfs).
// Both pay podman's and conmon's costs; the difference is the runtime's.

// podmanEnv is the private environment; vars go to every podman command.
type podmanEnv struct {
	dir, runtime string
	vars         []string
}

func podmanBench(e *env) ([]result, error) {
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, fmt.Errorf("podman is not installed (hack/setup.sh installs it): %w", err)
	}
	p, err := newPodmanEnv(e)
	defer p.cleanup(e)
	if err != nil {
		return nil, err
	}
	image := "localhost/zviz-bench/busybox:latest"
	tarball := filepath.Join(p.dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", e.rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tar the rootfs: %v: %s", err, out)
	}
	if err := os.Chmod(tarball, 0o644); err != nil {
		return nil, err
	}
	if _, err := timeRun(p.candidate(e, "import", "import", tarball, image), -1); err != nil {
		return nil, err
	}
	cands := []candidate{
		p.candidate(e, "podman+zviz", "--runtime", e.zviz, "run", "--rm", image, "/bin/true"),
		p.candidate(e, "podman+runc", "--runtime", "runc", "run", "--rm", image, "/bin/true"),
	}
	results, err := interleaved(e, cands)
	if err != nil {
		return nil, err
	}
	printRatio(results, "podman+zviz", "podman+runc")
	return results, nil
}

func newPodmanEnv(e *env) (*podmanEnv, error) {
	// A short XDG_RUNTIME_DIR: podman's sockets and conmon's exit files
	// live below it, and with a long one podman 4.3 misses the container's
	// exit and waits out conmon's 20 s timeout on every run --rm.
	p := &podmanEnv{dir: filepath.Join(e.work, "podman"), runtime: fmt.Sprintf("/run/user/%d/zb%d", e.uid, os.Getpid())}
	if e.uid == 0 {
		p.runtime = fmt.Sprintf("/run/zb%d", os.Getpid())
	}
	home := filepath.Join(p.dir, "home")
	for _, d := range []string{home, filepath.Join(p.dir, "storage"), filepath.Join(p.dir, "run"), p.runtime} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return p, err
		}
	}
	conf := filepath.Join(p.dir, "containers.conf")
	storage := filepath.Join(p.dir, "storage.conf")
	files := map[string]string{
		conf: "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n" +
			"runtime_supports_json = [\"crun\", \"runc\", \"kata\", \"runsc\", \"krun\", \"zviz\"]\n",
		storage: fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(p.dir, "storage"), filepath.Join(p.dir, "run")),
	}
	for f, content := range files {
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			return p, err
		}
	}
	if err := chownAll(e.uid, e.gid, p.dir, p.runtime); err != nil {
		return p, err
	}
	if err := os.Chmod(p.dir, 0o755); err != nil {
		return p, err
	}
	p.vars = []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + p.runtime, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local/share"), "CONTAINERS_CONF=" + conf,
		"CONTAINERS_STORAGE_CONF=" + storage}
	return p, nil
}

// candidate is one podman command as the bench user.
func (p *podmanEnv) candidate(e *env, name string, args ...string) candidate {
	return candidate{name: name, cmd: func(int) (*exec.Cmd, error) {
		c, err := testutil.Command(e.user, p.vars, "podman", args...)
		if c != nil {
			c.Dir = p.dir
		}
		return c, err
	}}
}

// cleanup removes the containers, the storage (owned by the user's
// subordinate ids: from inside podman's user namespace) and podman's pause
// process.
func (p *podmanEnv) cleanup(e *env) {
	for _, args := range [][]string{{"rm", "-a", "-f", "-t", "0"},
		{"unshare", "rm", "-rf", filepath.Join(p.dir, "storage"), filepath.Join(p.dir, "run")}} {
		if c, err := testutil.Command(e.user, p.vars, "podman", args...); err == nil {
			c.Dir = p.dir
			_ = c.Run()
		}
	}
	if b, err := os.ReadFile(filepath.Join(p.runtime, "libpod", "tmp", "pause.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	os.RemoveAll(p.runtime)
}
