// Package logtest records what a *slog.Logger logs, for the packages'
// tests of their log records.
package logtest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Recorder holds the records of the logger New returned with it, as the
// JSON handler wrote them. It is safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// New returns a logger that records at level and above into the returned
// Recorder.
func New(level slog.Level) (*slog.Logger, *Recorder) {
	r := &Recorder{}
	return slog.New(slog.NewJSONHandler(r, &slog.HandlerOptions{Level: level})), r
}

// Write implements io.Writer for the handler.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// String returns the records as the handler wrote them, one JSON object
// per line.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// Reset forgets the records so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Reset()
}

// Records decodes the records so far; a line that is not a JSON object
// fails the test.
func (r *Recorder) Records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// At returns the records at level ("DEBUG", "INFO", "WARN", "ERROR").
func (r *Recorder) At(t testing.TB, level string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range r.Records(t) {
		if m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}
