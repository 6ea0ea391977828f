package rootfs

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    mountOpts
		wantErr string
	}{
		{name: "empty"},
		{name: "runc proc", in: []string{"nosuid", "noexec", "nodev"},
			want: mountOpts{flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV}},
		{name: "tmpfs data", in: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			want: mountOpts{flags: unix.MS_NOSUID | unix.MS_STRICTATIME, data: []string{"mode=755", "size=65536k"}}},
		{name: "rbind ro", in: []string{"rbind", "ro"},
			want: mountOpts{flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY}},
		{name: "later rw wins", in: []string{"ro", "rw"},
			want: mountOpts{clear: unix.MS_RDONLY}},
		{name: "later ro wins", in: []string{"rw", "ro"},
			want: mountOpts{flags: unix.MS_RDONLY}},
		{name: "suid clears nosuid", in: []string{"nosuid", "suid", "dev", "exec"},
			want: mountOpts{clear: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}},
		{name: "atime", in: []string{"noatime", "norelatime", "relatime"},
			want: mountOpts{flags: unix.MS_NOATIME | unix.MS_RELATIME}},
		{name: "propagation in order", in: []string{"bind", "rprivate", "shared", "runbindable"},
			want: mountOpts{flags: unix.MS_BIND, prop: []uintptr{
				unix.MS_PRIVATE | unix.MS_REC, unix.MS_SHARED, unix.MS_UNBINDABLE | unix.MS_REC}}},
		{name: "slaves", in: []string{"slave", "rslave"},
			want: mountOpts{prop: []uintptr{unix.MS_SLAVE, unix.MS_SLAVE | unix.MS_REC}}},
		{name: "recursive attrs", in: []string{"rbind", "rro", "rnosuid", "rnoatime"},
			want: mountOpts{flags: unix.MS_BIND | unix.MS_REC,
				recSet:  unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOATIME,
				recAtim: true}},
		{name: "rrw clears", in: []string{"rro", "rrw", "rexec"},
			want: mountOpts{recClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOEXEC}},
		{name: "ratime replaces", in: []string{"rnoatime", "rstrictatime"},
			want: mountOpts{recSet: unix.MOUNT_ATTR_STRICTATIME, recAtim: true}},
		{name: "devpts data", in: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			want: mountOpts{data: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
		{name: "tmpcopyup ignored", in: []string{"tmpcopyup", "defaults", ""}},
		{name: "idmap refused", in: []string{"bind", "idmap"}, wantErr: `option "idmap": idmapped mounts are not supported`},
		{name: "ridmap= refused", in: []string{"ridmap=0:1000:1"}, wantErr: "idmapped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOptions(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseOptions(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseOptions(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseOptions(%q) =\n  %+v\nwant\n  %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestAttr(t *testing.T) {
	o, _ := parseOptions([]string{"rro", "rnoatime", "rexec"})
	got := o.attr()
	want := unix.MountAttr{
		Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME,
		Attr_clr: unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR__ATIME,
	}
	if *got != want {
		t.Errorf("attr() = %+v, want %+v", *got, want)
	}
	if o, _ := parseOptions([]string{"ro"}); o.hasRec() {
		t.Error(`"ro" must not be recursive`)
	}
}

func TestPropagation(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uintptr
		wantErr bool
	}{
		{"", unix.MS_SLAVE | unix.MS_REC, false},
		{"rslave", unix.MS_SLAVE | unix.MS_REC, false},
		{"private", unix.MS_PRIVATE, false},
		{"rshared", unix.MS_SHARED | unix.MS_REC, false},
		{"runbindable", unix.MS_UNBINDABLE | unix.MS_REC, false},
		{"bogus", 0, true},
	} {
		got, err := propagation(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("propagation(%q) = %#x, %v; want %#x, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := propagation("bogus"); err == nil || !strings.Contains(err.Error(), "linux.rootfsPropagation") {
		t.Errorf("error %v does not name the field", err)
	}
}

func TestLockedFlags(t *testing.T) {
	const all = unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_NOATIME
	for _, tc := range []struct {
		name         string
		st           int64
		flags, clear uintptr
		want         uintptr
	}{
		{"none", 0, 0, 0, 0},
		{"all kept", all, 0, 0, unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME},
		{"explicit clear wins", all, 0, unix.MS_RDONLY | unix.MS_NOEXEC, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME},
		{"config atime wins", unix.ST_NOATIME | unix.ST_NOSUID, unix.MS_STRICTATIME, 0, unix.MS_NOSUID},
		{"relatime kept", unix.ST_RELATIME, 0, 0, unix.MS_RELATIME},
	} {
		if got := lockedFlags(tc.st, tc.flags, tc.clear); got != tc.want {
			t.Errorf("%s: lockedFlags = %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestRel(t *testing.T) {
	for in, want := range map[string]string{
		"/": ".", "": ".", "/dev/pts": "dev/pts", "dev": "dev",
		"/../../etc": "etc", "/a/../../b/": "b", "/a//b/./c": "a/b/c",
	} {
		if got := rel(in); got != want {
			t.Errorf("rel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMountOptionsListed(t *testing.T) {
	opts := MountOptions()
	for _, o := range []string{"ro", "rbind", "rslave", "rro", "nosymfollow", "rnoatime"} {
		if !slices.Contains(opts, o) {
			t.Errorf("MountOptions() lacks %q", o)
		}
	}
	if !slices.IsSorted(opts) {
		t.Error("MountOptions() not sorted")
	}
	for _, o := range opts {
		if p, err := parseOptions([]string{o}); err != nil || len(p.data) != 0 {
			t.Errorf("listed option %q is not understood: %+v, %v", o, p, err)
		}
	}
}

func TestConfigDevice(t *testing.T) {
	if _, err := devices(specWithDevice("/etc/shadow", "c")); err == nil ||
		!strings.Contains(err.Error(), `linux.devices[0]: path "/etc/shadow": must be under /dev`) {
		t.Errorf("device outside /dev: err = %v", err)
	}
	if _, err := devices(specWithDevice("/dev/x", "q")); err == nil || !strings.Contains(err.Error(), `type "q"`) {
		t.Errorf("bad type: err = %v", err)
	}
	devs, err := devices(specWithDevice("/dev/null", "c"))
	if err != nil || len(devs) != len(defaultDevices) {
		t.Errorf("override of /dev/null: %d devices, %v; want %d", len(devs), err, len(defaultDevices))
	}
}
