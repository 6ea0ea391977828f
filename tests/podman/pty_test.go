package podman

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// ptyReader collects everything read from a pty master until EOF/EIO.
type ptyReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func readPTY(f *os.File) *ptyReader {
	p := &ptyReader{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *ptyReader) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitFor waits up to 30 s for s to appear in the output after offset
// from, and returns the offset after it.
func (p *ptyReader) waitFor(t *testing.T, s string, from int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out := p.String()
		if from <= len(out) {
			if i := strings.Index(out[from:], s); i >= 0 {
				return from + i + len(s)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("terminal output %q: no %q", p.String(), s)
	return 0
}
