package systemd

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zviz/zviz/tests/testutil"
)

// The integration tests drive a real `systemd --user` over the real user bus,
// started by hack/systemd-user.sh (TEST-ENVIRONMENTS.md §A). The test binary
// runs as root; the client side runs as the test user "in the session" (see
// the script): a copy of this test binary, started there with childEnv set,
// that executes one request per line on stdin and answers one JSON line on
// stdout (sessionMain, in session_test.go).

const (
	testUser = "zviztest"
	childEnv = "ZVIZ_SYSTEMD_TEST_CHILD"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "session":
		os.Exit(sessionMain())
	case "userns":
		os.Exit(usernsMain())
	}
	os.Exit(m.Run())
}

// userManager is a running environment of hack/systemd-user.sh
// (testutil.UserManager).
type userManager struct{ *testutil.UserManager }

// startUserManager starts a manager for the test user in an environment of
// its own, stopped (and its cgroups removed) when the test ends.
func startUserManager(t *testing.T) *userManager {
	t.Helper()
	return &userManager{testutil.StartUserManager(t, "systemd")} // skips, naming what is missing
}

// hostPath is the host directory of cgroup, a path in the session's cgroup
// namespace (whose root is the environment's cgroup).
func (m *userManager) hostPath(cgroup string) string {
	return filepath.Join(m.Cgroup, cgroup)
}

// request is one line to the session child; reply is its answer.
type request struct {
	Op     string   // see sessionMain
	Unit   string   `json:",omitempty"`
	Slice  string   `json:",omitempty"`
	PID    int      `json:",omitempty"`
	Cgroup string   `json:",omitempty"`
	Value  string   `json:",omitempty"`
	Args   []string `json:",omitempty"`
}

type reply struct {
	Err       string `json:",omitempty"`
	Unreach   bool   `json:",omitempty"` // errors.Is(err, ErrUnreachable)
	PID       int    `json:",omitempty"`
	Cgroup    string `json:",omitempty"`
	Out       string `json:",omitempty"`
	ConnectUS int64  `json:",omitempty"`
	StartUS   int64  `json:",omitempty"`
	StopUS    int64  `json:",omitempty"`
}

// session is the test user's client process in the session.
type session struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

// selfCopy returns a copy of this test binary that the test user can run
// (go test's build directory is private to root), removed when t ends.
func selfCopy(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "zviz-systemd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "systemd.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// newSession starts the client as the test user in the session.
func (m *userManager) newSession(t *testing.T) *session {
	t.Helper()
	bin := selfCopy(t)
	cmd := m.Command("env", childEnv+"=session", bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Stderr = &testWriter{t: t, prefix: "session: "}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the session client: %v", err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("session client: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("session client did not exit")
		}
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	return &session{t: t, in: in, out: sc}
}

// do sends req and returns the reply.
func (s *session) do(req request) reply {
	s.t.Helper()
	b, _ := json.Marshal(req)
	if _, err := s.in.Write(append(b, '\n')); err != nil {
		s.t.Fatalf("send %s: %v", req.Op, err)
	}
	if !s.out.Scan() {
		s.t.Fatalf("no reply to %s (client exited?): %v", req.Op, s.out.Err())
	}
	var r reply
	if err := json.Unmarshal(s.out.Bytes(), &r); err != nil {
		s.t.Fatalf("reply to %s: %v: %q", req.Op, err, s.out.Text())
	}
	return r
}

// must is do, failing the test on an error reply.
func (s *session) must(req request) reply {
	s.t.Helper()
	r := s.do(req)
	if r.Err != "" {
		s.t.Fatalf("%s %s: %s", req.Op, req.Unit, r.Err)
	}
	return r
}

type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
