package cgroups

import "fmt"

// Of returns pid's cgroup v2 path from /proc/PID/cgroup, as the caller's
// cgroup namespace sees it (the "0::" line; cgroups(7)).
func Of(pid int) (string, error) {
	return ownFrom(fmt.Sprintf("/proc/%d/cgroup", pid))
}
