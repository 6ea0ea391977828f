package linux

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// MountError describes a failed mount(2) (or mount_setattr(2)) call in the
// words of the configuration: Source and Target are the paths the user wrote
// (not the /proc/self/fd/N handle the call actually used), so that the error
// that reaches podman names something the user recognises.
type MountError struct {
	Source string
	Target string
	Type   string
	Flags  uintptr
	Data   string
	Err    error
}

func (e *MountError) Error() string {
	var b strings.Builder
	b.WriteString("mount ")
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "to %s (type %s, flags %s", e.Target, orNone(e.Type), MountFlagsString(e.Flags))
	if e.Data != "" {
		fmt.Fprintf(&b, ", data %q", e.Data)
	}
	fmt.Fprintf(&b, "): %v", e.Err)
	return b.String()
}

// Unwrap keeps the errno reachable: errors.Is(err, unix.EPERM).
func (e *MountError) Unwrap() error { return e.Err }

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// Mount calls mount(2) on target and reports failures as a *MountError
// naming the logical paths src and dst. target may be a /proc/self/fd/N
// handle standing for dst.
func Mount(src, target, fstype string, flags uintptr, data, dst string) error {
	if err := unix.Mount(src, target, fstype, flags, data); err != nil {
		return &MountError{Source: src, Target: dst, Type: fstype, Flags: flags, Data: data, Err: err}
	}
	return nil
}

var mountFlagNames = []struct {
	flag uintptr
	name string
}{
	{unix.MS_RDONLY, "MS_RDONLY"},
	{unix.MS_NOSUID, "MS_NOSUID"},
	{unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"},
	{unix.MS_SYNCHRONOUS, "MS_SYNCHRONOUS"},
	{unix.MS_REMOUNT, "MS_REMOUNT"},
	{unix.MS_MANDLOCK, "MS_MANDLOCK"},
	{unix.MS_DIRSYNC, "MS_DIRSYNC"},
	{unix.MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"},
	{unix.MS_NOATIME, "MS_NOATIME"},
	{unix.MS_NODIRATIME, "MS_NODIRATIME"},
	{unix.MS_BIND, "MS_BIND"},
	{unix.MS_MOVE, "MS_MOVE"},
	{unix.MS_REC, "MS_REC"},
	{unix.MS_SILENT, "MS_SILENT"},
	{unix.MS_POSIXACL, "MS_POSIXACL"},
	{unix.MS_UNBINDABLE, "MS_UNBINDABLE"},
	{unix.MS_PRIVATE, "MS_PRIVATE"},
	{unix.MS_SLAVE, "MS_SLAVE"},
	{unix.MS_SHARED, "MS_SHARED"},
	{unix.MS_RELATIME, "MS_RELATIME"},
	{unix.MS_I_VERSION, "MS_I_VERSION"},
	{unix.MS_STRICTATIME, "MS_STRICTATIME"},
	{unix.MS_LAZYTIME, "MS_LAZYTIME"},
}

// MountFlagsString renders mount(2) flags symbolically ("MS_BIND|MS_REC"),
// with any unknown bits in hex, and "0" for none.
func MountFlagsString(flags uintptr) string {
	if flags == 0 {
		return "0"
	}
	var parts []string
	for _, f := range mountFlagNames {
		if flags&f.flag != 0 {
			parts = append(parts, f.name)
			flags &^= f.flag
		}
	}
	if flags != 0 {
		parts = append(parts, fmt.Sprintf("%#x", flags))
	}
	return strings.Join(parts, "|")
}
