package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Resolve turns config.json's linux.cgroupsPath into a cgroup directory for
// the cgroupfs manager (no systemd): an absolute path is relative to the
// hierarchy mounted at mount, a relative one to own, the caller's cgroup
// (Own). The path must be clean: no empty, "." or ".." components, no
// trailing slash, not the root. Errors name the field.
func Resolve(mount, own, cgroupsPath string) (string, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("linux.cgroupsPath %q: %s", cgroupsPath, fmt.Sprintf(format, a...))
	}
	p := cgroupsPath
	switch {
	case p == "":
		return "", bad("empty")
	case p == "/":
		return "", bad("the root cgroup cannot hold a container")
	case strings.ContainsAny(p, "\n\x00"):
		// cgroup_mkdir refuses names with a newline (kernel/cgroup/cgroup.c).
		return "", bad("contains a newline or NUL byte")
	case !strings.Contains(p, "/") && strings.Count(p, ":") == 2:
		return "", bad("looks like systemd's slice:prefix:name, which needs --systemd-cgroup")
	}
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		switch c {
		case "":
			return "", bad("empty path component (a doubled or trailing \"/\")")
		case ".", "..":
			return "", bad("%q component: the path must be clean and stay below its base", c)
		}
	}
	if !path.IsAbs(p) {
		if !path.IsAbs(own) {
			return "", bad("relative, and the caller's cgroup %q is not an absolute path", own)
		}
		p = path.Join(own, p)
	}
	return filepath.Join(mount, p), nil
}

// Delegated reports whether the caller may create and use dir: the nearest
// existing directory at or above dir must be a cgroup whose directory,
// cgroup.procs and cgroup.subtree_control the caller may write, which is
// what delegating a subtree grants (cgroup-v2.rst, "Delegation"). The check
// uses the effective ids (faccessat2 with AT_EACCESS), as the kernel's own
// permission check does. It returns nil or why not.
func Delegated(dir string) error {
	base, err := existingAncestor(dir)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	checks := []struct {
		path string
		mode uint32
	}{
		{base, unix.W_OK | unix.X_OK},
		{filepath.Join(base, "cgroup.procs"), unix.W_OK},
		{filepath.Join(base, "cgroup.subtree_control"), unix.W_OK},
	}
	for _, c := range checks {
		if err := unix.Faccessat(unix.AT_FDCWD, c.path, c.mode, unix.AT_EACCESS); err != nil {
			return fmt.Errorf("cgroup %s is not in a subtree delegated to uid %d: %s: %w",
				dir, os.Geteuid(), c.path, err)
		}
	}
	return nil
}

// Missing returns the topmost directory of dir's path that does not
// exist yet, which Create would make (and Remove should remove), or ""
// when dir exists or its nearest existing ancestor is not a cgroup.
func Missing(dir string) string {
	dir = filepath.Clean(dir)
	base, err := existingAncestor(dir)
	if err != nil || base == dir {
		return ""
	}
	rel, err := filepath.Rel(base, dir)
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	return filepath.Join(base, first)
}

// existingAncestor returns dir or its nearest existing ancestor, which must
// be a cgroup v2 directory (it has cgroup.controllers).
func existingAncestor(dir string) (string, error) {
	d := filepath.Clean(dir)
	for {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return "", fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no ancestor exists")
		}
		d = parent
	}
	if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err != nil {
		return "", fmt.Errorf("%s is not in a cgroup v2 hierarchy: %w", d, err)
	}
	return d, nil
}
