package rootfs

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestFullUserNS(t *testing.T)      { runScenario(t, "full-userns") }
func TestFullRoot(t *testing.T)        { runScenario(t, "full-root") }
func TestSysfsFallback(t *testing.T)   { runScenario(t, "fallback-userns") }
func TestDefaultDev(t *testing.T)      { runScenario(t, "default-dev") }
func TestPropShared(t *testing.T)      { runScenario(t, "rshared") }
func TestPropPrivate(t *testing.T)     { runScenario(t, "private") }
func TestNoPivot(t *testing.T)         { runScenario(t, "nopivot") }
func TestProcElsewhere(t *testing.T)   { runScenario(t, "proc-elsewhere") }
func TestProcfsEscape(t *testing.T)    { runScenario(t, "procfs-escape") }
func TestMissingSource(t *testing.T)   { runScenario(t, "missing-source") }
func TestDanglingSymlink(t *testing.T) { runScenario(t, "dangling") }

var scenarios = map[string]*scenario{
	"full-userns": {userns: true, clone: otherNS, config: fullConfig(true), check: checkFull, hostCheck: hostCheckFull},
	"full-root":   {clone: otherNS, config: fullConfig(false), check: checkFull, hostCheck: hostCheckFull},
	"fallback-userns": {userns: true, clone: unix.CLONE_NEWIPC, config: func(dir string) *Config {
		return &Config{Rootfs: rootfsOf(dir), UserNS: true, Spec: &specs.Spec{Mounts: []specs.Mount{
			procMount,
			// No "ro": the fallback binds the host's copy read-only regardless.
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev"}},
		}}}
	}, check: checkFallback},
	"default-dev": {userns: true, clone: otherNS, config: minimal(""), check: checkDefaultDev},
	"rshared":     {userns: true, clone: otherNS, config: minimal("rshared"), check: checkRootProp("shared:")},
	"private":     {userns: true, clone: otherNS, config: minimal("private"), check: checkRootProp("")},
	"nopivot": {userns: true, clone: otherNS, config: func(dir string) *Config {
		c := minimal("")(dir)
		c.NoPivot = true
		return c
	}, check: checkNoPivot},
	"proc-elsewhere": {userns: true, clone: otherNS, config: withMounts(specs.Mount{Destination: "/notproc", Type: "proc", Source: "proc"}),
		wantErr: []string{`mounts[0].destination "/notproc": proc may only be mounted on /proc`}},
	"procfs-escape": {userns: true, clone: otherNS, config: func(dir string) *Config {
		// A symlink in the image into procfs (CVE-2019-16884's shape).
		_ = os.Symlink("/proc/self", filepath.Join(rootfsOf(dir), "pself"))
		return withMounts(procMount, specs.Mount{Destination: "/pself/attr/current", Type: "bind", Source: "/dev/null", Options: []string{"bind"}})(dir)
	}, wantErr: []string{`mounts[1].destination "/pself/attr/current": resolves to`, "inside procfs"}},
	"missing-source": {userns: true, clone: otherNS, config: func(dir string) *Config {
		return withMounts(procMount, specs.Mount{Destination: "/x", Source: dir + "/nope", Options: []string{"rbind", "ro"}})(dir)
	}, wantErr: []string{"mounts[1]: mount ", "/nope to /x (type \"\", flags MS_BIND|MS_REC): no such file or directory"}, wantErrno: unix.ENOENT},
	"dangling": {userns: true, clone: otherNS, config: func(dir string) *Config {
		_ = os.Symlink("/nonexistent/target", filepath.Join(rootfsOf(dir), "dangle"))
		return withMounts(specs.Mount{Destination: "/dangle/sub", Type: "tmpfs", Source: "tmpfs"})(dir)
	}, wantErr: []string{`mounts[0].destination "/dangle/sub"`}},
}

var procMount = specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}

func withMounts(ms ...specs.Mount) func(string) *Config {
	return func(dir string) *Config {
		return &Config{Rootfs: rootfsOf(dir), UserNS: true, Spec: &specs.Spec{Mounts: ms}}
	}
}

func minimal(prop string) func(string) *Config {
	return func(dir string) *Config {
		c := withMounts(procMount)(dir)
		c.Spec.Linux = &specs.Linux{RootfsPropagation: prop}
		return c
	}
}

func fullConfig(userns bool) func(string) *Config {
	return func(dir string) *Config {
		mode := os.FileMode(0o666)
		return &Config{Rootfs: rootfsOf(dir), UserNS: userns, Spec: &specs.Spec{
			Root: &specs.Root{Path: rootfsOf(dir), Readonly: true},
			Mounts: []specs.Mount{
				procMount,
				{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
				{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
				{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
				{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
				{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
				{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
				{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=1777", "size=1m"}},
				{Destination: "/ro", Type: "bind", Source: dir + "/src-ro", Options: []string{"rbind", "ro", "nosuid", "nodev"}},
				{Destination: "/rw", Source: dir + "/src-rw", Options: []string{"bind", "rprivate"}},
				{Destination: "/evil", Type: "tmpfs", Source: "evil", Options: []string{"size=1m"}},
				{Destination: "/etc/hostfile", Type: "bind", Source: dir + "/hostfile", Options: []string{"bind", "ro"}},
				{Destination: "/up/etc/deeper", Type: "tmpfs", Source: "up"},
				{Destination: "/away/probe", Type: "tmpfs", Source: "away"},
				{Destination: "/proc/meminfo", Type: "bind", Source: dir + "/hostfile", Options: []string{"bind"}},
			},
			Linux: &specs.Linux{
				MaskedPaths:   []string{"/proc/kcore", "/proc/timer_list", "/proc/acpi", "/sys/firmware", "/secret.txt", "/secretdir", "/does/not/exist"},
				ReadonlyPaths: []string{"/proc/sys", "/rodir", "/missing"},
				Devices: []specs.LinuxDevice{
					{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: &mode},
					{Path: "/dev/myfifo", Type: "p", FileMode: &mode},
				},
			},
		}}
	}
}

type mountEntry struct{ root, point, optional, opts, fstype string }

func mountinfo(t *testing.T) []mountEntry {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	must(t, err)
	defer f.Close()
	var ms []mountEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, _ := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		ms = append(ms, mountEntry{root: a[3], point: a[4], opts: a[5], optional: strings.Join(a[6:], " "), fstype: b[0]})
	}
	return ms
}

func isMountPoint(ms []mountEntry, p string) bool {
	for _, m := range ms {
		if m.point == p {
			return true
		}
	}
	return false
}

// checkPivoted asserts the process sees the rootfs as "/" and no mount of
// the host: one "/" entry, rooted at the rootfs, nothing outside allowed.
func checkPivoted(t *testing.T, allowed ...string) {
	t.Helper()
	roots := 0
	for _, m := range mountinfo(t) {
		if m.point == "/" {
			roots++
			if !strings.HasSuffix(m.root, "/a/b/rootfs") {
				t.Errorf("/ is %s %s, not the rootfs", m.fstype, m.root)
			}
			continue
		}
		ok := false
		for _, a := range append(allowed, "/proc", "/dev") {
			ok = ok || m.point == a || strings.HasPrefix(m.point, a+"/")
		}
		if !ok {
			t.Errorf("host mount visible after pivot: %+v", m)
		}
	}
	if roots != 1 {
		t.Errorf("%d mounts on /, want 1 (old root not detached?)", roots)
	}
	if b, err := os.ReadFile("/marker"); err != nil || string(b) != "rootfs" {
		t.Errorf("/marker = %q, %v", b, err)
	}
}

func wantFS(t *testing.T, p string, magic int64, ro bool) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		t.Errorf("statfs %s: %v", p, err)
		return
	}
	if st.Type != magic {
		t.Errorf("%s: fs type %#x, want %#x", p, st.Type, magic)
	}
	if got := st.Flags&unix.ST_RDONLY != 0; got != ro {
		t.Errorf("%s: read-only = %v, want %v", p, got, ro)
	}
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func writeFile(p string) error { return os.WriteFile(p, []byte("x"), 0o644) }

func checkFull(t *testing.T, c *Config) {
	if os.Getpid() != 1 {
		t.Errorf("pid %d, want 1 (new pid namespace)", os.Getpid())
	}
	checkPivoted(t, "/sys", "/scratch", "/ro", "/rw", "/etc", rootfsOf(os.Getenv(envDir))+"/../../../outside/probe",
		filepath.Join(os.Getenv(envDir), "outside", "probe"), "/rodir", "/secretdir", "/secret.txt")
	checkDev(t, c.UserNS)
	// Binds.
	if b, err := os.ReadFile("/ro/data"); err != nil || string(b) != "ro" {
		t.Errorf("/ro/data = %q, %v", b, err)
	}
	wantErrno(t, "write into ro bind", writeFile("/ro/new"), unix.EROFS)
	var st unix.Statfs_t
	must(t, unix.Statfs("/ro", &st))
	if st.Flags&(unix.ST_NOSUID|unix.ST_NODEV) != unix.ST_NOSUID|unix.ST_NODEV {
		t.Errorf("/ro flags %#x lack nosuid,nodev", st.Flags)
	}
	must(t, os.WriteFile("/rw/created", []byte("from container"), 0o644))
	// Symlinked destinations stayed inside the rootfs.
	wantFS(t, "/etc", unix.TMPFS_MAGIC, false)
	if _, err := os.Stat("/etc/image-etc"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/etc/image-etc visible (%v): tmpfs for /evil not on the image's /etc", err)
	}
	if b, err := os.ReadFile("/etc/hostfile"); err != nil || string(b) != "hostfile" {
		t.Errorf("/etc/hostfile = %q, %v", b, err)
	}
	wantErrno(t, "write ro file bind", writeFile("/etc/hostfile"), unix.EROFS)
	wantFS(t, "/etc/deeper", unix.TMPFS_MAGIC, false)
	wantFS(t, filepath.Join(os.Getenv(envDir), "outside", "probe"), unix.TMPFS_MAGIC, false)
	// Other file systems.
	wantFS(t, "/scratch", unix.TMPFS_MAGIC, false)
	if fi, err := os.Stat("/scratch"); err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSticky) != 0o777|fs.ModeSticky {
		t.Errorf("/scratch mode %v, %v", fi.Mode(), err)
	}
	must(t, writeFile("/scratch/ok"))
	wantFS(t, "/proc", unix.PROC_SUPER_MAGIC, false)
	wantFS(t, "/sys", unix.SYSFS_MAGIC, true)
	wantFS(t, "/sys/fs/cgroup", unix.CGROUP2_SUPER_MAGIC, true)
	wantFS(t, "/dev/mqueue", mqueueMagic, false)
	if b, err := os.ReadFile("/proc/meminfo"); err != nil || string(b) != "hostfile" {
		t.Errorf("/proc/meminfo (lxcfs-style bind) = %q, %v", b, err)
	}
	checkMaskedReadonly(t)
	// Root read-only.
	wantErrno(t, "write into read-only root", writeFile("/newfile"), unix.EROFS)
	// Console is the pty slave.
	var con, pts unix.Stat_t
	must(t, unix.Stat("/dev/console", &con))
	must(t, unix.Stat(c.Console, &pts))
	if con.Rdev != pts.Rdev || con.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("/dev/console rdev %#x mode %o, want the pty %s (%#x)", con.Rdev, con.Mode, c.Console, pts.Rdev)
	}
	// The rootfs works: busybox runs from it.
	out, err := exec.Command("/bin/busybox", "sh", "-c", "cat /marker; echo x >/dev/null && ls /dev").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rootfs") || !strings.Contains(string(out), "urandom") {
		t.Errorf("busybox in container: %v\n%s", err, out)
	}
}

func checkMaskedReadonly(t *testing.T) {
	for _, p := range []string{"/proc/timer_list", "/secret.txt"} {
		if b, err := os.ReadFile(p); err != nil || len(b) != 0 {
			t.Errorf("masked %s: read %d bytes, %v; want 0", p, len(b), err)
		}
	}
	for _, p := range []string{"/secretdir", "/proc/acpi", "/sys/firmware"} {
		ents, err := os.ReadDir(p)
		if p == "/proc/acpi" && errors.Is(err, fs.ErrNotExist) {
			continue // no ACPI on this machine: nothing to mask
		}
		if err != nil || len(ents) != 0 {
			t.Errorf("masked dir %s: %d entries, %v; want 0", p, len(ents), err)
		}
		wantFS(t, p, unix.TMPFS_MAGIC, true)
	}
	wantErrno(t, "write into readonly path", writeFile("/rodir/x"), unix.EROFS)
	// Writing /proc/sys itself would fail with EACCES first when the test
	// runs unprivileged (its files belong to the unmapped host root), so
	// the mount flag is checked instead.
	wantFS(t, "/proc/sys", unix.PROC_SUPER_MAGIC, true)
}

func checkDev(t *testing.T, userns bool) {
	ms := mountinfo(t)
	wantFS(t, "/dev", unix.TMPFS_MAGIC, false)
	for _, d := range append(defaultDevices, device{path: "/dev/net/tun", typ: unix.S_IFCHR, major: 10, minor: 200}) {
		var st unix.Stat_t
		if err := unix.Stat(d.path, &st); err != nil {
			t.Errorf("%s: %v", d.path, err)
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != uint32(d.major) || unix.Minor(st.Rdev) != uint32(d.minor) {
			t.Errorf("%s: mode %o rdev %d:%d, want char %d:%d", d.path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), d.major, d.minor)
		}
		// Outside a user namespace the node is mknod'ed, inside it is a bind.
		if isMountPoint(ms, d.path) != userns {
			t.Errorf("%s: mount point = %v, want %v", d.path, !userns, userns)
		}
	}
	if fi, err := os.Lstat("/dev/myfifo"); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("/dev/myfifo: %v, %v", fi, err)
	}
	must(t, os.WriteFile("/dev/null", []byte("discarded"), 0))
	buf := make([]byte, 8)
	f, err := os.Open("/dev/zero")
	must(t, err)
	defer f.Close()
	buf[0] = 1
	if _, err := f.Read(buf); err != nil || buf[0] != 0 {
		t.Errorf("/dev/zero read %v, %v", buf, err)
	}
	wantErrno(t, "write /dev/full", os.WriteFile("/dev/full", []byte("x"), 0), unix.ENOSPC)
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"} {
		if got, err := os.Readlink("/dev/" + name); err != nil || got != target {
			t.Errorf("/dev/%s -> %q, %v; want %q", name, got, err, target)
		}
	}
	wantFS(t, "/dev/pts", unix.DEVPTS_SUPER_MAGIC, false)
	wantFS(t, "/dev/shm", unix.TMPFS_MAGIC, false)
	if fi, err := os.Stat("/dev/shm"); err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSticky) != 0o777|fs.ModeSticky {
		t.Errorf("/dev/shm mode %v, %v", fi.Mode(), err)
	}
	if _, err := os.Stat("/dev/sda"); err == nil {
		t.Error("/dev/sda exists: host /dev leaked in")
	}
}

func hostCheckFull(t *testing.T, dir string) {
	if b, err := os.ReadFile(filepath.Join(dir, "src-rw", "created")); err != nil || string(b) != "from container" {
		t.Errorf("rw bind: host sees %q, %v", b, err)
	}
	for _, p := range []string{filepath.Join(dir, "a", "etc"), filepath.Join(dir, "outside", "probe")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists on the host (%v): a mount destination escaped the rootfs", p, err)
		}
	}
}

func checkFallback(t *testing.T, c *Config) {
	checkPivoted(t, "/sys")
	wantFS(t, "/sys", unix.SYSFS_MAGIC, true)
	wantFS(t, "/sys/fs/cgroup", unix.CGROUP2_SUPER_MAGIC, true)
	for _, m := range mountinfo(t) {
		if strings.HasPrefix(m.point, "/sys") && !strings.HasPrefix(m.opts, "ro") {
			t.Errorf("%s is not read-only (%s): host sysfs/cgroup bound writable", m.point, m.opts)
		}
	}
	wantErrno(t, "write /sys", writeFile("/sys/fs/cgroup/cgroup.procs"), unix.EROFS)
}

func checkDefaultDev(t *testing.T, c *Config) {
	checkPivoted(t)
	checkDevDefaults(t)
}

func checkDevDefaults(t *testing.T) {
	wantFS(t, "/dev", unix.TMPFS_MAGIC, false)
	wantFS(t, "/dev/pts", unix.DEVPTS_SUPER_MAGIC, false)
	wantFS(t, "/dev/shm", unix.TMPFS_MAGIC, false)
	ents, err := os.ReadDir("/dev")
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("/dev = %q, want %q", got, want)
	}
	must(t, os.WriteFile("/dev/null", []byte("x"), 0))
}

func checkRootProp(want string) func(*testing.T, *Config) {
	return func(t *testing.T, c *Config) {
		checkPivoted(t)
		for _, m := range mountinfo(t) {
			if m.point != "/" {
				continue
			}
			if want == "" && m.optional != "" || want != "" && !strings.Contains(m.optional, want) {
				t.Errorf("/ propagation %q, want %q", m.optional, want)
			}
		}
	}
}

func checkNoPivot(t *testing.T, c *Config) {
	if b, err := os.ReadFile("/marker"); err != nil || string(b) != "rootfs" {
		t.Errorf("/marker = %q, %v", b, err)
	}
	if wd, err := os.Getwd(); err != nil || wd != "/" {
		t.Errorf("cwd %q, %v", wd, err)
	}
	checkDevDefaults(t)
	if _, err := os.Stat("/usr/bin/busybox"); err == nil {
		t.Error("host /usr visible after MS_MOVE+chroot")
	}
}

// mqueueMagic is MQUEUE_MAGIC from linux/magic.h (not in x/sys/unix).
const mqueueMagic = 0x19800202
