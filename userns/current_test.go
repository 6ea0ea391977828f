package userns

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadMapsAndHostUID(t *testing.T) {
	type lookup struct {
		id     uint32
		host   uint32
		mapped bool
	}
	tests := []struct {
		name        string
		uidMap      string
		gidMap      string
		wantInitial bool
		wantUIDs    []IDMap
		uids        []lookup
		gids        []lookup
		wantErr     string
	}{
		{
			name:        "initial namespace",
			uidMap:      "         0          0 4294967295\n",
			gidMap:      "         0          0 4294967295\n",
			wantInitial: true,
			wantUIDs:    []IDMap{{0, 0, math.MaxUint32}},
			uids:        []lookup{{0, 0, true}, {1001, 1001, true}, {math.MaxUint32 - 1, math.MaxUint32 - 1, true}},
		},
		{
			name:     "podman rootless namespace",
			uidMap:   "         0       1001          1\n         1     100000      65536\n",
			gidMap:   "         0       1001          1\n         1     200000      65536\n",
			wantUIDs: []IDMap{{0, 1001, 1}, {1, 100000, 65536}},
			uids:     []lookup{{0, 1001, true}, {1, 100000, true}, {65536, 165535, true}, {65537, 0, false}},
			gids:     []lookup{{0, 1001, true}, {2, 200001, true}, {70000, 0, false}},
		},
		{
			name:     "single id",
			uidMap:   "0 1000 1\n",
			gidMap:   "0 1000 1\n",
			wantUIDs: []IDMap{{0, 1000, 1}},
			uids:     []lookup{{0, 1000, true}, {1, 0, false}},
		},
		{name: "not yet mapped", uidMap: "", gidMap: "", uids: []lookup{{0, 0, false}}},
		{name: "partial identity is not initial", uidMap: "0 0 1000\n", gidMap: "0 0 1000\n",
			wantUIDs: []IDMap{{0, 0, 1000}}},
		{name: "short line", uidMap: "0 1000\n", gidMap: "", wantErr: "uid_map:1: want 3 fields, have 2"},
		{name: "bad number", uidMap: "0 0 1\n", gidMap: "0 0 1\n0 x 1\n",
			wantErr: `gid_map:2: host id "x": invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			up, gp := filepath.Join(dir, "uid_map"), filepath.Join(dir, "gid_map")
			for p, c := range map[string]string{up: tt.uidMap, gp: tt.gidMap} {
				if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ns, err := ReadMaps(up, gp)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadMaps() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadMaps() error = %v", err)
			}
			if ns.Initial != tt.wantInitial {
				t.Errorf("Initial = %v, want %v", ns.Initial, tt.wantInitial)
			}
			if !reflect.DeepEqual(ns.UIDMap, tt.wantUIDs) {
				t.Errorf("UIDMap = %v, want %v", ns.UIDMap, tt.wantUIDs)
			}
			for _, l := range tt.uids {
				if h, ok := ns.HostUID(l.id); h != l.host || ok != l.mapped {
					t.Errorf("HostUID(%d) = %d, %v, want %d, %v", l.id, h, ok, l.host, l.mapped)
				}
			}
			for _, l := range tt.gids {
				if h, ok := ns.HostGID(l.id); h != l.host || ok != l.mapped {
					t.Errorf("HostGID(%d) = %d, %v, want %d, %v", l.id, h, ok, l.host, l.mapped)
				}
			}
		})
	}
}

func TestReadMapsMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadMaps(filepath.Join(dir, "nope"), filepath.Join(dir, "nope2"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadMaps(missing) error = %v, want no such file", err)
	}
}

func TestCurrent(t *testing.T) {
	ns, err := Current()
	if err != nil {
		t.Fatalf("Current() error = %v", err)
	}
	uid := uint32(os.Getuid())
	if _, ok := ns.HostUID(uid); !ok {
		t.Errorf("HostUID(own uid %d) not mapped in %v", uid, ns.UIDMap)
	}
	if ns.Initial && len(ns.UIDMap) != 1 {
		t.Errorf("Initial with %d uid_map lines", len(ns.UIDMap))
	}
}
