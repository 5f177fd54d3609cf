package logkv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringlog/ringlog/storage"
)

// TestDiskFull fills a small file system (a tmpfs of 6 MiB, mounted for
// the test; skipped where mounting is not allowed) with synced writes
// while the cleaner runs: writes end with ENOSPC, every acknowledged write
// can still be read, and after reopening.
func TestDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=6m"); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	o := &Options{SegmentSize: 256 << 10, Capacity: 64 << 20}
	db, err := Open(mnt, o)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[int]int{} // key -> version acknowledged
	var werr error
	failedKey, failedVer := -1, -1 // the write that failed: it may or may not be there
	for i := 0; werr == nil && i < 100000; i++ {
		k, ver := i, 0
		if i%3 != 0 {
			k, ver = i%50, i // overwrites: garbage for the cleaner
		}
		if werr = db.Put(key(k), val(k, ver, 2000), storage.Synced); werr == nil {
			acked[k] = ver
		} else {
			failedKey, failedVer = k, ver
		}
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("filling the disk ended with %v, want ENOSPC", werr)
	}
	if db.Stats().GCRuns == 0 {
		t.Fatal("the cleaner never ran")
	}
	// In the failed store a read of the failed write's key may fail (its
	// entry was never written), but no read returns wrong bytes; after
	// reopening every acknowledged write is there.
	check := func(db *DB, reopened bool) {
		t.Helper()
		for k, ver := range acked {
			v, err := db.Get(key(k), nil)
			switch {
			case err != nil && !reopened && k == failedKey:
			case err == nil && k == failedKey && bytes.Equal(v, val(k, failedVer, 2000)):
			case err != nil || !bytes.Equal(v, val(k, ver, 2000)):
				t.Fatalf("key %d (version %d acknowledged): %.16q %v", k, ver, v, err)
			}
		}
	}
	check(db, false)
	t.Logf("disk full after %d acknowledged keys: %v; close: %v", len(acked), werr, db.Close())
	db, err = Open(mnt, o)
	if err != nil {
		t.Fatalf("reopen on the full disk: %v", err)
	}
	defer db.Close()
	check(db, true)
}
