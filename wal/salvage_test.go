package wal

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSalvageCopiesKeepEachOther: salvage opens in quick succession (the
// same second) each keep their own copy of the file, and none fails for
// the other's.
func TestSalvageCopiesKeepEachOther(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal")
	l, err := Create(path, &Options{Capacity: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendSync(context.Background(), []byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 3 {
		l, err := Open(path, &Options{Recovery: RecoverSalvage})
		if err != nil {
			t.Fatalf("salvage open %d: %v", i, err)
		}
		cp := l.Report().SalvageCopy
		if cp == "" || seen[cp] {
			t.Fatalf("salvage open %d: copy %q (copies so far %v)", i, cp, seen)
		}
		seen[cp] = true
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := filepath.Glob(path + ".salvage-*"); len(m) != 3 {
		t.Fatalf("copies on disk: %q", m)
	}
}
