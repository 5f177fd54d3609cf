package logkv

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/internal/logtest"
)

// logRecorder returns a logger at Debug level and a function returning
// the records it got so far.
func logRecorder(t *testing.T) (*slog.Logger, func() []map[string]any) {
	lg, rec := logtest.New(slog.LevelDebug)
	return lg, func() []map[string]any { t.Helper(); return rec.Records(t) }
}

// withMsg returns the records with message msg.
func withMsg(recs []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, m := range recs {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// atLevel returns the records at level.
func atLevel(recs []map[string]any, level string) []map[string]any {
	var out []map[string]any
	for _, m := range recs {
		if m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}

func num(m map[string]any, k string) int64 {
	f, _ := m[k].(float64)
	return int64(f)
}

// TestLogOpenAndCheckpoint: open says how the index was rebuilt (the
// whole log, from the checkpoint, or the whole log because the checkpoint
// is damaged: a Warn naming the error), Close logs the checkpoint it
// writes, and the log's own events come through the same logger.
func TestLogOpenAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	lg, records := logRecorder(t)
	o := &Options{SegmentSize: 256 << 10, GCDisabled: true, Logger: lg}
	db, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := db.Put(key(i), val(i, 1, 50), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	recs := records()
	if w := atLevel(recs, "WARN"); len(w) != 0 {
		t.Fatalf("a new store logged warnings: %v", w)
	}
	opened := withMsg(recs, "logkv: opened by replaying the whole log")
	if len(opened) != 1 || opened[0]["dir"] != dir || !strings.Contains(opened[0]["reason"].(string), "no index checkpoint") {
		t.Fatalf("open records: %v", recs)
	}
	if r := withMsg(recs, "wal: recovered"); len(r) != 1 || r[0]["file"] != filepath.Join(dir, LogName) {
		t.Fatalf("the log's records did not come through: %v", recs)
	}
	cp := withMsg(recs, "logkv: index checkpoint written")
	if len(cp) != 1 || num(cp[0], "keys") != 100 || cp[0]["file"] != filepath.Join(dir, IndexName) || cp[0]["level"] != "INFO" {
		t.Fatalf("checkpoint records: %v", recs)
	}

	lg, records = logRecorder(t)
	o.Logger = lg
	if db, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	recs = records()
	opened = withMsg(recs, "logkv: opened with the index checkpoint")
	if len(opened) != 1 || num(opened[0], "keys") != 100 || num(opened[0], "replayed_records") != 0 || len(atLevel(recs, "WARN")) != 0 {
		t.Fatalf("reopen records: %v", recs)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A damaged checkpoint: the whole log is replayed, with a warning.
	index := filepath.Join(dir, IndexName)
	b, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xFF
	if err := os.WriteFile(index, b, 0o600); err != nil {
		t.Fatal(err)
	}
	lg, records = logRecorder(t)
	o.Logger = lg
	if db, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := atLevel(records(), "WARN")
	if len(w) != 1 || w[0]["msg"] != "logkv: index checkpoint not usable; replayed the whole log" ||
		w[0]["index"] != index || num(w[0], "replayed_records") != db.Report().Replayed || db.Report().Replayed == 0 || w[0]["error"] != db.Report().IndexError.Error() {
		t.Fatalf("damaged checkpoint records: %v", records())
	}
}

// TestLogGC: a pass of the cleaner logs the segment it freed and what it
// copied, as Stats counts it.
func TestLogGC(t *testing.T) {
	lg, records := logRecorder(t)
	db, err := Open(t.TempDir(), &Options{SegmentSize: 256 << 10, GCRatio: 1.25, GCDisabled: true, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 1000; i < 1200; i++ { // written once: the cleaner copies them
		if err := db.Put(key(i), val(i, 0, 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	for ver := range 8 {
		for i := range 1000 {
			if err := db.Put(key(i), val(i, ver, 100), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.GC(); err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	passes := withMsg(records(), "logkv: cleaned a segment")
	if st.GCRuns == 0 || int64(len(passes)) != st.GCRuns {
		t.Fatalf("%d cleaner runs, %d logged: %v", st.GCRuns, len(passes), records())
	}
	var copied int64
	for _, p := range passes {
		copied += num(p, "copied_bytes")
		if p["level"] != "INFO" || num(p, "to") <= num(p, "from") || num(p, "freed_bytes") != num(p, "to")-num(p, "from") || p["duration"] == nil {
			t.Fatalf("pass record: %v", p)
		}
	}
	if copied != st.GCBytesCopied || copied == 0 {
		t.Fatalf("passes logged %d bytes copied, Stats counts %d", copied, st.GCBytesCopied)
	}
}

// TestLogNilIsSilent: a store without a logger logs nothing, not even to
// slog's default logger.
func TestLogNilIsSilent(t *testing.T) {
	lg, records := logRecorder(t)
	saved := slog.Default()
	slog.SetDefault(lg)
	defer slog.SetDefault(saved)
	dir := t.TempDir()
	o := &Options{SegmentSize: 256 << 10, GCRatio: 1.25, GCDisabled: true}
	db, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for ver := range 4 {
		for i := range 1000 {
			if err := db.Put(key(i), val(i, ver, 100), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.GC(); err != nil {
		t.Fatal(err)
	}
	if db.Stats().GCRuns == 0 {
		t.Fatal("the cleaner did not run")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := records(); len(got) != 0 {
		t.Fatalf("a store without a logger logged %v", got)
	}
}
