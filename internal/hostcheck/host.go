package hostcheck

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/landlock"
	"github.com/zviz/zviz/userns"
)

// Host is where the checks look. Default fills it for the running process;
// tests point the paths into a temporary directory and replace the probes.
type Host struct {
	ProcSys    string // /proc/sys
	Mountinfo  string // /proc/self/mountinfo
	SelfCgroup string // /proc/self/cgroup
	UIDMap     string // /proc/self/uid_map
	GIDMap     string // /proc/self/gid_map
	SysModule  string // /sys/module
	Run        string // /run (system bus, systemd)
	SubUID     string // /etc/subuid
	SubGID     string // /etc/subgid
	// PathDirs are searched, in order, for newuidmap and newgidmap
	// (userns.Writer looks in $PATH, then /usr/bin).
	PathDirs []string
	Getenv   func(string) string
	// Access is access(2) with the caller's real ids (W_OK checks on
	// cgroup directories); tests replace it, since root may write anywhere.
	Access func(path string, mode uint32) error

	UID, GID, EUID uint32
	User           string // the caller's name ("" when /etc/passwd has none)
	Exe            string // the zviz binary, for messages

	LandlockABI func() int
	Seccomp     func() SeccompSupport
	// Probe runs the child probe of the given kind (ProbeUserns,
	// ProbeMountns, ProbeNotify) and returns its result.
	Probe func(kind string) ProbeResult
}

// Default describes the running process. probe starts the child probes
// (see NewProber); nil skips them and reports them as not run.
func Default(probe func(kind string) ProbeResult) *Host {
	h := &Host{
		ProcSys:     "/proc/sys",
		Mountinfo:   "/proc/self/mountinfo",
		SelfCgroup:  "/proc/self/cgroup",
		UIDMap:      "/proc/self/uid_map",
		GIDMap:      "/proc/self/gid_map",
		SysModule:   "/sys/module",
		Run:         "/run",
		SubUID:      userns.SubUIDFile,
		SubGID:      userns.SubGIDFile,
		PathDirs:    append(filepath.SplitList(os.Getenv("PATH")), "/usr/bin"),
		Getenv:      os.Getenv,
		Access:      func(p string, m uint32) error { return unix.Access(p, m) },
		UID:         uint32(os.Getuid()),
		GID:         uint32(os.Getgid()),
		EUID:        uint32(os.Geteuid()),
		LandlockABI: landlock.ABI,
		Seccomp:     SeccompProbe,
		Probe:       probe,
	}
	if u, err := user.LookupId(strconv.Itoa(int(h.UID))); err == nil {
		h.User = u.Username
	}
	h.Exe, _ = os.Executable()
	if h.Probe == nil {
		h.Probe = func(kind string) ProbeResult {
			return ProbeResult{Step: "start", Error: "probe not run"}
		}
	}
	return h
}

// Facts are the raw findings, for machines (`zviz check --json`).
type Facts struct {
	UID           uint32 `json:"uid"`
	EUID          uint32 `json:"euid"`
	User          string `json:"user,omitempty"`
	InitialUserns bool   `json:"initial_userns"`

	// Sysctls: nil when the file does not exist on this kernel.
	MaxUserNamespaces       *int64 `json:"max_user_namespaces"`
	UnprivilegedUsernsClone *int64 `json:"unprivileged_userns_clone,omitempty"`
	AppArmorRestrictUserns  *int64 `json:"apparmor_restrict_unprivileged_userns,omitempty"`
	AppArmorEnabled         bool   `json:"apparmor_enabled"`

	UsernsProbe  ProbeResult  `json:"userns_probe"`            // CLONE_NEWUSER|CLONE_NEWNS, then mount
	MountnsProbe *ProbeResult `json:"mountns_probe,omitempty"` // CLONE_NEWNS alone (euid 0 only)

	SubUID    []userns.Range `json:"subuid"`
	SubGID    []userns.Range `json:"subgid"`
	SubIDErr  string         `json:"subid_error,omitempty"`
	NewUIDMap Helper         `json:"newuidmap"`
	NewGIDMap Helper         `json:"newgidmap"`

	LandlockABI int            `json:"landlock_abi"`
	Seccomp     SeccompSupport `json:"seccomp"`
	Cgroup      CgroupInfo     `json:"cgroup"`
	Bus         BusInfo        `json:"bus"`
}

// Status grades one line of the report.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Line is one "status: item: detail" line.
type Line struct {
	Item   string `json:"item"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

func (l Line) String() string { return fmt.Sprintf("%s: %s: %s", l.Status, l.Item, l.Detail) }

// Report is the answer of `zviz check`.
type Report struct {
	Checks      []Line `json:"checks"`      // what the host has
	Conclusions []Line `json:"conclusions"` // what zviz will do
	Facts       Facts  `json:"facts"`
	// Decisions, in words a script can compare.
	Isolation string `json:"isolation"` // full | chdir-only | none
	Mapping   string `json:"mapping"`   // privileged | subids | single
	Limits    string `json:"limits"`    // systemd | cgroupfs | none
	Runnable  bool   `json:"runnable"`  // false: no mode of zviz can run here (exit 1)
}

// Check gathers the facts and decides.
func (h *Host) Check() *Report {
	f := h.gather()
	r := &Report{Facts: *f}
	r.Checks = h.checkLines(f)
	r.decide(h)
	return r
}

func (h *Host) gather() *Facts {
	f := &Facts{UID: h.UID, EUID: h.EUID, User: h.User}
	if ns, err := userns.ReadMaps(h.UIDMap, h.GIDMap); err == nil {
		f.InitialUserns = ns.Initial
	}
	f.MaxUserNamespaces = readSysctl(h.ProcSys, "user/max_user_namespaces")
	f.UnprivilegedUsernsClone = readSysctl(h.ProcSys, "kernel/unprivileged_userns_clone")
	f.AppArmorRestrictUserns = readSysctl(h.ProcSys, "kernel/apparmor_restrict_unprivileged_userns")
	b, _ := os.ReadFile(filepath.Join(h.SysModule, "apparmor/parameters/enabled"))
	f.AppArmorEnabled = strings.TrimSpace(string(b)) == "Y"

	f.UsernsProbe = h.Probe(ProbeUserns)
	if h.EUID == 0 {
		p := h.Probe(ProbeMountns)
		f.MountnsProbe = &p
	}
	h.gatherSubIDs(f)
	f.NewUIDMap = h.helper("newuidmap")
	f.NewGIDMap = h.helper("newgidmap")
	f.LandlockABI = h.LandlockABI()
	f.Seccomp = h.Seccomp()
	if f.Seccomp.UserNotif {
		p := h.Probe(ProbeNotify)
		f.Seccomp.SyncWakeUp = p.OK
		if !p.OK {
			f.Seccomp.SyncWakeUpErr = p.describe()
		}
	}
	f.Cgroup = h.cgroup()
	f.Bus = h.bus()
	return f
}

func (h *Host) gatherSubIDs(f *Facts) {
	var errs []error
	var err error
	if f.SubUID, err = userns.SubIDs(h.SubUID, h.User, h.UID); err != nil {
		errs = append(errs, err)
	}
	if f.SubGID, err = userns.SubIDs(h.SubGID, h.User, h.GID); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		f.SubIDErr = err.Error()
	}
}

// readSysctl reads an integer sysctl; nil when the file is absent or
// unreadable (the kernel does not have that knob).
func readSysctl(procSys, name string) *int64 {
	b, err := os.ReadFile(filepath.Join(procSys, name))
	if err != nil {
		return nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

// Helper is newuidmap or newgidmap as found on this host.
type Helper struct {
	Path     string `json:"path,omitempty"`
	Setuid   bool   `json:"setuid"`    // setuid root
	FileCaps bool   `json:"file_caps"` // security.capability xattr (e.g. cap_setuid+ep)
}

// usable: the helper can map ids the caller does not own.
func (x Helper) usable() bool { return x.Path != "" && (x.Setuid || x.FileCaps) }

func (x Helper) describe() string {
	switch {
	case x.Path == "":
		return "not found"
	case x.Setuid:
		return x.Path + " (setuid root)"
	case x.FileCaps:
		return x.Path + " (file capabilities)"
	}
	return x.Path + " (neither setuid root nor file capabilities: cannot map other ids)"
}

func (h *Host) helper(name string) Helper {
	for _, d := range h.PathDirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			continue
		}
		x := Helper{Path: p}
		if sys, ok := st.Sys().(*unix.Stat_t); ok {
			x.Setuid = st.Mode()&os.ModeSetuid != 0 && sys.Uid == 0
		} else {
			x.Setuid = st.Mode()&os.ModeSetuid != 0
		}
		if sz, err := unix.Getxattr(p, "security.capability", nil); err == nil && sz > 0 {
			x.FileCaps = true
		}
		return x
	}
	return Helper{}
}
