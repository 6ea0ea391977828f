package testutil

import "os"

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
