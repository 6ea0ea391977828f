package userns

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeHelper writes a shell script standing in for newuidmap/newgidmap.
func fakeHelper(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyHelpers(t *testing.T) {
	ranges := []IDMap{{0, 1001, 1}, {1, 100000, 65536}}
	tests := []struct {
		name       string
		uidBody    string // "" = helper path does not exist
		gidBody    string
		uids, gids []IDMap
		wantArgs   map[string]string // helper name -> recorded args
		wantErr    []string
	}{
		{
			name:    "both helpers run with the triples",
			uidBody: `echo "$@" > "$0.args"`, gidBody: `echo "$@" > "$0.args"`,
			uids: ranges, gids: []IDMap{{0, 1001, 1}, {1, 200000, 10}},
			wantArgs: map[string]string{
				"newuidmap": "PID 0 1001 1 1 100000 65536",
				"newgidmap": "PID 0 1001 1 1 200000 10",
			},
		},
		{
			name:    "helper stderr is in the error",
			uidBody: `echo "newuidmap: uid range [1-65537) -> [100000-165536) not allowed" >&2; exit 1`,
			gidBody: `exit 0`, uids: ranges, gids: ranges,
			wantErr: []string{"apply uid map of pid PID: run ", "newuidmap PID 0 1001 1 1 100000 65536: exit status 1: newuidmap: uid range [1-65537) -> [100000-165536) not allowed"},
		},
		{
			name:    "silent helper failure",
			uidBody: `exit 0`, gidBody: `exit 3`, uids: ranges, gids: ranges,
			wantErr: []string{"apply gid map of pid PID:", "exit status 3: no message on stderr"},
		},
		{
			name:    "missing helper",
			gidBody: `exit 0`, uids: ranges, gids: ranges,
			wantErr: []string{"apply uid map of pid PID: run ", "no such file or directory"},
		},
		{
			name: "invalid maps are refused before anything runs",
			uids: []IDMap{{0, 1001, 1}, {0, 100000, 5}}, gids: nil,
			wantErr: []string{"apply id maps of pid PID: uidMappings[1]: overlaps uidMappings[0] (container ids)", "gidMappings: must not be empty"},
		},
	}
	pid := os.Getpid() // never written to: no map here is the caller's own
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := &Writer{OwnUID: 4242, OwnGID: 4242,
				NewUIDMap: filepath.Join(dir, "newuidmap"), NewGIDMap: filepath.Join(dir, "newgidmap")}
			if tt.uidBody != "" {
				fakeHelper(t, dir, "newuidmap", tt.uidBody)
			}
			if tt.gidBody != "" {
				fakeHelper(t, dir, "newgidmap", tt.gidBody)
			}
			denied, err := w.Apply(pid, tt.uids, tt.gids)
			if denied {
				t.Errorf("Apply() setgroupsDenied = true for helper-only maps")
			}
			pidStr := strings.NewReplacer("PID", strconv.Itoa(pid))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Apply() error = nil, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if w = pidStr.Replace(w); !strings.Contains(err.Error(), w) {
						t.Errorf("Apply() error = %q, want containing %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply() error = %v", err)
			}
			for name, want := range tt.wantArgs {
				b, err := os.ReadFile(filepath.Join(dir, name+".args"))
				if err != nil {
					t.Fatalf("%s was not run: %v", name, err)
				}
				if got := strings.TrimSpace(string(b)); got != pidStr.Replace(want) {
					t.Errorf("%s args = %q, want %q", name, got, pidStr.Replace(want))
				}
			}
		})
	}
}

func TestApplyMissingHelperErrno(t *testing.T) {
	w := &Writer{OwnUID: 4242, OwnGID: 4242, NewUIDMap: "/nonexistent/newuidmap", NewGIDMap: "/nonexistent/newgidmap"}
	_, err := w.Apply(os.Getpid(), []IDMap{{0, 1, 2}}, []IDMap{{0, 1, 2}})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Apply() error = %v, want errors.Is(fs.ErrNotExist)", err)
	}
}

func TestLookHelper(t *testing.T) {
	dir := t.TempDir()
	want := fakeHelper(t, dir, "newuidmap", "exit 0")
	t.Setenv("PATH", dir)
	if got, err := lookHelper("", "newuidmap"); err != nil || got != want {
		t.Errorf("lookHelper(PATH) = %q, %v, want %q", got, err, want)
	}
	if got, _ := lookHelper("/x/y", "newuidmap"); got != "/x/y" {
		t.Errorf("lookHelper(configured) = %q, want /x/y", got)
	}
	t.Setenv("PATH", t.TempDir())
	got, err := lookHelper("", "newgidmap")
	if _, serr := os.Stat("/usr/bin/newgidmap"); serr == nil {
		if err != nil || got != "/usr/bin/newgidmap" {
			t.Errorf("lookHelper(fallback) = %q, %v, want /usr/bin/newgidmap", got, err)
		}
	} else if err == nil || !strings.Contains(err.Error(), "find newgidmap in $PATH or /usr/bin") {
		t.Errorf("lookHelper(nowhere) = %q, %v, want a not-found error", got, err)
	}
}
