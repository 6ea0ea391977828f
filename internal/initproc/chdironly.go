package initproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/hooks"
	"github.com/zviz/zviz/internal/rootfs"
	"github.com/zviz/zviz/internal/wire"
)

// buildChdirOnly is the recipe of chdir-only isolation (issue 6): the
// parent found that a new namespace cannot mount (Ubuntu's AppArmor
// restriction) and cloned us into no namespace at all. There is nothing
// to mount and nothing to pivot into: the hooks run, the console comes
// from the host's devpts, and the process's cwd and executable are
// resolved under b.ChdirRoot. Landlock, applied in launch as in full
// isolation, is what keeps the process there.
func buildChdirOnly(conn *wire.Conn, b *wire.Bootstrap) (*process, error) {
	s := b.Spec.Spec()
	if err := waitParentHooks(conn, b.ParentHooks); err != nil {
		return nil, err
	}
	if s.Hooks != nil {
		if err := hooks.Run("createContainer", s.Hooks.CreateContainer, b.State); err != nil {
			return nil, err
		}
	}
	con, err := openConsole(b.Console, s.Process)
	if err != nil {
		return nil, err
	}
	step("chdir-only: no mounts")
	return ready(conn, b, s, con)
}

// resolveIn names the host file that path (as the container would see it)
// is under root: symlinks, absolute ones included, resolve inside root
// (openat2 RESOLVE_IN_ROOT, see rootfs.OpenInRoot). root "" or "/" is the
// host's own root.
func resolveIn(root, path string) (string, error) {
	if root == "" || root == "/" {
		return path, nil
	}
	f, err := rootfs.OpenInRoot(root, path, unix.O_PATH)
	if err != nil {
		return "", unwrapPath(err)
	}
	defer f.Close()
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return "", fmt.Errorf("resolve %s under %s: %w", path, root, err)
	}
	return real, nil
}

// passwdFile is /etc/passwd of the container's tree.
func passwdFile(root string) string { return filepath.Join("/", root, "etc/passwd") }

// dropBounding empties the bounding set but the kept capabilities. An
// unprivileged caller in chdir-only isolation has no user namespace and so
// no CAP_SETPCAP to drop them with; it has no capabilities to gain either:
// no_new_privs (set before) makes execve ignore setuid bits and file
// capabilities, and the bounding set only limits those (capabilities(7)).
func (p *process) dropBounding() error {
	if p.chdirOnly && os.Geteuid() != 0 {
		return nil
	}
	return dropBounding(p.caps)
}
