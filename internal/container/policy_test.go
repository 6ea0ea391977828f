package container

import (
	"slices"
	"testing"
)

func TestAllowPorts(t *testing.T) {
	for _, c := range []struct {
		allow []string
		want  []uint16
		ok    bool
	}{
		{nil, nil, false},
		{[]string{"10.0.0.0/8:443", "192.0.2.1:80", "[2001:db8::/32]:443", "*:53"}, []uint16{53, 80, 443}, true},
		{[]string{"10.0.0.0/8:443", "192.0.2.1"}, nil, false},  // every port of one address
		{[]string{"2001:db8::1"}, nil, false},                  // IPv6 without a port
		{[]string{"[2001:db8::1]:8080"}, []uint16{8080}, true}, // IPv6 with one
	} {
		got, ok := allowPorts(c.allow)
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("allowPorts(%q) = %v, %v; want %v, %v", c.allow, got, ok, c.want, c.ok)
		}
	}
}
