package systemd

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupMount is the cgroup2 mount in the session's mount namespace.
const cgroupMount = "/sys/fs/cgroup"

// sessionMain is the client in the session (see harness_test.go). Requests:
//
//	connect           ConnectUser(); ConnectUS
//	spawn             start `sleep 1000` as a child; PID
//	start Unit Slice PID   StartScope; Cgroup, StartUS
//	stop Unit         StopUnit; StopUS
//	leaf Cgroup PID   mkdir Cgroup/leaf, move PID there, write cgroup.subtree_control
//	freeze Cgroup Value   write cgroup.freeze, wait for cgroup.events "frozen Value"
//	exec Args         run Args; Out
//	userns            run usernsMain in a new user namespace (0 -> this uid); Out
func sessionMain() int {
	var conn *Conn
	var children []*exec.Cmd
	defer func() {
		for _, c := range children {
			c.Process.Kill()
			c.Wait()
		}
		if conn != nil {
			conn.Close()
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		var r reply
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		switch req.Op {
		case "connect":
			if conn != nil {
				conn.Close()
			}
			t0 := time.Now()
			conn, err = ConnectUser()
			r.ConnectUS = time.Since(t0).Microseconds()
		case "spawn":
			c := exec.Command("sleep", "1000")
			if err = c.Start(); err == nil {
				children = append(children, c)
				r.PID = c.Process.Pid
			}
		case "start":
			t0 := time.Now()
			r.Cgroup, err = conn.StartScope(ctx, req.Unit, req.Slice, req.PID)
			r.StartUS = time.Since(t0).Microseconds()
		case "stop":
			t0 := time.Now()
			err = conn.StopUnit(ctx, req.Unit)
			r.StopUS = time.Since(t0).Microseconds()
		case "leaf":
			err = moveToLeaf(filepath.Join(cgroupMount, req.Cgroup), req.PID)
		case "freeze":
			err = freeze(filepath.Join(cgroupMount, req.Cgroup), req.Value)
		case "exec":
			var out []byte
			out, err = exec.Command(req.Args[0], req.Args[1:]...).CombinedOutput()
			r.Out = string(out)
		case "userns":
			r.Out, err = runInUserns()
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		cancel()
		if err != nil {
			r.Err, r.Unreach = err.Error(), errors.Is(err, ErrUnreachable)
		}
		if err := enc.Encode(r); err != nil {
			return 1
		}
	}
	return 0
}

// moveToLeaf follows the "no internal processes" rule (cgroup-v2.rst): a
// delegated cgroup's processes go into a leaf before controllers are
// enabled in its cgroup.subtree_control. Nothing can be enabled here (no
// controller reaches the environment), so the write is empty; it still
// proves the file is the user's to write.
func moveToLeaf(dir string, pid int) error {
	leaf := filepath.Join(dir, "leaf")
	if err := os.Mkdir(leaf, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("\n"), 0)
}

// freeze writes value ("1" or "0") to dir/cgroup.freeze and waits, with
// inotify on cgroup.events (the kernel notifies its changes), until the
// cgroup reports "frozen value".
func freeze(dir, value string) error {
	events := filepath.Join(dir, "cgroup.events")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY); err != nil {
		return fmt.Errorf("watch %s: %w", events, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte(value), 0); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 4096)
	for {
		b, err := os.ReadFile(events)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "frozen "+value+"\n") {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s still says %q", events, b)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			unix.Read(fd, buf)
		}
	}
}

// runInUserns runs this binary as usernsMain in a new user namespace that
// maps uid and gid 0 to the caller's: root in it, as under rootless podman.
func runInUserns() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"=userns")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("userns child: %w: %s", err, stderrOf(err))
	}
	return string(out), nil
}

// usernsResult is what usernsMain prints.
type usernsResult struct {
	Euid       int
	UIDMap     string
	ClaimNsUID string // the bus's answer to "AUTH EXTERNAL hex(euid)"
	Cgroup     string // from StartScope with ConnectUser
	StopErr    string
}

// usernsMain, inside the user namespace, claims the namespace's uid on the
// bus, then connects with ConnectUser and starts and stops a scope for a
// child of its own.
func usernsMain() int {
	var res usernsResult
	res.Euid = os.Geteuid()
	m, _ := os.ReadFile("/proc/self/uid_map")
	res.UIDMap = strings.Join(strings.Fields(string(m)), " ")
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	path, ok := strings.CutPrefix(os.Getenv("DBUS_SESSION_BUS_ADDRESS"), "unix:path=")
	if !ok {
		return fail(errors.New("DBUS_SESSION_BUS_ADDRESS is not unix:path=..."))
	}
	var err error
	if res.ClaimNsUID, err = claimUID(path, os.Geteuid()); err != nil {
		return fail(err)
	}
	conn, err := ConnectUser()
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	child := exec.Command("sleep", "1000")
	if err := child.Start(); err != nil {
		return fail(err)
	}
	defer child.Wait()
	defer child.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unit := UnitName("zviz-test-userns", strconv.Itoa(os.Getpid()))
	if res.Cgroup, err = conn.StartScope(ctx, unit, "", child.Process.Pid); err != nil {
		return fail(err)
	}
	if err := conn.StopUnit(ctx, unit); err != nil {
		res.StopErr = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// claimUID opens a connection to the bus socket at path, claims uid with
// EXTERNAL, and returns the bus's first answer ("OK GUID" or "REJECTED ...").
func claimUID(path string, uid int) (string, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	id := hex.EncodeToString([]byte(strconv.Itoa(uid)))
	if _, err := c.Write([]byte("\x00AUTH EXTERNAL " + id + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
