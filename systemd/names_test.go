package systemd

import (
	"strings"
	"testing"
)

func TestParseCgroupsPath(t *testing.T) {
	long := strings.Repeat("a", 250)
	tests := []struct {
		in                  string
		slice, prefix, name string
		err                 string // substring; "" for success
	}{
		{in: "user.slice:libpod:0123abcd", slice: "user.slice", prefix: "libpod", name: "0123abcd"},
		{in: "machine.slice:libpod:c1", slice: "machine.slice", prefix: "libpod", name: "c1"},
		{in: ":zviz:c1", prefix: "zviz", name: "c1"},
		{in: "user.slice::c1", slice: "user.slice", name: "c1"},
		{in: "-.slice:zviz:c1", slice: "-.slice", prefix: "zviz", name: "c1"},
		{in: "a-b_c.slice:zviz:my_ctr.1-x", slice: "a-b_c.slice", prefix: "zviz", name: "my_ctr.1-x"},

		{in: "", err: `cgroupsPath "": want "slice:prefix:name"`},
		{in: "/user.slice/c1", err: `want "slice:prefix:name"`},
		{in: "user.slice:libpod", err: `want "slice:prefix:name"`},
		{in: "a:b:c:d", err: `want "slice:prefix:name"`},
		{in: "user:libpod:c1", err: `slice "user": must end in ".slice"`},
		{in: ".slice:libpod:c1", err: `slice ".slice": empty name`},
		{in: "a--b.slice:libpod:c1", err: `slice "a--b.slice": a "-" separates`},
		{in: "-a.slice:libpod:c1", err: `slice "-a.slice": a "-" separates`},
		{in: "a-.slice:libpod:c1", err: `slice "a-.slice": a "-" separates`},
		{in: "a/b.slice:libpod:c1", err: `slice "a/b.slice": character '/'`},
		{in: "u@1.slice:libpod:c1", err: `slice "u@1.slice": character '@'`},
		{in: "user.slice:lib/pod:c1", err: `prefix "lib/pod": character '/'`},
		{in: "user.slice:lib pod:c1", err: `prefix "lib pod": character ' '`},
		{in: "user.slice:libpod:", err: `name: empty`},
		{in: "user.slice:libpod:../c1", err: `name "../c1": character '/'`},
		{in: "user.slice:libpod:c@1", err: `name "c@1": character '@'`},
		{in: `user.slice:libpod:c\x2d`, err: `name "c\\x2d": character '\\'`},
		{in: "user.slice:libpod:c1.slice", err: `name "c1.slice": a slice as the container's unit is not supported`},
		{in: "user.slice:libpod:" + long, err: "characters, systemd allows 255"},
	}
	for _, tt := range tests {
		slice, prefix, name, err := ParseCgroupsPath(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCgroupsPath(%q) error = %v, want it to contain %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || slice != tt.slice || prefix != tt.prefix || name != tt.name {
			t.Errorf("ParseCgroupsPath(%q) = %q, %q, %q, %v; want %q, %q, %q",
				tt.in, slice, prefix, name, err, tt.slice, tt.prefix, tt.name)
		}
	}
}

func TestUnitName(t *testing.T) {
	for _, tt := range []struct{ prefix, name, want string }{
		{"libpod", "0123abcd", "libpod-0123abcd.scope"},
		{"", "c1", "c1.scope"},
	} {
		if got := UnitName(tt.prefix, tt.name); got != tt.want {
			t.Errorf("UnitName(%q, %q) = %q, want %q", tt.prefix, tt.name, got, tt.want)
		}
		if err := checkScopeName(UnitName(tt.prefix, tt.name)); err != nil {
			t.Errorf("StartScope would refuse UnitName(%q, %q): %v", tt.prefix, tt.name, err)
		}
	}
}
