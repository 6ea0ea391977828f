package container

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/userns"
)

// nsPlan says which namespaces the init is cloned into and which it joins.
type nsPlan struct {
	cloneFlags uintptr
	join       map[specs.LinuxNamespaceType]string
	newUser    bool
	newUTS     bool
	newNet     bool
	// newCgroup: the init unshares its cgroup namespace itself, once the
	// parent has placed it in the container's cgroup, so that the
	// namespace's root is that cgroup and not the caller's.
	newCgroup bool
	// inUserNS: the init will run in a user namespace, its own or the one
	// zviz already runs in (rootless podman).
	inUserNS bool
	// chdirOnly: the fallback of isolation.go, no namespace at all.
	chdirOnly bool
	// enter are the user, mount and pid namespaces joined by path, the
	// user namespace first. A Go process cannot enter them, so the init
	// does it before its runtime starts (package nsenter), and then
	// unshares cloneFlags itself: the new namespaces must belong to the
	// joined user namespace (enter.go).
	enter []nsEnter
}

// nsEnter is one namespace the init enters by path.
type nsEnter struct {
	field string // linux.namespaces[i], for errors
	typ   specs.LinuxNamespaceType
	path  string
	flag  uintptr
}

var cloneFlag = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// planNamespaces turns linux.namespaces into clone flags and setns paths.
// An unprivileged caller always gets a new user namespace (it could create
// no other namespace without one); root inside someone else's user
// namespace (rootless podman) gets none unless the config asks.
func planNamespaces(s *specs.Spec) (*nsPlan, error) {
	p := &nsPlan{join: map[specs.LinuxNamespaceType]string{}}
	hasMount, ownUser := false, false
	for i, ns := range s.Linux.Namespaces {
		flag, ok := cloneFlag[ns.Type]
		if !ok {
			return nil, fmt.Errorf("linux.namespaces[%d].type %q: unknown namespace type", i, ns.Type)
		}
		if ns.Type == specs.MountNamespace {
			hasMount = true
		}
		if ns.Path == "" {
			p.cloneFlags |= flag
			continue
		}
		switch ns.Type {
		case specs.UserNamespace:
			// Our own user namespace has nothing to enter (setns refuses
			// it): stay in it, and make no new one.
			ownUser = sameInode(ns.Path, "/proc/self/ns/user")
			if ownUser {
				continue
			}
			fallthrough
		case specs.MountNamespace, specs.PIDNamespace:
			// setns(2): a multithreaded process cannot enter a user or mount
			// namespace, and a pid namespace only applies to children.
			e := nsEnter{field: fmt.Sprintf("linux.namespaces[%d]", i), typ: ns.Type, path: ns.Path, flag: flag}
			if ns.Type == specs.UserNamespace {
				p.enter = append([]nsEnter{e}, p.enter...)
			} else {
				p.enter = append(p.enter, e)
			}
		default:
			p.join[ns.Type] = ns.Path
		}
	}
	if !hasMount {
		return nil, errors.New("linux.namespaces: a mount namespace is required (the rootfs is set up in it)")
	}
	if os.Geteuid() != 0 && p.cloneFlags&unix.CLONE_NEWUSER == 0 && !p.joinsUser() && !ownUser {
		p.cloneFlags |= unix.CLONE_NEWUSER
	}
	p.newUser = p.cloneFlags&unix.CLONE_NEWUSER != 0
	p.newUTS = p.cloneFlags&unix.CLONE_NEWUTS != 0
	p.newNet = p.cloneFlags&unix.CLONE_NEWNET != 0
	if p.cloneFlags&unix.CLONE_NEWCGROUP != 0 {
		p.cloneFlags &^= unix.CLONE_NEWCGROUP
		p.newCgroup = true
	}
	p.inUserNS = p.newUser || p.joinsUser() || !initialUserNS()
	return p, nil
}

// sameInode reports whether two paths name the same file (namespace).
func sameInode(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// joinsUser reports whether the config joins a user namespace by path.
func (p *nsPlan) joinsUser() bool {
	return len(p.enter) > 0 && p.enter[0].typ == specs.UserNamespace
}

// Paths of the id-mapping inputs; variables so tests can point them at
// fixtures.
var (
	subuidPath = "/etc/subuid"
	subgidPath = "/etc/subgid"
)

// mapIDs writes the init's uid and gid maps: the config's mappings when it
// has them, else the caller's /etc/subuid and /etc/subgid ranges (through
// newuidmap/newgidmap), else the caller's own ids alone.
func mapIDs(pid int, s *specs.Spec, plan *nsPlan) (setgroupsDenied bool, err error) {
	uids, gids := toIDMaps(s.Linux.UIDMappings), toIDMaps(s.Linux.GIDMappings)
	euid, egid := uint32(os.Geteuid()), uint32(os.Getegid())
	if len(uids) == 0 || len(gids) == 0 {
		if euid == 0 {
			return false, errors.New("linux.uidMappings/gidMappings: required for a new user namespace when running as root")
		}
		name := ownerName(int(euid))
		ur, err := userns.SubIDs(subuidPath, name, euid)
		if err != nil {
			return false, err
		}
		gr, err := userns.SubIDs(subgidPath, name, euid)
		if err != nil {
			return false, err
		}
		if len(uids) == 0 {
			uids = userns.DefaultMaps(euid, ur)
		}
		if len(gids) == 0 {
			gids = userns.DefaultMaps(egid, gr)
		}
	}
	w := &userns.Writer{Privileged: euid == 0, OwnUID: euid, OwnGID: egid}
	denied, err := w.Apply(pid, uids, gids)
	if err != nil {
		return false, fmt.Errorf("set up user namespace of init %d: %w", pid, err)
	}
	return denied, nil
}

func toIDMaps(m []specs.LinuxIDMapping) []userns.IDMap {
	out := make([]userns.IDMap, len(m))
	for i, x := range m {
		out[i] = userns.IDMap{ContainerID: x.ContainerID, HostID: x.HostID, Size: x.Size}
	}
	return out
}
