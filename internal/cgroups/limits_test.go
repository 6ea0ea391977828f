package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func ptr[T any](v T) *T { return &v }

// fw is a setting as "FILE=VALUE", for compact tables.
func fw(settings []Setting) []string {
	var out []string
	for _, s := range settings {
		out = append(out, s.File+"="+s.Value)
	}
	return out
}

func TestSettings(t *testing.T) {
	const gib = int64(1 << 30)
	tests := []struct {
		name        string
		r           *specs.LinuxResources
		want        []string
		unsupported []string // substrings, in order
		err         []string // substrings, all present
	}{
		{name: "nil", r: nil},
		{
			name: "memory limit, swap as memory+swap, reservation to memory.low",
			r:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(gib), Swap: ptr(3 * gib), Reservation: ptr(gib / 2)}},
			want: []string{"memory.swap.max=2147483648", "memory.max=1073741824", "memory.low=536870912"},
		},
		{
			name: "swap equal to limit: no swap",
			r:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(gib), Swap: ptr(gib)}},
			want: []string{"memory.swap.max=0", "memory.max=1073741824"},
		},
		{
			name: "-1 is max",
			r:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(-1)), Swap: ptr(int64(-1)), Reservation: ptr(int64(-1))}},
			want: []string{"memory.swap.max=max", "memory.max=max", "memory.low=max"},
		},
		{
			name: "zero is unset",
			r:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(0)), Swap: ptr(int64(0)), Reservation: ptr(int64(0))}},
		},
		{
			name: "limit below a page",
			r:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1024))}},
			err:  []string{"linux.resources.memory.limit 1024: below what the kernel accepts (at least one page"},
		},
		{
			name: "swap without limit, swap below limit, negative",
			r: &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr(gib), Reservation: ptr(int64(-5))},
				CPU: &specs.LinuxCPU{}},
			err: []string{"linux.resources.memory.swap 1073741824: a swap limit needs a memory limit",
				"linux.resources.memory.reservation -5: negative"},
		},
		{
			name: "swap below limit",
			r:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(2 * gib), Swap: ptr(gib)}},
			want: []string{"memory.max=2147483648"},
			err:  []string{"linux.resources.memory.swap 1073741824: below linux.resources.memory.limit 2147483648"},
		},
		{
			name:        "v1-only memory fields",
			r:           &specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr(uint64(60)), KernelTCP: ptr(int64(1 << 20)), DisableOOMKiller: ptr(true), Kernel: ptr(int64(1 << 20))}},
			unsupported: []string{"swappiness 60", "kernelTCP", "disableOOMKiller"},
		},
		{
			name: "pids",
			r:    &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(1024))}},
			want: []string{"pids.max=1024"},
		},
		{
			name: "pids 0 and -1 are max",
			r:    &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}},
			want: []string{"pids.max=max"},
		},
		{
			name: "cpu shares to weight (crun's formula), quota and period",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Burst: ptr(uint64(1000)), Idle: ptr(int64(1))}},
			want: []string{"cpu.weight=39", "cpu.max=50000 100000", "cpu.max.burst=1000", "cpu.idle=1"},
		},
		{
			name: "cpu shares bounds",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(2))}, BlockIO: &specs.LinuxBlockIO{}},
			want: []string{"cpu.weight=1"},
		},
		{
			name: "cpu shares max",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(262144))}},
			want: []string{"cpu.weight=10000"},
		},
		{
			name: "no quota: max PERIOD",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(-1)), Period: ptr(uint64(50000))}},
			want: []string{"cpu.max=max 50000"},
		},
		{
			name: "quota alone keeps the period",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(20000))}},
			want: []string{"cpu.max=20000"},
		},
		{
			name: "cpu values the kernel refuses",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(1)), Quota: ptr(int64(500)), Idle: ptr(int64(2))}},
			err: []string{"linux.resources.cpu.shares 1: outside 2..262144",
				"linux.resources.cpu.quota 500: below what the kernel accepts (at least 1000 µs)",
				"linux.resources.cpu.idle 2: must be 0 or 1"},
		},
		{
			name: "period out of range",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(5000)), Period: ptr(uint64(2000000))}},
			err:  []string{"linux.resources.cpu.quota 5000,period 2000000: period outside what the kernel accepts (1000..1000000 µs)"},
		},
		{
			name:        "realtime, cpuset",
			r:           &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(950000)), Cpus: "0-1,3", Mems: "0"}},
			want:        []string{"cpuset.cpus=0-1,3", "cpuset.mems=0"},
			unsupported: []string{"realtime"},
		},
		{
			name: "bad cpuset",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-1;rm"}},
			err:  []string{`linux.resources.cpu.cpus "0-1;rm": not a list`},
		},
		{
			name: "block io",
			r: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight:                  ptr(uint16(500)),
				WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr(uint16(10))}},
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 0}},
			}},
			want: []string{"io.weight=default 4950", "io.weight=8:0 1", "io.max=8:0 rbps=1048576", "io.max=8:16 wiops=max"},
		},
		{
			name: "block io weight range",
			r:    &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(5)), LeafWeight: ptr(uint16(100))}},
			err:  []string{"linux.resources.blockIO.weight 5: outside 10..1000"}, unsupported: []string{"leafWeight"},
		},
		{
			name: "hugetlb, rdma, network",
			r: &specs.LinuxResources{
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 22}, {Pagesize: "2 MB"}},
				Rdma:           map[string]specs.LinuxRdma{"mlx4_0": {HcaHandles: ptr(uint32(2)), HcaObjects: ptr(uint32(100))}},
				Network:        &specs.LinuxNetwork{ClassID: ptr(uint32(1))},
			},
			want:        []string{"hugetlb.2MB.max=4194304", "rdma.max=mlx4_0 hca_handle=2 hca_object=100"},
			err:         []string{`hugepageLimits[1].pageSize "2 MB": not a page size`},
			unsupported: []string{"linux.resources.network"},
		},
		{
			name: "unified last, so it wins",
			r: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(gib)},
				Unified: map[string]string{"memory.max": "2G", "memory.high": "900M", "cpu.weight": "77"}},
			want: []string{"memory.max=1073741824", "cpu.weight=77", "memory.high=900M", "memory.max=2G"},
		},
		{
			name: "unified names",
			r: &specs.LinuxResources{Unified: map[string]string{"../memory.max": "1", "memory": "1", ".max": "1",
				"cgroup.procs": "1", "cgroup.kill": "1", "memory.high": " ", "cgroup.max.depth": "3"}},
			want: []string{"cgroup.max.depth=3"},
			err: []string{`["../memory.max"] "1": not an interface file name`, `["memory"] "1": not an interface file name (CONTROLLER.KEY)`,
				`[".max"] "1": not an interface file name`, `["cgroup.procs"] "1": cgroup.procs is managed by zviz`,
				`["cgroup.kill"] "1": cgroup.kill is managed`, `["memory.high"] " ": empty value`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unsup, err := Settings(tt.r)
			if !slices.Equal(fw(got), tt.want) {
				t.Errorf("settings %q, want %q", fw(got), tt.want)
			}
			if len(unsup) != len(tt.unsupported) {
				t.Errorf("unsupported %q, want %q", unsup, tt.unsupported)
			} else {
				for i, u := range tt.unsupported {
					if !strings.Contains(unsup[i], u) || !strings.Contains(unsup[i], "no cgroup v2 equivalent") {
						t.Errorf("unsupported[%d] = %q, want %q", i, unsup[i], u)
					}
				}
			}
			if (err != nil) != (len(tt.err) > 0) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			for _, e := range tt.err {
				if !errContains(err, e) {
					t.Errorf("error %v\ndoes not say %q", err, e)
				}
			}
		})
	}
}

func TestFilesProfileLimits(t *testing.T) {
	got, err := Files("profile default limits", map[string]string{"pids.max": "1024", "memory.max": "4294967296", "cpu.max": "50000 100000"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Setting{
		{"cpu.max", "50000 100000", `profile default limits["cpu.max"] "50000 100000"`},
		{"memory.max", "4294967296", `profile default limits["memory.max"] "4294967296"`},
		{"pids.max", "1024", `profile default limits["pids.max"] "1024"`},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %q\nwant %q", got, want)
	}
}

func TestSet(t *testing.T) {
	f := newFake(t, "memory", "pids", "cpu")
	if err := f.control(f.root, "+memory +pids"); err != nil {
		t.Fatal(err)
	}
	dir := f.mkCgroup("c")
	os.Remove(filepath.Join(dir, "memory.swap.max")) // no swap accounting
	mem, _, err := Settings(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 30))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(100))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Set(dir, mem); err != nil {
		t.Fatal(err)
	}
	if got, want := f.Log(), []string{"c/memory.max <- 1073741824", "c/pids.max <- 100"}; !slices.Equal(got, want) {
		t.Errorf("wrote %q, want %q", got, want)
	}
	if f.read("c/memory.max") != "1073741824" || f.read("c/pids.max") != "100" {
		t.Errorf("memory.max %q, pids.max %q", f.read("c/memory.max"), f.read("c/pids.max"))
	}

	// Unavailable: cpu is not enabled for c, memory.swap.max missing. Nothing is written.
	more := append(mem,
		Setting{"cpu.max", "50000", "linux.resources.cpu.quota 50000"},
		Setting{"memory.swap.max", "0", "linux.resources.memory.swap 1073741824"})
	err = Set(dir, more)
	if !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("Set with unavailable settings: %v, want ErrNotAvailable", err)
	}
	for _, want := range []string{
		`linux.resources.cpu.quota 50000: cpu.max: the cpu controller is not available in cgroup ` + dir + ` (cgroup.controllers: "memory pids")`,
		"linux.resources.memory.swap 1073741824: memory.swap.max is not available in cgroup " + dir + ": no such interface file",
	} {
		if !errContains(err, want) {
			t.Errorf("error %v\ndoes not say %q", err, want)
		}
	}
	if got := f.Log(); len(got) != 0 {
		t.Errorf("wrote %q despite unavailable settings", got)
	}
	ok, missing, err := Available(dir, more)
	if err != nil || !slices.Equal(ok, mem) || len(missing) != 2 {
		t.Errorf("Available = %q, %v, %v", ok, missing, err)
	}

	// The kernel refuses a value: the error names the field, file and errno.
	f.fail["c/memory.max <- 1073741824"] = unix.EINVAL
	err = Set(dir, mem)
	if !errors.Is(err, unix.EINVAL) || !errContains(err, `linux.resources.memory.limit 1073741824: write memory.max "1073741824" in cgroup `+dir+`: invalid argument (the kernel refused the value)`) {
		t.Errorf("Set refused by the kernel: %v", err)
	}
	if _, _, err := Available(filepath.Join(f.root, "nope"), mem); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Available of a missing cgroup: %v", err)
	}
}
