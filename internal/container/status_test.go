package container

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func selfStart(t *testing.T) uint64 {
	t.Helper()
	st, err := startTime(os.Getpid())
	if err != nil || st == 0 {
		t.Fatalf("startTime(self) = %d, %v", st, err)
	}
	return st
}

// zombie returns the pid of an exited, unreaped child.
func zombie(t *testing.T) (pid int, start uint64) {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", "read x")
	stdin, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Wait() })
	start, err := startTime(c.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + itoa(c.Process.Pid) + "/stat")
		if strings.Contains(string(b), ") Z ") {
			return c.Process.Pid, start
		}
		if time.Now().After(deadline) {
			t.Fatal("child did not exit")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestStatus(t *testing.T) {
	self, start := os.Getpid(), selfStart(t)
	zpid, zstart := zombie(t)
	withFifo, noFifo := t.TempDir(), t.TempDir()
	if err := unix.Mkfifo(filepath.Join(withFifo, fifoName), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		rec   record
		dir   string
		want  specs.ContainerState
		shown bool // pid in the state document
	}{
		{"create before the init started", record{}, noFifo, StatusCreating, true},
		{"create with a live init", record{Pid: self, Start: start}, withFifo, StatusCreating, true},
		{"create whose init died", record{Pid: zpid, Start: zstart}, withFifo, StatusStopped, false},
		{"parked on the fifo", record{Pid: self, Start: start, Ready: true}, withFifo, StatusCreated, true},
		{"released", record{Pid: self, Start: start, Ready: true}, noFifo, StatusRunning, true},
		{"exited, unreaped", record{Pid: zpid, Start: zstart, Ready: true}, noFifo, StatusStopped, false},
		{"exited before start", record{Pid: zpid, Start: zstart, Ready: true}, withFifo, StatusStopped, false},
		{"pid reused", record{Pid: self, Start: start + 1, Ready: true}, noFifo, StatusStopped, false},
		{"no such pid", record{Pid: 1 << 22, Start: 1, Ready: true}, noFifo, StatusStopped, false},
		{"ready without pid", record{Ready: true}, noFifo, StatusStopped, false},
	} {
		if got := tc.rec.status(tc.dir); got != tc.want {
			t.Errorf("%s: status %q, want %q", tc.name, got, tc.want)
		}
		st := tc.rec.state(tc.dir)
		if st.Status != tc.want || (st.Pid != 0) != (tc.shown && tc.rec.Pid != 0) {
			t.Errorf("%s: state %q pid %d, want %q with pid shown %v", tc.name, st.Status, st.Pid, tc.want, tc.shown)
		}
	}
}

func TestPidfdRefusesReusedPid(t *testing.T) {
	start := selfStart(t)
	r := &record{Pid: os.Getpid(), Start: start + 7}
	if fd, err := r.pidfd(); !errors.Is(err, unix.ESRCH) {
		unix.Close(fd)
		t.Errorf("pidfd of a reused pid: %d, %v; want ESRCH", fd, err)
	}
	r.Start = start
	fd, err := r.pidfd()
	if err != nil {
		t.Fatalf("pidfd of self: %v", err)
	}
	unix.Close(fd)
	if _, err := (&record{}).pidfd(); !errors.Is(err, unix.ESRCH) {
		t.Errorf("pidfd of pid 0: %v", err)
	}
}

func TestJSONState(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	zpid, zstart := zombie(t)
	r := &record{ID: "j", Bundle: "/bundle", Rootfs: "/bundle/rootfs", Created: created, Owner: "alice",
		Annotations: map[string]string{"a": "b"}, Pid: zpid, Start: zstart, Ready: true, Warnings: []string{"w"}}
	b, err := jsonState(r, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := map[string]any{"ociVersion": specs.Version, "id": "j", "status": "stopped", "bundle": "/bundle",
		"rootfs": "/bundle/rootfs", "created": "2024-05-06T07:08:09Z", "owner": "alice"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if _, ok := m["pid"]; ok {
		t.Errorf("stopped state carries a pid: %s", b)
	}
	if strings.Contains(string(b), "\n") {
		t.Errorf("state for hooks is not one line: %q", b)
	}
}

func TestWaitExitTimesOut(t *testing.T) {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Fatalf("pidfd_open: %v", err)
	}
	defer unix.Close(fd)
	began := time.Now()
	if err := waitExit(fd, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("waitExit on a live process: %v", err)
	}
	if d := time.Since(began); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("waitExit took %v", d)
	}
	zpid, _ := zombie(t)
	zfd, err := unix.PidfdOpen(zpid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(zfd)
	if err := waitExit(zfd, 5*time.Second); err != nil {
		t.Errorf("waitExit on an exited process: %v", err)
	}
}
