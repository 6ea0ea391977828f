package userns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// Writer writes the id maps of a child that was cloned into a new user
// namespace and waits, unmapped, for its parent.
type Writer struct {
	// NewUIDMap and NewGIDMap are the helper paths; empty means look up
	// newuidmap/newgidmap in $PATH, then in /usr/bin.
	NewUIDMap, NewGIDMap string
	// Privileged is true when the caller has CAP_SETUID and CAP_SETGID over
	// the parent user namespace (euid 0 there): every map is then written
	// directly.
	Privileged bool
	// OwnUID and OwnGID are the caller's effective uid and gid, the only ids
	// an unprivileged process may map without a helper.
	OwnUID, OwnGID uint32
}

// Apply writes uids to /proc/PID/uid_map and gids to /proc/PID/gid_map.
//
// Without privilege a map that is exactly one line of size 1 onto the
// caller's own id is written directly; for gid_map the kernel then requires
// "deny" in /proc/PID/setgroups first (user_namespaces(7), since Linux 3.19,
// CVE-2014-8989), so the child can never call setgroups(2) and
// process.user.additionalGids cannot be honoured: setgroupsDenied reports it.
// Any other map (subordinate ranges) goes through newuidmap(1)/newgidmap(1),
// which check /etc/subuid and /etc/subgid; the two helpers run concurrently
// so that a cold start pays for one exec, not two. With Privileged
// everything is written directly.
func (w *Writer) Apply(pid int, uids, gids []IDMap) (setgroupsDenied bool, err error) {
	if err := errors.Join(Validate("uidMappings", uids), Validate("gidMappings", gids)); err != nil {
		return false, fmt.Errorf("apply id maps of pid %d: %w", pid, err)
	}
	proc := "/proc/" + strconv.Itoa(pid)
	directUID := w.Privileged || isOwnOnly(uids, w.OwnUID)
	directGID := w.Privileged || isOwnOnly(gids, w.OwnGID)

	// Start the helpers first so that their exec overlaps the direct writes
	// and each other.
	var uidRun, gidRun *helperRun
	var errs []error
	if !directUID {
		uidRun, err = startHelper(w.NewUIDMap, "newuidmap", pid, uids)
		errs = append(errs, err)
	}
	if !directGID {
		gidRun, err = startHelper(w.NewGIDMap, "newgidmap", pid, gids)
		errs = append(errs, err)
	}
	if directUID {
		errs = append(errs, wrapMap("uid", pid, writeProc(proc+"/uid_map", format(uids))))
	}
	if directGID {
		var sgErr error
		if !w.Privileged {
			sgErr = writeProc(proc+"/setgroups", []byte("deny"))
			setgroupsDenied = sgErr == nil
		}
		if sgErr == nil {
			sgErr = writeProc(proc+"/gid_map", format(gids))
		}
		errs = append(errs, wrapMap("gid", pid, sgErr))
	}
	errs = append(errs, uidRun.wait(), gidRun.wait())
	if gidRun != nil && gidRun.err == nil {
		// newgidmap denies setgroups itself when no subordinate gid
		// range is used (shadow-utils 4.6+); ask the kernel.
		b, rerr := os.ReadFile(proc + "/setgroups")
		setgroupsDenied = rerr == nil && strings.TrimSpace(string(b)) == "deny"
	}
	return setgroupsDenied, errors.Join(errs...)
}

// isOwnOnly reports whether maps is the single line an unprivileged process
// may write itself: any container id onto its own effective id, size 1.
func isOwnOnly(maps []IDMap, own uint32) bool {
	return len(maps) == 1 && maps[0].HostID == own && maps[0].Size == 1
}

func wrapMap(kind string, pid int, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("apply %s map of pid %d: %w", kind, pid, err)
}

// writeProc writes data to a /proc file in exactly one write(2), as
// map_write() in kernel/user_namespace.c requires, without the os.File
// machinery.
func writeProc(path string, data []byte) error {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	n, err := syscall.Write(fd, data)
	cerr := syscall.Close(fd)
	switch {
	case err != nil:
		return &os.PathError{Op: "write", Path: path, Err: err}
	case n != len(data):
		return &os.PathError{Op: "write", Path: path, Err: syscall.EIO}
	case cerr != nil:
		return &os.PathError{Op: "close", Path: path, Err: cerr}
	}
	return nil
}

// helperRun is a started newuidmap/newgidmap.
type helperRun struct {
	pid    int
	kind   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	err    error
}

func startHelper(path, name string, pid int, maps []IDMap) (*helperRun, error) {
	kind := strings.TrimSuffix(strings.TrimPrefix(name, "new"), "map")
	path, err := lookHelper(path, name)
	if err != nil {
		return nil, wrapMap(kind, pid, err)
	}
	r := &helperRun{pid: pid, kind: kind, cmd: exec.Command(path, helperArgs(pid, maps)...)}
	r.cmd.Stderr = &r.stderr
	if err := r.cmd.Start(); err != nil {
		return nil, wrapMap(kind, pid, fmt.Errorf("run %s: %w", path, err))
	}
	return r, nil
}

// wait waits for a started helper; it is a no-op on nil.
func (r *helperRun) wait() error {
	if r == nil {
		return nil
	}
	if err := r.cmd.Wait(); err != nil {
		msg := strings.TrimSpace(r.stderr.String())
		if msg == "" {
			msg = "no message on stderr"
		}
		r.err = wrapMap(r.kind, r.pid, fmt.Errorf("run %s: %w: %s",
			strings.Join(r.cmd.Args, " "), err, msg))
	}
	return r.err
}

// lookHelper finds newuidmap/newgidmap: the configured path, else $PATH,
// else /usr/bin (where Debian, Fedora and Arch put them; $PATH may be
// minimal under conmon).
func lookHelper(configured, name string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := "/usr/bin/" + name
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("find %s in $PATH or /usr/bin (install the uidmap/shadow-utils package): %w",
		name, exec.ErrNotFound)
}
