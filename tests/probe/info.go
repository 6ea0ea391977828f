package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/tests/probe/report"

	"github.com/zviz/zviz/internal/linux"
)

var nsNames = []string{"user", "pid", "mnt", "net", "ipc", "uts", "cgroup", "time"}

var rlimitNames = map[string]int{
	"CPU": unix.RLIMIT_CPU, "FSIZE": unix.RLIMIT_FSIZE, "DATA": unix.RLIMIT_DATA,
	"STACK": unix.RLIMIT_STACK, "CORE": unix.RLIMIT_CORE, "RSS": unix.RLIMIT_RSS,
	"NPROC": unix.RLIMIT_NPROC, "NOFILE": unix.RLIMIT_NOFILE, "MEMLOCK": unix.RLIMIT_MEMLOCK,
	"AS": unix.RLIMIT_AS, "LOCKS": unix.RLIMIT_LOCKS, "SIGPENDING": unix.RLIMIT_SIGPENDING,
	"MSGQUEUE": unix.RLIMIT_MSGQUEUE, "NICE": unix.RLIMIT_NICE, "RTPRIO": unix.RLIMIT_RTPRIO,
	"RTTIME": unix.RLIMIT_RTTIME,
}

// collectInfo gathers report.Info. Open fds are listed first, with raw
// syscalls, before anything else could open one.
func collectInfo() report.Info {
	var in report.Info
	fail := func(what string, err error) {
		in.Errors = append(in.Errors, what+": "+err.Error())
	}
	var err error
	if in.FDs, err = openFDs(); err != nil {
		fail("list fds", err)
	}
	in.UID, in.GID, in.EUID, in.EGID = os.Getuid(), os.Getgid(), os.Geteuid(), os.Getegid()
	if in.Groups, err = unix.Getgroups(); err != nil {
		fail("getgroups", err)
	}
	in.Cwd, _ = os.Getwd()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		in.Hostname = unix.ByteSliceToString(uts.Nodename[:])
	}
	in.PID, in.PPID = os.Getpid(), os.Getppid()
	in.SID, _ = unix.Getsid(0)
	in.PGID, _ = unix.Getpgid(0)
	in.NS = map[string]uint64{}
	for _, n := range nsNames {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+n, &st); err == nil {
			in.NS[n] = st.Ino
		}
	}
	in.UIDMap = lines("/proc/self/uid_map")
	in.GIDMap = lines("/proc/self/gid_map")
	if in.Interfaces, err = interfaces(); err != nil {
		fail("list interfaces", err)
	}
	if in.Mounts, err = mounts("/proc/self/mountinfo"); err != nil {
		fail("read mountinfo", err)
	}
	in.Env = os.Environ()
	in.Rlimits = map[string]report.Rlimit{}
	for name, res := range rlimitNames {
		var rl unix.Rlimit
		if err := unix.Getrlimit(res, &rl); err == nil {
			in.Rlimits[name] = report.Rlimit{Soft: rlim(rl.Cur), Hard: rlim(rl.Max)}
		}
	}
	nf := in.Rlimits["NOFILE"]
	in.NofileRaised = nf.Hard > 0 && nf.Soft == nf.Hard-1
	if v := lines("/proc/self/oom_score_adj"); len(v) == 1 {
		in.OOMScoreAdj, _ = strconv.Atoi(v[0])
	}
	status := procStatus()
	in.Caps = map[string]string{}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		in.Caps[k] = status[k]
	}
	in.NoNewPrivs, _ = strconv.Atoi(status["NoNewPrivs"])
	in.Seccomp, _ = strconv.Atoi(status["Seccomp"])
	if m, err := strconv.ParseInt(status["Umask"], 8, 32); err == nil {
		in.Umask = int(m)
	} else {
		m := unix.Umask(0)
		unix.Umask(m)
		in.Umask = m
	}
	for fd := range in.TTY {
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		in.TTY[fd] = err == nil
	}
	return in
}

func rlim(v uint64) int64 {
	if v == unix.RLIM_INFINITY {
		return -1
	}
	return int64(v)
}

// openFDs lists /proc/self/fd without the directory's own descriptor.
func openFDs() ([]report.FD, error) {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	var fds []report.FD
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dir, buf)
		if err != nil {
			return fds, err
		}
		if n == 0 {
			break
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			fd, err := strconv.Atoi(name)
			if err != nil || fd == dir {
				continue
			}
			target := make([]byte, 4096)
			if k, err := unix.Readlinkat(dir, name, target); err == nil {
				fds = append(fds, report.FD{FD: fd, Target: string(target[:k])})
			}
		}
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i].FD < fds[j].FD })
	return fds, nil
}

func lines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func procStatus() map[string]string {
	m := map[string]string{}
	for _, l := range lines("/proc/self/status") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// interfaces reads /sys/class/net (netlink may be filtered by seccomp) and
// falls back to net.Interfaces when /sys is absent.
func interfaces() ([]report.Interface, error) {
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		ifs, nerr := net.Interfaces()
		if nerr != nil {
			return nil, err
		}
		var out []report.Interface
		for _, i := range ifs {
			out = append(out, report.Interface{Name: i.Name, Up: i.Flags&net.FlagUp != 0})
		}
		return out, nil
	}
	out := []report.Interface{}
	for _, e := range ents {
		i := report.Interface{Name: e.Name()}
		if b, err := os.ReadFile(filepath.Join("/sys/class/net", e.Name(), "flags")); err == nil {
			f, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
			i.Up = f&unix.IFF_UP != 0
		}
		out = append(out, i)
	}
	return out, nil
}

// mounts parses mountinfo (proc(5)): ID PARENT MAJ:MIN ROOT POINT OPTS
// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS.
func mounts(path string) ([]report.Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []report.Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			continue
		}
		out = append(out, report.Mount{
			Point:   linux.UnescapeMountinfo(fields[4]),
			Options: fields[5],
			FSType:  fields[sep+1],
			Source:  linux.UnescapeMountinfo(fields[sep+2]),
			Super:   fields[sep+3],
		})
	}
	return out, sc.Err()
}
