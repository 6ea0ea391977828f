package container

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/wire"
	"github.com/zviz/zviz/userns"
)

// An init that joins a user, mount or pid namespace by path (podman: a
// pod's user namespace, --pid container:NAME, --userns ns:PATH) is
// started without clone flags and marked with _ZVIZ_INITNS: before the Go
// runtime starts, package nsenter's constructor enters the namespaces
// (user first), unshares the new ones, so that they belong to the joined
// user namespace, and forks once when a pid namespace is joined or new.
// The intermediate reports the init's pid and exits; the init comes back
// to us because create is a child subreaper by then, and to the next
// subreaper up (conmon) when create exits, as a directly cloned init does.

const envInitNS = "_ZVIZ_INITNS"

// enterByPath makes cmd (the init's, built by initCommand) start that way,
// with the namespaces openEntered opened, after its other ExtraFiles.
func enterByPath(cmd *exec.Cmd, s *specs.Spec, plan *nsPlan, files []*os.File, syncFD int) {
	cmd.Env = append(cmd.Env, oomEnv(s.Process)...)
	v := []string{strconv.Itoa(syncFD), strconv.FormatUint(uint64(plan.cloneFlags), 10)}
	for i := range files {
		fd := 3 + len(cmd.ExtraFiles) + i
		v = append(v, fmt.Sprintf("%d:%d", fd, plan.enter[i].flag))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, files...)
	cmd.Env = append(cmd.Env, envInitNS+"="+strings.Join(v, ","))
	// The constructor unshares after setns: nothing is cloned, and no
	// capability needs to survive the execve.
	cmd.SysProcAttr.Cloneflags, cmd.SysProcAttr.AmbientCaps = 0, nil
}

// openEntered opens each namespace of plan.enter and checks that it is a
// namespace of its type (setns would say only EINVAL). It makes us a child
// subreaper, for the init the constructor forks.
func openEntered(plan *nsPlan) ([]*os.File, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become child subreaper: %w", err)
	}
	var files []*os.File
	for _, e := range plan.enter {
		f, err := os.Open(e.path)
		if err == nil {
			err = checkNamespace(f, e)
			if err != nil {
				f.Close()
			}
		} else {
			err = fmt.Errorf("%s.path %s: %w", e.field, e.path, unwrap(err))
		}
		if err != nil {
			closeAll(files)
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// checkNamespace refuses a path that is not a namespace of e's type.
func checkNamespace(f *os.File, e nsEnter) error {
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s.path %s: not a namespace (%v)", e.field, e.path, err)
	}
	if uintptr(t) != e.flag {
		return fmt.Errorf("%s.path %s: not a %s namespace", e.field, e.path, e.typ)
	}
	return nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// awaitEntered reads the init's pid from the constructor. When it forked,
// the intermediate is reaped and the init, reparented to us, becomes
// l.proc. Real root (of our user namespace) gives the exec fifo to the
// joined user namespace's root, which opens it.
func (l *launched) awaitEntered(cmd *exec.Cmd, plan *nsPlan, fifo string, undo *cleanup) error {
	var pid wire.Pid
	if _, err := l.conn.Expect(wire.KindPid, &pid); err != nil {
		return initError(err, cmd.Process)
	}
	if pid.Pid != cmd.Process.Pid {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("container init: the process that entered its namespaces failed: %v", err)
		}
		p, err := os.FindProcess(pid.Pid)
		if err != nil {
			return fmt.Errorf("container init %d: %w", pid.Pid, err)
		}
		l.proc = p
		undo.add(func() { p.Kill(); p.Wait() })
	}
	if !plan.joinsUser() {
		return nil
	}
	ns, err := joinedMaps(l.proc.Pid)
	if err != nil {
		return err
	}
	l.joined = ns
	if os.Geteuid() == 0 {
		return chownFifoToJoined(fifo, ns)
	}
	return nil
}

// joinedMaps reads the id maps of the user namespace the init (pid)
// joined, as our user namespace sees them.
func joinedMaps(pid int) (*userns.Namespace, error) {
	return userns.ReadMaps(fmt.Sprintf("/proc/%d/uid_map", pid), fmt.Sprintf("/proc/%d/gid_map", pid))
}

// adoptJoinedMaps puts the mappings of the joined user namespace ns in
// s, where the rest of create (and the state) reads them: they are the
// container's, whatever the config says. Mappings the config gives that
// differ are ignored, as runc 1.1 does (podman sends its default ones with
// --userns ns:PATH), and announced.
func adoptJoinedMaps(ns *userns.Namespace, s *specs.Spec) (warning string) {
	uids, gids := fromIDMaps(ns.UIDMap), fromIDMaps(ns.GIDMap)
	given := len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0
	if given && (!sameMaps(toIDMaps(s.Linux.UIDMappings), ns.UIDMap) || !sameMaps(toIDMaps(s.Linux.GIDMappings), ns.GIDMap)) {
		warning = fmt.Sprintf("linux.uidMappings/gidMappings: ignored: the user namespace joined by path maps uids %s and gids %s",
			formatMaps(ns.UIDMap), formatMaps(ns.GIDMap))
	}
	s.Linux.UIDMappings, s.Linux.GIDMappings = uids, gids
	return warning
}

func fromIDMaps(m []userns.IDMap) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, len(m))
	for i, x := range m {
		out[i] = specs.LinuxIDMapping{ContainerID: x.ContainerID, HostID: x.HostID, Size: x.Size}
	}
	return out
}

// formatMaps is maps as uid_map shows them, one "inside outside count"
// triple after another.
func formatMaps(maps []userns.IDMap) string {
	var parts []string
	for _, m := range maps {
		parts = append(parts, fmt.Sprintf("%d %d %d", m.ContainerID, m.HostID, m.Size))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func sameMaps(a, b []userns.IDMap) bool {
	sorted := func(m []userns.IDMap) []userns.IDMap {
		c := slices.Clone(m)
		slices.SortFunc(c, func(x, y userns.IDMap) int { return cmp.Compare(x.ContainerID, y.ContainerID) })
		return c
	}
	return slices.Equal(sorted(a), sorted(b))
}

// chownFifoToJoined gives the exec fifo to the root of the joined user
// namespace ns when real root created it: the init opens it as that root,
// an unprivileged id on the host (fifoOwner does the same for a new user
// namespace, from the config's mappings).
func chownFifoToJoined(fifo string, ns *userns.Namespace) error {
	uid, okU := ns.HostUID(0)
	gid, okG := ns.HostGID(0)
	if !okU || !okG || (uid == 0 && gid == 0) {
		return nil // the init keeps ids that can open it (becomeRoot)
	}
	if err := unix.Chown(fifo, int(uid), int(gid)); err != nil {
		return fmt.Errorf("chown exec fifo %s to %d:%d: %w", fifo, uid, gid, err)
	}
	return nil
}

// oomEnv passes process.oomScoreAdj to package nsenter's constructor,
// which writes it before the process becomes undumpable (see nsenter.c).
func oomEnv(p *specs.Process) []string {
	if p == nil || p.OOMScoreAdj == nil {
		return nil
	}
	return []string{"_ZVIZ_OOM=" + strconv.Itoa(*p.OOMScoreAdj)}
}
