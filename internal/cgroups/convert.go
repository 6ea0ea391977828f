package cgroups

import (
	"fmt"
	"os"
	"regexp"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kernel bounds that Settings checks before the kernel would refuse.
const (
	// cpu.max: kernel/sched/core.c, tg_set_cfs_bandwidth (1 ms ≤ period ≤
	// 1 s; quota ≥ 1 ms).
	minCFSPeriod, maxCFSPeriod, minCFSQuota = 1000, 1000000, 1000
	// cpu.shares (v1) range, which cpu.weight (1..10000) is mapped from.
	minShares, maxShares = 2, 262144
	// blkio.weight (v1) range, mapped to io.weight (1..10000).
	minBlkioWeight, maxBlkioWeight = 10, 1000
)

func (c *converter) memory(m *specs.LinuxMemory) {
	if m == nil {
		return
	}
	page := int64(os.Getpagesize())
	var limit int64
	if m.Limit != nil {
		limit = *m.Limit
		src := fmt.Sprintf("linux.resources.memory.limit %d", limit)
		switch {
		case limit == -1:
		case limit < 0:
			c.bad(src, "negative (-1 means no limit)")
		case limit > 0 && limit < page:
			// memory.max counts whole pages: the kernel would round this
			// to 0 and OOM-kill the first allocation.
			c.bad(src, "below what the kernel accepts (at least one page, %d bytes)", page)
		}
	}
	// memory.swap.max is swap alone; OCI's swap is memory+swap.
	if m.Swap != nil {
		src := fmt.Sprintf("linux.resources.memory.swap %d", *m.Swap)
		if v, err := swapMax(*m.Swap, limit); err != nil {
			c.bad(src, "%v", err)
		} else if v != "" {
			c.set("memory.swap.max", v, src)
		}
	}
	if m.Limit != nil && (limit == -1 || limit >= page) {
		c.set("memory.max", maxOr(limit), fmt.Sprintf("linux.resources.memory.limit %d", limit))
	}
	if m.Reservation != nil && *m.Reservation != 0 {
		src := fmt.Sprintf("linux.resources.memory.reservation %d", *m.Reservation)
		if *m.Reservation < -1 {
			c.bad(src, "negative (-1 means no limit)")
		} else {
			// A v1 soft limit is closest to v2's best-effort protection.
			c.set("memory.low", maxOr(*m.Reservation), src)
		}
	}
	if m.Swappiness != nil {
		c.unsupported(fmt.Sprintf("linux.resources.memory.swappiness %d", *m.Swappiness), "v2 has no per-cgroup swappiness")
	}
	if m.KernelTCP != nil && *m.KernelTCP != 0 {
		c.unsupported(fmt.Sprintf("linux.resources.memory.kernelTCP %d", *m.KernelTCP), "v2 accounts TCP memory in memory.max")
	}
	if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
		c.unsupported("linux.resources.memory.disableOOMKiller true", "v2 cannot turn off the OOM killer")
	}
	if m.UseHierarchy != nil && !*m.UseHierarchy {
		c.unsupported("linux.resources.memory.useHierarchy false", "v2 is always hierarchical")
	}
	// Kernel is deprecated and ignored (the spec allows it): v2 charges
	// kernel memory to memory.max.
}

// swapMax converts OCI's memory+swap limit to memory.swap.max as runc's
// ConvertMemorySwapToCgroupV2Value does: "" means leave it alone.
func swapMax(swap, limit int64) (string, error) {
	switch {
	case swap == 0:
		return "", nil
	case swap == -1:
		return "max", nil
	case swap < -1:
		return "", fmt.Errorf("negative (-1 means no limit)")
	case limit == 0 || limit == -1:
		return "", fmt.Errorf("a swap limit needs a memory limit (linux.resources.memory.limit)")
	case swap < limit:
		return "", fmt.Errorf("below linux.resources.memory.limit %d: OCI's swap is memory+swap", limit)
	}
	return strconv.FormatInt(swap-limit, 10), nil
}

func (c *converter) pids(p *specs.LinuxPids) {
	if p == nil || p.Limit == nil {
		return
	}
	v := "max" // runtime-spec: 0 or negative is no limit
	if *p.Limit > 0 {
		v = strconv.FormatInt(*p.Limit, 10)
	}
	c.set("pids.max", v, fmt.Sprintf("linux.resources.pids.limit %d", *p.Limit))
}

var cpuList = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

func (c *converter) cpu(r *specs.LinuxCPU) {
	if r == nil {
		return
	}
	if r.Shares != nil && *r.Shares != 0 {
		s := *r.Shares
		src := fmt.Sprintf("linux.resources.cpu.shares %d", s)
		if s < minShares || s > maxShares {
			c.bad(src, "outside %d..%d", minShares, maxShares)
		} else {
			// crun's conversion (crun docs/cgroup-v2.md): 2 → 1, 1024 → 39, 262144 → 10000.
			c.set("cpu.weight", strconv.FormatUint(1+((s-2)*9999)/262142, 10), src)
		}
	}
	// runc: a zero quota and period mean unset.
	if (r.Quota != nil && *r.Quota != 0) || (r.Period != nil && *r.Period != 0) {
		c.cpuMax(r.Quota, r.Period)
	}
	if r.Burst != nil {
		c.set("cpu.max.burst", strconv.FormatUint(*r.Burst, 10), fmt.Sprintf("linux.resources.cpu.burst %d", *r.Burst))
	}
	if r.Idle != nil {
		src := fmt.Sprintf("linux.resources.cpu.idle %d", *r.Idle)
		if *r.Idle != 0 && *r.Idle != 1 {
			c.bad(src, "must be 0 or 1")
		} else {
			c.set("cpu.idle", strconv.FormatInt(*r.Idle, 10), src)
		}
	}
	if (r.RealtimeRuntime != nil && *r.RealtimeRuntime != 0) || (r.RealtimePeriod != nil && *r.RealtimePeriod != 0) {
		c.unsupported("linux.resources.cpu.realtimeRuntime/realtimePeriod", "v2's cpu controller has no realtime bandwidth")
	}
	for _, f := range []struct{ file, name, v string }{{"cpuset.cpus", "cpus", r.Cpus}, {"cpuset.mems", "mems", r.Mems}} {
		if f.v == "" {
			continue
		}
		src := fmt.Sprintf("linux.resources.cpu.%s %q", f.name, f.v)
		if !cpuList.MatchString(f.v) {
			c.bad(src, "not a list like 0-3,5")
			continue
		}
		c.set(f.file, f.v, src)
	}
}

// cpuMax writes "QUOTA PERIOD" or "max PERIOD"; without a period, the
// quota alone, and the kernel keeps the period it has (as runc does).
func (c *converter) cpuMax(quota *int64, period *uint64) {
	q, src := "max", "linux.resources.cpu"
	if quota != nil {
		src += fmt.Sprintf(".quota %d", *quota)
		if *quota > 0 {
			if *quota < minCFSQuota {
				c.bad(src, "below what the kernel accepts (at least %d µs)", minCFSQuota)
				return
			}
			q = strconv.FormatInt(*quota, 10)
		}
	}
	if period != nil && *period != 0 {
		if quota != nil {
			src += ","
		} else {
			src += "."
		}
		src += fmt.Sprintf("period %d", *period)
		if *period < minCFSPeriod || *period > maxCFSPeriod {
			c.bad(src, "period outside what the kernel accepts (%d..%d µs)", minCFSPeriod, maxCFSPeriod)
			return
		}
		q += " " + strconv.FormatUint(*period, 10)
	}
	c.set("cpu.max", q, src)
}

func (c *converter) blockIO(b *specs.LinuxBlockIO) {
	if b == nil {
		return
	}
	if b.Weight != nil && *b.Weight != 0 {
		src := fmt.Sprintf("linux.resources.blockIO.weight %d", *b.Weight)
		if w, ok := ioWeight(*b.Weight); !ok {
			c.bad(src, "outside %d..%d", minBlkioWeight, maxBlkioWeight)
		} else {
			c.set("io.weight", "default "+w, src)
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		c.unsupported("linux.resources.blockIO.leafWeight", "CFQ-only, gone with v1")
	}
	for i, d := range b.WeightDevice {
		src := fmt.Sprintf("linux.resources.blockIO.weightDevice[%d] %d:%d", i, d.Major, d.Minor)
		if d.Weight != nil {
			if w, ok := ioWeight(*d.Weight); !ok {
				c.bad(src, "weight %d outside %d..%d", *d.Weight, minBlkioWeight, maxBlkioWeight)
			} else {
				c.set("io.weight", fmt.Sprintf("%d:%d %s", d.Major, d.Minor, w), src)
			}
		}
		if d.LeafWeight != nil {
			c.unsupported(src+" leafWeight", "CFQ-only, gone with v1")
		}
	}
	for _, t := range []struct {
		name, key string
		devs      []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "rbps", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "wbps", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "riops", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "wiops", b.ThrottleWriteIOPSDevice},
	} {
		for i, d := range t.devs {
			rate := "max" // 0 lifted a v1 throttle
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			src := fmt.Sprintf("linux.resources.blockIO.%s[%d] %d:%d %d", t.name, i, d.Major, d.Minor, d.Rate)
			c.set("io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate), src)
		}
	}
}

// ioWeight maps blkio.weight (10..1000) onto io.weight (1..10000), as crun
// does.
func ioWeight(w uint16) (string, bool) {
	if w < minBlkioWeight || w > maxBlkioWeight {
		return "", false
	}
	return strconv.Itoa(1 + (int(w)-minBlkioWeight)*9999/(maxBlkioWeight-minBlkioWeight)), true
}

// maxOr formats a limit where -1 means "max".
func maxOr(v int64) string {
	if v == -1 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
