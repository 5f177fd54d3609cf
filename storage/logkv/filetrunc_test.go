package logkv

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// TestReadsOfFileCutShort: the store's log file cut short under the open
// store (by another process, or a disk gone bad) makes reads of the cut
// entries errors naming the file, not a SIGBUS: Get, a snapshot's Get,
// and the cleaner.
func TestReadsOfFileCutShort(t *testing.T) {
	for _, b := range []pager.Backend{pager.Remap, pager.Mmap} {
		t.Run(b.String(), func(t *testing.T) {
			if err := pager.Available(b); err != nil {
				t.Skip(err)
			}
			db, err := Open(t.TempDir(), &Options{Backend: b, SegmentSize: 256 << 10, GCRatio: 1.25, GCDisabled: true, NoIndexCheckpoint: true})
			if err != nil {
				t.Fatal(err)
			}
			const n = 3000
			for i := range n {
				if err := db.Put(key(i), val(i, 0, 100), nil); err != nil {
					t.Fatal(err)
				}
			}
			for ver := 1; ver <= 3; ver++ { // garbage for the cleaner
				for i := range n / 2 {
					if err := db.Put(key(i), val(i, ver, 100), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := db.Sync(); err != nil {
				t.Fatal(err)
			}
			snap, err := db.NewSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			// Cut the file at the page of the last key's entry: past the
			// ring's header region (64 KiB), which is not guarded.
			last, _ := db.mu.tree.Get(probe(key(n - 1)))
			off := db.log.FileOffset(last.pos) &^ 4095
			if off < 64<<10 {
				t.Fatalf("entry at file offset %d, inside the header region", off)
			}
			if err := os.Truncate(db.path, off); err != nil {
				t.Fatal(err)
			}
			fault := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, pager.ErrFault) || !strings.Contains(err.Error(), db.path) {
					t.Fatalf("%s of an entry cut off: %v; want a fault naming %s", what, err, db.path)
				}
			}
			_, err = db.Get(key(n-1), nil)
			fault("Get", err)
			_, err = snap.Get(key(n-1), nil)
			fault("snapshot Get", err)
			if v, err := db.Get(key(n/2), nil); err != nil || string(v) != string(val(n/2, 0, 100)) {
				t.Fatalf("Get of a key before the cut: %.20q, %v", v, err)
			}
			snap.Close()
			// The cleaner meets the cut reading, or its sync finds the file
			// shorter than the log: either way an error naming the file.
			if err := db.GC(); err == nil || !(errors.Is(err, pager.ErrFault) || errors.Is(err, pager.ErrTruncated)) || !strings.Contains(err.Error(), db.path) {
				t.Fatalf("GC over a cut: %v", err)
			}
			db.Close() // may report the damage; must not crash
		})
	}
}
