package podman

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zviz/zviz/tests/testutil"
)

// service is a rootless `podman system service` on a unix socket in the
// environment's XDG_RUNTIME_DIR; its runtime is zviz (containers.conf).
type service struct {
	e    *env
	sock string
	cmd  *exec.Cmd
}

func startService(t *testing.T, e *env) *service {
	t.Helper()
	s := &service{e: e, sock: "unix://" + filepath.Join(e.runtime, fmt.Sprintf("podman-%d.sock", time.Now().UnixNano()))}
	s.cmd = e.cmd(t, "system", "service", "--time=0", s.sock)
	s.cmd.Dir = e.dir
	var logs bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &logs, &logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := s.docker(t, "version", "--format", "{{.Server.Version}}")
		if res.code == 0 {
			t.Logf("podman service %s: API server %s", s.sock, strings.TrimSpace(res.stdout))
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("podman system service did not answer: %v\nservice log: %s", res, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// docker runs the Docker CLI against the service, as the test user.
func (s *service) docker(t *testing.T, args ...string) result {
	t.Helper()
	c := testutil.RunAs(t, testutil.TestUser, s.e.vars, "docker", append([]string{"-H", s.sock}, args...)...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr, c.Dir = &out, &errb, s.e.dir
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		<-done
		t.Fatalf("docker %v: timed out\nstdout: %s\nstderr: %s", args, out.String(), errb.String())
	}
	res := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return res
}

func (s *service) dok(t *testing.T, args ...string) string {
	t.Helper()
	res := s.docker(t, args...)
	if res.code != 0 {
		t.Fatalf("docker %v: %v", args, res)
	}
	return res.stdout
}

// TestDockerAPI: the GitLab runner's docker executor path: the Docker CLI
// drives a rootless podman service whose runtime is zviz through create,
// start (and start with attach), exec, wait, logs and remove.
func TestDockerAPI(t *testing.T) {
	testutil.Requires(t, "docker-cli")
	e := podmanEnv(t)
	s := startService(t, e)
	if out := s.dok(t, "run", "--rm", image, "echo", "hi-docker"); out != "hi-docker\n" {
		t.Errorf("docker run --rm: %q, want hi-docker", out)
	}
	id := strings.TrimSpace(s.dok(t, "create", image, "sh", "-c", "echo out-$((1+2)); while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3"))
	t.Cleanup(func() { s.docker(t, "rm", "-f", id) })
	s.dok(t, "start", id)
	if out := s.dok(t, "exec", id, "sh", "-c", "echo exec-$((2+2)); touch /tmp/go"); out != "exec-4\n" {
		t.Errorf("docker exec: %q, want exec-4", out)
	}
	if code := strings.TrimSpace(s.dok(t, "wait", id)); code != "3" {
		t.Errorf("docker wait: %q, want 3", code)
	}
	if out := s.dok(t, "logs", id); !strings.Contains(out, "out-3") {
		t.Errorf("docker logs: %q, want out-3", out)
	}
	s.dok(t, "rm", id)
	if out := s.dok(t, "ps", "-a", "--no-trunc", "--format", "{{.ID}}"); strings.Contains(out, id) {
		t.Errorf("container still listed after rm: %q", out)
	}
	id = strings.TrimSpace(s.dok(t, "create", image, "sh", "-c", "echo attached-$((5+5)); exit 4"))
	t.Cleanup(func() { s.docker(t, "rm", "-f", id) })
	res := s.docker(t, "start", "-a", id)
	if !strings.Contains(res.stdout, "attached-10") || res.code != 4 {
		t.Errorf("docker start -a: %v, want attached-10 and exit 4", res)
	}
}
