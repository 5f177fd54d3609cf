package ring

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/internal/logtest"
	"github.com/ringlog/ringlog/pager"
)

// TestOpenLogsRepairs: an invalid header copy and a repaired consumer
// slot are logged at Warn, naming the file; a clean open logs no Warn.
func TestOpenLogsRepairs(t *testing.T) {
	lg, rec := logtest.New(slog.LevelInfo)
	path, _ := closedRing(t)
	r, err := Open(path, &Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	if w := rec.At(t, "WARN"); len(w) != 0 {
		t.Fatalf("clean open logged warnings: %v", w)
	}
	// Where Auto cannot take remap (the portable build, say), the data
	// area's view says so through the same logger.
	fellBack := false
	for _, m := range rec.At(t, "INFO") {
		fellBack = fellBack || (m["msg"] == "pager: auto backend fell back" && m["file"] == path)
	}
	if want := pager.DefaultBackend(false) != pager.Remap; fellBack != want {
		t.Fatalf("fallback logged: %v, want %v: %s", fellBack, want, rec.String())
	}
	c, err := r.Consumer("torn", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	r.slot(0).b[slotName] ^= 0xFF // damage its name
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, older := newestCopy(t, path)
	patchFile(t, path, older+20, []byte{0xEE}) // the older copy fails its checksum

	rec.Reset()
	r, err = Open(path, &Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := rec.At(t, "WARN")
	if len(w) != 2 {
		t.Fatalf("got %d warnings, want 2: %s", len(w), rec.String())
	}
	if w[0]["msg"] != "ring: a header copy is invalid; using the other" || w[0]["file"] != path || w[0]["header_offset"] == float64(older) {
		t.Errorf("header warning = %v (older copy at %d)", w[0], older)
	}
	if e, _ := w[0]["error"].(string); !strings.Contains(e, "offset") {
		t.Errorf("header warning names no offset: %v", w[0])
	}
	if rep, _ := w[1]["repair"].(string); w[1]["msg"] != "ring: consumer slot repaired" || w[1]["file"] != path || !strings.Contains(rep, "damaged registration") {
		t.Errorf("slot warning = %v", w[1])
	}
}
