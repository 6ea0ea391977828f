package systemd

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestParseProcCgroup(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "0::/user@1001.service/app.slice/a.scope\n", want: "/user@1001.service/app.slice/a.scope"},
		{ // hybrid: v1 lines first
			in:   "9:name=systemd:/\n4:memory:/x\n1:cpu:/\n0::/zviz-env/session.scope\n",
			want: "/zviz-env/session.scope"},
		{in: "0::/\n", want: "/"},
		{in: "4:memory:/x\n1:cpu:/\n", err: "no cgroup v2 (0::) line"},
		{in: "", err: "no cgroup v2 (0::) line"},
		{in: "0::relative\n", err: `bad cgroup v2 path "relative"`},
	}
	for _, tt := range tests {
		got, err := parseProcCgroup(strings.NewReader(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseProcCgroup(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseProcCgroup(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMergeProperties(t *testing.T) {
	base := []Property{{"Description", "d"}, {"Delegate", true}}
	got := mergeProperties(base, []Property{{"Delegate", false}, {"MemoryMax", uint64(1 << 20)}})
	want := []Property{{"Description", "d"}, {"Delegate", false}, {"MemoryMax", uint64(1 << 20)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeProperties = %v, want %v", got, want)
	}
	w := toWire(got)
	if sig := w[2].Value.Signature().String(); sig != "t" {
		t.Errorf("MemoryMax goes out as D-Bus type %q, want t (uint64)", sig)
	}
}

// StartScope checks its arguments before it talks to the manager: these
// calls on a Conn with no bus must fail without touching it.
func TestStartScopeRefusesBadArguments(t *testing.T) {
	c := &Conn{}
	for _, tt := range []struct {
		unit, slice string
		pid         int
		err         string
	}{
		{"c1.service", "", 1, "not a scope unit name"},
		{".scope", "", 1, "not a scope unit name"},
		{"a/b.scope", "", 1, "character '/'"},
		{"c1.scope", "user", 1, `slice "user": must end in ".slice"`},
		{"c1.scope", "", 0, "bad pid 0"},
		{"c1.scope", "", -5, "bad pid -5"},
	} {
		_, err := c.StartScope(context.Background(), tt.unit, tt.slice, tt.pid)
		if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "start scope "+tt.unit) {
			t.Errorf("StartScope(%q, %q, %d) error = %v, want \"start scope %s: ...%s...\"",
				tt.unit, tt.slice, tt.pid, err, tt.unit, tt.err)
		}
	}
}
