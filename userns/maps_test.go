package userns

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultMaps(t *testing.T) {
	tests := []struct {
		name   string
		hostID uint32
		ranges []Range
		want   []IDMap
	}{
		{name: "no ranges", hostID: 1000, want: []IDMap{{0, 1000, 1}}},
		{name: "one range", hostID: 1001, ranges: []Range{{100000, 65536}},
			want: []IDMap{{0, 1001, 1}, {1, 100000, 65536}}},
		{name: "ranges are consecutive", hostID: 1000, ranges: []Range{{100000, 10}, {500000, 5}},
			want: []IDMap{{0, 1000, 1}, {1, 100000, 10}, {11, 500000, 5}}},
		{name: "zero count skipped", hostID: 1000, ranges: []Range{{100000, 0}, {200000, 3}},
			want: []IDMap{{0, 1000, 1}, {1, 200000, 3}}},
		{name: "cut at the id space end", hostID: 0, ranges: []Range{{1, math.MaxUint32 - 1}, {7, 7}},
			want: []IDMap{{0, 0, 1}, {1, 1, math.MaxUint32 - 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultMaps(tt.hostID, tt.ranges)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DefaultMaps() = %v, want %v", got, tt.want)
			}
			if err := Validate("uidMappings", got); err != nil {
				t.Errorf("DefaultMaps() result does not validate: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	many := make([]IDMap, MaxLines+1)
	for i := range many {
		many[i] = IDMap{uint32(i), uint32(i), 1}
	}
	tests := []struct {
		name string
		maps []IDMap
		want []string // substrings, one per expected error line; nil = valid
	}{
		{name: "single", maps: []IDMap{{0, 1000, 1}}},
		{name: "identity", maps: []IDMap{{0, 0, math.MaxUint32}}},
		{name: "ranges", maps: []IDMap{{0, 1000, 1}, {1, 100000, 65536}}},
		{name: "adjacent is not overlap", maps: []IDMap{{0, 10, 5}, {5, 15, 5}}},
		{name: "max lines", maps: many[:MaxLines]},
		{name: "empty", maps: nil, want: []string{"uidMappings: must not be empty"}},
		{name: "too many", maps: many, want: []string{"uidMappings: 341 lines exceed the kernel limit of 340"}},
		{name: "zero size", maps: []IDMap{{0, 1000, 1}, {1, 2000, 0}},
			want: []string{"uidMappings[1]: size must not be zero"}},
		{name: "container overlap", maps: []IDMap{{0, 1000, 10}, {5, 2000, 10}},
			want: []string{"uidMappings[1]: overlaps uidMappings[0] (container ids)"}},
		{name: "host overlap", maps: []IDMap{{0, 1000, 10}, {100, 1009, 1}},
			want: []string{"uidMappings[1]: overlaps uidMappings[0] (host ids)"}},
		{name: "container overflow", maps: []IDMap{{math.MaxUint32 - 1, 0, 2}},
			want: []string{"uidMappings[0]: containerID 4294967294 + size 2 overflows 32-bit ids"}},
		{name: "host overflow", maps: []IDMap{{0, math.MaxUint32 - 5, 6}},
			want: []string{"uidMappings[0]: hostID 4294967290 + size 6 overflows 32-bit ids"}},
		{name: "invalid id -1", maps: []IDMap{{math.MaxUint32, 0, 1}},
			want: []string{"uidMappings[0]: containerID 4294967295 is the invalid id -1"}},
		{name: "all errors reported", maps: []IDMap{{0, 0, 0}, {0, 5, 1}, {1, 5, 1}},
			want: []string{"uidMappings[0]: size must not be zero", "uidMappings[2]: overlaps uidMappings[1] (host ids)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate("uidMappings", tt.maps)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %d lines %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if lines[i] != w {
					t.Errorf("Validate() line %d = %q, want %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	got := string(format([]IDMap{{0, 1000, 1}, {1, 100000, 65536}}))
	if want := "0 1000 1\n1 100000 65536\n"; got != want {
		t.Fatalf("format() = %q, want %q", got, want)
	}
	args := helperArgs(42, []IDMap{{0, 1000, 1}, {1, 100000, 65536}})
	if want := []string{"42", "0", "1000", "1", "1", "100000", "65536"}; !reflect.DeepEqual(args, want) {
		t.Fatalf("helperArgs() = %q, want %q", args, want)
	}
}
