package logkv

import (
	"testing"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/storagetest"
)

// TestConformance runs the engines' conformance suite over every backend,
// with small segments so the cleaner has work to do.
func TestConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		if raceEnabled && b != pager.Copy {
			// The race detector sees the Go heap only: the copy backend's
			// view is there, the mapped backends' views are not. The
			// suite runs on every backend without -race.
			t.Skip("under -race the suite runs on the copy backend")
		}
		storagetest.Run(t, storagetest.Config{
			Name: "ringlog",
			Options: func() any {
				o := &Options{Backend: b}
				if b == pager.Copy {
					o.Capacity = 8 * DefaultSegmentSize // the view is on the heap
				}
				return o
			},
			Reclaim: func(e storage.Engine) error { return e.(*DB).GC() },
		})
	})
}
