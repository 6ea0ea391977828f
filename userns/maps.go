// Package userns sets up the id mappings of a new user namespace and
// describes the one we run in.
//
// It is a mechanism package: it knows /etc/subuid, /proc/PID/{uid,gid}_map,
// /proc/PID/setgroups and the shadow-utils helpers newuidmap(1) and
// newgidmap(1), and nothing about OCI or the rest of zviz. The parent side
// (internal/container) calls it between clone(CLONE_NEWUSER) and releasing
// the init; `zviz check` and internal/spec use its readers and Validate.
//
// The rules it follows are those of user_namespaces(7), "Defining user and
// group ID mappings: writing to uid_map and gid_map".
package userns

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// MaxLines is the most lines the kernel accepts in one uid_map or gid_map
// write (UID_GID_MAP_MAX_EXTENTS, Linux >= 4.15; see user_namespaces(7)).
const MaxLines = 340

// IDMap maps Size consecutive ids starting at ContainerID inside the user
// namespace to ids starting at HostID in its parent namespace.
type IDMap struct {
	ContainerID, HostID, Size uint32
}

// Range is a subordinate id range from /etc/subuid or /etc/subgid.
type Range struct {
	Start, Count uint32
}

// DefaultMaps returns the mapping zviz uses when the config asks for none:
// container id 0 is hostID (the caller itself), and container ids 1, 2, …
// are the subordinate ranges one after another, as podman and rootlesskit
// do. Without ranges it is the single line {0, hostID, 1}. Zero-sized ranges
// are skipped; ranges that would run past the 32-bit id space are cut off.
func DefaultMaps(hostID uint32, ranges []Range) []IDMap {
	maps := make([]IDMap, 1, 1+len(ranges))
	maps[0] = IDMap{ContainerID: 0, HostID: hostID, Size: 1}
	next := uint64(1)
	for _, r := range ranges {
		if r.Count == 0 {
			continue
		}
		if next+uint64(r.Count) > math.MaxUint32 {
			break
		}
		maps = append(maps, IDMap{ContainerID: uint32(next), HostID: r.Start, Size: r.Count})
		next += uint64(r.Count)
	}
	return maps
}

// Validate checks a mapping list the way the kernel will when it is written:
// not empty, at most MaxLines lines, no zero sizes, no range that wraps the
// 32-bit id space or starts at 4294967295 (the invalid id -1), and no overlap
// between lines on either the container or the host side. kind names the list
// in the errors ("uidMappings" gives "uidMappings[1]: overlaps
// uidMappings[0] (container ids)"). All problems are returned, joined.
func Validate(kind string, maps []IDMap) error {
	if len(maps) == 0 {
		return fmt.Errorf("%s: must not be empty", kind)
	}
	if len(maps) > MaxLines {
		return fmt.Errorf("%s: %d lines exceed the kernel limit of %d", kind, len(maps), MaxLines)
	}
	var errs []error
	for i, m := range maps {
		if err := validateLine(m); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", kind, i, err))
			continue
		}
		for j := range i {
			o := maps[j]
			if o.Size == 0 {
				continue
			}
			switch {
			case overlaps(m.ContainerID, m.Size, o.ContainerID, o.Size):
				errs = append(errs, fmt.Errorf("%s[%d]: overlaps %s[%d] (container ids)", kind, i, kind, j))
			case overlaps(m.HostID, m.Size, o.HostID, o.Size):
				errs = append(errs, fmt.Errorf("%s[%d]: overlaps %s[%d] (host ids)", kind, i, kind, j))
			}
		}
	}
	return errors.Join(errs...)
}

// validateLine applies the per-line checks of map_write() in
// kernel/user_namespace.c.
func validateLine(m IDMap) error {
	switch {
	case m.Size == 0:
		return errors.New("size must not be zero")
	case m.ContainerID == math.MaxUint32:
		return errors.New("containerID 4294967295 is the invalid id -1")
	case m.HostID == math.MaxUint32:
		return errors.New("hostID 4294967295 is the invalid id -1")
	case uint64(m.ContainerID)+uint64(m.Size) > math.MaxUint32:
		return fmt.Errorf("containerID %d + size %d overflows 32-bit ids", m.ContainerID, m.Size)
	case uint64(m.HostID)+uint64(m.Size) > math.MaxUint32:
		return fmt.Errorf("hostID %d + size %d overflows 32-bit ids", m.HostID, m.Size)
	}
	return nil
}

func overlaps(a, an, b, bn uint32) bool {
	return uint64(a) < uint64(b)+uint64(bn) && uint64(b) < uint64(a)+uint64(an)
}

// format renders maps in the /proc/PID/uid_map write format, one
// "containerID hostID size" line each; the kernel wants it in one write(2).
func format(maps []IDMap) []byte {
	b := make([]byte, 0, len(maps)*24)
	for _, m := range maps {
		b = strconv.AppendUint(b, uint64(m.ContainerID), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(m.HostID), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(m.Size), 10)
		b = append(b, '\n')
	}
	return b
}

// helperArgs renders maps as the argument triples of newuidmap(1).
func helperArgs(pid int, maps []IDMap) []string {
	args := make([]string, 0, 1+3*len(maps))
	args = append(args, strconv.Itoa(pid))
	for _, m := range maps {
		args = append(args,
			strconv.FormatUint(uint64(m.ContainerID), 10),
			strconv.FormatUint(uint64(m.HostID), 10),
			strconv.FormatUint(uint64(m.Size), 10))
	}
	return args
}
