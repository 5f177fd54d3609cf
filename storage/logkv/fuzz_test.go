package logkv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidwall/btree"

	"github.com/ringlog/ringlog/storage"
)

// FuzzEntries: any bytes parse as a record payload without panicking or
// reading past them; whatever parses with checksums on re-encodes to the
// same bytes.
func FuzzEntries(f *testing.F) {
	var rec []byte
	rec = appendEntry(rec, storage.KindPut, []byte("key"), []byte("value"))
	rec = appendEntry(rec, storage.KindDelete, []byte("gone"), nil)
	rec = appendEntry(rec, storage.KindPut, nil, nil)
	f.Add(rec)
	f.Add([]byte{0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out []byte
		err := entries(b, true, func(off int, e entry) error {
			if off+e.size > len(b) || len(e.key) > storage.MaxKeySize || len(e.value) > storage.MaxValueSize {
				t.Fatalf("entry at %d of %d bytes past the %d-byte payload", off, e.size, len(b))
			}
			out = appendEntry(out, e.kind, e.key, e.value)
			return nil
		})
		if err == nil && !bytes.Equal(out, b) {
			t.Fatalf("parsed and re-encoded differ:\n%x\n%x", b, out)
		}
	})
}

// FuzzIndex: any bytes as the index checkpoint load or are refused with
// errIndex, never panic, and what loads is in key order.
func FuzzIndex(f *testing.F) {
	dir := f.TempDir()
	db, err := Open(dir, &Options{SegmentSize: 256 << 10, GCDisabled: true})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 20 {
		db.Put([]byte{byte(i), 'k'}, bytes.Repeat([]byte{byte(i)}, i), nil)
	}
	db.Delete([]byte{3, 'k'}, nil)
	if err := db.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, IndexName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, IndexName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		db := &DB{dir: d, segSize: 256 << 10}
		db.mu.tree = btree.NewBTreeGOptions(less, btree.Options{NoLocks: true})
		db.mu.segs.segSize = db.segSize
		if _, err := db.loadIndex(); err != nil {
			if !errors.Is(err, errIndex) {
				t.Fatalf("not errIndex: %v", err)
			}
			return
		}
		var prev *item
		db.mu.tree.Scan(func(it item) bool {
			if prev != nil && !less(*prev, it) {
				t.Fatalf("loaded out of order: %q then %q", prev.key, it.key)
			}
			p := it
			prev = &p
			return true
		})
	})
}
