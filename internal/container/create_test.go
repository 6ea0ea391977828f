package container

import (
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostID(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 1001, Size: 1}}
	for _, tc := range []struct {
		id, want uint32
		ok       bool
	}{{0, 100000, true}, {999, 100999, true}, {1000, 1001, true}, {1001, 0, false}, {65534, 0, false}} {
		got, ok := hostID(maps, tc.id)
		if got != tc.want || ok != tc.ok {
			t.Errorf("hostID(%d) = %d, %v; want %d, %v", tc.id, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := hostID(nil, 0); ok {
		t.Error("hostID with no maps: mapped")
	}
}

// TestFifoOwner: the exec fifo goes to the container's root when real root
// creates a user namespace with other ids (regression: the init, root of
// its namespace as host uid 200000, got EACCES opening a root-owned fifo).
func TestFifoOwner(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}},
	}}
	uid, gid, ok := fifoOwner(s, &nsPlan{newUser: true})
	if os.Geteuid() == 0 && (!ok || uid != 200000 || gid != 300000) {
		t.Errorf("root, new user namespace: %d:%d %v; want 200000:300000", uid, gid, ok)
	}
	if os.Geteuid() != 0 && ok {
		t.Errorf("unprivileged caller: chown to %d:%d (it cannot, and owns the fifo's ids already)", uid, gid)
	}
	if _, _, ok := fifoOwner(s, &nsPlan{}); ok {
		t.Error("no new user namespace: fifo chowned")
	}
	identity := &specs.Spec{Linux: &specs.Linux{
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}},
	}}
	if _, _, ok := fifoOwner(identity, &nsPlan{newUser: true}); ok {
		t.Error("container root is host root: fifo chowned")
	}
	unmapped := &specs.Spec{Linux: &specs.Linux{
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 1, HostID: 200000, Size: 10}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 10}},
	}}
	if _, _, ok := fifoOwner(unmapped, &nsPlan{newUser: true}); ok {
		t.Error("container uid 0 unmapped: fifo chowned")
	}
}
