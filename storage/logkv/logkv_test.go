package logkv

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ringlog/ringlog/internal/testkit"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/wal"
)

var (
	backends       = testkit.Backends
	forEachBackend = testkit.ForEachBackend
)

func key(i int) []byte { return []byte(fmt.Sprintf("key-%08d", i)) }

// val is a value that says which key and version it is.
func val(i, ver, n int) []byte {
	b := make([]byte, n)
	copy(b, fmt.Sprintf("%d/%d/", i, ver))
	for j := len(fmt.Sprintf("%d/%d/", i, ver)); j < n; j++ {
		b[j] = byte(i + ver*7 + j)
	}
	return b
}

// TestGCKeepsDataAndBoundsTheLog overwrites keys many times with small
// segments: the cleaner must keep the log near GCRatio times the live
// bytes, and every key must read its last value, also after reopen.
func TestGCKeepsDataAndBoundsTheLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		dir := t.TempDir()
		o := &Options{Backend: b, SegmentSize: 256 << 10, GCRatio: 1.25, GCDisabled: true}
		db, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		const n = 2000
		ver := make([]int, n)
		rng := rand.New(rand.NewPCG(1, 2))
		for round := range 10 {
			for range n {
				i := rng.IntN(n)
				ver[i]++
				if err := db.Put(key(i), val(i, ver[i], 100), nil); err != nil {
					t.Fatal(err)
				}
			}
			if round%3 == 2 {
				i := rng.IntN(n)
				ver[i] = -1
				if err := db.Delete(key(i), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.GC(); err != nil {
				t.Fatal(err)
			}
		}
		check := func(db *DB) {
			t.Helper()
			for i := range n {
				v, err := db.Get(key(i), nil)
				switch {
				case ver[i] <= 0 && !errors.Is(err, storage.ErrNotFound):
					t.Fatalf("key %d (never written or deleted): %q, %v", i, v, err)
				case ver[i] > 0 && (err != nil || !bytes.Equal(v, val(i, ver[i], 100))):
					t.Fatalf("key %d: %.20q, %v; want version %d", i, v, err, ver[i])
				}
			}
		}
		check(db)
		st := db.Stats()
		span := db.mu.end - db.mu.pin.Position()
		if st.GCRuns == 0 || float64(span) > 1.25*float64(db.mu.live)+float64(db.segSize) {
			t.Fatalf("after GC: %d runs, log span %d for %d live bytes", st.GCRuns, span, db.mu.live)
		}
		var sum int64
		for _, s := range db.Segments() {
			sum += s.LiveBytes
		}
		if sum != db.mu.live {
			t.Fatalf("segments hold %d live bytes, the store counts %d", sum, db.mu.live)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err = Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		check(db)
		if db.Stats().Keys == 0 {
			t.Fatal("no keys after reopen")
		}
	})
}

// TestBackgroundGC: with the cleaner running by itself, overwriting a key
// set many times keeps the file from growing with the bytes written.
func TestBackgroundGC(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, &Options{SegmentSize: 256 << 10, GCRatio: 1.25})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 1000
	const versions = 80
	for ver := range versions {
		for i := range n {
			if err := db.Put(key(i), val(i, ver, 200), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.GC(); err != nil {
		t.Fatal(err)
	}
	// Bound: the cleaner's trigger (1.25 times the live bytes) plus the
	// stall margin, in segments of 256 KiB and a 64 KiB header each, and
	// a couple of segments being written and recycled.
	written := int64(versions * n * 240)
	live := int64(n * 240)
	segs := (live*5/4)/(256<<10) + stallSegments + 4
	if st := db.Stats(); st.DiskBytes > segs*(320<<10)+(1<<20) || st.GCRuns == 0 {
		t.Fatalf("wrote %d bytes of records; the file takes %d (bound %d), after %d cleaner runs", written, st.DiskBytes, segs*(320<<10)+(1<<20), st.GCRuns)
	}
	if err := db.GCError(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if v, err := db.Get(key(i), nil); err != nil || !bytes.Equal(v, val(i, versions-1, 200)) {
			t.Fatalf("key %d: %v", i, err)
		}
	}
}

// TestViewSurvivesGC: a zero-copy value keeps its bytes while the key is
// overwritten and the cleaner frees and recycles the segments around it.
func TestViewSurvivesGC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		db, err := Open(t.TempDir(), &Options{Backend: b, SegmentSize: 256 << 10, Capacity: 64 << 20, GCDisabled: true})
		if err != nil {
			t.Fatal(err)
		}
		want := val(7, 0, 3000)
		if err := db.Put(key(7), want, nil); err != nil {
			t.Fatal(err)
		}
		v, err := db.GetView(key(7))
		if err != nil {
			t.Fatal(err)
		}
		snap, err := db.NewSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		for ver := 1; ver < 300; ver++ {
			for i := range 20 {
				if err := db.Put(key(i), val(i, ver, 3000), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.GC(); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(v.Bytes(), want) {
			t.Fatal("a held value changed under the cleaner")
		}
		if got, err := snap.Get(key(7), nil); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("snapshot: %v", err)
		}
		if err := db.Close(); err == nil {
			t.Fatal("Close with a value and a snapshot out succeeded")
		}
		v.Release()
		if v.Bytes() != nil {
			t.Fatal("Bytes after Release")
		}
		snap.Close()
		if got, err := db.Get(key(7), nil); err != nil || !bytes.Equal(got, val(7, 299, 3000)) {
			t.Fatalf("after: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCorruptEntry: a byte flipped in a value on disk is reported by Get
// with the file and the position, not returned.
func TestCorruptEntry(t *testing.T) {
	b := pager.DefaultBackend(false)
	if b == pager.Copy {
		t.Skip("the copy backend reads the file once, at open: damage after that is not seen (recovery sees it at the next open)")
	}
	dir := t.TempDir()
	db, err := Open(dir, &Options{Backend: b, GCDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("abcdefgh"), 100)
	if err := db.Put([]byte("k"), want, storage.Synced); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, LogName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := os.ReadFile(filepath.Join(dir, LogName))
	if err != nil {
		t.Fatal(err)
	}
	off := bytes.Index(data, want)
	if off < 0 {
		t.Fatal("value not found in the file")
	}
	if _, err := f.WriteAt([]byte{'X'}, int64(off+10)); err != nil {
		t.Fatal(err)
	}
	_, err = db.Get([]byte("k"), nil)
	// The entry starts 9 bytes before its value: CRC 4, kind 1, key
	// length 1, value length 2 (800), key 1.
	where := fmt.Sprintf("file offset %d", off-9)
	if !errors.Is(err, storage.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(LogName)) || !bytes.Contains([]byte(err.Error()), []byte(where)) {
		t.Fatalf("Get of a damaged value: %v", err)
	}
	db.Close()
}

// TestIndexMemory measures the index's memory per key (16-byte keys) and
// checks the figure indexBytesPerKey that Stats reports.
func TestIndexMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	db, err := Open(t.TempDir(), &Options{GCDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 200_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	k := make([]byte, 16)
	for i := range n {
		copy(k, fmt.Sprintf("%016d", i*7919%n))
		db.mu.Lock()
		db.applyLocked(uint64(i)*160, appendEntry(nil, storage.KindPut, k, nil))
		db.mu.Unlock()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("index memory: %.1f bytes per 16-byte key (%d keys)", per, n)
	if per > 1.5*indexBytesPerKey || per < indexBytesPerKey/2 {
		t.Fatalf("%.1f bytes per key; Stats assumes %d", per, indexBytesPerKey)
	}
}

// TestFullLogFailsWrites: a value held while the log fills up keeps its
// space; writes then fail with ErrFull instead of blocking, and succeed
// again once it is released and the cleaner runs.
func TestFullLogFailsWrites(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{SegmentSize: 256 << 10, Capacity: 2 << 20, GCDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Put(key(0), val(0, 0, 1000), nil); err != nil {
		t.Fatal(err)
	}
	v, err := db.GetView(key(0))
	if err != nil {
		t.Fatal(err)
	}
	var full error
	for ver := 1; ver < 10000 && full == nil; ver++ {
		full = db.Put(key(1), val(1, ver, 1000), nil)
		if full == nil {
			full = db.GC()
		}
	}
	if !errors.Is(full, wal.ErrFull) {
		t.Fatalf("writing past the capacity with a value held: %v", full)
	}
	if !bytes.Equal(v.Bytes(), val(0, 0, 1000)) {
		t.Fatal("the held value changed")
	}
	v.Release()
	if err := db.GC(); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(key(1), val(1, 0, 1000), nil); err != nil {
		t.Fatalf("after the value was released and the log cleaned: %v", err)
	}
}

// TestIndexCheckpoint: Close writes the index; Open loads it and replays
// only what came after; a damaged checkpoint, or one older than a
// truncation of the log, is not used, and the store is still right.
func TestIndexCheckpoint(t *testing.T) {
	dir := t.TempDir()
	o := &Options{SegmentSize: 256 << 10, GCDisabled: true}
	db, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	want := map[int]int{}
	for i := range n {
		want[i] = 0
		if err := db.Put(key(i), val(i, 0, 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	check := func(db *DB) {
		t.Helper()
		for i := range n {
			v, err := db.Get(key(i), nil)
			ver, ok := want[i]
			if !ok {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("deleted key %d: %v", i, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(v, val(i, ver, 100)) {
				t.Fatalf("key %d: %v", i, err)
			}
		}
		if got := db.Stats().Keys; got != int64(len(want)) {
			t.Fatalf("%d keys, want %d", got, len(want))
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reopen := func() *DB {
		t.Helper()
		db, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db = reopen()
	if r := db.Report(); !r.IndexLoaded || r.Replayed != 0 {
		t.Fatalf("reopen after Close: %+v", r)
	}
	check(db)
	// Writes after the checkpoint are replayed over it.
	for i := 0; i < n; i += 3 {
		want[i] = 1
		db.Put(key(i), val(i, 1, 100), nil)
	}
	for i := 1; i < n; i += 7 {
		delete(want, i)
		db.Delete(key(i), nil)
	}
	if err := db.WriteIndex(); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < n; i += 5 {
		want[i] = 2
		db.Put(key(i), val(i, 2, 100), nil)
	}
	db.o.NoIndexCheckpoint = true // as if the process died: the older index stays
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = reopen()
	if r := db.Report(); !r.IndexLoaded || r.Replayed == 0 {
		t.Fatalf("reopen with writes after the index: %+v", r)
	}
	check(db)
	// The cleaner truncates past the index: deletes it held are gone from
	// the log, so the index must not be used. The cleaner removes it; a
	// copy put back (a removal a crash undid) must be refused by Open,
	// and removed.
	path := filepath.Join(dir, IndexName)
	stale, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i < n; i += 11 {
		delete(want, i)
		db.Delete(key(i), nil)
	}
	for ver := 3; ver < 8; ver++ {
		for i := 0; i < n; i += 2 {
			if _, ok := want[i]; ok {
				want[i] = ver
				db.Put(key(i), val(i, ver, 100), nil)
			}
		}
	}
	if err := db.GC(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("index checkpoint older than the log's front still there after GC: %v", err)
	}
	db.o.NoIndexCheckpoint = true
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, stale, 0o600); err != nil {
		t.Fatal(err)
	}
	db = reopen()
	if r := db.Report(); r.IndexLoaded || !errors.Is(r.IndexError, errIndex) {
		t.Fatalf("reopen with an index older than the log's checkpoint: %+v", r)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale index checkpoint still there after Open refused it: %v", err)
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A damaged index: one byte flipped.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db = reopen()
	defer db.Close()
	if r := db.Report(); r.IndexLoaded || !errors.Is(r.IndexError, errIndex) || !bytes.Contains([]byte(r.IndexError.Error()), []byte("offset")) {
		t.Fatalf("reopen with a damaged index: %+v", r)
	}
	check(db)
}
