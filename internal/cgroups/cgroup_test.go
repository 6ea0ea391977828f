package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCreate(t *testing.T) {
	f := newFake(t, "cpuset", "cpu", "io", "memory", "hugetlb", "pids")
	dir := filepath.Join(f.root, "zviz", "c1")
	created, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created != filepath.Join(f.root, "zviz") {
		t.Errorf("created = %s, want the root's zviz", created)
	}
	// Only Wanted controllers, and only where the parent has them.
	want := []string{
		"cgroup.subtree_control <- +memory +pids +cpu +io",
		"mkdir zviz",
		"zviz/cgroup.subtree_control <- +memory +pids +cpu +io",
		"mkdir zviz/c1",
	}
	if got := f.Log(); !slices.Equal(got, want) {
		t.Errorf("operations:\n%q\nwant\n%q", got, want)
	}
	if got := f.read("zviz/c1/cgroup.controllers"); got != "memory pids cpu io" {
		t.Errorf("c1's cgroup.controllers = %q", got)
	}

	again, err := Create(dir)
	if err != nil || again != "" {
		t.Errorf("Create of an existing cgroup = %q, %v; want \"\", nil", again, err)
	}
	if got := f.Log(); len(got) != 0 {
		t.Errorf("Create of an existing cgroup did %q", got)
	}
}

func TestCreatePartialDelegation(t *testing.T) {
	f := newFake(t, "pids", "memory")
	if err := f.control(f.root, "+pids +memory"); err != nil {
		t.Fatal(err)
	}
	deleg := f.mkCgroup("user", 100) // holds a process: left alone (see Create)
	if _, err := Create(filepath.Join(deleg, "c1")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mkdir user/c1",
	}
	if got := f.Log(); !slices.Equal(got, want) {
		t.Errorf("operations:\n%q\nwant\n%q", got, want)
	}
	if got := f.read("user/c1/cgroup.controllers"); got != "" {
		t.Errorf("c1 has controllers %q, want none", got)
	}
}

func TestCreateRollsBack(t *testing.T) {
	f := newFake(t, "pids")
	f.fail["mkdir a/b/c"] = unix.ENOSPC // cgroup.max.descendants
	_, err := Create(filepath.Join(f.root, "a", "b", "c"))
	if !errors.Is(err, unix.ENOSPC) || !errContains(err, "create cgroup "+filepath.Join(f.root, "a/b/c")) {
		t.Fatalf("Create = %v, want ENOSPC naming the directory", err)
	}
	if _, serr := os.Stat(filepath.Join(f.root, "a")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("a left behind after a failed Create (%v)", serr)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "x")); !errContains(err, "not in a cgroup v2 hierarchy") {
		t.Errorf("Create outside a hierarchy: %v", err)
	}
}

func TestPrepareLeaf(t *testing.T) {
	tests := []struct {
		name        string
		controllers []string // the root's, enabled for ctr
		inDir       []int    // processes in ctr before
		want        []string
		enabled     []string
		unavailable []string
	}{
		{
			name: "all wanted", controllers: []string{"cpu", "io", "memory", "pids"}, inDir: []int{10},
			want: []string{
				"mkdir ctr/container", "ctr/container/cgroup.procs <- 10",
				"ctr/cgroup.subtree_control <- +memory +pids +cpu +io",
			},
			enabled: []string{"memory", "pids", "cpu", "io"},
		},
		{
			name: "delegated subset, stragglers moved too", controllers: []string{"memory", "pids"}, inDir: []int{10, 11, 12},
			want: []string{
				"mkdir ctr/container", "ctr/container/cgroup.procs <- 10",
				"ctr/container/cgroup.procs <- 11", "ctr/container/cgroup.procs <- 12",
				"ctr/cgroup.subtree_control <- +memory +pids",
			},
			enabled: []string{"memory", "pids"}, unavailable: []string{"cpu", "io"},
		},
		{
			name: "no controllers (this host's v2)", controllers: nil, inDir: []int{10},
			want:        []string{"mkdir ctr/container", "ctr/container/cgroup.procs <- 10"},
			unavailable: []string{"memory", "pids", "cpu", "io"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.controllers...)
			for _, c := range tt.controllers {
				if err := f.control(f.root, "+"+c); err != nil {
					t.Fatal(err)
				}
			}
			dir := f.mkCgroup("ctr", tt.inDir...)
			leaf, err := PrepareLeaf(dir, tt.inDir[0])
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Log(); !slices.Equal(got, tt.want) {
				t.Errorf("operations:\n%q\nwant\n%q", got, tt.want)
			}
			if leaf.Dir != filepath.Join(dir, "container") || !slices.Equal(leaf.Enabled, tt.enabled) || !slices.Equal(leaf.Unavailable, tt.unavailable) {
				t.Errorf("leaf = %+v, want enabled %q, unavailable %q", leaf, tt.enabled, tt.unavailable)
			}
			if got := f.read("ctr/cgroup.procs"); got != "" {
				t.Errorf("ctr still holds %q", got)
			}
		})
	}
}

func TestJoinErrors(t *testing.T) {
	f := newFake(t, "pids")
	dir := f.mkCgroup("c")
	f.fail["c/cgroup.procs"] = unix.EACCES
	err := Join(dir, 42)
	if !errors.Is(err, unix.EACCES) || !errContains(err, "move pid 42 into cgroup "+dir) || !errContains(err, "common ancestor") {
		t.Errorf("Join refused: %v", err)
	}
	f.fail["c/cgroup.procs"] = unix.EBUSY
	if err := Join(dir, 42); !errors.Is(err, unix.EBUSY) || !errContains(err, "leaf") {
		t.Errorf("Join into an inner node: %v", err)
	}
}

func TestProcsAndRemove(t *testing.T) {
	f := newFake(t, "pids")
	f.mkCgroup("c", 5)
	f.mkCgroup("c/a", 7, 3)
	f.mkCgroup("c/a/x", 9)
	f.mkCgroup("c/b")
	dir := filepath.Join(f.root, "c")
	got, err := Procs(dir)
	if err != nil || !slices.Equal(got, []int{3, 5, 7, 9}) {
		t.Errorf("Procs = %v, %v; want [3 5 7 9]", got, err)
	}
	if _, err := Procs(filepath.Join(f.root, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Procs of a missing cgroup: %v", err)
	}

	// Populated: EBUSY, then it waits for "populated 0", which the "kernel"
	// reports once the processes are gone.
	f.onWrite = nil
	go func() {
		time.Sleep(50 * time.Millisecond)
		for _, rel := range []string{"c", "c/a", "c/a/x"} {
			writeFile(filepath.Join(f.root, rel, "cgroup.procs"), "")
		}
		writeFile(filepath.Join(f.root, "c/a/x", "cgroup.events"), "populated 0\nfrozen 0\n")
	}()
	writeFile(filepath.Join(f.root, "c/a/x", "cgroup.events"), "populated 1\nfrozen 0\n")
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"rmdir c/b", "rmdir c/a/x", "rmdir c/a/x", "rmdir c/a", "rmdir c"}
	if got := f.Log(); !slices.Equal(got, want) {
		t.Errorf("operations:\n%q\nwant (deepest first, c/a/x retried)\n%q", got, want)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", dir, err)
	}
	if err := Remove(dir); err != nil {
		t.Errorf("Remove of a missing cgroup: %v", err)
	}
}
