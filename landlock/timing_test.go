package landlock

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// typicalRules is what an image container gets: the image root read and
// executable, a few writable mounts and the safe device nodes writable,
// two allowed ports, scoping.
func typicalRules(dir string) *Rules {
	r := &Rules{
		ReadExec:        []string{"/"},
		RestrictNetwork: true,
		TCPConnect:      []uint16{80, 443},
		Scope:           true,
	}
	for _, d := range []string{"tmp", "var/tmp", "run", "dev/shm", "home"} {
		r.Writable = append(r.Writable, filepath.Join(dir, d))
	}
	// Rules only: nothing below opens these for reading or writing.
	r.Writable = append(r.Writable, "/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/pts")
	return r
}

const timingRuns = 200

// TestApplyTime measures Apply on the container's cold-start path: each
// run restricts a fresh goroutine's thread, which dies with it, so the
// domains do not stack. Every run is checked to have really restricted.
func TestApplyTime(t *testing.T) {
	if os.Getenv(childEnv) == "timing" {
		timingChild()
		return
	}
	requireLandlock(t, 1)
	dir := t.TempDir()
	mkdirs(t, dir, "tmp", "var/tmp", "run", "dev/shm", "home", "out")
	res := runChild(t, "TestApplyTime", childEnv+"=timing", dirEnv+"="+dir)
	if res.Err != "" {
		t.Fatalf("child: %s", res.Err)
	}
	if len(res.Times) != timingRuns {
		t.Fatalf("child timed %d runs, want %d", len(res.Times), timingRuns)
	}
	first := time.Duration(res.Times[0])
	sorted := slices.Clone(res.Times)
	slices.Sort(sorted)
	us := func(ns int64) string { return fmt.Sprintf("%.0fµs", float64(ns)/1e3) }
	t.Logf("Apply, %d paths + 2 ports + scope, %d runs: first %s, median %s, p90 %s, max %s",
		len(typicalRules(dir).Writable)+1, timingRuns, us(int64(first)), us(sorted[len(sorted)/2]),
		us(sorted[len(sorted)*9/10]), us(sorted[len(sorted)-1]))
	if first > time.Second {
		t.Errorf("first Apply took %v", first)
	}
}

func timingChild() {
	dir := os.Getenv(dirEnv)
	res := &childResult{}
	for i := range timingRuns {
		done := make(chan error)
		go func() {
			start := time.Now()
			_, err := Apply(typicalRules(dir), false)
			res.Times = append(res.Times, int64(time.Since(start)))
			if err == nil {
				err = checkRestricted(dir, i)
			}
			done <- err // the goroutine exits locked: its thread goes away
		}()
		if err := <-done; err != nil {
			res.Err = err.Error()
			break
		}
	}
	writeResult(res)
}

// checkRestricted proves that the thread is restricted: writable paths
// take a new file, the rest of the tree does not.
func checkRestricted(dir string, i int) error {
	if err := os.WriteFile(filepath.Join(dir, "tmp", fmt.Sprint(i)), nil, 0o644); err != nil {
		return fmt.Errorf("run %d: write under writable: %w", i, err)
	}
	if got := errName(os.WriteFile(filepath.Join(dir, "out", fmt.Sprint(i)), nil, 0o644)); got != "EACCES" {
		return fmt.Errorf("run %d: write outside writable: got %s, want EACCES", i, got)
	}
	return nil
}

// BenchmarkPlan and BenchmarkRuleset split Apply's cost without enforcing
// anything, so they run in the test process: planning (stat, symlink
// resolution) and building the ruleset (one open and one
// landlock_add_rule per path).
func BenchmarkPlan(b *testing.B) {
	r := typicalRules(b.TempDir())
	for b.Loop() {
		if _, err := makePlan(r, ABI(), allErrata); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRuleset(b *testing.B) {
	if ABI() < 1 {
		b.Skip("requires landlock>=1")
	}
	dir := b.TempDir()
	r := typicalRules(dir)
	for _, d := range r.Writable[:5] {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		p, err := makePlan(r, ABI(), allErrata)
		if err != nil {
			b.Fatal(err)
		}
		fd, _, err := p.cfg.NewRulesetFD(p.rules...)
		if err != nil {
			b.Fatal(err)
		}
		closeFD(fd)
	}
}

func closeFD(fd int) {
	if fd >= 0 {
		_ = os.NewFile(uintptr(fd), "ruleset").Close()
	}
}
