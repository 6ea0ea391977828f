package container

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"testing"
)

func TestAllowPorts(t *testing.T) {
	for _, c := range []struct {
		allow []string
		want  []uint16
		ok    bool
	}{
		{nil, nil, false},
		{[]string{"10.0.0.0/8:443", "192.0.2.1:80", "[2001:db8::/32]:443", "*:53"}, []uint16{53, 80, 443}, true},
		{[]string{"10.0.0.0/8:443", "192.0.2.1"}, nil, false},  // every port of one address
		{[]string{"2001:db8::1"}, nil, false},                  // IPv6 without a port
		{[]string{"[2001:db8::1]:8080"}, []uint16{8080}, true}, // IPv6 with one
	} {
		got, ok := allowPorts(c.allow)
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("allowPorts(%q) = %v, %v; want %v, %v", c.allow, got, ok, c.want, c.ok)
		}
	}
}

func TestCacheDir(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "zviz")
	dir := cacheDir(root)
	if dir != filepath.Join(base, "zviz-cache") {
		t.Fatalf("cacheDir(%s) = %q, want the sibling zviz-cache", root, dir)
	}
	if err := checkPrivate(dir); err != nil {
		t.Errorf("cache directory not private: %v", err)
	}
	// Someone else's (or a too open) directory is never used.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := cacheDir(root); got != "" {
		t.Errorf("a cache directory open to others was used: %q", got)
	}
	os.Remove(dir)
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if got := cacheDir(root); got != "" {
		t.Errorf("a symlinked cache directory was used: %q", got)
	}
	if got := cacheDir(""); got != "" {
		t.Errorf("no state root, cache %q", got)
	}
}

// TestLoadProfileCacheKeepsEveryLayer: a cache hit returns the same
// profile as the miss that wrote it, syscall lists aside (a hit once
// dropped the limits, and hostile-tenant ran without them).
func TestLoadProfileCacheKeepsEveryLayer(t *testing.T) {
	for _, name := range []string{"default", "hostile-tenant", "batch-job", "web-server"} {
		dir := t.TempDir()
		miss, progMiss, err := loadProfile(name, runtime.GOARCH, dir)
		if err != nil {
			t.Fatal(err)
		}
		hit, progHit, err := loadProfile(name, runtime.GOARCH, dir)
		if err != nil {
			t.Fatal(err)
		}
		want := *miss
		want.Allow, want.Deny, want.ENOSYS, want.Filter, want.Broker = nil, nil, nil, nil, nil
		if !reflect.DeepEqual(*hit, want) {
			t.Errorf("%s: cache hit %+v\nwant %+v", name, *hit, want)
		}
		if !bytes.Equal(progHit.BPF, progMiss.BPF) {
			t.Errorf("%s: cached BPF differs", name)
		}
		if name == "hostile-tenant" && (hit.Limits.Memory == 0 || hit.Limits.Pids == 0) {
			t.Errorf("hostile-tenant from the cache has no limits: %+v", hit.Limits)
		}
	}
}
