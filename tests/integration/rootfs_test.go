package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zviz/zviz/tests/probe/report"
	"github.com/zviz/zviz/tests/testutil"
)

// extraApplets are the busybox applets the rootfs scripts below use
// besides testutil.DefaultApplets.
var extraApplets = []string{"sort", "tr", "od", "xargs", "stty", "seq", "tty"}

// bundleWith is rt.bundle with extra applets and a hook to add files to
// the rootfs before it is handed to the user (paths are chowned to it).
func (r *rt) bundleWith(edit func(s *specs.Spec), fill func(rootfs string)) string {
	r.t.Helper()
	uid := uint32(uidOf(r.t, r.user))
	s := testutil.DefaultSpec(r.user != "root", uid, uid)
	if edit != nil {
		edit(s)
	}
	b := testutil.BusyboxBundle(r.t, testutil.BundleOptions{Spec: s, User: r.user, Applets: extraApplets})
	if fill != nil {
		fill(filepath.Join(b, "rootfs"))
		if uid != 0 {
			chownAll(r.t, filepath.Join(b, "rootfs"), int(uid))
		}
	}
	return b
}

func chownAll(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// keyValues parses the KEY=VALUE lines a container script prints.
func keyValues(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}

// fileOps decodes the one-JSON-object-per-line output of probe read/write.
func fileOps(t *testing.T, out string) map[string]report.FileOp {
	t.Helper()
	m := map[string]report.FileOp{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var op report.FileOp
		testutil.DecodeJSON(t, []byte(l), &op)
		m[op.Op+" "+op.Path] = op
	}
	return m
}

func findMount(ms []report.Mount, point string) *report.Mount {
	var found *report.Mount
	for i := range ms {
		if ms[i].Point == point {
			found = &ms[i] // the last one is the top of the stack
		}
	}
	return found
}

func hasOpts(opts string, want ...string) bool {
	have := strings.Split(opts, ",")
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// hostTempDir is a directory every user can traverse, removed at the end.
func hostTempDir(t *testing.T, owner string) string {
	t.Helper()
	d, err := os.MkdirTemp("", "zviz-host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if owner != "root" {
		uid := uidOf(t, owner)
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// TestRootfsPropagation: with rootfsPropagation rslave a mount made on the
// host under a bind source after create shows up in the container; with
// rprivate it does not. The source is a shared mount made for the test
// (this host's "/" is private).
func TestRootfsPropagation(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		src := hostTempDir(t, "root")
		mustRun(t, "mount", "-t", "tmpfs", "-o", "mode=0755", "zviz-prop", src)
		t.Cleanup(func() { _ = exec.Command("umount", "-R", "-l", src).Run() })
		mustRun(t, "mount", "--make-shared", src)
		for prop, want := range map[string]bool{"rslave": true, "rprivate": false} {
			t.Run(prop, func(t *testing.T) {
				sub := filepath.Join(src, prop)
				if err := os.Mkdir(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				b := r.shBundle("cat /mnt/"+prop+"/marker 2>/dev/null || echo absent", func(s *specs.Spec) {
					s.Linux.RootfsPropagation = prop
					s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"rbind"}})
				})
				d := r.createLogged(b)
				mustRun(t, "mount", "-t", "tmpfs", "zviz-prop-sub", sub)
				if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("propagated\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				r.ok("start", d.id)
				d.wait()
				got := strings.TrimSpace(d.stdout())
				if (got == "propagated") != want {
					t.Errorf("rootfsPropagation %s: container saw %q (stderr %q), want propagated=%v", prop, got, d.stderr(), want)
				}
			})
		}
	})
}

// TestRootfsConfigMounts checks each kind of config mount through the
// probe's mountinfo and file operations.
func TestRootfsConfigMounts(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		ro := hostTempDir(t, r.user)
		if err := os.WriteFile(filepath.Join(ro, "f"), []byte("host data"), 0o644); err != nil {
			t.Fatal(err)
		}
		flags := hostTempDir(t, r.user)
		script := `/probe write /mnt/ro/new; /probe read /mnt/ro/f; /probe write /sys/zviz-probe; /probe info`
		b := r.shBundle(script, func(s *specs.Spec) {
			// No options on proc: zviz adds nosuid, nodev and noexec itself.
			for i := range s.Mounts {
				if s.Mounts[i].Type == "proc" {
					s.Mounts[i].Options = nil
				}
			}
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: ro, Options: []string{"rbind", "ro"}},
				specs.Mount{Destination: "/mnt/flags", Type: "bind", Source: flags, Options: []string{"bind", "nosuid", "nodev", "noexec"}},
				specs.Mount{Destination: "/mnt/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1700"}},
				specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			)
		})
		res := r.ok("run", "--bundle", b, "mounts-"+randID())
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		ops := fileOps(t, strings.Join(lines[:len(lines)-1], "\n"))
		var in report.Info
		testutil.DecodeJSON(t, []byte(lines[len(lines)-1]), &in)

		if op := ops["write /mnt/ro/new"]; op.Errno != "EROFS" {
			t.Errorf("write to a read-only bind: %s, want EROFS", op.Errno)
		}
		if op := ops["read /mnt/ro/f"]; op.Errno != "OK" || op.Data != "host data" {
			t.Errorf("read from a read-only bind: %+v", op)
		}
		if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
			t.Errorf("a file appeared in the read-only bind source on the host")
		}
		checks := []struct {
			point, fstype string
			opts          []string
			super         []string
		}{
			{"/mnt/ro", "", []string{"ro"}, nil},
			{"/mnt/flags", "", []string{"rw", "nosuid", "nodev", "noexec"}, nil},
			{"/mnt/tmp", "tmpfs", nil, []string{"size=1024k", "mode=1700"}},
			{"/proc", "proc", []string{"nosuid", "nodev", "noexec"}, nil},
			{"/sys", "sysfs", []string{"ro"}, nil},
			{"/dev/pts", "devpts", []string{"nosuid", "noexec"}, nil},
			{"/dev/shm", "tmpfs", []string{"nosuid", "nodev", "noexec"}, nil},
			{"/dev/mqueue", "mqueue", nil, nil},
			{"/sys/fs/cgroup", "cgroup2", []string{"ro"}, nil},
		}
		for _, c := range checks {
			m := findMount(in.Mounts, c.point)
			if m == nil {
				t.Errorf("%s: not mounted", c.point)
				continue
			}
			if c.fstype != "" && m.FSType != c.fstype {
				t.Errorf("%s: fstype %s, want %s", c.point, m.FSType, c.fstype)
			}
			if !hasOpts(m.Options, c.opts...) || !hasOpts(m.Super, c.super...) {
				t.Errorf("%s: options %q super %q, want %v and %v", c.point, m.Options, m.Super, c.opts, c.super)
			}
		}
		// Not written to: if the cgroup mount fell back to a writable bind
		// of the host's /sys/fs/cgroup, a write would land on the machine.
		if op := ops["write /sys/zviz-probe"]; op.Errno != "EROFS" {
			t.Errorf("write /sys/zviz-probe: %s, want EROFS", op.Errno)
		}
	})
}

// TestRootfsSysfsFallback: without a network namespace of its own a
// rootless container may not mount sysfs; zviz binds the host's /sys
// read-only instead. Root mounts a fresh read-only sysfs.
func TestRootfsSysfsFallback(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.shBundle("/probe write /sys/kernel/zviz-probe; /probe info", func(s *specs.Spec) {
			withoutNS(s, specs.NetworkNamespace)
		})
		res := r.ok("run", "--bundle", b, "sysfs-"+randID())
		first, last, _ := strings.Cut(strings.TrimSpace(res.stdout), "\n")
		op := fileOps(t, first)["write /sys/kernel/zviz-probe"]
		if op.Errno != "EROFS" {
			t.Errorf("write under /sys: %s, want EROFS", op.Errno)
		}
		var in report.Info
		testutil.DecodeJSON(t, []byte(last), &in)
		m := findMount(in.Mounts, "/sys")
		if m == nil || m.FSType != "sysfs" || !hasOpts(m.Options, "ro") {
			t.Errorf("/sys: %+v, want sysfs read-only", m)
		}
		for _, mm := range in.Mounts {
			if strings.HasPrefix(mm.Point, "/sys/") && !hasOpts(mm.Options, "ro") && mm.Point != "/sys/firmware" {
				t.Errorf("%s under /sys is writable: %+v", mm.Point, mm)
			}
		}
	})
}

// TestRootfsMqueueWithoutIPCNamespace: rootless, mqueue cannot be mounted
// without an IPC namespace of our own; on a host without /dev/mqueue the
// fallback has nothing to bind, and create must say so clearly. Root can
// mount it.
func TestRootfsMqueueWithoutIPCNamespace(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		b := r.bundle(func(s *specs.Spec) { withoutNS(s, specs.IPCNamespace) })
		res := r.run("run", "--bundle", b, "mq-"+randID())
		_, hostMQ := os.Stat("/dev/mqueue")
		switch {
		case res.code == 0:
			t.Logf("mqueue without an IPC namespace: mounted")
			var in report.Info
			testutil.DecodeJSON(t, []byte(res.stdout), &in)
			if m := findMount(in.Mounts, "/dev/mqueue"); m == nil || m.FSType != "mqueue" {
				t.Errorf("/dev/mqueue: %+v, want an mqueue mount", m)
			}
		case r.user == "root" || hostMQ == nil:
			t.Errorf("mqueue without an IPC namespace: %v", res)
		case !strings.Contains(res.stderr, "mqueue"):
			t.Errorf("mqueue fallback failure does not name the mount: %v", res)
		default:
			t.Logf("mqueue without an IPC namespace refused: %s", strings.TrimSpace(res.stderr))
		}
	})
}

// TestRootfsDefaultDev: a config without /dev mounts gets exactly the
// runtime-spec's devices, symlinks, devpts and shm, nothing of the host.
func TestRootfsDefaultDev(t *testing.T) {
	script := `echo "ls=$(ls -A /dev | sort | xargs)"
for l in fd stdin stdout stderr ptmx; do echo "$l=$(readlink /dev/$l)"; done
for n in null zero full random urandom tty; do test -c /dev/$n && echo "chr-$n=$(stat -c %t:%T /dev/$n)"; done
echo "shm=$(stat -c %a /dev/shm)"
echo x > /dev/null && echo null-write=ok
echo "zero=$(head -c 8 /dev/zero | od -An -tx1 | tr -d ' \n')"
echo "urandom=$(head -c 8 /dev/urandom | wc -c)"`
	for _, mq := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "with-mqueue"}[mq], func(t *testing.T) { testDefaultDev(t, script, mq) })
	}
}

func testDefaultDev(t *testing.T, script string, mq bool) {
	{
		forEachUser(t, func(t *testing.T, r *rt) {
			b := r.bundleWith(func(s *specs.Spec) {
				s.Process.Args = []string{"sh", "-c", script}
				s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool {
					return strings.HasPrefix(m.Destination, "/dev") && !(mq && m.Destination == "/dev/mqueue")
				})
			}, nil)
			res := r.ok("run", "--bundle", b, "dev-"+randID())
			kv := keyValues(res.stdout)
			want := []string{"fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
			if mq {
				want = append(want, "mqueue")
			}
			sort.Strings(want)
			if got := kv["ls"]; got != strings.Join(want, " ") {
				t.Errorf("mqueue=%v: /dev holds %q, want exactly %q", mq, got, strings.Join(want, " "))
			}
			links := map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
			for l, target := range links {
				if kv[l] != target {
					t.Errorf("/dev/%s -> %q, want %q", l, kv[l], target)
				}
			}
			nodes := map[string]string{"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
			for n, dev := range nodes {
				if kv["chr-"+n] != dev {
					t.Errorf("/dev/%s: device %q, want character device %s", n, kv["chr-"+n], dev)
				}
			}
			if kv["shm"] != "1777" || kv["null-write"] != "ok" || kv["zero"] != "0000000000000000" || kv["urandom"] != "8" {
				t.Errorf("shm mode %q, null write %q, zero %q, urandom %q", kv["shm"], kv["null-write"], kv["zero"], kv["urandom"])
			}
		})
	}
}

// TestRootfsNoHostMounts: after pivot_root (and with --no-pivot) the
// container's mountinfo holds only its own mounts: one "/", and the rest
// under /proc, /dev, /sys; none of the host's other mount points.
func TestRootfsNoHostMounts(t *testing.T) {
	hostPoints := map[string]bool{}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				hostPoints[f[4]] = true
			}
		}
	}
	for _, flags := range [][]string{nil, {"--no-pivot"}} {
		t.Run(map[bool]string{false: "pivot", true: "no-pivot"}[flags != nil], func(t *testing.T) { testNoHostMounts(t, hostPoints, flags) })
	}
}

func testNoHostMounts(t *testing.T, hostPoints map[string]bool, flags []string) {
	{
		forEachUser(t, func(t *testing.T, r *rt) {
			in := r.probeInfo(r.bundle(nil), flags...)
			roots := 0
			for _, m := range in.Mounts {
				if m.Point == "/" {
					roots++
					continue
				}
				inside := false
				for _, p := range []string{"/proc", "/dev", "/sys"} {
					if m.Point == p || strings.HasPrefix(m.Point, p+"/") {
						inside = true
					}
				}
				if !inside {
					t.Errorf("%v: mount %+v is not one of the container's", flags, m)
				}
				if hostPoints[m.Point] && strings.HasPrefix(m.Point, "/sys/fs/cgroup") {
					t.Errorf("%v: host cgroup mount %s visible", flags, m.Point)
				}
			}
			if roots != 1 {
				t.Errorf("%v: %d mounts on /, want 1 (the old root must be gone)", flags, roots)
			}
			if in.Hostname != "zviz" {
				t.Errorf("%v: probe did not run in the container (hostname %q)", flags, in.Hostname)
			}
		})
	}
}

// TestRootfsReadonly: root.readonly makes "/" read-only (EROFS) while a
// tmpfs on /tmp stays writable; without it "/" is writable.
func TestRootfsReadonly(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		for _, readonly := range []bool{true, false} {
			b := r.shBundle("/probe write /zviz-probe; /probe write /tmp/zviz-probe", func(s *specs.Spec) {
				s.Root.Readonly = readonly
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}})
			})
			ops := fileOps(t, r.ok("run", "--bundle", b, "ro-"+randID()).stdout)
			want := "OK"
			if readonly {
				want = "EROFS"
			}
			if got := ops["write /zviz-probe"].Errno; got != want {
				t.Errorf("root.readonly=%v: write to /: %s, want %s", readonly, got, want)
			}
			if got := ops["write /tmp/zviz-probe"].Errno; got != "OK" {
				t.Errorf("root.readonly=%v: write to /tmp: %s, want OK", readonly, got)
			}
		}
	})
}

// TestRootfsMaskedReadonlyPaths: masked files read empty, masked
// directories are empty, read-only paths refuse writes; the image's files
// themselves are untouched.
func TestRootfsMaskedReadonlyPaths(t *testing.T) {
	// /proc/kcore is the classic example, but this kernel may not have it:
	// take the first of runc's masked /proc files that the host has.
	procFile := ""
	for _, f := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list"} {
		if _, err := os.Stat(f); err == nil {
			procFile = f
			break
		}
	}
	if procFile == "" {
		t.Fatal("none of /proc/kcore, /proc/keys, /proc/timer_list exists on the host")
	}
	script := `/probe read ` + procFile + `; /probe read /etc/token; echo "secret=$(ls -A /secret | xargs)"
/probe write /data/x; /probe write /data2/x; /probe try write-proc-sys; /probe info`
	forEachUser(t, func(t *testing.T, r *rt) {
		var rootfs string
		b := r.bundleWith(func(s *specs.Spec) {
			s.Root.Readonly = false
			s.Process.Args = []string{"sh", "-c", script}
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, procFile, "/etc/token", "/secret")
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/data")
		}, func(root string) {
			rootfs = root
			for _, d := range []string{"secret", "data", "data2"} {
				if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"etc/token", "secret/key"} {
				if err := os.WriteFile(filepath.Join(root, f), []byte("s3cret"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
		out := r.ok("run", "--bundle", b, "mask-"+randID()).stdout
		ops := fileOps(t, out)
		for _, p := range []string{procFile, "/etc/token"} {
			if op := ops["read "+p]; op.Errno != "OK" || op.Data != "" {
				t.Errorf("masked %s: %+v, want an empty read", p, op)
			}
		}
		if kv := keyValues(out); kv["secret"] != "" {
			t.Errorf("masked directory /secret lists %q, want nothing", kv["secret"])
		}
		if op := ops["write /data/x"]; op.Errno != "EROFS" {
			t.Errorf("readonly path /data: write %s, want EROFS", op.Errno)
		}
		if op := ops["write /data2/x"]; op.Errno != "OK" {
			t.Errorf("/data2 (not read-only): write %s, want OK", op.Errno)
		}
		var tries report.Tries
		var in report.Info
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, `{"results"`) {
				testutil.DecodeJSON(t, []byte(l), &tries)
			}
			if strings.HasPrefix(l, `{"uid"`) {
				testutil.DecodeJSON(t, []byte(l), &in)
			}
		}
		// Rootless, /proc/sys files belong to the unmapped host root: the
		// permission check (EACCES) comes before the mount's (EROFS).
		if e := tries.Errno("write-proc-sys"); e != "EROFS" && !(r.user != "root" && e == "EACCES") {
			t.Errorf("write /proc/sys: %q, want EROFS", e)
		}
		for _, p := range []string{"/proc/sys", "/data"} {
			if m := findMount(in.Mounts, p); m == nil || !hasOpts(m.Options, "ro") {
				t.Errorf("readonly path %s: mount %+v, want read-only", p, m)
			}
		}
		for _, f := range []string{"etc/token", "secret/key"} {
			if b, err := os.ReadFile(filepath.Join(rootfs, f)); err != nil || string(b) != "s3cret" {
				t.Errorf("image file %s changed: %q, %v", f, b, err)
			}
		}
	})
}

// TestRootfsHostname: the configured hostname is set, the host's is not
// touched.
func TestRootfsHostname(t *testing.T) {
	before, _ := os.Hostname()
	forEachUser(t, func(t *testing.T, r *rt) {
		name := "zviz-h-" + randID()
		in := r.probeInfo(r.bundle(func(s *specs.Spec) { s.Hostname = name }))
		if in.Hostname != name {
			t.Errorf("hostname %q, want %q", in.Hostname, name)
		}
	})
	if after, _ := os.Hostname(); after != before {
		t.Errorf("host's hostname changed from %q to %q", before, after)
	}
}

// TestRootfsSymlinkEscape (CVE-2021-30465 class): bind destinations under
// symlinks the image planted (evil -> /etc, up -> ../../..) land inside
// the rootfs; a destination under a symlink to a host directory the user
// owns never creates anything there.
func TestRootfsSymlinkEscape(t *testing.T) {
	forEachUser(t, func(t *testing.T, r *rt) {
		src := hostTempDir(t, r.user)
		if err := os.WriteFile(filepath.Join(src, "marker"), []byte("inside"), 0o644); err != nil {
			t.Fatal(err)
		}
		victim := hostTempDir(t, r.user)
		n1, n2 := "zviz-escape-"+randID(), "zviz-escape-"+randID()
		var rootfs string
		fill := func(root string) {
			rootfs = root
			for name, target := range map[string]string{"evil": "/etc", "up": "../../../../../../../..", "dangling": victim} {
				if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
		b := r.bundleWith(func(s *specs.Spec) {
			s.Process.Args = []string{"sh", "-c", "cat /etc/" + n1 + "/marker /etc/" + n2 + "/marker"}
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/evil/" + n1, Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
				specs.Mount{Destination: "/up/etc/" + n2, Type: "bind", Source: src, Options: []string{"rbind", "ro"}})
		}, fill)
		res := r.ok("run", "--bundle", b, "escape-"+randID())
		if res.stdout != "insideinside" {
			t.Errorf("container did not see the binds inside its /etc: %v", res)
		}
		for _, n := range []string{n1, n2} {
			if _, err := os.Lstat(filepath.Join("/etc", n)); err == nil {
				os.Remove(filepath.Join("/etc", n))
				t.Errorf("mount point /etc/%s was created on the host", n)
			}
			if _, err := os.Stat(filepath.Join(rootfs, "etc", n)); err != nil {
				t.Errorf("mount point not created inside the rootfs: %v", err)
			}
		}

		b = r.bundleWith(func(s *specs.Spec) {
			s.Process.Args = []string{"true"}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dangling/sub/dir", Type: "bind", Source: src, Options: []string{"rbind"}})
		}, fill)
		res = r.run("run", "--bundle", b, "escape-"+randID())
		if ents, _ := os.ReadDir(victim); len(ents) > 0 {
			t.Errorf("bind under a symlink to host dir %s created %v on the host (zviz: %v)", victim, ents, res)
		}
		if res.code != 0 {
			t.Logf("destination through a dangling symlink refused: %s", strings.TrimSpace(res.stderr))
		} else if _, err := os.Stat(filepath.Join(rootfs, victim, "sub", "dir")); err != nil {
			t.Errorf("destination through a dangling symlink: run succeeded but the mount point is not in the rootfs: %v", err)
		}
	})
}
