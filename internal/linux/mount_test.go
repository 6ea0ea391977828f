package linux

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountFlagsString(t *testing.T) {
	for _, tc := range []struct {
		in   uintptr
		want string
	}{
		{0, "0"},
		{unix.MS_BIND | unix.MS_REC, "MS_BIND|MS_REC"},
		{unix.MS_RDONLY | 1<<40, "MS_RDONLY|0x10000000000"},
	} {
		if got := MountFlagsString(tc.in); got != tc.want {
			t.Errorf("MountFlagsString(%#x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMountErrorKeepsErrno(t *testing.T) {
	err := error(&MountError{Source: "tmpfs", Target: "/dev", Type: "tmpfs", Flags: unix.MS_NOSUID, Data: "mode=755", Err: unix.EPERM})
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("errors.Is(%v, EPERM) = false", err)
	}
	want := `mount tmpfs to /dev (type tmpfs, flags MS_NOSUID, data "mode=755"): operation not permitted`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !strings.HasPrefix((&MountError{Target: "/", Err: unix.EINVAL}).Error(), `mount to / (type ""`) {
		t.Error("empty source/type not rendered")
	}
}
