package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // "" means valid; else a substring of the error
	}{
		{"a", ""},
		{"abc-123_x.y+z", ""},
		{"0", ""},
		{"A.b", ""},
		{strings.Repeat("x", maxIDLen), ""},
		{"", "must not be empty"},
		{strings.Repeat("x", maxIDLen+1), "longer than 250"},
		{strings.Repeat("y", 300), `"yyyyyyyyyyyyyyyyyyyy"`},
		{"a/b", `"a/b"`},
		{"/abs", `"/abs"`},
		{"..", `".."`},
		{".", `"."`},
		{".hidden", `".hidden"`},
		{"-flag", `"-flag"`},
		{"_x", `"_x"`},
		{"a b", `"a b"`},
		{"a\x00b", `"a\x00b"`},
		{"a\nb", `"a\nb"`},
		{"é", `"é"`},
		{"a:b", `"a:b"`},
	} {
		err := ValidateID(tc.id)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidateID(%q): %v, want valid", tc.id, err)
		case tc.want != "" && err == nil:
			t.Errorf("ValidateID(%q): valid, want an error", tc.id)
		case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "container id")):
			t.Errorf("ValidateID(%q): %q, want it to start with \"container id\" and contain %s", tc.id, err, tc.want)
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := writeAtomic(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An open reader keeps the content it opened: the file is replaced,
	// not rewritten in place.
	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := writeAtomic(p, []byte("second, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "second, longer" {
		t.Errorf("content %q", b)
	}
	buf := make([]byte, 64)
	n, _ := old.Read(buf)
	if string(buf[:n]) != "first" {
		t.Errorf("the old file changed under its reader: %q", buf[:n])
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("mode %v, want at most 0644", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %v, want only f (no temporary left)", ents)
	}
	// A failure names the path and leaves nothing.
	missing := filepath.Join(dir, "no", "f")
	err = writeAtomic(missing, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "no")) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("writeAtomic into a missing directory: %v", err)
	}
	// Renaming onto a directory fails: the temporary is removed.
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)
	os.WriteFile(filepath.Join(sub, "x"), nil, 0o600)
	if err := writeAtomic(sub, []byte("x"), 0o600); err == nil {
		t.Error("writeAtomic over a non-empty directory succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("after a failed rename the directory holds %v", ents)
	}
}

func TestCheckPrivate(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := mk("good", 0o700)
	if err := checkPrivate(good); err != nil {
		t.Errorf("0700 directory: %v", err)
	}
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701, 0o770, 0o707} {
		p := mk("mode"+mode.String(), mode)
		err := checkPrivate(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "mode") {
			t.Errorf("mode %#o: %v, want a refusal naming %s", mode, err, p)
		}
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if err := checkPrivate(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("regular file: %v", err)
	}
	link := filepath.Join(base, "link")
	os.Symlink(good, link)
	if err := checkPrivate(link); err == nil || !strings.Contains(err.Error(), link) {
		t.Errorf("symlink to a good directory: %v, want a refusal", err)
	}
	missing := filepath.Join(base, "missing")
	if err := checkPrivate(missing); !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing directory: %v", err)
	}
	if os.Geteuid() == 0 {
		foreign := mk("foreign", 0o700)
		if err := os.Chown(foreign, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		err := checkPrivate(foreign)
		if err == nil || !strings.Contains(err.Error(), "owned by uid 4242") || !strings.Contains(err.Error(), foreign) {
			t.Errorf("directory of uid 4242: %v", err)
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	s := &Store{Root: filepath.Join(t.TempDir(), "state")}
	if ids, err := s.ids(); err != nil || len(ids) != 0 {
		t.Errorf("ids of a missing root: %v, %v", ids, err)
	}
	if _, err := s.lookup("x"); !errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), `"x" does not exist`) {
		t.Errorf("lookup in a missing root: %v", err)
	}
	h, err := s.newContainer("c1")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Root)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("root: %v, %v; want mode 0700", fi, err)
	}
	if _, err := s.newContainer("c1"); err == nil || !strings.Contains(err.Error(), `"c1" already exists`) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := s.newContainer("../c1"); err == nil || !strings.Contains(err.Error(), "container id") {
		t.Errorf("bad id: %v", err)
	}
	// A directory without a record reads as not existing.
	if _, err := h.load(); !errors.Is(err, ErrNotExist) {
		t.Errorf("load without a record: %v", err)
	}
	rec := &record{ID: "c1", Bundle: "/b", Annotations: map[string]string{"k": "v"}}
	if err := h.save(rec); err != nil {
		t.Fatal(err)
	}
	h.unlock()
	h2, err := s.lookup("c1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := h2.load()
	if err != nil || got.Bundle != "/b" || got.Annotations["k"] != "v" {
		t.Errorf("load: %+v, %v", got, err)
	}
	// The lock is exclusive across descriptors.
	fd, _ := unix.Open(h2.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Errorf("second lock while held: %v, want EWOULDBLOCK", err)
	}
	unix.Close(fd)
	if ids, _ := s.ids(); len(ids) != 1 || ids[0] != "c1" {
		t.Errorf("ids: %v", ids)
	}
	if err := h2.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.lookup("c1"); !errors.Is(err, ErrNotExist) {
		t.Errorf("lookup after remove: %v", err)
	}
	// Corrupt records are reported with their path.
	h3, _ := s.newContainer("c3")
	os.WriteFile(filepath.Join(h3.dir, stateFile), []byte("{"), 0o600)
	if _, err := h3.load(); err == nil || !strings.Contains(err.Error(), filepath.Join(h3.dir, stateFile)) {
		t.Errorf("corrupt record: %v", err)
	}
	h3.remove()
}

func TestStoreRefusesOpenRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	os.Mkdir(root, 0o755)
	os.Chmod(root, 0o755)
	s := &Store{Root: root}
	for name, f := range map[string]func() error{
		"newContainer": func() error { _, err := s.newContainer("x"); return err },
		"lookup":       func() error { _, err := s.lookup("x"); return err },
		"ids":          func() error { _, err := s.ids(); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), "0755") {
			t.Errorf("%s on a 0755 root: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("refused root got %v", ents)
	}
}
