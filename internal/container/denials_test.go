package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
)

// lockedBuffer is a log several goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// fakeAgent accepts listeners at path and reports the pid of each state.
func fakeAgent(t *testing.T, path string) <-chan int {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	pids := make(chan int, 16)
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			c.Close()
			var st specs.ContainerProcessState
			if err != nil || json.Unmarshal(buf[:n], &st) != nil {
				pids <- -1
				continue
			}
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil {
					for _, fd := range fds {
						unix.Close(fd)
					}
				}
			}
			pids <- st.Pid
		}
	}()
	return pids
}

// handOverAgent hands a descriptor over on fd as an agent's listener, as
// the init and exec'd processes do, and returns the answer.
func handOverAgent(t *testing.T, fd, listener int) string {
	t.Helper()
	text, oob := wire.Handover{Listener: -1, Agent: listener, DNS: -1}.Encode(os.Getpid(), os.Getuid(), os.Getgid())
	if err := unix.Sendmsg(fd, text, oob, nil, 0); err != nil {
		t.Fatalf("send handover: %v", err)
	}
	buf := make([]byte, 512)
	n, err := unix.Read(fd, buf)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return string(buf[:n])
}

// TestServeExecHandovers: the logger takes the init's handover and, on
// denials.sock, those of several exec'd processes at once, each answered
// and its agent's listener sent with the sender's pid; once the init has
// exited it removes denials.sock, returns, and a later exec finds it
// gone. (Agent listeners only: the listeners themselves need a filter,
// which the integration tests install.)
func TestServeExecHandovers(t *testing.T) {
	dir := t.TempDir()
	pids := fakeAgent(t, filepath.Join(dir, "agent.sock"))
	initProc := exec.Command("sleep", "30")
	if err := initProc.Start(); err != nil {
		t.Fatal(err)
	}
	defer initProc.Process.Kill()
	d, err := newDenialLog()
	if err != nil {
		t.Fatal(err)
	}
	defer d.init.Close()
	d.plan = &listenerPlan{Agent: &agentConfig{Path: filepath.Join(dir, "agent.sock")}}
	if err := d.watch(initProc.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := d.listen(dir); err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	served := make(chan error, 1)
	go func() { served <- serve(d, &log) }()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if a := handOverAgent(t, int(d.init.Fd()), int(r.Fd())); a != wire.HandoverOK {
		t.Fatalf("the init's handover: %q", a)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialDenials("x", dir)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if a := handOverAgent(t, int(c.Fd()), int(w.Fd())); a != wire.HandoverOK {
				t.Errorf("an exec'd handover: %q", a)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 5; i++ {
		select {
		case pid := <-pids:
			if pid != os.Getpid() {
				t.Errorf("agent told pid %d, want the sender's %d", pid, os.Getpid())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the agent got %d states of 5", i)
		}
	}
	select {
	case err := <-served:
		t.Fatalf("serve returned while the init runs: %v", err)
	default:
	}
	initProc.Process.Kill()
	initProc.Wait()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return once the init exited")
	}
	if _, err := os.Stat(filepath.Join(dir, denialsSock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", denialsSock, err)
	}
	if _, err := dialDenials("x", dir); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("exec after the logger: %v", err)
	}
	if log.b.Len() > 0 {
		t.Errorf("log: %s", log.b.String())
	}
	d.close()
}
