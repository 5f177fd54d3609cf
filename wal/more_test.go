package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringlog/ringlog/internal/invariants"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// TestTruncateFrontReusesSpace writes several times the capacity through a
// bounded log, truncating behind, and reopens it.
func TestTruncateFrontReusesSpace(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		ctx := context.Background()
		l, path := createWith(t, c, Options{Capacity: 256 << 10, Sync: SyncNever})
		var positions []uint64
		var sizes []int
		for i := 0; i < 3000; i++ {
			size := (i * 37) % 700
			p, err := l.Append(ctx, rec(i, size))
			if err != nil {
				t.Fatal(err)
			}
			positions, sizes = append(positions, p), append(sizes, size)
			if i%100 == 99 {
				if err := l.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if err := l.TruncateFront(positions[i-50]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if l.Written() < 3*(256<<10) {
			t.Fatalf("only %d bytes written through a 256 KiB log", l.Written())
		}
		if err := l.TruncateFront(positions[10] + 8); !errors.Is(err, ErrRange) && !errors.Is(err, ErrNotRecord) {
			t.Fatalf("truncating at an old position: %v", err)
		}
		cp := l.Checkpoint()
		if err := l.TruncateFront(cp + 8); !errors.Is(err, ErrNotRecord) {
			t.Fatalf("truncating inside a record: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path, &Options{Backend: c.b, Recovery: RecoverStrict})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		pos, data := readAll(t, l)
		first := 2949 // the last truncation, at i = 2999
		if len(data) != 3000-first || pos[0] != positions[first] {
			t.Fatalf("after reopen: %d records from %d, want %d from %d", len(data), pos[0], 3000-first, positions[first])
		}
		for i := range data {
			if !bytes.Equal(data[i], rec(first+i, sizes[first+i])) {
				t.Fatalf("record %d differs", first+i)
			}
		}
	})
}

// TestCancelWhileFull: an append whose context ends while the log is full
// appends nothing.
func TestCancelWhileFull(t *testing.T) {
	l, _ := createLog(t, pager.Auto, Options{Capacity: 128 << 10, Sync: SyncNever, BufferSize: 16 << 10})
	defer l.Close()
	var appended []uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		p, err := l.Append(ctx, rec(len(appended), 3000))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		appended = append(appended, p)
		if len(appended) > 1000 {
			t.Fatal("a 128 KiB log took more than 1000 records of 3000 bytes")
		}
	}
	// Make room: every record that reported success is there, the one
	// that failed is not.
	l.TruncateFront(l.Checkpoint())
	if err := l.TruncateFront(appended[0]); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFront(appended[len(appended)/2]); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	pos, _ := readAll(t, l)
	if len(pos) != len(appended)-len(appended)/2 || pos[len(pos)-1] != appended[len(appended)-1] {
		t.Fatalf("read %d records ending at %d; appended %d ending at %d", len(pos), pos[len(pos)-1], len(appended)-len(appended)/2, appended[len(appended)-1])
	}
}

// TestFailedSync: after a failed fdatasync every waiter of that sync gets
// the error and the log refuses writes.
func TestFailedSync(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		l, path := createWith(t, c, Options{Sync: SyncAlways})
		ctx := context.Background()
		if _, err := l.Append(ctx, rec(0, 100)); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("injected EIO")
		syncData = func(*ring.Ring) error { return boom }
		defer func() { syncData = (*ring.Ring).SyncData }()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = l.Append(ctx, rec(i+1, 100)) })
		}
		wg.Wait()
		for i, err := range errs {
			// Covered by the failed sync (not durable), or arrived after
			// it (refused): either way the cause is named.
			if !(errors.Is(err, ErrNotDurable) || errors.Is(err, ErrFailed)) || !errors.Is(err, boom) {
				t.Fatalf("writer %d: %v", i, err)
			}
		}
		syncData = (*ring.Ring).SyncData
		if _, err := l.Append(ctx, rec(9, 10)); !errors.Is(err, ErrFailed) {
			t.Fatalf("append after a failed sync: %v", err)
		}
		if err := l.Sync(ctx); !errors.Is(err, ErrFailed) {
			t.Fatalf("sync after a failed sync: %v", err)
		}
		if err := l.Close(); !errors.Is(err, ErrFailed) {
			t.Fatalf("close after a failed sync: %v", err)
		}
		// The next process cannot know: it rewrites what follows the last
		// proven sync before accepting appends.
		l, err := Open(path, &Options{Backend: c.b})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if rep := l.Report(); rep.Rewritten == 0 || rep.Records < 2 {
			t.Fatalf("reopen after a failed sync: %v", rep)
		}
	})
}

// TestFlipDetected: a byte changed under a live log is reported by the
// reader as corruption naming the file offset.
func TestFlipDetected(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		l, _ := createWith(t, c, Options{Sync: SyncNever})
		defer l.Close()
		ctx := context.Background()
		var target uint64
		for i := 0; i < 20; i++ {
			p, _ := l.Append(ctx, rec(i, 500))
			if i == 12 {
				target = p
			}
		}
		l.Flush(ctx)
		raw, err := l.r.Raw(target+headerSize+77, 1)
		if err != nil {
			t.Fatal(err)
		}
		raw[0] ^= 4
		rd, err := l.NewReader(l.Checkpoint(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		n := 0
		for range rd.All() {
			n++
		}
		err = rd.Err()
		if n != 12 || !IsCorruption(err) || !bytes.Contains([]byte(err.Error()), []byte("position "+strconv.FormatUint(target, 10)+" (file offset")) {
			t.Fatalf("read %d records, then %v", n, err)
		}
	})
}

// TestConcurrentWritersAndReader: writers append from several goroutines
// while a reader follows; every record arrives once, intact, each writer's
// in order. Run with -race (the Copy backend keeps the log on the heap).
func TestConcurrentWritersAndReader(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		seed := rand.Uint64()
		if s := os.Getenv("RINGLOG_SEED"); s != "" {
			seed, _ = strconv.ParseUint(s, 10, 64)
		}
		t.Logf("seed %d", seed)
		l, _ := createWith(t, c, Options{Capacity: 4 << 20, Sync: SyncInterval, SyncInterval: time.Millisecond})
		defer l.Close()
		ctx := context.Background()
		const writers, each = 4, 400
		var appended atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(seed, uint64(w)))
				for k := 0; k < each; k++ {
					size := 16 + rng.IntN(2000)
					var err error
					switch rng.IntN(4) {
					case 0:
						_, err = l.AppendSync(ctx, payloadFor(w, k, size))
					case 1:
						_, err = l.AppendBatch(ctx, [][]byte{payloadFor(w, k, size), payloadFor(w, k+1, 16)})
						k++
						appended.Add(1)
					default:
						_, err = l.Append(ctx, payloadFor(w, k, size))
					}
					appended.Add(1)
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); l.Flush(ctx); close(done) }()
		rd, err := l.NewReader(l.Checkpoint(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		next := make([]int, writers)
		total := 0
		finished := false
		for !finished {
			select {
			case <-done:
				finished = true
			default:
			}
			for _, data := range rd.All() {
				w, k := int(binary.LittleEndian.Uint64(data)), int(binary.LittleEndian.Uint64(data[8:]))
				if w >= writers || k != next[w] || !bytes.Equal(data, payloadFor(w, k, len(data))) {
					t.Fatalf("record of writer %d number %d, expected number %d", w, k, next[w])
				}
				next[w]++
				total++
			}
			if err := rd.Err(); err != nil {
				t.Fatal(err)
			}
		}
		if total != int(appended.Load()) {
			t.Fatalf("read %d records, appended %d", total, appended.Load())
		}
		if m := l.Metrics(); m.Appends != uint64(total) || m.Syncs == 0 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// TestInvariantsCatchAModifiedSlice: in builds with the invariants tag, a
// reader checks the previous record again on its next call, so a slice
// written to (or used past its lifetime) is caught.
func TestInvariantsCatchAModifiedSlice(t *testing.T) {
	if !invariants.Enabled {
		t.Skip("needs -tags invariants")
	}
	forEachConfig(t, func(t *testing.T, c config) {
		l, _ := createWith(t, c, Options{Sync: SyncNever})
		defer l.Close()
		ctx := context.Background()
		l.Append(ctx, rec(1, 100))
		l.Append(ctx, rec(2, 100))
		l.Flush(ctx)
		rd, _ := l.NewReader(l.Checkpoint(), nil)
		defer rd.Close()
		rd.Next()
		_, b := rd.Record()
		b[3] ^= 1 // the caller scribbles on a slice it must not modify
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "modified or used past its lifetime") {
				t.Fatalf("recovered %v", r)
			}
		}()
		rd.Next()
		t.Fatal("a modified record went unnoticed")
	})
}
