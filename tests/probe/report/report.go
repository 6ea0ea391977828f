// Package report defines the JSON objects that tests/probe prints, so that
// integration tests decode exactly what the probe encodes.
package report

// Info is the output of `probe info`: the process's view of its container.
type Info struct {
	UID        int               `json:"uid"`
	GID        int               `json:"gid"`
	EUID       int               `json:"euid"`
	EGID       int               `json:"egid"`
	Groups     []int             `json:"groups"`
	Cwd        string            `json:"cwd"`
	Hostname   string            `json:"hostname"`
	PID        int               `json:"pid"`
	PPID       int               `json:"ppid"`
	SID        int               `json:"sid"`
	PGID       int               `json:"pgid"`
	Umask      int               `json:"umask"`
	NS         map[string]uint64 `json:"ns"` // name in /proc/self/ns -> inode
	UIDMap     []string          `json:"uid_map"`
	GIDMap     []string          `json:"gid_map"`
	FDs        []FD              `json:"fds"`
	Interfaces []Interface       `json:"interfaces"`
	Mounts     []Mount           `json:"mounts"`
	Env        []string          `json:"env"`
	Rlimits    map[string]Rlimit `json:"rlimits"`
	// NofileRaised is true when the soft RLIMIT_NOFILE is hard-1: the Go
	// runtime raised it at start (go.dev/issue/46279), so the limit the
	// probe was started with was lower than Rlimits["NOFILE"].Soft.
	NofileRaised bool              `json:"nofile_raised"`
	OOMScoreAdj  int               `json:"oom_score_adj"`
	Caps         map[string]string `json:"caps"` // CapInh, CapPrm, ... as hex
	NoNewPrivs   int               `json:"no_new_privs"`
	Seccomp      int               `json:"seccomp"` // 0 off, 1 strict, 2 filter
	TTY          [3]bool           `json:"tty"`     // isatty(0), (1), (2)
	Errors       []string          `json:"errors,omitempty"`
}

// FD is one open file descriptor and what it points to.
type FD struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
}

// Interface is one network interface.
type Interface struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point   string `json:"point"`
	FSType  string `json:"fstype"`
	Source  string `json:"source"`
	Options string `json:"options"` // per-mount options
	Super   string `json:"super"`   // per-superblock options
}

// Rlimit is one resource limit; -1 means unlimited.
type Rlimit struct {
	Soft int64 `json:"soft"`
	Hard int64 `json:"hard"`
}

// FileOp is the output of `probe write PATH` and `probe read PATH`.
type FileOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Errno string `json:"errno"` // "OK" or an errno name such as "EROFS"
	Data  string `json:"data,omitempty"`
}

// Try is the outcome of one `probe try` attempt.
type Try struct {
	Name  string `json:"name"`
	Errno string `json:"errno"` // "OK", an errno name, or "ERROR: ..." for a probe failure
}

// Tries is the output of `probe try NAME...`.
type Tries struct {
	Results []Try `json:"results"`
}

// Errno returns the result for name, or "" when it is absent.
func (t Tries) Errno(name string) string {
	for _, r := range t.Results {
		if r.Name == name {
			return r.Errno
		}
	}
	return ""
}
