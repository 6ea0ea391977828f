package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zviz/zviz/internal/linux"
)

func TestUnescape(t *testing.T) {
	tests := map[string]string{
		`/plain`:          "/plain",
		`/a\040b`:         "/a b",
		`/tab\011x\134y`:  "/tab\tx\\y",
		`/trailing\04`:    `/trailing\04`,
		`/not\999octal`:   `/not\999octal`,
		`\040`:            " ",
		`/end\`:           `/end\`,
		`/two\040\040sp`:  "/two  sp",
		`/nl\012newline`:  "/nl\nnewline",
		`/deleted\040(x)`: "/deleted (x)",
	}
	for in, want := range tests {
		if got := linux.UnescapeMountinfo(in); got != want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mountinfo")
	content := "22 1 0:21 / / ro,relatime shared:1 - ext4 /dev/vda rw,discard\n" +
		"23 22 0:5 / /proc rw,nosuid,nodev,noexec - proc proc rw\n" +
		"24 22 0:6 / /my\\040dir rw master:2 shared:3 - tmpfs tmp\\040fs rw,size=4k\n" +
		"garbage line\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := mounts(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/ ext4 /dev/vda ro,relatime rw,discard",
		"/proc proc proc rw,nosuid,nodev,noexec rw",
		"/my dir tmpfs tmp fs rw rw,size=4k",
	}
	if len(got) != len(want) {
		t.Fatalf("mounts = %+v, want %d entries", got, len(want))
	}
	for i, m := range got {
		if s := fmt.Sprintf("%s %s %s %s %s", m.Point, m.FSType, m.Source, m.Options, m.Super); s != want[i] {
			t.Errorf("mount %d = %q, want %q", i, s, want[i])
		}
	}
}

func TestParseSignal(t *testing.T) {
	tests := map[string]unix.Signal{
		"TERM": unix.SIGTERM, "SIGTERM": unix.SIGTERM, "sigusr1": unix.SIGUSR1,
		"9": unix.SIGKILL, "hup": unix.SIGHUP, "64": unix.Signal(64),
	}
	for in, want := range tests {
		if got := parseSignal(in); got != want {
			t.Errorf("parseSignal(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestErrnoName(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, "OK"},
		{unix.EPERM, "EPERM"},
		{unix.EROFS, "EROFS"},
		{fmt.Errorf("open /x: %w", unix.ENOSYS), "ENOSYS"},
		{&os.PathError{Op: "fork/exec", Path: "/p", Err: unix.EINVAL}, "EINVAL"},
		{fmt.Errorf("plain"), "ERROR: plain"},
	}
	for _, tt := range tests {
		if got := errnoName(tt.err); got != tt.want {
			t.Errorf("errnoName(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestFileOps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if r := writeFile(path); r.Errno != "OK" || r.Op != "write" {
		t.Fatalf("writeFile = %+v", r)
	}
	if r := readFile(path); r.Errno != "OK" || r.Data != "zviz probe\n" {
		t.Errorf("readFile = %+v", r)
	}
	if r := readFile(filepath.Join(dir, "missing")); r.Errno != "ENOENT" {
		t.Errorf("readFile(missing) = %+v, want ENOENT", r)
	}
	if r := writeFile(filepath.Join(dir, "missing", "f")); r.Errno != "ENOENT" {
		t.Errorf("writeFile(missing dir) = %+v, want ENOENT", r)
	}
}

func TestRunTriesUnknown(t *testing.T) {
	got := runTries([]string{"no-such-try"})
	if len(got.Results) != 1 || got.Errno("no-such-try") != "ERROR: unknown try" {
		t.Errorf("runTries = %+v", got)
	}
	if got.Errno("absent") != "" {
		t.Error(`Errno("absent") not empty`)
	}
}

func TestOpenFDs(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fds, err := openFDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if fd.FD == int(f.Fd()) {
			if fd.Target != os.DevNull {
				t.Errorf("fd %d -> %s, want %s", fd.FD, fd.Target, os.DevNull)
			}
			return
		}
	}
	t.Errorf("openFDs = %+v, lacks fd %d", fds, f.Fd())
}
