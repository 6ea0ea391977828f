package testutil

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// PTYReader collects everything read from a pty master until EOF/EIO.
type PTYReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	// Timeout bounds WaitFor (10 s unless set).
	Timeout time.Duration
}

// ReadPTY starts reading f in the background.
func ReadPTY(f *os.File) *PTYReader {
	p := &PTYReader{done: make(chan struct{}), Timeout: 10 * time.Second}
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

// Done is closed when the reader has seen EOF or an error (the terminal's
// last process is gone).
func (p *PTYReader) Done() <-chan struct{} { return p.done }

// String is what has been read so far.
func (p *PTYReader) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// WaitFor waits up to Timeout for s to appear in the output after offset
// from, and returns the offset after it; it fails t otherwise.
func (p *PTYReader) WaitFor(t testing.TB, s string, from int) int {
	t.Helper()
	deadline := time.Now().Add(p.Timeout)
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
