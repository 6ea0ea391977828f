package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Freeze freezes every process in dir and below (cgroup.freeze, Linux ≥
// 5.2) and waits up to timeout for cgroup.events to say "frozen 1": the
// write only starts freezing. If that does not happen it thaws again.
func Freeze(dir string, timeout time.Duration) error {
	if err := setFrozen(dir, "1", timeout); err != nil {
		if thawErr := write(filepath.Join(dir, "cgroup.freeze"), "0"); thawErr != nil && !errors.Is(thawErr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("thaw again: %w", thawErr))
		}
		return fmt.Errorf("freeze cgroup %s: %w", dir, err)
	}
	return nil
}

// Thaw undoes Freeze and waits for "frozen 0". A cgroup whose ancestor is
// frozen stays frozen: that is an error after timeout.
func Thaw(dir string, timeout time.Duration) error {
	if err := setFrozen(dir, "0", timeout); err != nil {
		return fmt.Errorf("thaw cgroup %s: %w", dir, err)
	}
	return nil
}

func setFrozen(dir, v string, timeout time.Duration) error {
	err := write(filepath.Join(dir, "cgroup.freeze"), v)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (the root cgroup has no cgroup.freeze, and kernels before 5.2 none at all)", err)
	}
	if err != nil {
		return err
	}
	return waitEvent(dir, "frozen", v, timeout)
}

// Kill sends SIGKILL to every process in dir and below, through
// cgroup.kill (Linux ≥ 5.14: no process escapes by forking). Without it,
// it freezes the cgroup (if it can), signals each pid Procs lists, and
// thaws. It does not wait for the processes to die; Remove does.
func Kill(dir string) error {
	err := write(filepath.Join(dir, "cgroup.kill"), "1")
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return fmt.Errorf("kill cgroup %s: %w", dir, serr)
		}
		err = signalAll(dir)
	}
	if err != nil {
		return fmt.Errorf("kill cgroup %s: %w", dir, err)
	}
	return nil
}

// signalAll is Kill for kernels without cgroup.kill. Frozen, the processes
// cannot fork between listing and signalling; SIGKILL still kills frozen
// tasks (cgroup-v2.rst, "cgroup.freeze").
func signalAll(dir string) error {
	frozen := Freeze(dir, time.Second) == nil
	pids, err := Procs(dir)
	for _, pid := range pids {
		if kerr := unix.Kill(pid, unix.SIGKILL); kerr != nil && !errors.Is(kerr, unix.ESRCH) {
			err = errors.Join(err, fmt.Errorf("kill pid %d: %w", pid, kerr))
		}
	}
	if frozen {
		if terr := Thaw(dir, time.Second); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	return err
}

// OOMKills returns how many processes the OOM killer killed in dir and
// below: memory.events' oom_kill. Without the memory controller (no such
// file) it is 0.
func OOMKills(dir string) (uint64, error) {
	v, err := readKey(filepath.Join(dir, "memory.events"), "oom_kill")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read OOM kills of cgroup %s: %w", dir, err)
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read OOM kills of cgroup %s: oom_kill %q: %w", dir, v, err)
	}
	return n, nil
}

// waitEvent waits until key in dir/cgroup.events has the value want. The
// kernel signals every change of that file as a modification
// (cgroup-v2.rst, "cgroup.events"), so it sleeps in poll(2) on an inotify
// watch between reads, never longer in all than timeout.
func waitEvent(dir, key, want string, timeout time.Duration) error {
	file := filepath.Join(dir, "cgroup.events")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("wait for %s %s: inotify: %w", key, want, err)
	}
	defer unix.Close(fd)
	// Watch before the first read: a change in between is not missed.
	if _, err := unix.InotifyAddWatch(fd, file, unix.IN_MODIFY); err != nil {
		return fmt.Errorf("wait for %s %s: watch %s: %w", key, want, file, err)
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		got, err := readKey(file, key)
		if err != nil {
			return fmt.Errorf("wait for %s %s: %w", key, want, err)
		}
		if got == want {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s is still %q after %v, want %q", file, key+" "+got, timeout, key+" "+want)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		ms := int(left.Milliseconds()) + 1
		if _, err := unix.Poll(fds, ms); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for %s %s: poll: %w", key, want, err)
		}
		for { // drain
			if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
				break
			}
		}
	}
}

// readKey returns the value of key in a flat-keyed file ("key value" per
// line, like cgroup.events and memory.events), or "" if key is absent.
func readKey(file, key string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strings.TrimSpace(v), nil
		}
	}
	return "", sc.Err()
}
