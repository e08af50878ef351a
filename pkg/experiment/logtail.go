package experiment

import (
	"bytes"
	"sync"
)

// LogTail is an io.Writer that keeps the last lines written to it, so that
// a run's log travels with its result.
type LogTail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial []byte
}

// NewLogTail keeps at most maxLines lines.
func NewLogTail(maxLines int) *LogTail {
	return &LogTail{max: max(maxLines, 1)}
}

// Write implements io.Writer.
func (t *LogTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := append(t.partial, p...)
	for i := bytes.IndexByte(data, '\n'); i >= 0; i = bytes.IndexByte(data, '\n') {
		t.lines = append(t.lines, string(data[:i]))
		data = data[i+1:]
	}
	if over := len(t.lines) - t.max; over > 0 {
		t.lines = append(t.lines[:0:0], t.lines[over:]...)
	}
	t.partial = append(t.partial[:0:0], data...)
	return len(p), nil
}

// Lines returns a copy of the kept lines.
func (t *LogTail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}
