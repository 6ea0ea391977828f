package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExecProcessSpec(t *testing.T) {
	umask := uint32(0o027)
	base := &specs.Spec{Process: &specs.Process{
		Args: []string{"init"}, Cwd: "/", Env: []string{"PATH=/bin", "A=0"},
		User: specs.User{UID: 5, GID: 6, Umask: &umask},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"},
			Permitted: []string{"CAP_KILL"}},
	}}
	dir := t.TempDir()
	file := filepath.Join(dir, "process.json")
	os.WriteFile(file, []byte(`{"args":["ps"],"cwd":"/tmp","capabilities":{"bounding":["CAP_KILL","CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"]}}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"args":["ps"],"cwd":"tmp"}`), 0o644)
	tests := []struct {
		name    string
		e       ExecOptions
		check   func(t *testing.T, p *specs.Process)
		wantErr string
	}{
		{name: "inline keeps the container's process", e: ExecOptions{Args: []string{"sh"}, Env: []string{"A=1"}},
			check: func(t *testing.T, p *specs.Process) {
				if !slices.Equal(p.Args, []string{"sh"}) || p.Env[len(p.Env)-1] != "A=1" || p.User.UID != 5 || p.Cwd != "/" {
					t.Errorf("got %+v", p)
				}
				if !slices.Equal(p.Capabilities.Effective, []string{"CAP_KILL"}) || !p.NoNewPrivileges {
					t.Errorf("caps %+v nnp %v", p.Capabilities, p.NoNewPrivileges)
				}
			}},
		{name: "inline user and cwd", e: ExecOptions{Args: []string{"sh"}, User: "7:8", Cwd: "/w", Tty: true},
			check: func(t *testing.T, p *specs.Process) {
				if p.User.UID != 7 || p.User.GID != 8 || p.User.Umask == nil || p.Cwd != "/w" || !p.Terminal {
					t.Errorf("got %+v", p)
				}
			}},
		{name: "inline user without gid keeps the gid", e: ExecOptions{Args: []string{"sh"}, User: "7"},
			check: func(t *testing.T, p *specs.Process) {
				if p.User.UID != 7 || p.User.GID != 6 {
					t.Errorf("got %+v", p.User)
				}
			}},
		{name: "process.json capabilities never exceed the init's", e: ExecOptions{ProcessFile: file},
			check: func(t *testing.T, p *specs.Process) {
				if !slices.Equal(p.Capabilities.Bounding, []string{"CAP_KILL"}) || len(p.Capabilities.Effective) != 0 {
					t.Errorf("caps %+v", p.Capabilities)
				}
			}},
		{name: "no command", e: ExecOptions{}, wantErr: "a command is required"},
		{name: "bad user", e: ExecOptions{Args: []string{"sh"}, User: "root"}, wantErr: `--user "root"`},
		{name: "relative cwd", e: ExecOptions{ProcessFile: bad}, wantErr: `process.cwd "tmp": must be an absolute path`},
		{name: "missing file", e: ExecOptions{ProcessFile: filepath.Join(dir, "none")}, wantErr: "no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := execProcessSpec(base, &tc.e)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
	if len(base.Process.Env) != 2 {
		t.Errorf("the container's env was modified: %v", base.Process.Env)
	}
}
