package systemd

import (
	"fmt"
	"strings"
)

// maxUnitName is the longest unit name systemd accepts (UNIT_NAME_MAX is 256
// with the terminating NUL; systemd.unit(5)).
const maxUnitName = 255

// ParseCgroupsPath splits an OCI cgroupsPath in the systemd form
// "slice:prefix:name" (podman passes "user.slice:libpod:ID" rootless and
// "machine.slice:libpod:ID" as root) and validates each part: slice may be
// empty (the manager's default slice) or a slice unit name; prefix may be
// empty; name may not. The unit is UnitName(prefix, name).
func ParseCgroupsPath(p string) (slice, prefix, name string, err error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("cgroupsPath %q: want \"slice:prefix:name\" with --systemd-cgroup", p)
	}
	slice, prefix, name = parts[0], parts[1], parts[2]
	if err := checkSlice(slice); err != nil {
		return "", "", "", fmt.Errorf("cgroupsPath %q: slice %q: %w", p, slice, err)
	}
	if prefix != "" {
		if err := checkPart(prefix); err != nil {
			return "", "", "", fmt.Errorf("cgroupsPath %q: prefix %q: %w", p, prefix, err)
		}
	}
	if name == "" {
		return "", "", "", fmt.Errorf("cgroupsPath %q: name: empty", p)
	}
	if err := checkPart(name); err != nil {
		return "", "", "", fmt.Errorf("cgroupsPath %q: name %q: %w", p, name, err)
	}
	if strings.HasSuffix(name, ".slice") {
		return "", "", "", fmt.Errorf("cgroupsPath %q: name %q: a slice as the container's unit is not supported", p, name)
	}
	if n := len(UnitName(prefix, name)); n > maxUnitName {
		return "", "", "", fmt.Errorf("cgroupsPath %q: unit name %q: %d characters, systemd allows %d",
			p, UnitName(prefix, name), n, maxUnitName)
	}
	return slice, prefix, name, nil
}

// UnitName returns the name of the scope unit for prefix and name:
// "prefix-name.scope", or "name.scope" when prefix is empty (the names runc
// and crun give).
func UnitName(prefix, name string) string {
	if prefix == "" {
		return name + ".scope"
	}
	return prefix + "-" + name + ".scope"
}

// checkPart accepts the characters systemd allows in a unit name
// (systemd.unit(5)) except "@" (templates), ":" (the cgroupsPath separator)
// and "\" (systemd's escape character).
func checkPart(s string) error {
	for _, r := range s {
		if !validChar(r) {
			return fmt.Errorf("character %q: only letters, digits, \"_\", \".\" and \"-\" are allowed", r)
		}
	}
	return nil
}

func validChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '_' || r == '.' || r == '-'
}

// checkSlice accepts "" and the slice names systemd.slice(5) allows: "-.slice"
// (the root slice), or dash-separated non-empty parts ("a-b.slice" is b in a)
// followed by ".slice".
func checkSlice(s string) error {
	if s == "" || s == "-.slice" {
		return nil
	}
	base, ok := strings.CutSuffix(s, ".slice")
	if !ok {
		return fmt.Errorf("must end in \".slice\"")
	}
	if base == "" {
		return fmt.Errorf("empty name before \".slice\"")
	}
	if err := checkPart(base); err != nil {
		return err
	}
	if strings.HasPrefix(base, "-") || strings.HasSuffix(base, "-") || strings.Contains(base, "--") {
		return fmt.Errorf("a \"-\" separates the names of the parent slices: no leading, trailing or doubled \"-\"")
	}
	if len(s) > maxUnitName {
		return fmt.Errorf("%d characters, systemd allows %d", len(s), maxUnitName)
	}
	return nil
}
