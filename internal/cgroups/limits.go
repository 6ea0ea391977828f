package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Setting is one value for one interface file of a cgroup, and where it
// came from, which errors name.
type Setting struct {
	File   string // "memory.max"
	Value  string // written verbatim
	Source string // "linux.resources.memory.limit 1073741824"
}

// ErrNotAvailable marks a setting whose controller or interface file the
// cgroup does not have (not delegated, not enabled, or not in this
// kernel). The caller decides whether that is a warning or a refusal.
var ErrNotAvailable = errors.New("not available")

// managedFiles are the core files zviz itself drives: not limits.
var managedFiles = []string{"cgroup.procs", "cgroup.threads", "cgroup.subtree_control",
	"cgroup.type", "cgroup.freeze", "cgroup.kill", "cgroup.controllers", "cgroup.events"}

// Files turns a map of interface file → value (config.json's
// linux.resources.unified, or a profile's limits) into settings, sorted by
// file, after checking the names: a plain file name ("controller.key"),
// not one of the files zviz manages itself. source prefixes the errors.
func Files(source string, m map[string]string) ([]Setting, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []Setting
	var errs []error
	for _, k := range keys {
		v := m[k]
		src := fmt.Sprintf("%s[%q] %q", source, k, v)
		ctrl, _, _ := strings.Cut(k, ".")
		switch {
		case k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00\n"):
			errs = append(errs, fmt.Errorf("%s: not an interface file name", src))
		case ctrl == "" || !strings.Contains(k, ".") || strings.HasSuffix(k, "."):
			errs = append(errs, fmt.Errorf("%s: not an interface file name (CONTROLLER.KEY)", src))
		case slices.Contains(managedFiles, k):
			errs = append(errs, fmt.Errorf("%s: %s is managed by zviz, not a limit", src, k))
		case strings.TrimSpace(v) == "":
			errs = append(errs, fmt.Errorf("%s: empty value", src))
		default:
			out = append(out, Setting{File: k, Value: v, Source: src})
		}
	}
	return out, errors.Join(errs...)
}

// controllerOf returns the controller an interface file belongs to
// ("cgroup" for the core files).
func controllerOf(file string) string {
	c, _, _ := strings.Cut(file, ".")
	return c
}

// Available splits settings into those dir can take and, for the others,
// an error wrapping ErrNotAvailable that names the setting and why: its
// controller is not in dir's cgroup.controllers, or the file is missing
// (memory.swap.max without swap accounting, io.weight without a
// weight-capable scheduler …).
func Available(dir string, settings []Setting) (ok []Setting, missing []error, err error) {
	have, err := Controllers(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	for _, s := range settings {
		c := controllerOf(s.File)
		if c != "cgroup" && !slices.Contains(have, c) {
			missing = append(missing, fmt.Errorf("%s: %s: the %s controller is %w in cgroup %s (cgroup.controllers: %q)",
				s.Source, s.File, c, ErrNotAvailable, dir, strings.Join(have, " ")))
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, s.File)); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("%s: %w", s.Source, err)
			}
			missing = append(missing, fmt.Errorf("%s: %s is %w in cgroup %s: no such interface file", s.Source, s.File, ErrNotAvailable, dir))
			continue
		}
		ok = append(ok, s)
	}
	return ok, missing, nil
}

// Set writes settings into dir in order (a later setting of a file wins,
// as linux.resources.unified wins over the typed fields). If any is not
// available, nothing is written and the error lists each (errors.Is
// ErrNotAvailable). A value the kernel refuses (EINVAL, EBUSY, …) stops
// the writes; the error names the setting, the file and the errno.
func Set(dir string, settings []Setting) error {
	_, missing, err := Available(dir, settings)
	if err != nil {
		return fmt.Errorf("set limits: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("set limits: %w", errors.Join(missing...))
	}
	for _, s := range settings {
		if err := write(filepath.Join(dir, s.File), s.Value); err != nil {
			why := ""
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ERANGE) {
				why = " (the kernel refused the value)"
			}
			return fmt.Errorf("%s: write %s %q in cgroup %s: %w%s", s.Source, s.File, s.Value, dir, err, why)
		}
	}
	return nil
}

// Settings converts linux.resources into cgroup v2 settings, the way runc
// and crun do, checking values first: err joins one error per bad field.
// unsupported names the fields set that cgroup v2 has no file for (v1
// only: swappiness, kernelTCP, realtime, blkio leaf weights, network
// classes); the caller warns or refuses. Devices is not converted: on v2
// the device controller is an eBPF program, not a file. Unified comes last,
// so it wins over the typed fields.
func Settings(r *specs.LinuxResources) (settings []Setting, unsupported []string, err error) {
	if r == nil {
		return nil, nil, nil
	}
	c := &converter{}
	c.memory(r.Memory)
	c.pids(r.Pids)
	c.cpu(r.CPU)
	c.blockIO(r.BlockIO)
	for i, h := range r.HugepageLimits {
		src := fmt.Sprintf("linux.resources.hugepageLimits[%d].pageSize %q", i, h.Pagesize)
		if !hugepageSize.MatchString(h.Pagesize) {
			c.bad(src, "not a page size like 2MB or 1GB")
			continue
		}
		c.set("hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10), src)
	}
	for _, dev := range slices.Sorted(maps.Keys(r.Rdma)) {
		l := r.Rdma[dev]
		var v []string
		if l.HcaHandles != nil {
			v = append(v, fmt.Sprintf("hca_handle=%d", *l.HcaHandles))
		}
		if l.HcaObjects != nil {
			v = append(v, fmt.Sprintf("hca_object=%d", *l.HcaObjects))
		}
		if len(v) > 0 {
			c.set("rdma.max", dev+" "+strings.Join(v, " "), fmt.Sprintf("linux.resources.rdma[%q]", dev))
		}
	}
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		c.unsupported("linux.resources.network", "net_cls and net_prio are cgroup v1 controllers")
	}
	unified, uerr := Files("linux.resources.unified", r.Unified)
	c.out = append(c.out, unified...)
	return c.out, c.unsup, errors.Join(append(c.errs, uerr)...)
}

var hugepageSize = regexp.MustCompile(`^[1-9][0-9]*[KMG]B$`)

// converter collects settings and errors from the typed fields.
type converter struct {
	out   []Setting
	errs  []error
	unsup []string
}

func (c *converter) set(file, value, source string) {
	c.out = append(c.out, Setting{File: file, Value: value, Source: source})
}

func (c *converter) bad(source, format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", source, fmt.Sprintf(format, a...)))
}

func (c *converter) unsupported(source, why string) {
	c.unsup = append(c.unsup, source+": no cgroup v2 equivalent ("+why+")")
}
