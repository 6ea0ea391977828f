package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zviz/zviz/internal/linux"
)

const (
	mountinfoPath  = "/proc/self/mountinfo"
	procSelfCgroup = "/proc/self/cgroup"
)

// Mount returns where the cgroup v2 hierarchy is mounted, from
// /proc/self/mountinfo: /sys/fs/cgroup on unified hosts, usually
// /sys/fs/cgroup/unified on hybrid ones (v1 controllers beside it).
func Mount() (string, error) {
	return mountFrom(mountinfoPath)
}

func mountFrom(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	defer f.Close()
	m, err := parseMountinfo(f)
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount in %s: %w", mountinfo, err)
	}
	return m, nil
}

// parseMountinfo returns the mount point of the cgroup2 file system whose
// root is the hierarchy's root (proc(5), /proc/PID/mountinfo: fields 4 and
// 5 are root and mount point, the file system type follows " - "). When
// there are several (bind mounts, a container's own), /sys/fs/cgroup and
// /sys/fs/cgroup/unified win.
func parseMountinfo(r io.Reader) (string, error) {
	var found []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, postFields := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(postFields) < 1 || postFields[0] != "cgroup2" || fields[3] != "/" {
			continue
		}
		found = append(found, linux.UnescapeMountinfo(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	for _, want := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		for _, m := range found {
			if m == want {
				return m, nil
			}
		}
	}
	if len(found) == 0 {
		return "", errors.New("no cgroup2 file system mounted (a cgroup v1-only host)")
	}
	return found[0], nil
}

// Own returns the caller's cgroup v2 path ("/user.slice/…", relative to the
// hierarchy's root as the caller's cgroup namespace sees it) from the "0::"
// line of /proc/self/cgroup (cgroups(7)).
func Own() (string, error) {
	return ownFrom(procSelfCgroup)
}

func ownFrom(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p, ok := strings.CutPrefix(sc.Text(), "0::")
		if !ok {
			continue
		}
		switch {
		case !strings.HasPrefix(p, "/"):
			return "", fmt.Errorf("read own cgroup from %s: bad cgroup v2 path %q", file, p)
		case p == "/.." || strings.HasPrefix(p, "/../"):
			// cgroup_namespaces(7): a cgroup outside the reader's namespace.
			return "", fmt.Errorf("read own cgroup from %s: %s is outside this cgroup namespace", file, p)
		}
		return p, nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read own cgroup from %s: %w", file, err)
	}
	return "", fmt.Errorf("read own cgroup from %s: no cgroup v2 (0::) line", file)
}
