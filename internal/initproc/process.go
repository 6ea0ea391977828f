package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
)

// process is the user's process, resolved during create and launched after
// start.
type process struct {
	spec      *specs.Spec
	state     []byte
	argv0     string // resolved executable path inside the container
	args      []string
	env       []string
	cwd       string
	user      specs.User
	setgroups bool
	caps      *specs.LinuxCapabilities
	preserve  int
	console   *console
	policy    wire.Policy
	chdirOnly bool // chdir-only isolation: paths are host paths under the root
}

// prepareProcess resolves everything about the process that can fail, so
// that create (not start) reports a bad cwd or a missing binary, with the
// wording podman maps to exit codes 126 and 127.
func prepareProcess(b *wire.Bootstrap, s *specs.Spec, con *console) (*process, error) {
	sp := s.Process
	p := &process{
		spec: s, args: sp.Args, cwd: sp.Cwd, user: sp.User,
		setgroups: !b.SetgroupsDenied, caps: sp.Capabilities,
		preserve: b.PreserveFDs, console: con, policy: b.Policy, chdirOnly: b.ChdirRoot != "",
	}
	if b.SetgroupsDenied && len(sp.User.AdditionalGids) > 0 {
		return nil, errors.New("process.user.additionalGids: cannot be set: the user namespace has a single-id gid map without setgroups (add /etc/subgid ranges for this user)")
	}
	// A user namespace zviz did not make (rootless podman, `unshare -r`)
	// may deny setgroups too, and a nested one inherits the denial
	// (user_namespaces(7), "/proc/[pid]/setgroups"); runc checks the same file.
	if p.setgroups && setgroupsDenied() {
		if len(sp.User.AdditionalGids) > 0 {
			return nil, errors.New("process.user.additionalGids: cannot be set: setgroups is denied in this user namespace (/proc/self/setgroups)")
		}
		p.setgroups = false
	}
	if err := applyRlimits(sp.Rlimits); err != nil {
		return nil, err
	}
	if err := setOOMScoreAdj(sp.OOMScoreAdj); err != nil {
		return nil, err
	}
	cwd, err := resolveIn(b.ChdirRoot, sp.Cwd)
	if err == nil {
		p.cwd = cwd
		err = os.Chdir(cwd)
	}
	if err != nil {
		return nil, fmt.Errorf("chdir to cwd %q set in config.json: %w", sp.Cwd, unwrapPath(err))
	}
	p.env = processEnv(sp, b.ChdirRoot)
	bin, err := lookPath(sp.Args[0], p.env, b.ChdirRoot)
	if err != nil {
		return nil, err
	}
	p.argv0 = bin
	return p, nil
}

// setgroupsDenied reports whether /proc/self/setgroups says "deny".
func setgroupsDenied() bool {
	v, err := readSmall("/proc/self/setgroups")
	return err == nil && v == "deny"
}

// processEnv is process.env plus HOME from the container's /etc/passwd when
// the config does not set it (as runc does).
func processEnv(sp *specs.Process, root string) []string {
	env := append([]string(nil), sp.Env...)
	if _, ok := lookupEnv(env, "HOME"); !ok {
		env = append(env, "HOME="+homeOf(sp.User.UID, root))
	}
	return env
}

func homeOf(uid uint32, root string) string {
	f, err := os.Open(passwdFile(root))
	if err != nil {
		return "/"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 6 && fields[2] == strconv.FormatUint(uint64(uid), 10) && fields[5] != "" {
			return fields[5]
		}
	}
	return "/"
}

// lookPath finds args[0] in the container, with the container's PATH; in
// chdir-only isolation root is the host directory the container's paths
// resolve under, and the host path is returned.
func lookPath(name string, env []string, root string) (string, error) {
	if strings.Contains(name, "/") {
		p, err := resolveIn(root, name)
		if err == nil {
			err = checkExecutable(p)
		}
		if err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return p, nil
	}
	pathEnv, ok := lookupEnv(env, "PATH")
	if !ok {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	var denied error
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p, err := resolveIn(root, path.Join(dir, name))
		if err == nil {
			err = checkExecutable(p)
		}
		if err == nil {
			return p, nil
		}
		if errors.Is(err, unix.EACCES) && denied == nil {
			denied = fmt.Errorf("exec: %q: %w", p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EACCES
	}
	if st.Mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}

// unwrapPath reduces an *os.PathError to its errno so that messages carry
// the strerror text once, after the path the caller already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var rlimitNames = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

func applyRlimits(rl []specs.POSIXRlimit) error {
	for i, r := range rl {
		res, ok := rlimitNames[r.Type]
		if !ok {
			return fmt.Errorf("process.rlimits[%d].type %q: unknown resource", i, r.Type)
		}
		// syscall.Setrlimit, not unix's: the Go runtime restores its saved
		// RLIMIT_NOFILE at execve unless it learns of the new one.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("set process.rlimits[%d] %s to %d/%d: %w", i, r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// setOOMScoreAdj writes process.oomScoreAdj, unless package nsenter's
// constructor did already (an undumpable process may not open the file).
func setOOMScoreAdj(adj *int) error {
	if adj == nil {
		return nil
	}
	if cur, err := readSmall("/proc/self/oom_score_adj"); err == nil && cur == strconv.Itoa(*adj) {
		return nil
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*adj)), 0); err != nil {
		return fmt.Errorf("set process.oomScoreAdj to %d: %w", *adj, unwrapPath(err))
	}
	return nil
}

// closeExtraFDs marks every descriptor above stdio and the preserved ones
// close-on-exec; they vanish at execve, after the last step that needs
// them.
func closeExtraFDs(preserve int) error {
	if err := unix.CloseRange(uint(3+preserve), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close inherited descriptors: %w", err)
	}
	return nil
}

// switchUser sets the process's groups, gid, uid and umask. Raw (per
// thread) syscalls are right here: the calling thread is the one that
// execs, and the other Go threads die with the old image.
func (p *process) switchUser() error {
	u := p.user
	if p.setgroups {
		gids := make([]int, len(u.AdditionalGids))
		for i, g := range u.AdditionalGids {
			gids[i] = int(g)
		}
		if err := unix.Setgroups(gids); err != nil {
			return fmt.Errorf("set process.user.additionalGids %v: %w", u.AdditionalGids, err)
		}
	}
	// Keep the permitted set across the uid change so that the configured
	// capabilities can still be applied afterwards.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("set process.user.gid %d: %w (is it mapped in the user namespace?)", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("set process.user.uid %d: %w (is it mapped in the user namespace?)", u.UID, e)
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	} else {
		unix.Umask(0o022)
	}
	return nil
}

func setNoNewPrivs(on bool) error {
	if !on {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// exec replaces the init with the user's process.
func (p *process) exec() error {
	err := unix.Exec(p.argv0, p.args, p.env)
	return fmt.Errorf("exec %q: %w", p.argv0, err)
}
