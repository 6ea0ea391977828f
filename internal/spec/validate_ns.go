package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/userns"
)

var knownNamespaces = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

func checkNamespaces(c *checker) {
	if c.s.Linux == nil {
		return
	}
	seen := map[specs.LinuxNamespaceType]int{}
	for i, ns := range c.s.Linux.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		if !knownNamespaces[ns.Type] {
			c.fail(fmt.Sprintf("%s.type %q", field, ns.Type), "unknown namespace type")
			continue
		}
		if j, dup := seen[ns.Type]; dup {
			c.fail(fmt.Sprintf("%s.type %q", field, ns.Type), "duplicate of linux.namespaces[%d]", j)
			continue
		}
		seen[ns.Type] = i
		if ns.Path == "" {
			continue
		}
		pf := fmt.Sprintf("%s.path %q", field, ns.Path)
		if !filepath.IsAbs(ns.Path) {
			c.fail(pf, "must be an absolute path")
		} else if _, err := os.Stat(ns.Path); err != nil {
			c.fail(pf, "%w", statErr(err))
		}
	}
}

// checkMappings validates linux.uidMappings/gidMappings and the id maps of
// id-mapped mounts with the rules the kernel applies when they are written.
func checkMappings(c *checker) {
	if c.s.Linux != nil {
		uids, gids := c.s.Linux.UIDMappings, c.s.Linux.GIDMappings
		if !c.hasNS(specs.UserNamespace) {
			if len(uids) > 0 {
				c.fail("linux.uidMappings", "requires a user namespace in linux.namespaces")
			}
			if len(gids) > 0 {
				c.fail("linux.gidMappings", "requires a user namespace in linux.namespaces")
			}
		} else {
			c.checkMapPair("linux", uids, gids)
		}
	}
	for i, m := range c.s.Mounts {
		c.checkMapPair(fmt.Sprintf("mounts[%d]", i), m.UIDMappings, m.GIDMappings)
	}
}

// checkMapPair checks one uid/gid mapping pair under field prefix: both or
// neither, each valid.
func (c *checker) checkMapPair(prefix string, uids, gids []specs.LinuxIDMapping) {
	switch {
	case len(uids) == 0 && len(gids) == 0:
		return
	case len(uids) == 0:
		c.fail(prefix+".uidMappings", "must not be empty when %s.gidMappings is set", prefix)
	case len(gids) == 0:
		c.fail(prefix+".gidMappings", "must not be empty when %s.uidMappings is set", prefix)
	}
	if len(uids) > 0 {
		c.failAll(userns.Validate(prefix+".uidMappings", idMaps(uids)))
	}
	if len(gids) > 0 {
		c.failAll(userns.Validate(prefix+".gidMappings", idMaps(gids)))
	}
}

func idMaps(in []specs.LinuxIDMapping) []userns.IDMap {
	out := make([]userns.IDMap, len(in))
	for i, m := range in {
		out[i] = userns.IDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size}
	}
	return out
}

func checkTimeOffsets(c *checker) {
	if c.s.Linux != nil && len(c.s.Linux.TimeOffsets) > 0 && !c.newNS(specs.TimeNamespace) {
		c.fail("linux.timeOffsets", "requires a new time namespace in linux.namespaces")
	}
}

// isBind reports whether m is a bind mount: type "bind", or a "bind"/"rbind"
// option with any type (runc accepts both spellings).
func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// checkMounts checks each mount's destination and, for bind mounts, that
// the source exists on the host. A relative destination is accepted and
// taken relative to "/" (runc 1.1 compatibility, see the package doc).
func checkMounts(c *checker) {
	for i, m := range c.s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if m.Destination == "" {
			c.fail(field+".destination", "must not be empty")
		} else if strings.IndexByte(m.Destination, 0) >= 0 {
			c.fail(field+".destination", "must not contain a NUL byte")
		}
		if !isBind(m) {
			if m.Type == "" {
				c.fail(field+".type", "must not be empty (unless a bind mount)")
			}
			continue
		}
		if m.Source == "" {
			c.fail(field+".source", "must not be empty for a bind mount")
			continue
		}
		if _, err := os.Stat(bundlePath(c.bundle, m.Source)); err != nil {
			c.fail(fmt.Sprintf("%s.source %q", field, m.Source), "%w", statErr(err))
		}
	}
}

func checkMaskedPaths(c *checker) {
	if c.s.Linux == nil {
		return
	}
	for _, l := range []struct {
		name  string
		paths []string
	}{{"linux.maskedPaths", c.s.Linux.MaskedPaths}, {"linux.readonlyPaths", c.s.Linux.ReadonlyPaths}} {
		for i, p := range l.paths {
			if !filepath.IsAbs(p) {
				c.fail(fmt.Sprintf("%s[%d] %q", l.name, i, p), "must be an absolute path")
			}
		}
	}
}

// ipcSysctls are the kernel.* sysctls that belong to the ipc namespace
// (ipc_namespaces(7)); fs.mqueue.* does too.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// checkSysctl checks that each key is a well-formed sysctl name and, as runc
// does, that it belongs to a namespace the container has, so that setting
// it cannot change the host.
func checkSysctl(c *checker) {
	if c.s.Linux == nil {
		return
	}
	keys := make([]string, 0, len(c.s.Linux.Sysctl))
	for k := range c.s.Linux.Sysctl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := fmt.Sprintf("linux.sysctl %q", k)
		if !validSysctlKey(k) {
			c.fail(field, "invalid sysctl name")
			continue
		}
		// "net/ipv4/conf/eth0.100/forwarding" is the slash form that lets
		// interface names contain dots; only the prefix matters here.
		dotted := k
		if strings.Contains(k, "/") {
			dotted = strings.ReplaceAll(k, "/", ".")
		}
		var need specs.LinuxNamespaceType
		switch {
		case ipcSysctls[dotted] || strings.HasPrefix(dotted, "fs.mqueue."):
			need = specs.IPCNamespace
		case strings.HasPrefix(dotted, "net."):
			need = specs.NetworkNamespace
		case dotted == "kernel.hostname" || dotted == "kernel.domainname":
			need = specs.UTSNamespace
		default:
			c.fail(field, "not namespaced: setting it would change the host")
			continue
		}
		if !c.hasNS(need) {
			c.fail(field, "requires a %s namespace in linux.namespaces", need)
		}
	}
}

// validSysctlKey accepts dot- or slash-separated names whose components are
// non-empty, not "." or "..", and free of spaces and control characters.
func validSysctlKey(k string) bool {
	sep := "."
	if strings.Contains(k, "/") {
		sep = "/"
	}
	for part := range strings.SplitSeq(k, sep) {
		if part == "" || part == "." || part == ".." {
			return false
		}
		for _, r := range part {
			if r <= ' ' || r == 0x7f {
				return false
			}
		}
	}
	return true
}
