package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fake is a cgroup2 hierarchy in t.TempDir() that acts like cgroupfs where
// this package relies on it: a new directory comes with the kernel's
// interface files and the controllers its parent enabled; a pid written to
// cgroup.procs leaves its old cgroup; cgroup.subtree_control takes
// "+c -c" lists and refuses controllers the cgroup lacks (ENOENT) or a
// non-root cgroup with processes (EBUSY); rmdir refuses a populated cgroup
// (EBUSY). Every operation is logged relative to the root.
type fake struct {
	t    *testing.T
	root string

	mu      sync.Mutex
	log     []string
	fail    map[string]error         // "mkdir REL", "REL/FILE", or "REL/FILE VALUE" → error
	onWrite func(file, value string) // runs after a successful write
}

// The files each controller adds (a subset of the kernel's).
var fakeControllerFiles = map[string][]string{
	"memory":  {"memory.max", "memory.high", "memory.low", "memory.min", "memory.swap.max", "memory.events", "memory.current"},
	"pids":    {"pids.max", "pids.current"},
	"cpu":     {"cpu.max", "cpu.weight", "cpu.max.burst", "cpu.idle", "cpu.stat"},
	"io":      {"io.max", "io.weight", "io.stat"},
	"cpuset":  {"cpuset.cpus", "cpuset.mems"},
	"hugetlb": {"hugetlb.2MB.max"},
	"rdma":    {"rdma.max"},
}

// newFake makes the root of a fake hierarchy offering controllers, and
// swaps this package's file operations for the fake's until the test ends.
func newFake(t *testing.T, controllers ...string) *fake {
	t.Helper()
	f := &fake{t: t, root: filepath.Join(t.TempDir(), "cgroup"), fail: map[string]error{}}
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	f.populate(f.root, controllers)
	oldMkdir, oldRmdir, oldWrite := mkdir, rmdir, write
	mkdir, rmdir, write = f.mkdir, f.rmdir, f.write
	t.Cleanup(func() { mkdir, rmdir, write = oldMkdir, oldRmdir, oldWrite })
	return f
}

func (f *fake) populate(dir string, controllers []string) {
	files := map[string]string{
		"cgroup.controllers": strings.Join(controllers, " ") + "\n", "cgroup.subtree_control": "",
		"cgroup.procs": "", "cgroup.threads": "", "cgroup.events": "populated 0\nfrozen 0\n",
		"cgroup.freeze": "0\n", "cgroup.kill": "", "cgroup.type": "domain\n",
	}
	for _, c := range controllers {
		for _, name := range fakeControllerFiles[c] {
			files[name] = ""
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// mkCgroup makes a cgroup below the root directly (not through the
// package), with the controllers its parent enabled and pids in it.
func (f *fake) mkCgroup(rel string, pids ...int) string {
	f.t.Helper()
	dir := filepath.Join(f.root, rel)
	if err := f.mkdir(dir); err != nil {
		f.t.Fatal(err)
	}
	for _, p := range pids {
		if err := f.write(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(p)); err != nil {
			f.t.Fatal(err)
		}
	}
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
	return dir
}

func (f *fake) rel(p string) string {
	r, err := filepath.Rel(f.root, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fake) record(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, op)
	if err := f.fail[op]; err != nil {
		return err
	}
	if name, _, ok := strings.Cut(op, " <- "); ok {
		return f.fail[name]
	}
	return nil
}

// Log returns the operations so far and forgets them.
func (f *fake) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.log
	f.log = nil
	return l
}

func (f *fake) mkdir(dir string) error {
	if err := f.record("mkdir " + f.rel(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	f.populate(dir, f.words(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")))
	return nil
}

func (f *fake) rmdir(dir string) error {
	if err := f.record("rmdir " + f.rel(dir)); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			return unix.EBUSY
		}
	}
	if len(f.words(filepath.Join(dir, "cgroup.procs"))) > 0 {
		return unix.EBUSY
	}
	return os.RemoveAll(dir)
}

func (f *fake) write(file, value string) error {
	if err := f.record(f.rel(file) + " <- " + value); err != nil {
		return err
	}
	dir := filepath.Dir(file)
	var err error
	switch filepath.Base(file) {
	case "cgroup.procs":
		err = f.move(dir, value)
	case "cgroup.subtree_control":
		err = f.control(dir, value)
	default:
		err = writeFile(file, value)
	}
	if err == nil && f.onWrite != nil {
		f.onWrite(file, value)
	}
	return err
}

func (f *fake) move(dir, pid string) error {
	if dir != f.root && len(f.words(filepath.Join(dir, "cgroup.subtree_control"))) > 0 {
		return unix.EBUSY
	}
	err := filepath.WalkDir(f.root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		procs := filepath.Join(p, "cgroup.procs")
		old := f.words(procs)
		keep := slices.DeleteFunc(slices.Clone(old), func(w string) bool { return w == pid })
		if p == dir {
			keep = append(keep, pid)
		}
		return os.WriteFile(procs, []byte(strings.Join(keep, "\n")), 0o644)
	})
	return err
}

func (f *fake) control(dir, value string) error {
	have := f.words(filepath.Join(dir, "cgroup.controllers"))
	on := f.words(filepath.Join(dir, "cgroup.subtree_control"))
	for _, w := range strings.Fields(value) {
		c := w[1:]
		switch {
		case !slices.Contains(have, c):
			return unix.ENOENT
		case dir != f.root && len(f.words(filepath.Join(dir, "cgroup.procs"))) > 0:
			return unix.EBUSY
		case w[0] == '+' && !slices.Contains(on, c):
			on = append(on, c)
		case w[0] == '-':
			on = slices.DeleteFunc(on, func(x string) bool { return x == c })
		}
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(on, " ")+"\n"), 0o644)
}

func (f *fake) words(file string) []string {
	w, err := readWords(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		f.t.Fatal(err)
	}
	return w
}

// read returns a file's content below the root, trimmed.
func (f *fake) read(rel string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.root, rel))
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
