package wal

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// TestAppendPacked: packed appends share a record until it would pass the
// limit, another kind of append comes between, or the flusher takes it;
// each returns the position of its own bytes; readers see one record with
// the bytes back to back, checksum verified, also after reopen.
func TestAppendPacked(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		ctx := context.Background()
		l, path := createWith(t, c, Options{Sync: SyncNever})
		l.batchForTest = true // keep everything staged until Flush
		var want [][]byte     // the payload of each record
		var parts []struct {
			pos  uint64
			data []byte
		}
		add := func(p []byte, limit int) {
			t.Helper()
			pos, err := l.AppendPacked(ctx, p, limit)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, struct {
				pos  uint64
				data []byte
			}{pos, p})
		}
		// Three parts in one record, then the limit starts a second.
		add(rec(1, 10), 100)
		add(rec(2, 20), 100)
		add(rec(3, 30), 100)
		want = append(want, bytes.Join([][]byte{rec(1, 10), rec(2, 20), rec(3, 30)}, nil))
		add(rec(4, 50), 100)
		want = append(want, rec(4, 50))
		// A plain append closes the packed record.
		if _, err := l.Append(ctx, rec(5, 7)); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec(5, 7))
		add(rec(6, 8), 100)
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// The flusher took it: a new record.
		add(rec(7, 9), 100)
		want = append(want, rec(6, 8), rec(7, 9))
		if _, err := l.AppendPacked(ctx, rec(8, 101), 100); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("a part over the limit: %v", err)
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			b, err := l.Bytes(p.pos, len(p.data))
			if err != nil || !bytes.Equal(b, p.data) {
				t.Fatalf("part at %d: %v", p.pos, err)
			}
		}
		check := func(l *Log) {
			t.Helper()
			_, got := readAll(t, l)
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("record %d: %x, want %x", i, got[i], want[i])
				}
			}
		}
		check(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2, err := Open(path, &Options{Backend: c.b})
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		check(l2)
	})
}

// TestPackedGroupCommit: writers that append packed records and wait for
// durability share syncs as Append's writers do: each packed append
// counts for the flusher's batching rule even when it joined a record.
func TestPackedGroupCommit(t *testing.T) {
	l, _ := createWith(t, config{b: pager.Auto, layout: Growing}, Options{Sync: SyncNever})
	defer l.Close()
	syncData = func(r *ring.Ring) error {
		time.Sleep(2 * time.Millisecond) // a slow disk: writers pile up
		return r.SyncData()
	}
	defer func() { syncData = (*ring.Ring).SyncData }()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				p := rec(w*1000+i, 100)
				pos, err := l.AppendPacked(ctx, p, 64<<10)
				if err == nil {
					err = l.WaitDurable(ctx, pos+uint64(len(p)))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	m := l.Metrics()
	if m.Syncs == 0 || m.SyncedRecords < 400 || float64(m.SyncedRecords)/float64(m.Syncs) < 3 {
		t.Fatalf("%d packed appends by 8 writers took %d syncs (%d records synced)", 400, m.Syncs, m.SyncedRecords)
	}
	t.Logf("%.1f appends per sync", float64(m.SyncedRecords)/float64(m.Syncs))
}
