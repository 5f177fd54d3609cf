package logkv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestCleanerLosesToNewerWrites: writes made while the cleaner's copies of
// their keys are on the way (after the copies are durable, before the
// index points at them) win: the cleaner must not point a key at the copy
// of a value written over since.
func TestCleanerLosesToNewerWrites(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{SegmentSize: 256 << 10, GCRatio: 1.25, GCDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 1000
	for i := range n {
		if err := db.Put(key(i), val(i, 0, 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Garbage after the first segment, so that the cleaner cleans it:
	// half the keys written again, many times.
	for ver := 1; ver <= 20; ver++ {
		for i := n / 2; i < n; i++ {
			if err := db.Put(key(i), val(i, ver, 100), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	const raced = 100 // keys 0..raced-1 live in the first segment
	fired := false
	gcBeforeMoves = func(db *DB) {
		if fired {
			return
		}
		fired = true
		for i := range raced {
			if err := db.Put(key(i), []byte("newer"), nil); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { gcBeforeMoves = nil }()
	if err := db.GC(); err != nil {
		t.Fatal(err)
	}
	if !fired || db.Stats().GCRuns == 0 {
		t.Fatalf("the cleaner did not run (hook fired %v, %d runs)", fired, db.Stats().GCRuns)
	}
	for i := range n {
		v, err := db.Get(key(i), nil)
		want := val(i, 0, 100)
		switch {
		case i < raced:
			want = []byte("newer")
		case i >= n/2:
			want = val(i, 20, 100)
		}
		if err != nil || !bytes.Equal(v, want) {
			t.Fatalf("key %d after the cleaner: %.20q, %v; want %.20q", i, v, err, want)
		}
	}
}

// TestIndexCheckpointRacesCleaner: WriteIndex calls, concurrent with each
// other and with the cleaner, never fail for each other, and the store's
// record of its index checkpoint always matches the file: a checkpoint
// just written is never removed for the staleness of the one it replaced.
func TestIndexCheckpointRacesCleaner(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, &Options{SegmentSize: 256 << 10, GCRatio: 1.25, GCDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 500
	path := filepath.Join(dir, IndexName)
	// In the window between a WriteIndex's rename and its directory
	// sync, the cleaner frees the log up to the new file's upTo (past
	// the old file's): the new file is still usable and must stay.
	indexAfterRename = func(db *DB) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("index checkpoint just renamed into place: %v", err)
			return
		}
		db.dropStaleIndex(binary.LittleEndian.Uint64(data[16:]))
	}
	defer func() { indexAfterRename = nil }()
	for round := range 60 {
		// Enough overwrites that the cleaner's next pass frees the log
		// the last checkpoint describes.
		for ver := range 6 {
			for i := range n {
				if err := db.Put(key(i), val(i, round*6+ver, 200), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for w := range 2 {
			wg.Go(func() { errs[w] = db.WriteIndex() })
		}
		wg.Go(func() { errs[2] = db.GC() })
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		db.index.Lock()
		there, upTo := db.index.there, db.index.upTo
		db.index.Unlock()
		data, err := os.ReadFile(path)
		switch {
		case there && err != nil:
			t.Fatalf("round %d: the store records an index checkpoint up to %d (log front %d), but: %v", round, upTo, db.log.Checkpoint(), err)
		case there && binary.LittleEndian.Uint64(data[16:]) != upTo:
			t.Fatalf("round %d: the file holds the log up to %d, the store records %d", round, binary.LittleEndian.Uint64(data[16:]), upTo)
		case !there && !errors.Is(err, os.ErrNotExist):
			t.Fatalf("round %d: the store records no index checkpoint, but the file is there (%v)", round, err)
		case there && upTo < db.log.Checkpoint():
			t.Fatalf("round %d: a stale checkpoint (up to %d, log front %d) left on disk", round, upTo, db.log.Checkpoint())
		}
	}
}
