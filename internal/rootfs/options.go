package rootfs

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is one config mount's options split the way mount(2) and
// mount_setattr(2) want them.
type mountOpts struct {
	flags   uintptr   // mount(2) flags for the mount itself (or the bind remount)
	clear   uintptr   // flags explicitly cleared ("rw", "suid", ...): never re-added from the source
	prop    []uintptr // propagation changes, applied one by one after the mount
	recSet  uint64    // mount_setattr(2) attributes set recursively ("rro", "rnosuid", ...)
	recClr  uint64    // mount_setattr(2) attributes cleared recursively ("rrw", ...)
	recAtim bool      // an r*atime option was given: attr_clr must include MOUNT_ATTR__ATIME
	data    []string  // unknown options, passed through as the fs-specific data string
}

type flagOpt struct {
	clear bool
	flag  uintptr
}

// flagOptions mirrors the option table of mount(8) (and runc's
// libcontainer/specconv): "clear" options remove the flag their counterpart sets.
var flagOptions = map[string]flagOpt{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

type recOpt struct {
	clear bool
	attr  uint64
}

// recOptions are the runtime-spec's recursive options (runtime-spec
// config.md "rro" etc., kernel 5.12+), applied with
// mount_setattr(2, AT_RECURSIVE) to the whole mounted subtree.
var recOptions = map[string]recOpt{
	"rro":          {false, unix.MOUNT_ATTR_RDONLY},
	"rrw":          {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {false, unix.MOUNT_ATTR_NOSUID},
	"rsuid":        {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {false, unix.MOUNT_ATTR_NODEV},
	"rdev":         {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {false, unix.MOUNT_ATTR_NOEXEC},
	"rexec":        {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {false, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":    {true, unix.MOUNT_ATTR_NODIRATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":   {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// recAtimeOptions select one atime mode for the whole subtree.
var recAtimeOptions = map[string]uint64{
	"rrelatime":    unix.MOUNT_ATTR_RELATIME,
	"rnorelatime":  unix.MOUNT_ATTR_STRICTATIME, // as mount(8): norelatime means full atime updates
	"rnoatime":     unix.MOUNT_ATTR_NOATIME,
	"ratime":       unix.MOUNT_ATTR_RELATIME,
	"rstrictatime": unix.MOUNT_ATTR_STRICTATIME,
}

// parseOptions turns a config mount's options into flags, propagation,
// recursive attributes and data. Unknown options become data, as runc does
// ("size=64k", "mode=755", "newinstance", ...). "tmpcopyup" (copy the
// under-mount's content into a fresh tmpfs) is accepted and ignored: it is a
// convenience of runc's, not part of the runtime-spec, and podman does not
// depend on it. idmapped mounts are refused rather than silently dropped.
func parseOptions(options []string) (mountOpts, error) {
	var o mountOpts
	for _, opt := range options {
		if f, ok := flagOptions[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
				o.clear |= f.flag
			} else {
				o.flags |= f.flag
				o.clear &^= f.flag
			}
			continue
		}
		if p, ok := propOptions[opt]; ok {
			o.prop = append(o.prop, p)
			continue
		}
		if r, ok := recOptions[opt]; ok {
			if r.clear {
				o.recSet &^= r.attr
				o.recClr |= r.attr
			} else {
				o.recSet |= r.attr
				o.recClr &^= r.attr
			}
			continue
		}
		if a, ok := recAtimeOptions[opt]; ok {
			o.recAtim = true
			o.recSet = o.recSet&^unix.MOUNT_ATTR__ATIME | a
			continue
		}
		switch {
		case opt == "tmpcopyup":
		case opt == "idmap" || opt == "ridmap" || strings.HasPrefix(opt, "idmap=") || strings.HasPrefix(opt, "ridmap="):
			return o, fmt.Errorf("option %q: idmapped mounts are not supported", opt)
		case opt == "":
		default:
			o.data = append(o.data, opt)
		}
	}
	return o, nil
}

// hasRec reports whether recursive attributes must be applied.
func (o *mountOpts) hasRec() bool { return o.recSet != 0 || o.recClr != 0 || o.recAtim }

// attr is the mount_setattr(2) argument for the recursive options.
func (o *mountOpts) attr() *unix.MountAttr {
	a := &unix.MountAttr{Attr_set: o.recSet, Attr_clr: o.recClr}
	if o.recAtim {
		a.Attr_clr |= unix.MOUNT_ATTR__ATIME
	}
	return a
}

// propagation parses linux.rootfsPropagation. The empty string means
// runc's default: MS_SLAVE|MS_REC, so nothing the container mounts reaches
// the host while host mounts still propagate in.
func propagation(s string) (uintptr, error) {
	if s == "" {
		return unix.MS_SLAVE | unix.MS_REC, nil
	}
	p, ok := propOptions[s]
	if !ok {
		return 0, fmt.Errorf("linux.rootfsPropagation %q: unknown propagation", s)
	}
	return p, nil
}

// MountOptions lists the mount options this package understands, for the
// runtime-spec features document (features.md "mountOptions"). Options
// not listed are passed to the file system as data; "tmpcopyup" is
// accepted but ignored, so it is not listed.
func MountOptions() []string {
	opts := slices.Collect(maps.Keys(flagOptions))
	opts = slices.AppendSeq(opts, maps.Keys(propOptions))
	opts = slices.AppendSeq(opts, maps.Keys(recOptions))
	opts = slices.AppendSeq(opts, maps.Keys(recAtimeOptions))
	slices.Sort(opts)
	return opts
}
