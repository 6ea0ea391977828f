package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LeafName is the sub-cgroup PrepareLeaf moves the container into.
const LeafName = "container"

// Wanted are the controllers zviz enables, in this order, when they are
// available: the ones its limits use.
var Wanted = []string{"memory", "pids", "cpu", "io"}

// removeTimeout bounds Remove's wait for a cgroup to empty.
const removeTimeout = 5 * time.Second

// mkdir, rmdir and write are the file system's cgroup operations; the
// tests swap them for ones that act like cgroupfs (a new directory comes
// with its interface files, a pid written to cgroup.procs leaves its old
// cgroup) on a tree in t.TempDir(), and log them.
var (
	mkdir = func(dir string) error { return unix.Mkdir(dir, 0o755) }
	rmdir = unix.Rmdir
	write = writeFile
)

// Create makes dir and the missing directories above it. Before making
// each, it enables the Wanted controllers that its parent offers (best
// effort, as runc does: a parent that is not the caller's refuses, and the
// controller then does not show up in dir's cgroup.controllers, which
// Available reports). A parent that holds processes of its own (a login
// session's scope, say) is left alone: the kernel refuses the domain
// controllers there but accepts the threaded ones (cpu, pids), and a child
// of a cgroup with both processes and controllers is an invalid domain
// that no process can join (EOPNOTSUPP). It returns the topmost
// directory it made, for the caller's cleanup stack (Remove), or "" when
// dir already existed. On failure nothing it made is left.
func Create(dir string) (created string, err error) {
	dir = filepath.Clean(dir)
	base, err := existingAncestor(dir)
	if err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	if base == dir {
		return "", nil
	}
	rel, err := filepath.Rel(base, dir)
	if err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	defer func() {
		if err != nil && created != "" {
			if rmErr := Remove(created); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", rmErr))
			}
			created = ""
		}
	}()
	cur := base
	for _, name := range strings.Split(rel, string(filepath.Separator)) {
		if !holdsProcesses(cur) {
			enable(cur, Wanted) // best effort, see above
		}
		cur = filepath.Join(cur, name)
		if err := mkdir(cur); err != nil && !errors.Is(err, unix.EEXIST) {
			return created, fmt.Errorf("create cgroup %s: %w", cur, err)
		}
		if created == "" {
			created = cur
		}
	}
	return created, nil
}

// holdsProcesses says whether the non-root cgroup dir has processes of
// its own (the root cgroup, which has no cgroup.type, is exempt from the
// no-internal-process rule).
func holdsProcesses(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "cgroup.type")); err != nil {
		return false
	}
	pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
	return err == nil && len(pids) > 0
}

// Join moves pid (the whole thread group) into dir.
func Join(dir string, pid int) error {
	err := write(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOENT):
		// cgroup-v2.rst, "Delegation Containment".
		err = fmt.Errorf("%w (the caller must be able to write cgroup.procs of the common ancestor of pid %d's cgroup and the target)", err, pid)
	case errors.Is(err, unix.EBUSY):
		err = fmt.Errorf("%w (the target has controllers enabled in cgroup.subtree_control: processes belong in a leaf)", err)
	case errors.Is(err, unix.ESRCH):
		err = fmt.Errorf("%w (no such process)", err)
	}
	return fmt.Errorf("move pid %d into cgroup %s: %w", pid, dir, err)
}

// Leaf is what PrepareLeaf did.
type Leaf struct {
	Dir         string   // DIR/container, which now holds the processes
	Enabled     []string // controllers on in DIR's cgroup.subtree_control
	Unavailable []string // Wanted ones that DIR's cgroup.controllers lacks
}

// PrepareLeaf moves pid, and any other process in dir, into dir/container,
// then enables in dir's cgroup.subtree_control those Wanted controllers
// that dir has (a delegated subset is normal). The move comes first: the
// kernel refuses to enable controllers in a cgroup with processes of its
// own (cgroup-v2.rst, "No Internal Process Constraint"). On failure the
// caller removes dir.
func PrepareLeaf(dir string, pid int) (Leaf, error) {
	leaf := Leaf{Dir: filepath.Join(dir, LeafName)}
	if err := mkdir(leaf.Dir); err != nil && !errors.Is(err, unix.EEXIST) {
		return leaf, fmt.Errorf("prepare leaf of cgroup %s: %w", dir, err)
	}
	if err := Join(leaf.Dir, pid); err != nil {
		return leaf, fmt.Errorf("prepare leaf of cgroup %s: %w", dir, err)
	}
	others, err := readPids(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return leaf, fmt.Errorf("prepare leaf of cgroup %s: %w", dir, err)
	}
	for _, p := range others {
		if err := Join(leaf.Dir, p); err != nil && !errors.Is(err, unix.ESRCH) {
			return leaf, fmt.Errorf("prepare leaf of cgroup %s: %w", dir, err)
		}
	}
	leaf.Enabled, leaf.Unavailable, err = enable(dir, Wanted)
	if err != nil {
		return leaf, fmt.Errorf("prepare leaf of cgroup %s: %w", dir, err)
	}
	return leaf, nil
}

// enable turns on the controllers of want that dir offers in its
// cgroup.subtree_control: all in one write, or one by one if that fails.
// It returns the ones on afterwards and the ones dir does not offer.
func enable(dir string, want []string) (enabled, unavailable []string, err error) {
	have, err := Controllers(dir)
	if err != nil {
		return nil, nil, err
	}
	on, err := readWords(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return nil, nil, err
	}
	var add []string
	for _, c := range want {
		switch {
		case !slices.Contains(have, c):
			unavailable = append(unavailable, c)
		case slices.Contains(on, c):
			enabled = append(enabled, c)
		default:
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return enabled, unavailable, nil
	}
	file := filepath.Join(dir, "cgroup.subtree_control")
	if write(file, strings.Join(add, " ")) == nil {
		for _, a := range add {
			enabled = append(enabled, a[1:])
		}
		return enabled, unavailable, nil
	}
	var errs []error
	for _, a := range add {
		if err := write(file, a); err != nil {
			errs = append(errs, fmt.Errorf("enable the %s controller: %w", a[1:], err))
			continue
		}
		enabled = append(enabled, a[1:])
	}
	return enabled, unavailable, errors.Join(errs...)
}

// Controllers returns dir's cgroup.controllers: the controllers its
// parent enabled for it, whose interface files dir has.
func Controllers(dir string) ([]string, error) {
	return readWords(filepath.Join(dir, "cgroup.controllers"))
}

// Procs returns the pids in dir and every cgroup below it, sorted.
func Procs(dir string) ([]int, error) {
	var all []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // a sub-cgroup removed meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readPids(filepath.Join(p, "cgroup.procs"))
		if err != nil && !(p != dir && errors.Is(err, fs.ErrNotExist)) {
			return err
		}
		all = append(all, pids...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list processes of cgroup %s: %w", dir, err)
	}
	slices.Sort(all)
	return all, nil
}

// Remove removes dir and the cgroups below it, deepest first. A cgroup
// that still holds processes (rmdir: EBUSY) is waited for until its
// cgroup.events says "populated 0", for a few seconds: call Kill first. A
// dir that does not exist is not an error.
func Remove(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for _, d := range slices.Backward(dirs) {
		err := rmdir(d)
		if errors.Is(err, unix.EBUSY) {
			if werr := waitEvent(d, "populated", "0", removeTimeout); werr != nil {
				return fmt.Errorf("remove cgroup %s: %w: %w", d, err, werr)
			}
			err = rmdir(d)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
	}
	return nil
}

// writeFile writes value to an existing interface file in one write(2),
// as cgroupfs wants. The errno stays reachable.
func writeFile(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readWords(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

func readPids(file string) ([]int, error) {
	words, err := readWords(file)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(words))
	for _, w := range words {
		n, err := strconv.Atoi(w)
		if err != nil {
			return nil, fmt.Errorf("%s: bad pid %q", file, w)
		}
		pids = append(pids, n)
	}
	return pids, nil
}
