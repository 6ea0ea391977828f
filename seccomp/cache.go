package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// compilerVersion changes whenever Compile would emit different bytes for
// the same profile; it is part of every cache key.
const compilerVersion = "zviz-seccomp/1"

var memCache sync.Map // key → *Program

// CompileCached is Compile with a cache keyed by the content hash of the
// profile's rules, the arch, the libseccomp version and the compiler
// version. dir is a cache directory (e.g. $XDG_CACHE_HOME/zviz/seccomp);
// "" keeps the cache in memory only. A cache entry that is unreadable or
// fails its checksum is recompiled; a cache that cannot be written is not
// an error (it only costs the next start a compile).
func CompileCached(p *Profile, arch, dir string) (*Program, error) {
	return CompileCachedWith(p, arch, dir, CompileOptions{})
}

// CompileCachedWith is CompileCached for the variant opts selects; the
// variant is part of the key.
func CompileCachedWith(p *Profile, arch, dir string, opts CompileOptions) (*Program, error) {
	name, _, err := canonicalArch(arch)
	if err != nil {
		return nil, fmt.Errorf("compile profile %s: %w", p.Name, err)
	}
	key, err := cacheKey(p, name, opts)
	if err != nil {
		return nil, fmt.Errorf("compile profile %s for %s: %w", p.Name, name, err)
	}
	if v, ok := memCache.Load(key); ok {
		return v.(*Program).copyFor(p), nil
	}
	if dir != "" {
		if bpf, ok := readCache(filepath.Join(dir, key+".bpf")); ok {
			prog := &Program{Profile: p.Name, Arch: name, Key: key, Instructions: len(bpf) / 8, BPF: bpf,
				Notify: opts.LogDenials || notifies(p, name), LogDenials: opts.LogDenials}
			// The table is a pure function of what the key hashes; rebuilding
			// it costs one name lookup per listed syscall.
			if err := prog.addDenials(p); err != nil {
				return nil, fmt.Errorf("compile profile %s for %s: %w", p.Name, name, err)
			}
			memCache.Store(key, prog)
			return prog.copyFor(p), nil
		}
	}
	prog, err := CompileWith(p, name, opts)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		_ = writeCache(dir, key+".bpf", prog.BPF)
	}
	memCache.Store(key, prog)
	return prog.copyFor(p), nil
}

func (prog *Program) copyFor(p *Profile) *Program {
	c := *prog
	c.Profile = p.Name
	c.BPF = append([]byte(nil), prog.BPF...)
	return &c
}

func notifies(p *Profile, arch string) bool {
	for _, r := range p.Broker {
		if len(r.Arches) == 0 || contains(r.Arches, arch) {
			return true
		}
	}
	return false
}

// cacheKey hashes what decides the program's bytes: the syscall lists
// (names, arch restrictions, filter values; not the reasons), the arch,
// the variant, and the versions of libseccomp and of this compiler.
func cacheKey(p *Profile, arch string, opts ...CompileOptions) (string, error) {
	var o CompileOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	type rule struct {
		S string   `json:"s"`
		A []string `json:"a,omitempty"`
		V []string `json:"v,omitempty"`
	}
	lists := map[string][]rule{}
	for _, l := range p.lists() {
		var rs []rule
		for _, r := range *l.rules {
			a := append([]string(nil), r.Arches...)
			sort.Strings(a)
			rs = append(rs, rule{r.Syscall, a, r.Values})
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].S < rs[j].S })
		lists[l.class] = rs
	}
	// Variant is omitted for the plain program, so its keys (and the disk
	// caches already written) stay what they were.
	variant := ""
	if o.LogDenials {
		variant = "log-denials"
	}
	b, err := json.Marshal(struct {
		Compiler, Libseccomp, Arch string
		Variant                    string `json:",omitempty"`
		Lists                      map[string][]rule
	}{compilerVersion, libseccompVersion(), arch, variant, lists})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Cache files are sha256(bpf) followed by the bpf, so a torn or edited
// file is detected and recompiled rather than installed.
func readCache(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < sha256.Size {
		return nil, false
	}
	sum, bpf := b[:sha256.Size], b[sha256.Size:]
	got := sha256.Sum256(bpf)
	if !bytes.Equal(sum, got[:]) || checkBPF(bpf) != nil {
		return nil, false
	}
	return bpf, true
}

func writeCache(dir, name string, bpf []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+name)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	sum := sha256.Sum256(bpf)
	if _, err := tmp.Write(append(sum[:], bpf...)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
