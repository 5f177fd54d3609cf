package wal

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
)

// TestConsumer: a named consumer reads, acknowledges, keeps its position
// across reopen, is listed with its lag, and holds records valid until it
// acknowledges them.
func TestConsumer(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		ctx := context.Background()
		l, path := createWith(t, c, Options{Sync: SyncNever})
		if _, err := l.Consumer("$x", nil); !errors.Is(err, ErrBadOptions) {
			t.Fatalf("a $ name: %v", err)
		}
		l.Append(ctx, rec(0, 100)) // written before the consumer: not seen
		l.Flush(ctx)
		cs, err := l.Consumer("replica", nil)
		if err != nil {
			t.Fatal(err)
		}
		var pos []uint64
		for i := 1; i <= 50; i++ {
			p, _ := l.Append(ctx, rec(i, 200))
			pos = append(pos, p)
		}
		l.Flush(ctx)
		var held [][]byte
		for i := 0; i < 20 && cs.Next(); i++ {
			_, b := cs.Record()
			held = append(held, b) // held, not copied: valid until acked
		}
		for i, b := range held {
			if !bytes.Equal(b, rec(i+1, 200)) {
				t.Fatalf("held record %d changed or is wrong", i+1)
			}
		}
		if err := cs.Ack(pos[10]); err != nil {
			t.Fatal(err)
		}
		if err := cs.Ack(pos[5]); !errors.Is(err, ErrRange) {
			t.Fatalf("acknowledging backwards: %v", err)
		}
		info := l.Consumers()
		if len(info) != 1 || info[0].Name != "replica" || info[0].Acked != pos[10] || info[0].Lag != l.Written()-pos[10] {
			t.Fatalf("consumers: %+v (written %d)", info, l.Written())
		}
		if m := l.Metrics(); len(m.Consumers) != 1 || m.MaxConsumerLag != info[0].Lag {
			t.Fatalf("metrics: consumers %+v, largest lag %d", m.Consumers, m.MaxConsumerLag)
		}
		cs.Sync()
		cs.Close()
		l.Close()
		l, err = Open(path, c.opts(Options{}))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cs, err = l.Consumer("replica", nil)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Position() != pos[10] {
			t.Fatalf("after reopen the consumer reads from %d, acknowledged %d", cs.Position(), pos[10])
		}
		n := 10
		for cs.Next() {
			p, b := cs.Record()
			if p != pos[n] || !bytes.Equal(b, rec(n+1, 200)) {
				t.Fatalf("record at %d, want %d", p, pos[n])
			}
			n++
		}
		if n != 50 || cs.Err() != nil {
			t.Fatalf("read up to %d: %v", n, cs.Err())
		}
		cs.Ack(cs.Position())
		cs.Close()
		if err := l.RemoveConsumer("replica"); err != nil {
			t.Fatal(err)
		}
		if len(l.Consumers()) != 0 {
			t.Fatal("removed consumer still listed")
		}
	})
}

// TestConsumerBackpressure: a consumer that does not acknowledge holds the
// log (even when the checkpoint has moved past it): appends wait (and end with their context) or fail with
// ErrFull, by option; acknowledging makes room.
func TestConsumerBackpressure(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		for _, full := range []FullPolicy{FullWait, FullError} {
			l, _ := createWith(t, c, Options{Sync: SyncNever, Capacity: 512 << 10, BufferSize: 16 << 10, Full: full})
			cs, _ := l.Consumer("slow", nil)
			var err error
			appended := 0
			for i := 0; i < 1000 && err == nil; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				_, err = l.Append(ctx, rec(i, 4000))
				cancel()
				if err == nil {
					appended++
				}
				// The log's own checkpoint holds nothing: only the consumer.
				l.TruncateFront(l.Written())
			}
			switch {
			case full == FullWait && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("full log, waiting: %v", err)
			case full == FullError && !errors.Is(err, ErrFull):
				t.Fatalf("full log, failing: %v", err)
			case full == FullError && appended*recordSize(4000) > 512<<10,
				full == FullWait && appended*recordSize(4000) > 512<<10+2*(16<<10):
				// Waiting, the buffer being written and the one staging
				// hold what they accepted too.
				t.Fatalf("%d records of 4000 bytes in a 512 KiB log", appended)
			}
			// The consumer reads and acknowledges half of what is written:
			// room again.
			for i := 0; i < appended/2 && cs.Next(); i++ {
			}
			if err := cs.Ack(cs.Position()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := l.Append(ctx, rec(9999, 4000)); err != nil {
				t.Fatalf("append after the consumer acknowledged: %v", err)
			}
			cancel()
			cs.Close()
			l.Close()
		}
	})
}

// overrunLossy registers the lossy consumer "lossy" on l (of 512 KiB),
// appends 1.6 MB past it, and checks it reports ErrOverrun.
func overrunLossy(t *testing.T, l *Log) *Consumer {
	t.Helper()
	ctx := context.Background()
	cs, err := l.Consumer("lossy", &ConsumerOptions{Lossy: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 { // 1.6 MB through a 512 KiB log
		if _, err := l.Append(ctx, rec(i, 4000)); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			l.Flush(ctx)
			l.TruncateFront(l.Written())
		}
	}
	l.Flush(ctx)
	for cs.Next() {
	}
	if !errors.Is(cs.Err(), ErrOverrun) {
		t.Fatalf("an overrun lossy consumer: %v", cs.Err())
	}
	return cs
}

// TestLossyConsumer: a lossy consumer never holds the writer; when it is
// overrun it learns so, and Reattach resumes it at the end.
func TestLossyConsumer(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		ctx := context.Background()
		l, _ := createWith(t, c, Options{Sync: SyncNever, Capacity: 512 << 10, BufferSize: 16 << 10})
		defer l.Close()
		cs := overrunLossy(t, l)
		if info := l.Consumers(); len(info) != 1 || !info[0].Detached {
			t.Fatalf("consumers: %+v", info)
		}
		if _, err := cs.Reattach(); err != nil {
			t.Fatal(err)
		}
		p, _ := l.Append(ctx, rec(7, 10))
		l.Flush(ctx)
		if !cs.Next() {
			t.Fatalf("after reattach: %v", cs.Err())
		}
		if at, b := cs.Record(); at != p || !bytes.Equal(b, rec(7, 10)) {
			t.Fatalf("after reattach read %d at %d", len(b), at)
		}
	})
}

// TestConsumerBehindCheckpoint: records a consumer has not acknowledged
// stay readable by it after TruncateFront moved the checkpoint past them,
// also after reopening; Ack takes only record boundaries.
func TestConsumerBehindCheckpoint(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		ctx := context.Background()
		l, path := createWith(t, c, Options{Sync: SyncNever})
		cs, err := l.Consumer("behind", nil)
		if err != nil {
			t.Fatal(err)
		}
		var pos []uint64
		for i := range 20 {
			p, _ := l.Append(ctx, rec(i, 300))
			pos = append(pos, p)
		}
		l.Flush(ctx)
		for range 3 {
			cs.Next()
		}
		if err := cs.Ack(pos[2] + 8); !errors.Is(err, ErrNotRecord) {
			t.Fatalf("acknowledging inside a record: %v", err)
		}
		if err := cs.Ack(pos[2]); err != nil {
			t.Fatal(err)
		}
		cs.Sync()
		cs.Close()
		if err := l.TruncateFront(pos[15]); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if l, err = Open(path, c.opts(Options{})); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.Checkpoint() != pos[15] {
			t.Fatalf("checkpoint %d, want %d", l.Checkpoint(), pos[15])
		}
		if cs, err = l.Consumer("behind", nil); err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		n := 2
		for cs.Next() {
			p, b := cs.Record()
			if p != pos[n] || !bytes.Equal(b, rec(n, 300)) {
				t.Fatalf("record %d: at %d, want %d", n, p, pos[n])
			}
			n++
		}
		if n != 20 || cs.Err() != nil {
			t.Fatalf("consumer read up to record %d: %v", n, cs.Err())
		}
	})
}

// TestConsumerBusyAndVersion: a consumer name attached elsewhere is
// refused with ErrBusy; a log of another format version with ErrVersion.
func TestConsumerBusyAndVersion(t *testing.T) {
	l, path := createWith(t, config{b: pager.Auto, layout: Bounded}, Options{Sync: SyncNever})
	cs, err := l.Consumer("one", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Consumer("one", nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second handle on one consumer: %v", err)
	}
	if err := l.RemoveConsumer("one"); !errors.Is(err, ErrBusy) {
		t.Fatalf("removing an attached consumer: %v", err)
	}
	cs.Close()
	// Another format version in the log metadata.
	l.mu.Lock()
	b := l.mu.meta.encode()
	l.mu.Unlock()
	b[4] = metaVersion + 1
	if err := l.r.SetUserData(b); err != nil {
		t.Fatal(err)
	}
	if err := l.r.Sync(); err != nil {
		t.Fatal(err)
	}
	l.r.Close()
	if _, err := Open(path, nil); !errors.Is(err, ErrVersion) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("another format version: %v", err)
	}
}
