package userns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSubIDs(t *testing.T) {
	const file = `# comment line
alice:100000:65536

  # indented comment
1001:200000:1000
bob:300000:65536
alice:400000:10
bob:broken
`
	tests := []struct {
		name    string
		content string // "" with noFile means the file does not exist
		noFile  bool
		user    string
		id      uint32
		want    []Range
		wantErr string
	}{
		{name: "by name, two ranges in file order", content: file, user: "alice", id: 1000,
			want: []Range{{100000, 65536}, {400000, 10}}},
		{name: "by numeric id", content: file, user: "carol", id: 1001,
			want: []Range{{200000, 1000}}},
		{name: "name and numeric id both match", content: file, user: "alice", id: 1001,
			want: []Range{{100000, 65536}, {200000, 1000}, {400000, 10}}},
		{name: "id only with empty user", content: file, user: "", id: 1001,
			want: []Range{{200000, 1000}}},
		{name: "no entry", content: file, user: "dave", id: 1234, want: nil},
		{name: "missing file", noFile: true, user: "alice", id: 1000, want: nil},
		{name: "malformed line of the user", content: file, user: "bob", id: 1002,
			wantErr: `:8: line "bob:broken": want owner:start:count`},
		{name: "malformed line of another user ignored", content: "x:y\nalice:1:2\n", user: "alice",
			want: []Range{{1, 2}}},
		{name: "bad start", content: "alice:1x:10\n", user: "alice",
			wantErr: `:1: line "alice:1x:10": start "1x": invalid syntax`},
		{name: "count out of range", content: "alice:1:4294967296\n", user: "alice",
			wantErr: `count "4294967296": value out of range`},
		{name: "zero count", content: "alice:1:0\n", user: "alice", wantErr: "count must not be zero"},
		{name: "range overflows", content: "alice:4294967295:1\n", user: "alice",
			wantErr: "range 4294967295+1 overflows 32-bit ids"},
		{name: "too many fields", content: "alice:1:2:3\n", user: "alice", wantErr: "want owner:start:count"},
		{name: "no trailing newline, CRLF-free spaces", content: "  alice:5:6  ", user: "alice",
			want: []Range{{5, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "subuid")
			if !tt.noFile {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := SubIDs(path, tt.user, tt.id)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SubIDs() error = %v, want containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), path+":") {
					t.Errorf("error %q does not name %s:LINE", err, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("SubIDs() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SubIDs() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSubIDsUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory is not a readable file
	if _, err := SubIDs(dir, "alice", 1000); err == nil {
		t.Fatal("SubIDs(directory) succeeded, want an error")
	}
}
