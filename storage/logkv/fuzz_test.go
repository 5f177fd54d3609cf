package logkv

import (
	"bytes"
	"testing"

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
