package testutil

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
)

func init() {
	checks["cgroup2"] = func() error { _, err := cgroup2Mount(); return err }
}

// Cgroup2Mount returns where the cgroup v2 hierarchy is mounted
// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). Tests may
// create child cgroups there and must remove them; the v1 hierarchies are
// never touched.
func Cgroup2Mount(t testing.TB) string {
	t.Helper()
	m, err := cgroup2Mount()
	if err != nil {
		t.Skipf("requires cgroup2: %v", err)
	}
	return m
}

func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, pf := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(pf) > 0 && pf[0] == "cgroup2" && fields[3] == "/" &&
			strings.HasPrefix(fields[4], "/sys/fs/cgroup") {
			return fields[4], nil
		}
	}
	return "", errors.New("no cgroup2 hierarchy mounted under /sys/fs/cgroup")
}
