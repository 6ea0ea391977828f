package seccomp

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed profiles/*.yaml
var builtinFS embed.FS

// Profile is a validated, fully resolved profile: extends is applied, every
// name checked. Compile reads only the syscall lists; the other fields are
// for the layers the runtime applies (capabilities, network, Landlock,
// cgroups).
type Profile struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Source      string   `json:"source"`            // "builtin:NAME" or the file path
	Extends     []string `json:"extends,omitempty"` // base profiles, nearest first

	Allow  []Rule `json:"allow"`  // reach the kernel directly
	Deny   []Rule `json:"deny"`   // EPERM
	ENOSYS []Rule `json:"enosys"` // ENOSYS on purpose, so libc falls back
	Filter []Rule `json:"filter"` // allowed for some argument values only
	Broker []Rule `json:"broker"` // SECCOMP_RET_USER_NOTIF

	Capabilities []string   `json:"capabilities"` // kept; all others dropped
	Network      Network    `json:"network"`
	Filesystem   Filesystem `json:"filesystem"`
	Limits       Limits     `json:"limits"`
	Required     []string   `json:"required"` // layers zviz must not start without
}

// Rule is one syscall in one list, with the reason it is there.
type Rule struct {
	Syscall string   `json:"syscall"`
	Why     string   `json:"why"`
	Arches  []string `json:"arches,omitempty"` // only on these; empty: every arch
	Values  []string `json:"values,omitempty"` // filter rules: see Explain
	From    string   `json:"from"`             // the profile that listed it
}

// Network is what the container may reach. Allow entries are "ADDR",
// "PREFIX", "*" each with an optional ":PORT" ("[v6]:PORT" for IPv6).
type Network struct {
	Mode         string   `json:"mode"` // none | nat | host
	Allow        []string `json:"allow,omitempty"`
	AllowDomains []string `json:"allow_domains,omitempty"`
}

// Filesystem says where the container may write.
type Filesystem struct {
	ReadonlyRoot bool     `json:"readonly_root"`
	Writable     []string `json:"writable,omitempty"`
}

// Limits are cgroup v2 limits; zero means the profile sets none.
type Limits struct {
	Memory int64   `json:"memory,omitempty"` // bytes
	Pids   int64   `json:"pids,omitempty"`
	CPU    float64 `json:"cpu,omitempty"` // cores
}

// The file format. Pointers tell "absent" (inherit) from "empty".
type spec struct {
	Name         string                `yaml:"name"`
	Description  string                `yaml:"description"`
	Extends      string                `yaml:"extends"`
	Drop         []string              `yaml:"drop"`
	Allow        []group               `yaml:"allow"`
	Deny         []group               `yaml:"deny"`
	ENOSYS       []group               `yaml:"enosys"`
	Broker       []group               `yaml:"broker"`
	Filter       map[string]filterSpec `yaml:"filter"`
	Capabilities *[]string             `yaml:"capabilities"`
	Network      *networkSpec          `yaml:"network"`
	Filesystem   *filesystemSpec       `yaml:"filesystem"`
	Limits       *limitsSpec           `yaml:"limits"`
	Required     []string              `yaml:"required"`
}

type group struct {
	Why      string   `yaml:"why"`
	Arch     []string `yaml:"arch"`
	Syscalls []string `yaml:"syscalls"`
}

type filterSpec struct {
	Why           string   `yaml:"why"`
	AllowFamilies []string `yaml:"allow_families"`
	DenyFlags     []string `yaml:"deny_flags"`
	DenyRequests  []string `yaml:"deny_requests"`
	AllowValues   []string `yaml:"allow_values"`
}

type networkSpec struct {
	Mode         *string   `yaml:"mode"`
	Allow        *[]string `yaml:"allow"`
	AllowDomains *[]string `yaml:"allow_domains"`
}

type filesystemSpec struct {
	ReadonlyRoot *bool     `yaml:"readonly_root"`
	Writable     *[]string `yaml:"writable"`
}

type limitsSpec struct {
	Memory *string `yaml:"memory"`
	Pids   *string `yaml:"pids"`
	CPU    *string `yaml:"cpu"`
}

// Builtins lists the embedded profiles by name.
func Builtins() []string {
	ents, _ := builtinFS.ReadDir("profiles")
	var n []string
	for _, e := range ents {
		n = append(n, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(n)
	return n
}

func builtinSource(name string) ([]byte, bool) {
	if strings.ContainsAny(name, "/.") {
		return nil, false
	}
	b, err := builtinFS.ReadFile("profiles/" + name + ".yaml")
	return b, err == nil
}

// Load resolves --profile NAME|FILE: a built-in name, or a path to a
// YAML file (anything containing "/" or ending in .yaml/.yml).
func Load(ref string) (*Profile, error) {
	if data, ok := builtinSource(ref); ok {
		return resolve("builtin:"+ref, ref, data, builtinSource)
	}
	if !strings.Contains(ref, "/") && !strings.HasSuffix(ref, ".yaml") && !strings.HasSuffix(ref, ".yml") {
		return nil, fmt.Errorf("load profile %q: no such built-in profile (built-in: %s; a file path must contain \"/\")",
			ref, strings.Join(Builtins(), ", "))
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	return Parse(ref, data)
}

// Parse validates a user profile read from source (a path, for errors).
// Its extends: may name a built-in profile.
func Parse(source string, data []byte) (*Profile, error) {
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(source), ".yaml"), ".yml")
	return resolve(source, name, data, builtinSource)
}

type lookupFunc func(name string) ([]byte, bool)

// resolve decodes and validates one file, then its bases. A user file may
// extend built-ins only; built-ins may extend each other.
func resolve(source, fileName string, data []byte, lookup lookupFunc) (*Profile, error) {
	return resolveChain(source, fileName, data, lookup, nil)
}

func resolveChain(source, fileName string, data []byte, lookup lookupFunc, stack []string) (*Profile, error) {
	fail := func(err error) (*Profile, error) { return nil, prefixErrors("profile "+source+": ", err) }
	sp, err := decode(data)
	if err != nil {
		return fail(err)
	}
	name := sp.Name
	if name == "" {
		name = fileName
	}
	builtin := strings.HasPrefix(source, "builtin:")
	if builtin && name != fileName {
		return fail(fmt.Errorf("name %q differs from the file name %q", name, fileName))
	}
	if _, shadows := lookup(name); !builtin && shadows {
		return fail(fmt.Errorf("name %q is a built-in profile's; extend it under another name", name))
	}
	var base *Profile
	if sp.Extends != "" {
		if contains(append(stack, name), sp.Extends) {
			return fail(fmt.Errorf("extends %q: cycle %s → %s", sp.Extends, strings.Join(append(stack, name), " → "), sp.Extends))
		}
		bdata, ok := lookup(sp.Extends)
		if !ok {
			return fail(fmt.Errorf("extends %q: no such built-in profile", sp.Extends))
		}
		base, err = resolveChain("builtin:"+sp.Extends, sp.Extends, bdata, lookup, append(stack, name))
		if err != nil {
			return fail(fmt.Errorf("extends %q: %w", sp.Extends, err))
		}
	}
	p, err := merge(name, source, sp, base)
	if err != nil {
		return fail(err)
	}
	return p, nil
}

func decode(data []byte) (*spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var sp spec
	if err := dec.Decode(&sp); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty profile")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var errs []error
			for _, e := range te.Errors {
				errs = append(errs, errors.New(e))
			}
			return nil, errors.Join(errs...)
		}
		return nil, err
	}
	var extra any
	if dec.Decode(&extra) != io.EOF {
		return nil, errors.New("parse: more than one YAML document")
	}
	return &sp, nil
}

// prefixErrors puts prefix on each error of a joined list, so that every
// line of the message names the profile.
func prefixErrors(prefix string, err error) error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixErrors(prefix, e))
		}
		return errors.Join(out...)
	}
	if strings.HasPrefix(err.Error(), "profile ") {
		return err
	}
	return &prefixed{prefix, err}
}

type prefixed struct {
	prefix string
	err    error
}

func (e *prefixed) Error() string { return e.prefix + e.err.Error() }
func (e *prefixed) Unwrap() error { return e.err }
