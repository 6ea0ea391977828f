package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/cgroups"
	"github.com/zviz/zviz/internal/initproc"
	"github.com/zviz/zviz/internal/wire"
)

// ExecOptions are exec's flags (runc's, as conmon passes them, plus the
// inline form: Args with Env, Cwd, User and Tty).
type ExecOptions struct {
	ID            string
	ProcessFile   string // --process: a process.json; the inline fields are ignored
	Args          []string
	Env           []string
	Cwd           string
	User          string // UID[:GID]
	Tty           bool
	Detach        bool
	PidFile       string
	ConsoleSocket string
	PreserveFDs   int
}

// execArg0 is how ps shows an exec'd process until it execs, and how main
// recognises it.
const execArg0 = "zviz:[exec]"

// IsExec tells main whether this process is one `zviz exec` started.
func IsExec() bool {
	return len(os.Args) == 1 && os.Args[0] == execArg0 && os.Getenv(initproc.EnvNsenter) != ""
}

// execPolicyFile holds, beside the state, the policy the init applied, so
// that every exec'd process gets exactly the same layers.
const execPolicyFile = "policy.json"

type execPolicy struct {
	Policy wire.Policy `json:"policy"`
}

// hasListener reports whether a filter of the policy has a listener
// (--log-denials, a network allow-list, linux.seccomp.listenerPath): the
// exec'd process then hands its own over to the container's denial
// logger, which answers them as it answers the init's.
func (ep *execPolicy) hasListener() bool {
	for _, prog := range ep.Policy.Seccomp {
		if prog.Notify || prog.Agent {
			return true
		}
	}
	return false
}

// saveExecPolicy records the container's policy for exec (called by create
// with the state).
func saveExecPolicy(h *handle, p *wire.Policy) error {
	ep := execPolicy{Policy: *p}
	ep.Policy.DenialFD = 0
	b, err := json.Marshal(&ep)
	if err != nil {
		return fmt.Errorf("encode policy of %q: %w", h.id, err)
	}
	return writeAtomic(filepath.Join(h.dir, execPolicyFile), b, 0o600)
}

func loadExecPolicy(h *handle) (*execPolicy, error) {
	b, err := os.ReadFile(filepath.Join(h.dir, execPolicyFile))
	if err != nil {
		return nil, fmt.Errorf("read policy of %q: %w", h.id, unwrap(err))
	}
	var ep execPolicy
	if err := json.Unmarshal(b, &ep); err != nil {
		return nil, fmt.Errorf("read policy of %q: %w", h.id, err)
	}
	return &ep, nil
}

// execd is a process started by exec, inside the container.
type execd struct {
	cmd    *exec.Cmd // the exec process, or the intermediate that forked it
	pid    int       // the process, as our pid namespace sees it
	pidfd  int
	master *os.File // its pty master, when not sent to --console-socket
}

// Exec runs a new process in a created or running container, with the
// container's namespaces, cgroup and policy. In the foreground it relays
// the terminal, forwards signals and returns the process's exit status;
// with Detach it returns once the process runs.
func Exec(o *Options, e *ExecOptions) (int, error) {
	h, r, err := o.store().loadLocked(e.ID)
	if err != nil {
		return 1, err
	}
	defer h.unlock()
	if st := r.status(h.dir); st != StatusCreated && st != StatusRunning {
		return 1, fmt.Errorf("cannot exec in container %q: container is %s, not running", e.ID, st)
	}
	if r.Isolation == IsolationChdirOnly {
		// Its init's namespaces are the host's: joining them would give
		// the process nothing of the container's confinement.
		return 1, fmt.Errorf("cannot exec in container %q: it runs with chdir-only isolation, which has no namespaces to join", e.ID)
	}
	proc, err := execProcessSpec(r.Spec, e)
	if err != nil {
		return 1, err
	}
	if proc.Terminal && e.ConsoleSocket == "" && e.Detach {
		return 1, errors.New("process.terminal is true: --console-socket is required with --detach")
	}
	ep, err := loadExecPolicy(h)
	if err != nil {
		return 1, err
	}
	// The container's resolver (allow_domains) serves the exec'd process
	// too: its resolv.conf is the container's, and only the init binds it.
	ep.Policy.DNS = ""
	var denials *os.File
	if ep.hasListener() {
		if denials, err = dialDenials(e.ID, h.dir); err != nil {
			return 1, err
		}
		defer denials.Close()
	}
	var sigs chan os.Signal
	if !e.Detach {
		sigs = notifyAll()
		// The process is forked by a child of ours that exits at once: it
		// must come back to us to be waited for (prctl(2)).
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 1, fmt.Errorf("become child subreaper: %w", err)
		}
	}
	x, err := startExec(o, r, proc, ep, e, denials)
	if err != nil {
		return 1, err
	}
	defer unix.Close(x.pidfd)
	h.unlock()
	if e.PidFile != "" {
		if err := writePidFile(e.PidFile, x.pid); err != nil {
			_ = unix.PidfdSendSignal(x.pidfd, unix.SIGKILL, nil, 0)
			return 1, err
		}
	}
	if e.Detach {
		_ = x.cmd.Wait() // the intermediate, or nothing to wait for: the process runs on
		return 0, nil
	}
	return waitExec(o, x, sigs), nil
}

// execProcessSpec is the process to run: process.json, or the container's
// own process with the inline form's changes (as runc exec builds it).
// Its capabilities never exceed the init's, which are the config's
// intersected with the profile's; no_new_privs is always on.
func execProcessSpec(s *specs.Spec, e *ExecOptions) (*specs.Process, error) {
	var p specs.Process
	if e.ProcessFile != "" {
		b, err := os.ReadFile(e.ProcessFile)
		if err != nil {
			return nil, fmt.Errorf("read --process %s: %w", e.ProcessFile, unwrap(err))
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("--process %s: %w", e.ProcessFile, err)
		}
	} else {
		if len(e.Args) == 0 {
			return nil, errors.New("exec: a command is required (or --process)")
		}
		if s.Process != nil {
			p = *s.Process
		}
		p.Args, p.Terminal, p.ConsoleSize = e.Args, e.Tty, nil
		p.Env = append(append([]string(nil), p.Env...), e.Env...)
		if e.Cwd != "" {
			p.Cwd = e.Cwd
		}
		if e.User != "" {
			if err := parseUser(e.User, &p.User); err != nil {
				return nil, err
			}
		}
	}
	if len(p.Args) == 0 {
		return nil, errors.New("process.args: must not be empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return nil, fmt.Errorf("process.cwd %q: must be an absolute path", p.Cwd)
	}
	var initCaps *specs.LinuxCapabilities
	if s.Process != nil {
		initCaps = s.Process.Capabilities
	}
	p.Capabilities = intersectCaps(p.Capabilities, initCaps)
	p.NoNewPrivileges = true
	return &p, nil
}

// parseUser reads --user UID[:GID] (numeric, as runc takes it).
func parseUser(v string, u *specs.User) error {
	us, gs, hasGID := strings.Cut(v, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return fmt.Errorf("--user %q: want UID[:GID], numeric", v)
	}
	*u = specs.User{UID: uint32(uid), GID: u.GID, Umask: u.Umask}
	if hasGID {
		gid, err := strconv.ParseUint(gs, 10, 32)
		if err != nil {
			return fmt.Errorf("--user %q: want UID[:GID], numeric", v)
		}
		u.GID = uint32(gid)
	}
	return nil
}

// intersectCaps keeps, in each set, the capabilities both a and b name.
func intersectCaps(a, b *specs.LinuxCapabilities) *specs.LinuxCapabilities {
	if a == nil || b == nil {
		return &specs.LinuxCapabilities{}
	}
	both := func(x, y []string) []string {
		var out []string
		for _, c := range x {
			for _, d := range y {
				if c == d {
					out = append(out, c)
					break
				}
			}
		}
		return out
	}
	return &specs.LinuxCapabilities{
		Bounding: both(a.Bounding, b.Bounding), Effective: both(a.Effective, b.Effective),
		Inheritable: both(a.Inheritable, b.Inheritable), Permitted: both(a.Permitted, b.Permitted),
		Ambient: both(a.Ambient, b.Ambient),
	}
}

func writePidFile(path string, pid int) error {
	p, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("pid file %q: %w", path, err)
	}
	if err := writeAtomic(p, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// nsTypes are the namespaces an exec'd process shares with the init, by
// their /proc/PID/ns names, the user namespace first.
var nsTypes = []struct {
	name string
	flag int
}{
	{"user", unix.CLONE_NEWUSER}, {"mnt", unix.CLONE_NEWNS}, {"pid", unix.CLONE_NEWPID},
	{"net", unix.CLONE_NEWNET}, {"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS},
	{"cgroup", unix.CLONE_NEWCGROUP}, {"time", unix.CLONE_NEWTIME},
}

// nsFlags returns the CLONE_NEW* flags of the init's namespaces that are
// not ours: those are the ones to join (joining one's own user namespace
// is EINVAL, and one shared with the host may not be ours to enter).
func nsFlags(pid int) (int, error) {
	flags := 0
	for _, ns := range nsTypes {
		var self, init unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+ns.name, &self); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // a namespace type this kernel does not have
			}
			return 0, fmt.Errorf("stat /proc/self/ns/%s: %w", ns.name, err)
		}
		p := fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name)
		if err := unix.Stat(p, &init); err != nil {
			return 0, fmt.Errorf("stat %s: %w", p, err)
		}
		if self.Dev != init.Dev || self.Ino != init.Ino {
			flags |= ns.flag
		}
	}
	return flags, nil
}

// joinCgroup moves pid into the init's cgroup (cgroup v2 only; the v1
// hierarchies are never touched). Nothing to do when it is there already,
// or when the container has no cgroup of its own (announced at create):
// the init is then in its creator's cgroup, which this caller may not be
// allowed to enter.
func joinCgroup(r *record, pid int) error {
	if r.Cgroup != nil && r.Cgroup.Manager == managerNone {
		return nil
	}
	want, err := cgroups.Of(r.Pid)
	if err != nil {
		return fmt.Errorf("cgroup of the container's init: %w", err)
	}
	have, err := cgroups.Of(pid)
	if err != nil {
		return fmt.Errorf("cgroup of the exec process: %w", err)
	}
	if want == have {
		return nil
	}
	mount, err := cgroups.Mount()
	if err != nil {
		return err
	}
	return cgroups.Join(filepath.Join(mount, want), pid)
}

// statusCode is a wait status as a shell reports it (128+N for signal N);
// 1 when there is none (the process could not be waited for).
func statusCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return 1
	}
	return waitCode(ws)
}

func waitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
