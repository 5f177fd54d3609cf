package logkv

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/btree"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/wal"
)

// The cleaner. The log can only be freed from its front (the wal's
// TruncateFront), so the cleaner works on the oldest segment: it copies
// the entries of that segment the index still points at to the head of
// the log, makes the copies durable, truncates the log past the segment
// and lets the log recycle it (its file space is reused in place, by
// remapping; untouched segments are never copied). In a log that is
// overwritten at random, the oldest segment is also the one whose entries
// had the most time to be overwritten, so it tends to be the sparsest.
//
// It runs when the log holds more than GCRatio times the bytes of live
// entries and at least a segment of dead ones. Per-segment live bytes are
// kept (Segments reports them).
//
// Safety:
//   - Nothing acknowledged is lost: a copy is appended under the writers'
//     lock after checking that the index still points at the original (so
//     no write of the key comes before its copy in the log, and replay
//     ends at the newest); the index is pointed at the copies once they
//     are durable, and only where it still points at the originals; the
//     truncation that frees the originals comes after that.
//   - No reader sees reused space: Gets read under the index's read lock,
//     which the cleaner takes exclusively when it points keys at their
//     copies; iterators, snapshots and values hold pins, and the store's
//     own pin (moved only under the writers' lock, after the truncation)
//     keeps the log from reusing a segment any of them may still read.
//   - Failure (the disk full, say): the cleaner stops and keeps the error
//     (GCError); the index still points at the originals, which are still
//     in the log, so reads go on. A failed write fails the log itself (see
//     package wal: nothing after the last good sync can be promised), so
//     writes fail from then on; reopening recovers every synced write.

// gcCheckEvery is how often the cleaner looks even if no write woke it.
const gcCheckEvery = 200 * time.Millisecond

// gcChunk bounds the bytes of entries copied under one hold of the lock.
const gcChunk = 256 << 10

// gcLockBatch bounds the keys the cleaner points at their copies under
// one hold of the writers' lock.
const gcLockBatch = 512

// gcBeforeMoves, if set (by tests), runs after the cleaner's copies are
// durable and before it points keys at them: writes it makes are the
// writes that race with the cleaner.
var gcBeforeMoves func(db *DB)

func (db *DB) needGCLocked() bool {
	span := db.mu.end - db.mu.pin.Position()
	live := uint64(max(db.mu.live, 0))
	return span >= live+db.segSize && float64(span) > db.o.GCRatio*float64(live)
}

// stallSegments is how far past the cleaner's trigger the log may grow
// before writers wait for the cleaner.
const stallSegments = 4

// stallLocked says whether a writer should wait for the cleaner: it lags
// by more than stallSegments segments and has not failed.
func (db *DB) stallLocked() bool {
	if db.mu.closed || db.mu.gcErr != nil || db.o.GCDisabled {
		return false
	}
	span := db.mu.end - db.mu.pin.Position()
	live := float64(max(db.mu.live, 0))
	return float64(span) > db.o.GCRatio*live+float64((stallSegments+1)*db.segSize)
}

func (db *DB) kickGC() {
	select {
	case db.gcKick <- struct{}{}:
	default:
	}
}

func (db *DB) gcLoop() {
	defer close(db.gcDone)
	t := time.NewTicker(gcCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-db.gcKick:
		case <-t.C:
		}
		for {
			db.mu.RLock()
			need := !db.mu.closed && db.needGCLocked()
			db.mu.RUnlock()
			if !need {
				break
			}
			select {
			case <-db.stop:
				return
			default:
			}
			if err := db.cleanOldest(); err != nil {
				db.logGCError(err)
				db.mu.Lock()
				db.mu.gcErr = err
				db.gcCond.Broadcast()
				db.mu.Unlock()
				break
			}
		}
	}
}

// GC runs the cleaner until the log holds at most GCRatio times the live
// bytes (or less than a segment of dead ones), whatever the options say
// about running it in the background.
func (db *DB) GC() error {
	for {
		db.mu.RLock()
		closed, need := db.mu.closed, db.needGCLocked()
		db.mu.RUnlock()
		if closed {
			return db.errClosed("gc")
		}
		if !need {
			return nil
		}
		if err := db.cleanOldest(); err != nil {
			return err
		}
	}
}

// GCError is the cleaner's last failure, if any.
func (db *DB) GCError() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.mu.gcErr
}

// cleanOldest cleans the log's oldest segment.
func (db *DB) cleanOldest() error {
	if !db.gcMu.TryLock() {
		db.gcMu.Lock() // wait for the other cleaner, then look again
		db.gcMu.Unlock()
		return nil
	}
	defer db.gcMu.Unlock()
	t0, copied0 := time.Now(), db.stats.gcCopied.Load()
	ctx := context.Background()
	db.mu.RLock()
	from := db.mu.pin.Position()
	end := db.mu.end
	db.mu.RUnlock()
	if err := db.flushTo(end); err != nil {
		return err
	}
	to := (from/db.segSize + 1) * db.segSize
	rd, err := db.log.NewReader(from, nil)
	if err != nil {
		return fmt.Errorf("logkv: clean %s: %w", db.dir, err)
	}
	defer rd.Close()
	var (
		recCand []item // live entries of one record
		cand    []item // live-looking entries of the records read
		moves   []item // copies written: the original's key, n and the copy's position
		orig    []item // the originals, in the order of moves
		copyEnd uint64 // end of the last copy record
		next    = from
	)
	flush := func() error {
		if len(cand) == 0 {
			return nil
		}
		e, err := db.copyLive(ctx, cand, &moves, &orig)
		cand = cand[:0]
		if e > copyEnd {
			copyEnd = e
		}
		return err
	}
	size := 0
	for rd.Next() {
		pos, payload := rd.Record()
		if pos >= to {
			next = pos
			break
		}
		next = pos + uint64(wal.RecordSize(len(payload)))
		// The live entries of the record, from the live set: no index
		// search for the dead ones. The keys alias the log (held by the
		// store's pin) until copyLive copies them.
		base := pos + wal.HeaderSize
		recCand = recCand[:0]
		db.mu.RLock()
		var err error
		if ferr := pager.Guard(func() { // the payload is the log's mapping
			err = entries(payload, false, func(off int, e entry) error {
				if e.kind == storage.KindPut && db.mu.segs.live(base+uint64(off)) {
					recCand = append(recCand, item{pre: prefix(e.key), key: unsafeString(e.key), pos: base + uint64(off), n: uint32(e.size)})
				}
				return nil // a delete: the writes it hides are older, so in this segment or freed
			})
		}); ferr != nil {
			err = ferr
		}
		db.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("logkv: clean %s: record at position %d: %w", db.dir, pos, err)
		}
		for _, c := range recCand {
			if size > 0 && size+int(c.n) > gcChunk {
				// A copy record holds up to gcChunk bytes of entries, or
				// one larger entry (which fits a record, as it did).
				if err := flush(); err != nil {
					return err
				}
				size = 0
			}
			cand = append(cand, c)
			size += int(c.n)
		}
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("logkv: clean %s: %w", db.dir, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if copyEnd > 0 {
		if err := db.log.WaitDurable(ctx, copyEnd); err != nil {
			return fmt.Errorf("logkv: clean %s: %w", db.dir, err)
		}
	}
	if gcBeforeMoves != nil {
		gcBeforeMoves(db)
	}
	// The copies are durable: point the keys still at their originals
	// at them. Until now readers read the originals, so a failure to
	// write the copies (the disk full) leaves the index as it was. In key
	// order, sorted before taking the lock, so that the B-tree's path
	// hint finds most keys in the leaf of the one before (a segment's
	// live keys are spread over the whole key space; searching each
	// from the root under the writers' lock is what the cleaner's cost
	// was made of).
	order := make([]int32, len(moves))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		switch {
		case less(moves[a], moves[b]):
			return -1
		case less(moves[b], moves[a]):
			return 1
		}
		return 0
	})
	var hint btree.PathHint
	db.mu.Lock()
	for j, i := range order {
		if j > 0 && j%gcLockBatch == 0 {
			// Let writers in: each move is checked on its own below,
			// so writes between two holds are safe.
			db.mu.Unlock()
			runtime.Gosched() // a writer woken by the Unlock gets the lock first
			db.mu.Lock()
		}
		m := moves[i]
		if !db.mu.segs.live(orig[i].pos) {
			continue // written or deleted since the copy: the copy is dead
		}
		// One search: the original is live, so the key is in the index
		// and points at it.
		cur, _ := db.mu.tree.SetHint(m, &hint)
		db.deadLocked(cur)
		db.liveLocked(m, len(m.key)+valueLen(m))
	}
	db.mu.Unlock()
	if err := db.log.TruncateFront(next); err != nil {
		return fmt.Errorf("logkv: clean %s: %w", db.dir, err)
	}
	db.mu.Lock()
	db.mu.pin.Move(next)
	db.mu.segs.dropBefore(next)
	db.mu.gcErr = nil
	db.gcCond.Broadcast()
	db.mu.Unlock()
	db.dropStaleIndex(next)
	db.stats.gcRuns.Add(1)
	db.logGC(from, next, db.stats.gcCopied.Load()-copied0, len(moves), time.Since(t0))
	return nil
}

// copyLive appends the candidates the index still points at as one
// record, and adds to moves (and orig) what the index should point at
// once the copies are durable. The check and the append are under the
// writers' lock, so no write of a copied key comes before its copy in the
// log. It returns the end of what it appended (0 if nothing).
func (db *DB) copyLive(ctx context.Context, cand []item, moves, orig *[]item) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return 0, db.errClosed("clean")
	}
	bp := recordBufs.Get().(*[]byte)
	defer recordBufs.Put(bp)
	rec := (*bp)[:0]
	var offs []int
	var origs []item
	var err error
	ferr := pager.Guard(func() { // the entries and their keys are the log's mapping
		for _, c := range cand {
			if !db.mu.segs.live(c.pos) {
				continue // overwritten or deleted since
			}
			var b []byte
			if b, err = db.log.Bytes(c.pos, int(c.n)); err != nil {
				return
			}
			offs = append(offs, len(rec))
			c.key = strings.Clone(c.key) // off the log: the index keeps it
			origs = append(origs, c)
			rec = append(rec, b...) // an entry is self-contained: copied as it is
			rec = padEntry(rec)
		}
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		*bp = rec
		return 0, fmt.Errorf("logkv: clean %s: %w", db.dir, err)
	}
	*bp = rec
	if len(rec) == 0 {
		return 0, nil
	}
	pos, err := db.log.AppendPacked(ctx, rec, max(packLimit, len(rec)))
	if err != nil {
		return 0, fmt.Errorf("logkv: clean %s: %w", db.dir, err)
	}
	end := pos + uint64(len(rec))
	db.mu.end = end
	for i, o := range origs {
		m := o
		m.pos = pos + uint64(offs[i])
		*moves = append(*moves, m)
		*orig = append(*orig, o)
	}
	db.stats.gcCopied.Add(int64(len(rec)))
	return end, nil
}

// SegmentInfo describes the live bytes of one segment-sized stretch of the
// log's positions.
type SegmentInfo struct {
	Start     uint64 // first position
	LiveBytes int64  // bytes accounted to live entries
}

// Segments reports the live bytes per segment, oldest first.
func (db *DB) Segments() []SegmentInfo {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []SegmentInfo
	first := db.mu.pin.Position() / db.segSize
	last := db.mu.end / db.segSize
	for s := first; s <= last; s++ {
		out = append(out, SegmentInfo{Start: s * db.segSize, LiveBytes: db.mu.segs.bytesOf(s * db.segSize)})
	}
	return out
}
