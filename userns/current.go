package userns

import (
	"bytes"
	"fmt"
	"math"
	"os"
)

// Namespace describes the user namespace a process runs in, as seen by that
// process in /proc/self/uid_map and gid_map: HostID is an id of the parent
// user namespace (the initial one, unless namespaces are nested).
type Namespace struct {
	// Initial is true in the initial user namespace, whose uid_map is the
	// identity "0 0 4294967295".
	Initial        bool
	UIDMap, GIDMap []IDMap
}

// Current reads the user namespace of the calling process.
func Current() (*Namespace, error) {
	return ReadMaps("/proc/self/uid_map", "/proc/self/gid_map")
}

// ReadMaps reads a namespace description from uid_map and gid_map files in
// the /proc format (paths injectable for tests).
func ReadMaps(uidMapPath, gidMapPath string) (*Namespace, error) {
	uids, err := readMapFile(uidMapPath)
	if err != nil {
		return nil, err
	}
	gids, err := readMapFile(gidMapPath)
	if err != nil {
		return nil, err
	}
	initial := len(uids) == 1 && uids[0] == IDMap{0, 0, math.MaxUint32}
	return &Namespace{Initial: initial, UIDMap: uids, GIDMap: gids}, nil
}

// HostUID maps uid of this namespace to the parent namespace's uid (e.g. to
// authenticate to a D-Bus daemon outside podman's user namespace). ok is
// false when uid is not mapped.
func (n *Namespace) HostUID(uid uint32) (host uint32, ok bool) {
	return toHost(n.UIDMap, uid)
}

// HostGID is HostUID for group ids.
func (n *Namespace) HostGID(gid uint32) (host uint32, ok bool) {
	return toHost(n.GIDMap, gid)
}

func toHost(maps []IDMap, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}

func readMapFile(path string) ([]IDMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read id map: %w", err)
	}
	var maps []IDMap
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("parse %s:%d: want 3 fields, have %d", path, n, len(f))
		}
		var v [3]uint64
		for i, name := range [3]string{"container id", "host id", "size"} {
			if v[i], err = parseUint32(name, f[i]); err != nil {
				return nil, fmt.Errorf("parse %s:%d: %w", path, n, err)
			}
		}
		maps = append(maps, IDMap{ContainerID: uint32(v[0]), HostID: uint32(v[1]), Size: uint32(v[2])})
	}
	return maps, nil
}
