package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot is how every path inside the container's rootfs is resolved before
// the pivot: symlinks (absolute ones and ".." alike) are resolved as if
// rootfd were "/", and /proc magic links are refused (openat2(2),
// RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS). This is what keeps a malicious
// image's "evil -> /etc" from turning a mount destination into a host path
// (CVE-2021-30465 and the older CVE-2015-1164 family).
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openat2 retries EAGAIN, which RESOLVE_IN_ROOT returns when a concurrent
// rename might have let ".." escape (openat2(2) ERRORS); and EINTR.
func openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for range 32 {
		fd, err := unix.Openat2(dirfd, path, how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// OpenInRoot opens path inside root, never following a symlink (or ".."
// chain) out of root and never following /proc magic links. flags are
// open(2) flags; O_CLOEXEC is always added. The file is named root+path.
func OpenInRoot(root, path string, flags int) (*os.File, error) {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	name := filepath.Join(root, path)
	fd, err := openat2(rootfd, rel(path), &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot})
	if err != nil {
		return nil, &os.PathError{Op: "open in root", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// rel turns a container path into one relative to the root fd: lexically
// cleaned (so ".." cannot climb above "/" even before openat2 sees it) and
// without the leading slash. "/" becomes ".".
func rel(p string) string {
	p = strings.TrimPrefix(filepath.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// openPath opens an existing path inside the root as an O_PATH handle.
func openPath(rootfd int, p string) (int, error) {
	return openat2(rootfd, rel(p), &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: inRoot})
}

// mkdirAll returns an O_PATH handle on directory p inside the root,
// creating missing components with mode 0755 (the caller runs with umask 0).
// The common case (p exists) costs one openat2. A missing component is
// created with mkdirat relative to its already-resolved parent and reopened
// with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so a racing swap for a symlink
// fails instead of being followed. Like filepath-securejoin's MkdirAll, it
// refuses to create through a dangling symlink.
func mkdirAll(rootfd int, p string) (int, error) {
	r := rel(p)
	fd, err := openat2(rootfd, r, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRoot})
	if err == nil || !errors.Is(err, unix.ENOENT) || r == "." {
		return fd, wrapPath("open", p, err)
	}
	dir, base := filepath.Split("/" + r)
	parent, err := mkdirAll(rootfd, dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	if err := unix.Mkdirat(parent, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, wrapPath("mkdir", p, err)
	}
	fd, err = openat2(parent, base, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	return fd, wrapPath("open", p, err)
}

// mkfileAll is mkdirAll for a file mount point (the destination of a file
// bind mount or a device node): the parent directories are created and an
// empty regular file is made with mknodat(S_IFREG), which needs no
// privilege and, unlike open(O_CREAT), cannot block on a FIFO or follow a
// symlink planted at the last component.
func mkfileAll(rootfd int, p string, mode uint32) (int, error) {
	fd, err := openPath(rootfd, p)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, wrapPath("open", p, err)
	}
	dir, base := filepath.Split("/" + rel(p))
	parent, err := mkdirAll(rootfd, dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	if err := unix.Mknodat(parent, base, unix.S_IFREG|mode, 0); err != nil && err != unix.EEXIST {
		return -1, wrapPath("create", p, err)
	}
	fd, err = openat2(parent, base, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	return fd, wrapPath("open", p, err)
}

func wrapPath(op, p string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: p, Err: err}
}

// procFD is the path through which mount(2) and friends act on an O_PATH
// handle without resolving the path again.
func procFD(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }
