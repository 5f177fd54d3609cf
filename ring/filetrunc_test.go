package ring

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// TestSyncAfterFileTruncated: once another process truncated the file,
// a sync fails (and every later one) instead of making durable what the
// file no longer holds, even after a write extended the file again.
func TestSyncAfterFileTruncated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		for _, growing := range []bool{false, true} {
			var r *Ring
			var path string
			if growing {
				r, path = createGrowing(t, b, 8)
			} else {
				r, path = create(t, b, 4*testCap)
			}
			c, err := r.Consumer("c", nil) // retains what is written
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := range 8 {
				produce(t, r, pattern(i, testCap/4))
			}
			if err := r.SyncData(); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, dataOff+testCap/2); err != nil {
				t.Fatal(err)
			}
			// A write at the head (past the new end) with pwrite, as the
			// log's flusher writes, extends the file again; one that needs
			// a new segment (growing) fails first.
			if _, err := r.TryWrite(pattern(8, 100)); err != nil && (!growing || !errors.Is(err, pager.ErrTruncated)) {
				t.Fatalf("growing=%v: write after the file was truncated: %v", growing, err)
			}
			for range 2 {
				if err := r.SyncData(); !errors.Is(err, pager.ErrTruncated) || !strings.Contains(err.Error(), path) {
					t.Fatalf("growing=%v: sync after the file was truncated: %v", growing, err)
				}
			}
		}
	})
}
