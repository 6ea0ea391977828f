package seccomp

import (
	"path/filepath"
	"testing"
)

// BenchmarkCompile: load + compile of each built-in, no cache.
func BenchmarkCompile(b *testing.B) {
	for _, name := range Builtins() {
		for _, arch := range testArches {
			b.Run(name+"/"+arch, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p, err := Load(name)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := Compile(p, arch); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCompileCached: a cold start's path with a warm disk cache
// (load the profile, hash it, read and check the cached program).
func BenchmarkCompileCached(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "cache")
	p, _ := Load("default")
	prog, _ := CompileCached(p, "x86_64", dir)
	b.Run("disk", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			memCache.Delete(prog.Key)
			p, _ := Load("default")
			if _, err := CompileCached(p, "x86_64", dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load-only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Load("default"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
