package testutil

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

func init() {
	checks["podman"] = func() error { return checkBinaries("podman", "conmon", "slirp4netns") }
}

// RemoveBuilt removes what BuildZviz and BuildProbe built, for a TestMain
// that has its own cleanup to do before exiting (Main does both).
func RemoveBuilt() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

func init() {
	checks["docker-cli"] = func() error { return checkBinaries("docker") }
}

func init() {
	checks["cgroup2-only"] = func() error {
		var st unix.Statfs_t
		if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
			return err
		}
		if st.Type != unix.CGROUP2_SUPER_MAGIC {
			return errors.New("/sys/fs/cgroup is not a cgroup2 mount (a cgroup v1 or hybrid host)")
		}
		return nil
	}
}
