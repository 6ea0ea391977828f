package hostcheck

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/linux"
)

// CgroupInfo is the caller's place in the cgroup v2 hierarchy.
type CgroupInfo struct {
	V2Mount string `json:"v2_mount,omitempty"` // where cgroup2 is mounted ("" if nowhere)
	// V1 lists the cgroup v1 hierarchies mounted beside it (hybrid
	// layout): their controllers are not available in v2.
	V1     []string `json:"v1,omitempty"`
	Hybrid bool     `json:"hybrid"`
	Path   string   `json:"path,omitempty"` // the "0::" line of /proc/self/cgroup
	Dir    string   `json:"dir,omitempty"`  // V2Mount + Path
	// Controllers are those the caller's cgroup offers (cgroup.controllers).
	Controllers []string `json:"controllers"`
	// Writable: the directory, cgroup.procs and cgroup.subtree_control are
	// writable by the caller, so it can make a child cgroup, move into it
	// and enable controllers: a delegated subtree (cgroups(7)
	// "Cgroups v2 delegation"). Nothing is created to find out.
	Writable    bool   `json:"writable"`
	NotWritable string `json:"not_writable,omitempty"` // why not
	Err         string `json:"error,omitempty"`
}

type mount struct{ root, point, fstype, super string }

// mounts parses mountinfo (proc(5)): the fields before " - " are
// ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...], after it
// FSTYPE SOURCE SUPEROPTIONS. Paths escape space, tab, newline and
// backslash as octal.
func mounts(mountinfo string) ([]mount, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 1 {
			continue
		}
		m := mount{root: linux.UnescapeMountinfo(a[3]), point: linux.UnescapeMountinfo(a[4]), fstype: b[0]}
		if len(b) >= 3 {
			m.super = b[2]
		}
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

func (h *Host) cgroup() CgroupInfo {
	var c CgroupInfo
	ms, err := mounts(h.Mountinfo)
	if err != nil {
		c.Err = fmt.Sprintf("read mountinfo: %v", err)
		return c
	}
	var v2 *mount
	for i, m := range ms {
		switch m.fstype {
		case "cgroup2":
			if v2 == nil {
				v2 = &ms[i]
			}
		case "cgroup":
			c.V1 = append(c.V1, v1Name(m))
		}
	}
	sort.Strings(c.V1)
	c.Hybrid = v2 != nil && len(c.V1) > 0
	if v2 == nil {
		c.Err = "no cgroup2 mount"
		return c
	}
	c.V2Mount = v2.point
	if c.Path, err = v2Path(h.SelfCgroup); err != nil {
		c.Err = err.Error()
		return c
	}
	// Inside a cgroup namespace or a bind mount the mount's root is a
	// prefix of the path (or the path is already relative to it).
	rel := c.Path
	if v2.root != "/" && (rel == v2.root || strings.HasPrefix(rel, v2.root+"/")) {
		rel = strings.TrimPrefix(rel, v2.root)
	}
	c.Dir = filepath.Join(c.V2Mount, path.Clean("/"+rel))
	if b, err := os.ReadFile(filepath.Join(c.Dir, "cgroup.controllers")); err == nil {
		c.Controllers = strings.Fields(string(b))
	} else {
		c.Err = fmt.Sprintf("read %s: %v", filepath.Join(c.Dir, "cgroup.controllers"), err)
	}
	if c.Controllers == nil {
		c.Controllers = []string{}
	}
	c.Writable, c.NotWritable = h.writable(c.Dir)
	return c
}

// v1Name names a v1 hierarchy by its controllers (or name=...).
func v1Name(m mount) string {
	var names []string
	for _, o := range strings.Split(m.super, ",") {
		if o != "rw" && o != "ro" && !strings.Contains(o, "=") || strings.HasPrefix(o, "name=") {
			names = append(names, o)
		}
	}
	if len(names) == 0 {
		return filepath.Base(m.point)
	}
	return strings.Join(names, ",")
}

// v2Path is the cgroup v2 path of /proc/self/cgroup: the "0::PATH" line.
func v2Path(selfCgroup string) (string, error) {
	b, err := os.ReadFile(selfCgroup)
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: no cgroup v2 (0::) line", selfCgroup)
}

func (h *Host) writable(dir string) (bool, string) {
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		if err := h.Access(p, unix.W_OK); err != nil {
			return false, fmt.Sprintf("%s: %s", p, errName(err))
		}
	}
	return true, ""
}

// BusInfo is the D-Bus socket zviz would talk to systemd over: the user
// bus for an unprivileged caller, the system bus for root. Nothing connects.
type BusInfo struct {
	Kind    string `json:"kind"`              // user | system
	Address string `json:"address,omitempty"` // the address or path looked at
	Socket  string `json:"socket,omitempty"`  // the socket path, when it is one
	Present bool   `json:"present"`           // the socket exists and is a socket
	Systemd bool   `json:"systemd"`           // /run/systemd/system exists (sd_booted(3))
	Why     string `json:"why,omitempty"`     // why not present
}

func (h *Host) bus() BusInfo {
	b := BusInfo{Kind: "user"}
	if st, err := os.Stat(filepath.Join(h.Run, "systemd/system")); err == nil && st.IsDir() {
		b.Systemd = true
	}
	env, fallback := "DBUS_SESSION_BUS_ADDRESS", ""
	if h.EUID == 0 {
		b.Kind, env, fallback = "system", "DBUS_SYSTEM_BUS_ADDRESS", filepath.Join(h.Run, "dbus/system_bus_socket")
	} else if rt := h.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		fallback = filepath.Join(rt, "bus")
	}
	b.Address = h.Getenv(env)
	if b.Address != "" {
		b.Socket = busSocket(b.Address)
		if b.Socket == "" {
			b.Why = fmt.Sprintf("$%s=%q has no unix:path= socket (not checked)", env, b.Address)
			return b
		}
	} else if fallback == "" {
		b.Why = fmt.Sprintf("neither $%s nor $XDG_RUNTIME_DIR is set", env)
		return b
	} else {
		b.Address, b.Socket = fallback, fallback
	}
	st, err := os.Stat(b.Socket)
	switch {
	case err != nil:
		b.Why = fmt.Sprintf("%s: %s", b.Socket, errName(err))
	case st.Mode()&os.ModeSocket == 0:
		b.Why = b.Socket + ": not a socket"
	default:
		b.Present = true
	}
	return b
}

// busSocket extracts the first unix:path= from a D-Bus address list
// ("unix:path=/run/user/1000/bus;..." in the D-Bus specification,
// "Server Addresses").
func busSocket(addr string) string {
	for _, a := range strings.Split(addr, ";") {
		rest, ok := strings.CutPrefix(a, "unix:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if p, ok := strings.CutPrefix(kv, "path="); ok {
				return p
			}
		}
	}
	return ""
}
