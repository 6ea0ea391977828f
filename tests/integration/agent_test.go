package integration

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/seccomp"
)

// seccompAgent is a tiny linux.seccomp.listenerPath agent: for each
// connection it reads the container process state and the listener
// (SCM_RIGHTS), then answers every notification with errno until no
// process uses the filter. stop closes its socket (connections taken go
// on being served).
func seccompAgent(t *testing.T, path string, errno unix.Errno) (states <-chan specs.ContainerProcessState, stop func()) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan specs.ContainerProcessState, 8)
	go func() {
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go agentServe(conn, ch, errno)
		}
	}()
	return ch, func() { l.Close() }
}

// agentServe takes one process's state and listener and answers its
// calls.
func agentServe(conn *net.UnixConn, states chan<- specs.ContainerProcessState, errno unix.Errno) {
	defer conn.Close()
	buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	var st specs.ContainerProcessState
	if json.Unmarshal(buf[:n], &st) != nil {
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return
	}
	states <- st
	defer unix.Close(fds[0])
	for {
		pfd := []unix.PollFd{{Fd: int32(fds[0]), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 10000); err != nil && err != unix.EINTR {
			return
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			return // POLLHUP: the process is gone (or a timeout)
		}
		if n, err := seccomp.Recv(fds[0]); err == nil {
			_ = seccomp.RespondErrno(fds[0], n.ID, 0, errno)
		}
	}
}

// TestSeccompAgent: a config whose own filter has SCMP_ACT_NOTIFY rules
// sends its listener and the container process state to the agent at
// linux.seccomp.listenerPath, which answers the calls (here mkdir, with
// EXDEV, which nothing else would answer); beside the zviz profile, and
// with an agent that is not listening, or no listenerPath, the container
// does not start.
func TestSeccompAgent(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		dir := hostTempDir(t, r.user)
		sock := filepath.Join(dir, "agent.sock")
		states, _ := seccompAgent(t, sock, unix.EXDEV)
		if err := os.Chmod(sock, 0o777); err != nil {
			t.Fatal(err)
		}
		notify := func(path string) func(s *specs.Spec) {
			return func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: path,
					ListenerMetadata: "zviz-test-metadata",
					Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}}}
			}
		}
		id := "agent-" + randID()
		res := r.ok("run", "--bundle", r.shBundle("mkdir /tmp/agent-dir 2>&1; echo rc=$?", notify(sock)), id)
		if !strings.Contains(res.stdout, "Invalid cross-device link") {
			t.Errorf("mkdir was not answered by the agent (EXDEV):\n%v", res)
		}
		select {
		case st := <-states:
			if st.Metadata != "zviz-test-metadata" || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName ||
				st.State.ID != id || st.Pid <= 0 || st.State.Pid != st.Pid || st.State.Bundle == "" {
				t.Errorf("container process state: %+v", st)
			}
		case <-time.After(5 * time.Second):
			t.Error("the agent got no state")
		}
		// No agent listening: the container must not start.
		res = r.run("run", "--bundle", r.shBundle("echo started", notify(filepath.Join(dir, "nobody.sock"))), "agent-"+randID())
		if res.code == 0 || strings.Contains(res.stdout, "started") || !strings.Contains(res.stderr, "listenerPath") {
			t.Errorf("with no agent listening: want a refusal naming listenerPath, got %v", res)
		}
		// SCMP_ACT_NOTIFY without listenerPath: refused at create.
		res = r.run("run", "--bundle", r.shBundle("echo started", notify("")), "agent-"+randID())
		if res.code == 0 || !strings.Contains(res.stderr, "listenerPath is not set") {
			t.Errorf("notify without listenerPath: %v", res)
		}
	})
}
