package raftstore

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/ringlog/ringlog/internal/logtest"
)

// TestLogger: the store's log reports its recoveries to Options.Logger,
// naming the log file.
func TestLogger(t *testing.T) {
	dir := t.TempDir()
	lg, rec := logtest.New(slog.LevelInfo)
	o := &Options{SegmentSize: 1 << 20, Capacity: 8 << 20, Logger: lg}
	s := openStore(t, dir, o)
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	s = openStore(t, dir, o)
	defer s.Close()
	found := false
	for _, m := range rec.At(t, "INFO") {
		found = found || (m["msg"] == "wal: recovered" && m["file"] == filepath.Join(dir, LogName))
	}
	if !found {
		t.Fatalf("no recovery record naming %s: %s", filepath.Join(dir, LogName), rec.String())
	}
}
