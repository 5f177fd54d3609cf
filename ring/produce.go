package ring

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ringlog/ringlog/internal/futex"
	"github.com/ringlog/ringlog/internal/invariants"
	"github.com/ringlog/ringlog/pager"
)

// Reserve waits until n bytes are free at the head and returns them as one
// slice of the mapping (also when they wrap past the end of the data area).
// Fill it and call Commit, or Cancel. Until then nothing is appended:
// consumers never see reserved bytes, and a ctx that ends while Reserve
// waits leaves the ring as it was. Reservations are for one producer at a
// time: another Reserve or Write before Commit or Cancel gets ErrReserved.
//
// n may be up to Span (the capacity, or in the growing layout the segment
// size); larger is ErrTooLarge.
func (r *Ring) Reserve(ctx context.Context, n int) ([]byte, error) {
	if ctx == nil {
		panic("ring: Reserve with a nil context")
	}
	return r.reserve(ctx, n)
}

// TryReserve is Reserve without waiting: ErrFull if n bytes are not free.
func (r *Ring) TryReserve(n int) ([]byte, error) { return r.reserve(nil, n) }

func (r *Ring) reserve(ctx context.Context, n int) ([]byte, error) {
	if err := r.beginProduce("reserve", n); err != nil {
		return nil, err
	}
	if err := r.waitSpace(ctx, n); err != nil {
		r.prod.Store(prodIdle)
		return nil, err
	}
	r.resLen = n
	p := r.phys(r.head.Load())
	r.prod.Store(prodReserved)
	return r.mem[p : p+n : p+n], nil
}

// beginProduce claims the producer's turn for a call about n bytes.
func (r *Ring) beginProduce(what string, n int) error {
	if r.readOnly {
		return fmt.Errorf("ring: %s %s: %w", what, r.name, ErrReadOnly)
	}
	if n < 0 || uint64(n) > r.span {
		return fmt.Errorf("ring: %s %s: %d bytes, at most %d in one span: %w", what, r.name, n, r.span, ErrTooLarge)
	}
	if !r.prod.CompareAndSwap(prodIdle, prodBusy) {
		if r.prod.Load() == prodClosed {
			return fmt.Errorf("ring: %s %s: %w", what, r.name, ErrClosed)
		}
		return fmt.Errorf("ring: %s %s: %w", what, r.name, ErrReserved)
	}
	if r.closed.Load() {
		r.prod.Store(prodIdle)
		return fmt.Errorf("ring: %s %s: %w", what, r.name, ErrClosed)
	}
	return nil
}

// Commit appends the first n bytes of the outstanding reservation (n at
// most what was reserved; the rest is dropped) and makes them visible to
// consumers. They are durable after the next Sync or SyncData.
func (r *Ring) Commit(n int) error {
	if r.prod.Load() != prodReserved {
		return fmt.Errorf("ring: commit %s: %w", r.name, ErrNotReserved)
	}
	if n < 0 || n > r.resLen {
		return fmt.Errorf("ring: commit %s: %d bytes of a %d-byte reservation: %w", r.name, n, r.resLen, ErrTooLarge)
	}
	head := r.head.Load()
	if r.mirror {
		r.mirrorRange(r.phys(head), n)
	}
	r.publish(head + uint64(n))
	r.prod.Store(prodIdle)
	return nil
}

// Cancel drops the outstanding reservation: nothing is appended.
func (r *Ring) Cancel() error {
	if !r.prod.CompareAndSwap(prodReserved, prodIdle) {
		return fmt.Errorf("ring: cancel %s: %w", r.name, ErrNotReserved)
	}
	return nil
}

// Write appends p with pwrite (at most two calls, split at the end of the
// data area): the staged path for durable files, see the package doc. It
// waits for space like Reserve and returns the position of p's first byte.
func (r *Ring) Write(ctx context.Context, p []byte) (uint64, error) {
	if ctx == nil {
		panic("ring: Write with a nil context")
	}
	return r.write(ctx, p)
}

// TryWrite is Write without waiting: ErrFull if len(p) bytes are not free.
func (r *Ring) TryWrite(p []byte) (uint64, error) { return r.write(nil, p) }

func (r *Ring) write(ctx context.Context, p []byte) (uint64, error) {
	n := len(p)
	if err := r.beginProduce("write", n); err != nil {
		return 0, err
	}
	defer r.prod.Store(prodIdle)
	if err := r.waitSpace(ctx, n); err != nil {
		return 0, err
	}
	if r.mirror {
		// The heap view does not see pwrites: the bytes go there too, and
		// the whole write holds the lock write-back (Sync) takes, so it
		// never writes back heap bytes older than the file's.
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	head := r.head.Load()
	at := r.phys(head)
	if r.mirror {
		copy(r.mem[at:], p)
		r.mirrorRange(at, n)
	}
	if err := r.pwriteAt(p, head); err != nil {
		return 0, err
	}
	r.publish(head + uint64(n))
	if r.mirror && r.mu.dirtyFrom == head {
		// Nothing older waits for write-back: other processes may see
		// these bytes now.
		r.mu.dirtyFrom = head + uint64(n)
		r.shareHead(head + uint64(n))
	}
	return head, nil
}

// pwriteAt writes p as the bytes of positions [pos, pos+len(p)): one
// pwrite per piece that is contiguous in the file (two at the wrap of the
// bounded layout; one per segment in the growing one).
func (r *Ring) pwriteAt(p []byte, pos uint64) error {
	return r.fileChunks(pos, len(p), func(at int64, off, m int) error {
		if _, err := r.f.WriteAt(p[off:off+m], at); err != nil {
			return fmt.Errorf("ring: write %s: %d bytes at offset %d: %w", r.name, m, at, err)
		}
		return nil
	})
}

// mirrorRange copies the n bytes written at view offset p (possibly
// running into the mirror after the end) so that both copies hold them:
// the Copy backend has no aliasing. The view is C bytes and then a mirror
// of its first Span bytes.
func (r *Ring) mirrorRange(p, n int) {
	C, span := int(r.capacity), int(r.span)
	if end := min(p+n, span); end > p {
		copy(r.mem[C+p:C+end], r.mem[p:end])
	}
	if p+n > C {
		copy(r.mem[0:p+n-C], r.mem[C:p+n])
	}
}

// publish makes bytes up to head visible and wakes waiting consumers. On
// Copy the committed bytes are in this process's heap only: other
// processes see the new head when flushLocked has written them back.
func (r *Ring) publish(head uint64) {
	r.head.Store(head)
	if !r.mirror {
		r.shareHead(head)
	}
	r.wakeLocal()
}

// wakeLocal wakes waiters of this process.
func (r *Ring) wakeLocal() {
	if r.dataWaiters.Load() > 0 {
		r.dataReady.Broadcast()
	}
}

// shareHead makes head the head other processes see, and wakes those of
// them that wait.
func (r *Ring) shareHead(head uint64) {
	r.liveHead.Store(head)
	r.wakeOthers()
}

// wakeOthers wakes waiters of other processes: only if one has said it
// waits (one load otherwise).
func (r *Ring) wakeOthers() {
	if r.liveWaiters.Load() != 0 {
		r.dataSeq.Add(1)
		futex.Wake(r.dataSeq)
	}
}

// WaitHead blocks until the head (or, if durable, the synced position) is
// past pos, or ctx ends, or the ring is closed. Waiters in the producer's
// process are woken by its commits; waiters in other processes sleep on a
// futex in the live file, which the producer wakes only when a waiter has
// said it waits (where futexes are missing, they poll with backoff).
func (r *Ring) WaitHead(ctx context.Context, pos uint64, durable bool) error {
	reached := func() bool {
		if durable {
			return r.Synced() > pos
		}
		return r.Head() > pos
	}
	for {
		if reached() {
			return nil
		}
		if r.closed.Load() {
			return fmt.Errorf("ring: %s: wait: %w", r.name, ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ring: %s: wait: %w", r.name, err)
		}
		if !r.readOnly {
			// Same process as the producer: its commits and syncs
			// broadcast.
			r.dataWaiters.Add(1)
			ch := r.dataReady.Wait()
			if !reached() && !r.closed.Load() {
				select {
				case <-ctx.Done():
				case <-ch:
				}
			}
			r.dataWaiters.Add(-1)
			continue
		}
		// "I am waiting" is a count in the live file, not a flag in the
		// waiter's own slot: the producer looks at it on every commit, and
		// one load beats reading every slot. A count a dead waiter left
		// up costs the producer a futex wake per commit until it next
		// opens the ring (which zeroes it); never a lost wakeup, since
		// waits time out after 50ms.
		seq := r.dataSeq.Load()
		r.liveWaiters.Add(1)
		if !reached() {
			stop := context.AfterFunc(ctx, func() { futex.Wake(r.dataSeq) })
			futex.Wait(r.dataSeq, seq, waitSlice)
			stop()
		}
		for v := r.liveWaiters.Load(); v > 0 && !r.liveWaiters.CompareAndSwap(v, v-1); v = r.liveWaiters.Load() {
		}
	}
}

// waitSlice bounds one futex wait of another process's waiter: a wakeup
// lost to a producer restart costs at most this.
const waitSlice = 50 * time.Millisecond

// visibleHeadLocked is the head other processes may see: on Copy, only
// what was written back.
func (r *Ring) visibleHeadLocked() uint64 {
	head := r.head.Load()
	if r.mirror {
		return min(head, r.mu.dirtyFrom)
	}
	return head
}

// waitSpace waits until n bytes after the head are free (not at all if
// ctx is nil), detaching lossy consumers that would be overrun. The limit
// is cached and recomputed when the head would pass it or a registration
// changed (in any process).
func (r *Ring) waitSpace(ctx context.Context, n int) error {
	backoff := 50 * time.Microsecond
	for {
		end := r.head.Load() + uint64(n)
		if end <= r.limit.Load() && r.regGen.Load() == r.seenGen.Load() && (r.seg == nil || end <= r.seg.mappedEnd.Load()) {
			if invariants.Enabled {
				r.checkLimit(end)
			}
			return nil
		}
		limit, err := r.rescan(end)
		if err != nil || end <= limit {
			return err
		}
		if ctx == nil {
			return fmt.Errorf("ring: %s: %d bytes wanted, %d free: %w", r.name, n, limit-min(limit, r.head.Load()), ErrFull)
		}
		// Say we wait, then look once more: a release that came between
		// the scan and now has either been seen by this look or will wake
		// us. Releases by other processes are seen by polling with backoff.
		r.spaceWaiting.Store(true)
		ch := r.spaceReady.Wait()
		if limit, err = r.rescan(end); err != nil || end <= limit {
			r.spaceWaiting.Store(false)
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			err = fmt.Errorf("ring: %s: waiting for %d bytes: %w", r.name, n, ctx.Err())
		case <-ch:
		case <-t.C:
			backoff = min(2*backoff, 10*time.Millisecond)
		}
		t.Stop()
		r.spaceWaiting.Store(false)
		if err != nil {
			return err
		}
	}
}

// rescan recomputes how far the head may grow for a write ending at end,
// detaching lossy laggards, and caches it. It publishes the limit in the
// live page before it relies on it, and looks at the registration
// generation again afterwards: a consumer registering in another process
// at the same time either is seen by this scan, or reads the published
// limit after its registration and starts no earlier than limit - C (see
// Consumer). When end does not fit, on Copy it writes committed bytes back
// first: consumers in other processes can only release what they can see.
func (r *Ring) rescan(end uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return 0, fmt.Errorf("ring: %s: %w", r.name, ErrClosed)
	}
	var limit, tail uint64
	for {
		gen := r.regGen.Load()
		tail = r.tailLocked(r.head.Load())
		room := tail + r.capacity
		if r.seg != nil {
			// A slot takes a segment for a new lap only once every byte
			// of its last one is released: a consumer may still read the
			// rest of it through the slot.
			room -= tail % r.seg.size
		}
		limit = min(room, r.detachLaggardsLocked(end))
		r.liveLimit.Store(limit)
		if r.regGen.Load() == gen {
			r.limit.Store(limit)
			r.seenGen.Store(gen)
			break
		}
	}
	if end > limit {
		if err := r.flushLocked(); err != nil {
			return 0, err
		}
	} else if r.seg != nil {
		if err := r.ensureSegmentsLocked(r.head.Load(), end, tail); err != nil {
			return 0, err
		}
	}
	return limit, nil
}

// Limit is the position up to which the producer may write now: the
// retained span's end (a fresh look at every consumer and pin, detaching
// lossy laggards as a write to there would).
func (r *Ring) Limit() (uint64, error) {
	head := r.head.Load()
	return r.rescan(head)
}

// checkLimit verifies the cached limit against a fresh look at every
// consumer and pin (invariant builds): a stale cache would let the producer
// overwrite retained bytes.
func (r *Ring) checkLimit(end uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tail := r.tailLocked(r.head.Load())
	if r.seg != nil {
		tail -= tail % r.seg.size
	}
	if end > tail+r.capacity {
		panic(fmt.Sprintf("ring: %s: producer may write up to %d, but position %d is retained (capacity %d)", r.name, end, tail, r.capacity))
	}
}

// tailLocked is the oldest retained position: the minimum of head, the
// pins of this process, and the positions of registered consumers and
// slot pins (any process) that retain.
func (r *Ring) tailLocked(head uint64) uint64 {
	// The load after the positions pairs with the releases that moved
	// them (see Consumer.Release): the race detector does not see the
	// positions, which live outside the Go heap on mapped backends.
	defer r.released.Load()
	tail := head
	for p := range r.mu.pins {
		if p.slot == nil {
			tail = min(tail, p.pos.Load())
		}
	}
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() != slotRegistered {
			continue
		}
		if s.flags().Load()&(flagLossy|flagDetached) != 0 {
			continue
		}
		tail = min(tail, s.pos().Load())
	}
	return tail
}

// detachLaggardsLocked marks lossy consumers that writing up to end would
// overrun, or leave lagging more than their limit, as detached, before a
// byte of theirs is overwritten. It returns how far the head may go before
// the remaining lossy consumers need another look.
func (r *Ring) detachLaggardsLocked(end uint64) uint64 {
	next := uint64(math.MaxUint64)
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() != slotRegistered {
			continue
		}
		fl := s.flags().Load()
		if fl&flagLossy == 0 || fl&flagDetached != 0 {
			continue
		}
		deadline := s.pos().Load() + min(s.maxLag().Load(), r.capacity)
		if end > deadline {
			s.flags().Or(flagDetached)
			continue
		}
		next = min(next, deadline)
	}
	return next
}

// wakeProducer wakes a producer of this process waiting for space.
func (r *Ring) wakeProducer() {
	if r.spaceWaiting.Load() {
		r.spaceReady.Broadcast()
	}
}

// flushLocked writes committed bytes that exist only in the heap view
// (Copy) to the file: the committed bytes something retains, exactly. A
// reservation never overlaps retained bytes, so none is read while it is
// filled; bytes nothing retains may be overwritten by the producer at any
// moment and are not written back.
func (r *Ring) flushLocked() error {
	head := r.head.Load()
	if !r.mirror || r.mu.dirtyFrom >= head {
		return nil
	}
	for from := max(r.mu.dirtyFrom, r.tailLocked(head)); from < head; {
		n := int(min(head-from, r.span))
		at := r.phys(from)
		if err := r.pwriteAt(r.mem[at:at+n], from); err != nil {
			return err
		}
		from += uint64(n)
	}
	r.mu.dirtyFrom = head
	r.shareHead(head)
	return nil
}

// Slice returns the n bytes at pos as one slice of the mapping. The range
// must lie between Tail and Head; the caller must hold it (a Pin, or a
// consumer whose position is at or before pos) for as long as it uses the
// slice, since released bytes may be overwritten.
func (r *Ring) Slice(pos uint64, n int) ([]byte, error) {
	if err := r.syncSegments(); err != nil {
		return nil, err
	}
	head := r.Head()
	if n < 0 || uint64(n) > r.span || pos > head || head-pos < uint64(n) || head-pos > r.capacity {
		return nil, fmt.Errorf("ring: %s: %d bytes at position %d, head %d, capacity %d: %w", r.name, n, pos, head, r.capacity, ErrRange)
	}
	p := r.phys(pos)
	if err := r.refresh(p, n); err != nil {
		return nil, err
	}
	return r.mem[p : p+n : p+n], nil
}

// Raw returns the n bytes at position pos as one slice, whatever they
// hold: committed or not, retained or not. It is for recovery, which reads
// past the head recorded in the header to find where the data really ends.
// Bytes outside [Tail, Head] may change at any time.
func (r *Ring) Raw(pos uint64, n int) ([]byte, error) {
	if err := r.syncSegments(); err != nil {
		return nil, err
	}
	if n < 0 || uint64(n) > r.span {
		return nil, fmt.Errorf("ring: %s: %d bytes at position %d, span %d: %w", r.name, n, pos, r.span, ErrRange)
	}
	if r.seg != nil && (r.segmentAt(pos) < 0 || r.segmentAt(pos+uint64(max(n, 1))-1) < 0) {
		return nil, fmt.Errorf("ring: %s: position %d lies in no segment: %w", r.name, pos, ErrRange)
	}
	p := r.phys(pos)
	if err := r.refresh(p, n); err != nil {
		return nil, err
	}
	return r.mem[p : p+n : p+n], nil
}

// ReadAt reads the bytes of positions [pos, pos+len(p)) from the file with
// pread (at most two calls, split at the wrap), whatever they hold, without
// touching the mapping. Recovery reads this way: on machines where the first
// touch of each page of a fresh mapping is slow, large preads into a reused
// buffer are faster (see the wal package doc for the figures).
func (r *Ring) ReadAt(p []byte, pos uint64) error {
	if err := r.syncSegments(); err != nil {
		return err
	}
	if uint64(len(p)) > r.capacity {
		return fmt.Errorf("ring: read %s: %d bytes at position %d, capacity %d: %w", r.name, len(p), pos, r.capacity, ErrRange)
	}
	return r.fileChunks(pos, len(p), func(at int64, off, m int) error {
		if _, err := r.f.ReadAt(p[off:off+m], at); err != nil {
			return fmt.Errorf("ring: read %s: %d bytes at offset %d: %w", r.name, m, at, err)
		}
		return nil
	})
}

// refresh rereads from the file, on a read-only Copy view, the pages under
// view bytes [p, p+n) (the producer being another process, its commits
// reach this heap copy only through the file). Both copies of a page map
// the same file page, so reading each view page from its file page is all
// it takes.
func (r *Ring) refresh(p, n int) error {
	if !r.mirror || !r.readOnly || n == 0 {
		return nil
	}
	ps := pager.PageSize
	lo, hi := p/ps*ps, min((p+n+ps-1)/ps*ps, int(r.capacity+r.span))
	if err := r.data.Reload(lo, hi-lo); err != nil {
		return fmt.Errorf("ring: %s: %w", r.name, err)
	}
	return nil
}

// Rewrite writes the bytes of positions [from, to) back to the file as they
// are. After a failed write or sync the kernel may have marked pages clean
// that never reached the disk; a page cache that shows bytes the disk does
// not have is made dirty again this way, so the next SyncData writes them.
// [from, to) must lie in [Tail, Head].
func (r *Ring) Rewrite(from, to uint64) error {
	if err := r.beginProduce("rewrite", 0); err != nil {
		return err
	}
	defer r.prod.Store(prodIdle)
	return r.rewrite(from, to)
}

func (r *Ring) rewrite(from, to uint64) error {
	head := r.head.Load()
	if from > to || to > head || to-from > r.capacity {
		return fmt.Errorf("ring: rewrite %s: positions [%d, %d) with head %d: %w", r.name, from, to, head, ErrRange)
	}
	for from < to {
		n := int(min(to-from, r.span))
		at := r.phys(from)
		if err := r.pwriteAt(r.mem[at:at+n], from); err != nil {
			return err
		}
		from += uint64(n)
	}
	return nil
}

// Overwrite writes p at position pos, which must lie inside [Tail, Head]
// with p: it replaces committed bytes (salvage rewrites damaged records
// this way). The bytes reach the file at once; sync to make them durable.
func (r *Ring) Overwrite(pos uint64, p []byte) error {
	if err := r.beginProduce("overwrite", len(p)); err != nil {
		return err
	}
	defer r.prod.Store(prodIdle)
	head := r.head.Load()
	if pos > head || uint64(len(p)) > head-pos {
		return fmt.Errorf("ring: overwrite %s: %d bytes at position %d with head %d: %w", r.name, len(p), pos, head, ErrRange)
	}
	at := r.phys(pos)
	copy(r.mem[at:], p)
	if r.mirror {
		r.mirrorRange(at, len(p))
	}
	return r.rewrite(pos, pos+uint64(len(p)))
}

// SetHead moves the committed position to pos: forward over bytes already
// in the data area (recovery found them there; they are taken as they are),
// or back (a truncation). It fails with ErrRange if the retained span would
// exceed the capacity, or, moving back, while a pin of this process sits
// at or past pos (its holder may read the bytes being dropped). Consumers
// and other processes' pins past the new head move back to it, consumers
// more than the capacity behind it are detached, and the synced position
// moves back with the head. Moving back is the one exception to Peek's
// promise: bytes past the new head in slices that consumers, or pins
// before pos, still hold will change as new bytes are committed there.
func (r *Ring) SetHead(pos uint64) error {
	if err := r.beginProduce("set head", 0); err != nil {
		return err
	}
	defer r.prod.Store(prodIdle)
	if pos > maxPosition {
		return fmt.Errorf("ring: set head of %s to %d: %w", r.name, pos, ErrRange)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	head := r.head.Load()
	if pos < head {
		// A pin at or past pos says its holder reads the bytes dropped.
		for p := range r.mu.pins {
			if pp := p.pos.Load(); pp >= pos && pp < head {
				return fmt.Errorf("ring: set head of %s back to %d: a reader holds position %d: %w", r.name, pos, pp, ErrRange)
			}
		}
	}
	if pos > head {
		if tail := r.tailLocked(head); pos > tail && pos-tail > r.capacity {
			return fmt.Errorf("ring: set head of %s to %d: %d bytes from the tail %d, capacity %d: %w", r.name, pos, pos-tail, tail, r.capacity, ErrRange)
		}
		if r.seg != nil {
			for p := head - head%r.seg.size; p < pos; p += r.seg.size {
				if r.segmentAt(max(p, head)) < 0 {
					return fmt.Errorf("ring: set head of %s to %d: position %d lies in no segment: %w", r.name, pos, max(p, head), ErrRange)
				}
			}
		}
	}
	r.clampSlotsLocked(pos, false)
	r.head.Store(pos)
	if pos < head && r.synced.Load() > pos {
		r.synced.Store(pos)
		r.liveSynced.Store(pos)
	}
	if r.seg != nil {
		// Positions from here on are checked against the segments again.
		r.seg.mappedEnd.Store(pos - pos%r.seg.size)
	}
	if r.mirror {
		// Committed bytes not yet written back stay owed up to pos; bytes
		// found past a clean head were read from the file, so are clean.
		if r.mu.dirtyFrom >= head {
			r.mu.dirtyFrom = pos
		} else {
			r.mu.dirtyFrom = min(r.mu.dirtyFrom, pos)
		}
	}
	r.shareHead(r.visibleHeadLocked())
	r.limit.Store(0)
	r.dataReady.Broadcast()
	return nil
}
