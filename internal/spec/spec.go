// Package spec loads an OCI bundle's config.json and validates it up front,
// before anything is cloned or mounted, so that a bad config fails with
// every problem listed, each as one line naming the field or path
// ("config.json: process.cwd: must be an absolute path"), instead of with
// the first mount or exec error deep inside the init.
//
// It sits in internal/, above the mechanism packages: it reuses
// userns.Validate for id mappings. It also builds the config.json that
// `zviz spec [--rootless]` writes (Example).
//
// Compatibility choices, where the runtime spec leaves room:
//   - A relative mounts[].destination is accepted and taken relative to "/",
//     as runc 1.1 does (runc warns; the OCI spec wants absolute paths).
//   - A relative bind-mount source is taken relative to the bundle, as runc
//     does.
//   - A new user namespace without uid/gid mappings is accepted: the runtime
//     then uses userns.DefaultMaps for the caller.
//   - hostname needs a uts namespace entry, new or joined (podman pods join
//     the infra container's), as runc checks.
//   - Unknown capability names are not checked here: runc ignores them with a
//     warning, and podman may pass names newer than the host kernel.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Load reads BUNDLE/config.json and validates it. Unknown fields are
// tolerated (newer runtime-spec versions, vendor extensions). A missing file
// gives "bundle B: config.json: no such file or directory" with the errno
// reachable; malformed JSON gives the line and column.
func Load(bundle string) (*specs.Spec, error) {
	data, err := Read(bundle)
	if err != nil {
		return nil, err
	}
	return Parse(bundle, data)
}

// Read returns BUNDLE/config.json's bytes.
func Read(bundle string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	return data, nil
}

// Parse decodes and validates config.json's bytes.
func Parse(bundle string, data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, jsonError(data, err)
	}
	if err := Validate(&s, bundle); err != nil {
		return nil, err
	}
	return &s, nil
}

// peekSpec is the part of config.json that decides how the init is
// started: its namespaces and id mappings, and the OOM score adjustment an
// init that joins namespaces by path must write before it enters them.
type peekSpec struct {
	Process *struct {
		OOMScoreAdj *int `json:"oomScoreAdj"`
	} `json:"process"`
	Linux *struct {
		Namespaces  []specs.LinuxNamespace `json:"namespaces"`
		UIDMappings []specs.LinuxIDMapping `json:"uidMappings"`
		GIDMappings []specs.LinuxIDMapping `json:"gidMappings"`
	} `json:"linux"`
}

// Peek decodes only what starting the init needs (see peekSpec), so that the init can start while the whole config is decoded
// and validated by Parse from the same bytes. The result is not validated:
// a create that started from it must still succeed with Parse, or undo.
func Peek(data []byte) (*specs.Spec, error) {
	var p peekSpec
	if err := json.Unmarshal(data, &p); err != nil || p.Linux == nil {
		return nil, errors.New("config.json: no linux section")
	}
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: p.Linux.Namespaces,
		UIDMappings: p.Linux.UIDMappings, GIDMappings: p.Linux.GIDMappings}}
	if p.Process != nil && p.Process.OOMScoreAdj != nil {
		s.Process = &specs.Process{OOMScoreAdj: p.Process.OOMScoreAdj}
	}
	return s, nil
}

// jsonError turns a decoding error into "config.json: line L col C: …".
// offsetPast is 1 when the JSON implementation reports error offsets just
// past the offending byte (encoding/json v1) and 0 when it reports the
// byte's own index (the v2 implementation zviz is built with, see the
// Makefile): the column printed is the offending byte's either way.
var offsetPast = sync.OnceValue(func() int64 {
	var syn *json.SyntaxError
	var v any
	if errors.As(json.Unmarshal([]byte("]"), &v), &syn) && syn.Offset == 0 {
		return 0
	}
	return 1
})

func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Errorf("config.json: line %d col %d: %w", line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("config.json: line %d col %d: %s: cannot use JSON %s as %s",
			line, col, field, typ.Value, typ.Type)
	}
	return fmt.Errorf("config.json: %w", err)
}

// position converts the decoder's byte offset ("after reading Offset
// bytes") to a 1-based line and column of the offending byte.
func position(data []byte, offset int64) (line, col int) {
	pos := int(min(max(offset-offsetPast(), 0), int64(len(data))))
	line, last := 1, -1
	for i, b := range data[:pos] {
		if b == '\n' {
			line, last = line+1, i
		}
	}
	return line, pos - last
}

// RootfsPath returns root.path made absolute against the bundle directory.
func RootfsPath(s *specs.Spec, bundle string) string {
	if s == nil || s.Root == nil {
		return ""
	}
	return bundlePath(bundle, s.Root.Path)
}

// bundlePath resolves p against the bundle the way runc does for root.path
// and bind-mount sources.
func bundlePath(bundle, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	if abs, err := filepath.Abs(bundle); err == nil {
		bundle = abs
	}
	return filepath.Join(bundle, p)
}

// Namespaces returns the namespaces the container gets, type -> path, where
// "" means a new namespace and a path means joining that one. A type listed
// twice (which Validate rejects) keeps its first entry.
func Namespaces(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	m := make(map[specs.LinuxNamespaceType]string)
	if s == nil || s.Linux == nil {
		return m
	}
	for _, ns := range s.Linux.Namespaces {
		if _, dup := m[ns.Type]; !dup {
			m[ns.Type] = ns.Path
		}
	}
	return m
}
