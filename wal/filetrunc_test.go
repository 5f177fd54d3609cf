//go:build linux

package wal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// TestReaderFileTruncated: a reader of a log whose file another process
// truncated under the mapping gets an error naming the file, where its
// access to the mapping would otherwise kill the process with SIGBUS
// (the log's records past the cut are in pages the file no longer has).
func TestReaderFileTruncated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		for _, layout := range []Layout{Bounded, Growing} {
			t.Run(layout.String(), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "log")
				o := &Options{Backend: b, Layout: layout, Capacity: 1 << 20}
				if layout == Growing {
					o.SegmentSize, o.Capacity = 64<<10, 16<<16
				}
				l, err := Create(path, o)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				// A consumer that will have read every record and
				// acknowledged none.
				c, err := l.Consumer("c", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				var poses []uint64
				for k := range 200 {
					pos, err := l.AppendSync(context.Background(), payloadFor(0, k, 2000))
					if err != nil {
						t.Fatal(err)
					}
					poses = append(poses, pos)
				}
				for c.Next() {
				}
				if err := c.Err(); err != nil {
					t.Fatal(err)
				}
				rd, err := l.NewReader(l.Checkpoint(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer rd.Close()
				if !rd.Next() {
					t.Fatal(rd.Err())
				}
				// Cut at a page boundary a third of the way: the pages after
				// it are gone from every mapping of the file.
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				cut := fi.Size() / 3 / int64(pager.PageSize) * int64(pager.PageSize)
				if err := os.Truncate(path, cut); err != nil {
					t.Fatal(err)
				}
				n := 1
				for rd.Next() {
					n++
				}
				last := poses[len(poses)-1]
				if b == pager.Copy {
					// The heap copy is unaffected.
					if rd.Err() != nil || n != len(poses) {
						t.Fatalf("copy backend: read %d of %d records: %v", n, len(poses), rd.Err())
					}
					return
				}
				if err := rd.Err(); err == nil || !strings.Contains(err.Error(), path) {
					t.Fatalf("read %d of %d records past a cut at offset %d, then: %v", n, len(poses), cut, err)
				}
				// Seeking to a record past the cut reads its header: an
				// error too.
				if _, err := l.NewReader(last, nil); !errors.Is(err, pager.ErrFault) || !strings.Contains(err.Error(), path) {
					t.Fatalf("reader at %d (file offset %d) past a cut at %d: %v", last, l.FileOffset(last), cut, err)
				}
				// Acknowledging up to a record past the cut (not the
				// consumer's current one) checks its header: an error too.
				at := poses[len(poses)-2]
				if err := c.Ack(at); !errors.Is(err, pager.ErrFault) || !strings.Contains(err.Error(), path) {
					t.Fatalf("acknowledging %d (file offset %d) past a cut at %d: %v", at, l.FileOffset(at), cut, err)
				}
			})
		}
	})
}
