package cgroups

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The integrator's question: the init is a multithreaded Go process, moved
// into its cgroup's leaf by the parent, after which it must enter a new
// cgroup namespace rooted there (so the container sees "0::/"). It cannot
// be cloned with CLONE_NEWCGROUP: the namespace's root would be the
// parent's cgroup and the container would see "/../…". Does
// unshare(CLONE_NEWCGROUP) work from a Go process, and for whom?
//
// unshare(2) refuses a multithreaded caller only for flags implying
// CLONE_THREAD/CLONE_VM/CLONE_SIGHAND (CLONE_NEWUSER does); CLONE_NEWCGROUP
// is not one, but it changes the calling thread's nsproxy only. So: lock
// the OS thread, unshare, exec from that thread. The re-executed child
// (cgroupnsChild) reports what it sees.

type cgroupnsReport struct {
	UnshareErr   string
	Status       string // Uid and Cap lines of /proc/self/status, for the log
	ThreadCgroup string // /proc/thread-self/cgroup after unshare
	Threads      int    // threads of the process
	InNewNS      int    // how many of them are in the new namespace
}

func TestUnshareCgroupnsAfterJoin(t *testing.T) {
	tests := []struct {
		name string
		attr func(t *testing.T) *syscall.SysProcAttr
	}{
		{"root", func(t *testing.T) *syscall.SysProcAttr { return nil }},
		{"rootless: uid 0 in a user namespace, the test user on the host", func(t *testing.T) *syscall.SysProcAttr {
			requires(t, "userns")
			c := credential(t)
			// Credential switches to the namespace's uid 0 (the test user
			// on the host) before exec, which then grants the namespace's
			// capabilities.
			return &syscall.SysProcAttr{
				Cloneflags:  syscall.CLONE_NEWUSER,
				Credential:  &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
				UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(c.Uid), Size: 1}},
				GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(c.Gid), Size: 1}},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount, base := realCgroup(t)
			leaf := filepath.Join(base, LeafName)
			if err := os.Mkdir(leaf, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(testBinary(t))
			cmd.Env = []string{childEnv + "=cgroupns"}
			cmd.SysProcAttr = tt.attr(t)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			// The parent moves the init, then lets it go on: the order the
			// integrator must keep.
			if err := Join(leaf, cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			stdin.Write([]byte("go\n"))
			sc := bufio.NewScanner(stdout)
			var rep cgroupnsReport
			if !sc.Scan() || json.Unmarshal(sc.Bytes(), &rep) != nil {
				t.Fatalf("no report from the child: %q", sc.Text())
			}
			var execd []string
			for sc.Scan() {
				execd = append(execd, sc.Text())
			}
			cmd.Wait()
			t.Logf("child: %+v; after exec, /proc/self/cgroup: %q", rep, execd)
			if rep.UnshareErr != "" {
				t.Fatalf("unshare(CLONE_NEWCGROUP) from a Go process: %s", rep.UnshareErr)
			}
			if !strings.Contains(rep.ThreadCgroup, "0::/\n") {
				t.Errorf("the unsharing thread sees %q, want 0::/", rep.ThreadCgroup)
			}
			if rep.Threads < 2 || rep.InNewNS != 1 {
				t.Errorf("%d of %d threads in the new namespace: want exactly the unsharing one of several", rep.InNewNS, rep.Threads)
			}
			if !containsLine(execd, "0::/") {
				t.Errorf("the program exec'd from that thread sees %q, want 0::/ (leaf %s below %s)", execd, leaf, mount)
			}
		})
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// cgroupnsChild waits for "go" (the parent has moved it), unshares the
// cgroup namespace on a locked thread, reports, and execs cat from that
// thread.
func cgroupnsChild() int {
	bufio.NewReader(os.Stdin).ReadString('\n')
	runtime.LockOSThread()
	var rep cgroupnsReport
	before, _ := os.Readlink("/proc/thread-self/ns/cgroup")
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		rep.UnshareErr = err.Error()
	}
	st, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "CapEff:") {
			rep.Status += strings.Join(strings.Fields(l), " ") + "; "
		}
	}
	b, _ := os.ReadFile("/proc/thread-self/cgroup")
	rep.ThreadCgroup = string(b)
	tasks, _ := os.ReadDir("/proc/self/task")
	rep.Threads = len(tasks)
	for _, task := range tasks {
		ns, _ := os.Readlink("/proc/self/task/" + task.Name() + "/ns/cgroup")
		if ns != before {
			rep.InNewNS++
		}
	}
	out, _ := json.Marshal(rep)
	os.Stdout.Write(append(out, '\n'))
	if rep.UnshareErr != "" {
		return 1
	}
	err := syscall.Exec("/bin/cat", []string{"cat", "/proc/self/cgroup"}, nil)
	os.Stdout.WriteString("exec: " + err.Error() + "\n")
	return 1
}
