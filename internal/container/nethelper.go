package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// zviz:[net] ID keeps the user-mode network of a container created
// without a foreground run (create/start, run -d): it starts the driver
// (rootlesskit ties slirp4netns to the thread that started it with
// PR_SET_PDEATHSIG), tells create when the network is up, and stops the
// driver once the container's init exits, then exits itself. Never a
// daemon: it lives exactly as long as the container.

const (
	netArg0 = "zviz:[net]"
	envNet  = "_ZVIZ_NET"
)

// netReply is the helper's answer to create.
type netReply struct {
	DNS []string `json:"dns,omitempty"`
	Err string   `json:"err,omitempty"`
}

// spawn starts the helper for this job and waits until the network is up.
func (j *netJob) spawn(id string) ([]string, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(j.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", j.Pid, err)
	}
	pf := os.NewFile(uintptr(pidfd), "init-pidfd")
	defer pf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	cmd := &exec.Cmd{
		// The drivers and nsenter are found on PATH, as in the foreground.
		Path: "/proc/self/exe", Args: []string{netArg0, id}, Env: []string{"PATH=" + path, envNet + "=" + string(b)},
		Stderr: os.Stderr, ExtraFiles: []*os.File{w, pf},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", netArg0, err)
	}
	_ = cmd.Process.Release()
	_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
	var rep netReply
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("%s: no answer: %w", netArg0, err)
	}
	if rep.Err != "" {
		return nil, errors.New(rep.Err)
	}
	return rep.DNS, nil
}

// IsNetHelper tells main whether this process is a zviz:[net].
func IsNetHelper() bool {
	return len(os.Args) == 2 && os.Args[0] == netArg0 && os.Getenv(envNet) != ""
}

// NetHelperMain is zviz:[net]: bring the network up, answer, wait for the
// init to exit, stop the network.
func NetHelperMain() int {
	// The driver's PR_SET_PDEATHSIG is this thread's: keep it for good.
	runtime.LockOSThread()
	reply, pidfd := os.NewFile(3, "net-reply"), os.NewFile(4, "init-pidfd")
	var j netJob
	if err := json.Unmarshal([]byte(os.Getenv(envNet)), &j); err != nil {
		return answerNet(reply, nil, err)
	}
	n, dns, err := j.run()
	if code := answerNet(reply, dns, err); code != 0 {
		return code
	}
	defer n.stop()
	pfd := []unix.PollFd{{Fd: int32(pidfd.Fd()), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
			return 0 // readable: the init has exited
		}
	}
}

func answerNet(w io.WriteCloser, dns []string, err error) int {
	defer w.Close()
	rep := netReply{DNS: dns}
	if err != nil {
		rep.Err = err.Error()
	}
	_ = json.NewEncoder(w).Encode(rep)
	if err != nil {
		return 1
	}
	return 0
}
