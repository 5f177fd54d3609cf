package pebblekv_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/pebblekv"
	"github.com/ringlog/ringlog/storage/storagetest"
)

func compactAll(e storage.Engine) error {
	return e.(*pebblekv.DB).Compact(context.Background())
}

// TestConformance runs the conformance suite on the default
// configuration.
func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Config{Name: "pebble", Reclaim: compactAll})
}

// TestConformanceSmallMemTable runs it with memtables and a cache small
// enough that the suite's writes flush and compact on their own, beside
// its reads.
func TestConformanceSmallMemTable(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storagetest.Run(t, storagetest.Config{
		Name: "pebble",
		Options: func() any {
			return &pebblekv.Options{MemTableSize: 256 << 10, CacheSize: 1 << 20, MaxConcurrentCompactions: 2}
		},
		Reclaim: compactAll,
	})
}

func TestRegistryOptions(t *testing.T) {
	for _, opts := range []any{nil, (*pebblekv.Options)(nil), &pebblekv.Options{CacheSize: 8 << 20}, &pebblekv.Options{Pebble: &pebble.Options{}}} {
		e, err := storage.Open("pebble", t.TempDir(), opts)
		if err != nil {
			t.Fatalf("Open with %T %v: %v", opts, opts, err)
		}
		if _, ok := e.(*pebblekv.DB); !ok {
			t.Fatalf("Open returned a %T", e)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, opts := range []any{pebblekv.Options{}, &pebble.Options{}, "cache=1G", 42} {
		e, err := storage.Open("pebble", t.TempDir(), opts)
		if !errors.Is(err, storage.ErrBadOption) {
			t.Errorf("Open with %T: %v, want ErrBadOption", opts, err)
		}
		if e != nil {
			e.Close()
		}
	}
	if _, err := storage.Open("pebble", t.TempDir(), &pebblekv.Options{CacheSize: -1}); !errors.Is(err, storage.ErrBadOption) {
		t.Errorf("Open with a negative CacheSize: %v, want ErrBadOption", err)
	}
}

// TestCloseWithOpenReaders checks that Close closes iterators and
// snapshots left open, says so, and that they then fail cleanly.
func TestCloseWithOpenReaders(t *testing.T) {
	db, err := pebblekv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Put([]byte("k"), []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() {
		t.Fatal("First found nothing")
	}
	snap, err := db.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	sit, err := snap.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err == nil {
		t.Fatal("Close with an open iterator and snapshot returned no error")
	} else {
		t.Logf("Close: %v", err)
	}
	for _, it := range []storage.Iterator{it, sit} {
		if it.Valid() || it.First() || it.Next() || it.SeekGE([]byte("k")) || it.Key() != nil {
			t.Error("iterator closed by Close still moves")
		}
		if err := it.Error(); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("iterator Error after Close = %v, want ErrClosed", err)
		}
		if err := it.Close(); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("iterator Close after Close = %v, want ErrClosed", err)
		}
	}
	if _, err := snap.Get([]byte("k"), nil); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("snapshot Get after Close = %v, want ErrClosed", err)
	}
	if _, err := snap.NewIter(nil); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("snapshot NewIter after Close = %v, want ErrClosed", err)
	}
	if err := snap.Close(); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("snapshot Close after Close = %v, want ErrClosed", err)
	}
	if err := db.Compact(context.Background()); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Compact after Close = %v, want ErrClosed", err)
	}
}

func TestStatsAndCompact(t *testing.T) {
	db, err := pebblekv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 1000)
	for round := range 3 {
		var b storage.Batch
		for i := range 2000 {
			b.Put([]byte{byte(i >> 8), byte(i), byte(round)}, val)
			b.Delete([]byte{byte(i >> 8), byte(i), byte(round - 1)})
		}
		if err := db.Apply(&b, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Get([]byte{0, 1, 2}, nil); err != nil {
		t.Fatal(err)
	}
	s := db.Stats()
	if s.Engine != "pebble" || s.Keys != -1 || s.LiveBytes != -1 || s.Batches != 3 || s.Gets != 1 || s.Puts != 0 {
		t.Errorf("Stats = %+v", s)
	}
	if s.DiskBytes <= 0 || s.IndexBytes <= 0 || s.GCRuns < 1 || s.GCBytesCopied <= 0 {
		t.Errorf("after writes and compactions: Stats = %+v, want positive DiskBytes, IndexBytes, GCRuns, GCBytesCopied", s)
	}
	if n := db.Pebble().Metrics().Levels[0].TablesCount; n != 0 {
		t.Errorf("L0 holds %d tables after Compact, want 0", n)
	}
}

// TestPebbleKeys checks the keys as Pebble holds them: each followed by a
// zero byte.
func TestPebbleKeys(t *testing.T) {
	db, err := pebblekv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"", "a", "a\x00"} {
		if err := db.Put([]byte(k), []byte("v:"+k), nil); err != nil {
			t.Fatal(err)
		}
	}
	it, err := db.Pebble().NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ok := it.First(); ok; ok = it.Next() {
		got = append(got, string(it.Key()))
	}
	it.Close()
	want := []string{"\x00", "a\x00", "a\x00\x00"}
	if len(got) != len(want) {
		t.Fatalf("Pebble keys %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("Pebble keys %q, want %q", got, want)
		}
	}
}
