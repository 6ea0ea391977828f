package container

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/seccomp"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

// TestWithCeiling: the profile's limits are ceilings over linux.resources.
func TestWithCeiling(t *testing.T) {
	lim := seccomp.Limits{Memory: 1 << 30, Pids: 100, CPU: 0.5}
	for _, c := range []struct {
		name             string
		in               *specs.LinuxResources
		mem, pids, quota int64
		period           uint64
		notes            int
	}{
		{"none in the config", nil, 1 << 30, 100, 50000, 100000, 0},
		{"lower in the config", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20)},
			Pids: &specs.LinuxPids{Limit: i64(10)}, CPU: &specs.LinuxCPU{Quota: i64(10000), Period: u64(50000)}},
			1 << 20, 10, 10000, 50000, 0},
		{"higher in the config", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(8 << 30)},
			Pids: &specs.LinuxPids{Limit: i64(1000)}, CPU: &specs.LinuxCPU{Quota: i64(200000), Period: u64(100000)}},
			1 << 30, 100, 50000, 100000, 3},
		{"unlimited in the config", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}},
			1 << 30, 100, 50000, 100000, 1},
	} {
		got, notes := withCeiling(c.in, lim, "p")
		if *got.Memory.Limit != c.mem || *got.Pids.Limit != c.pids || *got.CPU.Quota != c.quota || *got.CPU.Period != c.period {
			t.Errorf("%s: memory %d pids %d cpu %d/%d, want %d %d %d/%d", c.name, *got.Memory.Limit, *got.Pids.Limit,
				*got.CPU.Quota, *got.CPU.Period, c.mem, c.pids, c.quota, c.period)
		}
		if len(notes) != c.notes {
			t.Errorf("%s: notes %q, want %d", c.name, notes, c.notes)
		}
		for _, n := range notes {
			if !strings.Contains(n, "profile p's ceiling") {
				t.Errorf("%s: note %q does not name the profile's ceiling", c.name, n)
			}
		}
	}
	// A profile without limits leaves the config alone.
	in := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(8 << 30)}}
	if got, notes := withCeiling(in, seccomp.Limits{}, "p"); *got.Memory.Limit != 8<<30 || got.Pids != nil || len(notes) != 0 {
		t.Errorf("no profile limits: %+v %q", got, notes)
	}
}

// TestMergeResources: update replaces the fields it sets and keeps the rest.
func TestMergeResources(t *testing.T) {
	have := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30), Swap: i64(2 << 30)},
		CPU: &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)}}
	got := mergeResources(have, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 29)},
		Pids: &specs.LinuxPids{Limit: i64(5)}})
	if *got.Memory.Limit != 1<<29 || *got.Memory.Swap != 2<<30 || *got.Pids.Limit != 5 || *got.CPU.Quota != 50000 {
		t.Errorf("merged: %+v %+v %+v %+v", got.Memory, got.Pids, got.CPU, got)
	}
	if *have.Memory.Limit != 1<<30 {
		t.Errorf("mergeResources changed its input")
	}
}
