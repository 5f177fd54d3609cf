package wal

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/ringlog/ringlog/internal/invariants"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// Reader reads records in order from a position, each as a slice of the
// log's mapping: no copy, any size, also across the wrap of the ring.
//
// Lifetime: the slice Record returns is valid until the next call to Next,
// Seek or Close. A compressed record (see Compression) is decoded into a
// buffer the reader owns and reuses: the one case that is not zero-copy. The reader pins the log from its current record on, so
// the writer never reuses that space while the slice is valid (it waits
// instead). The slice must not be modified. Builds with the invariants tag
// verify the previous record's checksum again on the next call, to catch a
// slice written to or used past its lifetime.
//
// A Reader is for one goroutine. Readers take no lock a writer waits on.
type Reader struct {
	l       *Log
	pin     *ring.Pin
	pos     uint64 // next record
	cur     []byte
	curPos  uint64
	win     []byte // bytes of positions [winAt, winAt+len(win)) of the mapping
	winAt   uint64
	curRec  []byte // the whole current record (invariant builds re-check it)
	err     error
	epoch   uint32
	epochAt uint64
	// last is the epoch of the last record passed (0 after a seek): a
	// record of another epoch must start that epoch, or the log was cut
	// back under the reader.
	last    uint32
	durable bool
	closed  bool
	// dec holds the current record decoded, if it is compressed; fresh
	// (consumers) decodes every record into a new buffer instead, since
	// a consumer's records stay valid until it acknowledges them.
	dec    []byte
	fresh  bool
	curGen uint64 // invariant builds: the truncation generation curRec was read in
}

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// Durable stops the reader at the durable end of the log instead of
	// the written end: it never returns a record a crash could take away.
	Durable bool
}

// NewReader returns a reader positioned at from, which must be the
// position of a record (as Append returned it), the checkpoint, or the
// end of the log.
func (l *Log) NewReader(from uint64, opts *ReaderOptions) (*Reader, error) {
	if err := l.refreshMeta(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	m := l.mu.meta
	closed := l.mu.closed
	l.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("wal: reader of %s: %w", l.name, ErrClosed)
	}
	rd := &Reader{l: l, epoch: m.epoch, epochAt: m.epochStart}
	if opts != nil {
		rd.durable = opts.Durable
	}
	if from < m.checkpoint || from > l.Written() {
		return nil, fmt.Errorf("wal: reader of %s: position %d outside [%d, %d]: %w", l.name, from, m.checkpoint, l.Written(), ErrRange)
	}
	pin, err := l.r.Pin(from)
	if err != nil {
		return nil, fmt.Errorf("wal: reader of %s: %w", l.name, err)
	}
	rd.pin = pin
	if err := rd.seek(from); err != nil {
		pin.Release()
		return nil, err
	}
	return rd, nil
}

// Seek moves the reader to the record at pos (see NewReader for what pos
// may be). The current record's slice becomes invalid.
func (rd *Reader) Seek(pos uint64) error {
	if rd.closed {
		return fmt.Errorf("wal: reader of %s: %w", rd.l.name, ErrClosed)
	}
	if pos < rd.pin.Position() {
		p, err := rd.l.r.Pin(pos)
		if err != nil {
			return fmt.Errorf("wal: reader of %s: seek to %d: %w", rd.l.name, pos, ErrRange)
		}
		rd.pin.Release()
		rd.pin = p
	}
	return rd.seek(pos)
}

func (rd *Reader) seek(pos uint64) error {
	rd.cur, rd.curRec, rd.err, rd.win, rd.last = nil, nil, nil, nil, 0
	if pos < rd.l.r.Head() {
		var err error
		if ferr := pager.Guard(func() { _, err = rd.header(pos) }); ferr != nil {
			return fmt.Errorf("wal: reader of %s: seek to %d: %w", rd.l.name, pos, ferr)
		}
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				return fmt.Errorf("wal: reader of %s: seek to %d: %w (%w)", rd.l.name, pos, ErrNotRecord, err)
			}
			return err
		}
	}
	rd.pos = pos
	rd.pin.Move(pos)
	return nil
}

// limit is where reading stops.
func (rd *Reader) limit() uint64 {
	if rd.durable {
		return rd.l.Durable()
	}
	return rd.l.Written()
}

// window returns the n bytes at pos from the reader's window onto the
// mapping, taking a new window (up to 4 MiB, up to limit) when they lie
// outside it: one call into the ring for many records.
func (rd *Reader) window(pos uint64, n int, limit uint64) ([]byte, error) {
	if pos >= rd.winAt && pos+uint64(n) <= rd.winAt+uint64(len(rd.win)) {
		off := int(pos - rd.winAt)
		return rd.win[off : off+n], nil
	}
	w := max(n, int(min(limit-min(pos, limit), readWindow, uint64(rd.l.r.Span()))))
	b, err := rd.l.r.Slice(pos, w)
	if err != nil {
		rd.win = nil
		return nil, fmt.Errorf("wal: read %s at position %d: %w", rd.l.name, pos, err)
	}
	rd.win, rd.winAt = b, pos
	return b[:n], nil
}

// readWindow bounds a reader's window onto the mapping.
const readWindow = 4 << 20

// header parses the header of the record at pos.
func (rd *Reader) header(pos uint64) (recordHeader, error) {
	hb, err := rd.l.r.Slice(pos, headerSize)
	if err != nil {
		return recordHeader{}, fmt.Errorf("wal: read %s at position %d: %w", rd.l.name, pos, err)
	}
	return rd.parse(pos, hb)
}

// parse checks the header bytes hb of the record at pos.
func (rd *Reader) parse(pos uint64, hb []byte) (recordHeader, error) {
	lo, hi := rd.epoch, rd.epoch
	if pos < rd.epochAt {
		lo, hi = 1, rd.epoch-1
	}
	h, err := parseHeader(hb, pos, lo, hi, rd.l.maxRec)
	if err != nil {
		return h, rd.corrupt(pos, err)
	}
	return h, nil
}

func (rd *Reader) corrupt(pos uint64, err error) error {
	return fmt.Errorf("wal: read %s: record at position %d (file offset %d): %w: %w", rd.l.name, pos, rd.l.r.FileOffset(pos), ErrCorrupt, err)
}

// Next moves to the next record, returning false at the end of the log or
// on an error (see Err). At the end, a later Next may find records
// appended since.
//
// The reader's own accesses to the mapping run under pager.Guard: if the
// file was truncated under the mapping (by another process), Next returns
// false and Err is a *pager.FaultError naming the file and offset, where
// the process would otherwise die of SIGBUS.
func (rd *Reader) Next() bool {
	if rd.closed || rd.err != nil {
		return false
	}
	var ok bool
	if err := pager.Guard(func() { ok = rd.next() }); err != nil {
		rd.cur, rd.curRec, rd.win = nil, nil, nil
		rd.err = fmt.Errorf("wal: read %s at position %d: %w", rd.l.name, rd.pos, err)
		return false
	}
	return ok
}

func (rd *Reader) next() bool {
	// A TruncateBack may legitimately rewrite a consumer's unacknowledged
	// records past the cut (consumers hold no pins): not checked then.
	if invariants.Enabled && rd.curRec != nil && rd.curGen == rd.l.truncGen.Load() {
		if err := checkRecord(rd.curRec); err != nil {
			panic(fmt.Sprintf("wal: a record slice was modified or used past its lifetime: %v", rd.corrupt(rd.curPos, err)))
		}
	}
	rd.cur, rd.curRec = nil, nil
	limit := rd.limit()
	refreshed := false
	for {
		if rd.pos+headerSize > limit {
			if rd.pin != nil {
				// Nothing is held: a TruncateBack back to here or
				// further need not wait for this reader.
				rd.pin.Move(rd.pos)
			}
			return false
		}
		hb, err := rd.window(rd.pos, headerSize, limit)
		if err != nil {
			rd.err = err
			return false
		}
		h, err := rd.parse(rd.pos, hb)
		if errors.Is(err, errStale) && !refreshed {
			// Truncation or a writer's recovery may have started a new
			// epoch since this reader looked: look again, once.
			refreshed = true
			if rerr := rd.refreshEpoch(); rerr != nil {
				rd.err = rerr
				return false
			}
			continue
		}
		if err != nil {
			rd.err = rd.corrupt(rd.pos, err)
			return false
		}
		size := uint64(headerSize) + uint64(h.length)
		if rd.pos+size > limit {
			// Written in pieces another process has not all seen yet.
			return false
		}
		rec, err := rd.window(rd.pos, int(size), limit)
		if err == nil {
			err = checkRecord(rec)
		}
		if err != nil {
			rd.err = rd.corrupt(rd.pos, err)
			return false
		}
		switch {
		case h.typ == typeSkip:
			rd.last = 0 // salvaged damage may have covered an epoch's start
		case rd.last != 0 && h.epoch != rd.last && h.flags&flagEpochStart == 0:
			rd.err = rd.truncated()
			return false
		default:
			rd.last = h.epoch
		}
		at := rd.pos
		rd.pos += uint64(recordSize(int(h.length)))
		refreshed = false
		if h.typ != typeData {
			continue
		}
		// The pin holds everything from the current record on: the writer
		// never reuses that space, and a truncation knows where every
		// reader is.
		if rd.pin != nil { // a consumer's reader is held by its position instead
			rd.pin.Move(at)
		}
		payload := rec[headerSize:]
		if c := codecOf(h.flags); c != NoCompression {
			dst := rd.dec
			if rd.fresh {
				dst = nil
			}
			out, err := rd.l.dec.decode(dst, c, payload)
			if err != nil {
				rd.pos = at
				rd.err = rd.corrupt(at, err)
				return false
			}
			if !rd.fresh {
				rd.dec = out
			}
			payload = out
		}
		rd.cur, rd.curPos, rd.curRec = payload, at, rec
		if invariants.Enabled {
			rd.curGen = rd.l.truncGen.Load()
		}
		return true
	}
}

// refreshEpoch takes the log's current epoch: after a truncation in this
// process, or (a read-only log) from the header the writer wrote last.
func (rd *Reader) refreshEpoch() error {
	if err := rd.l.refreshMeta(); err != nil {
		return err
	}
	rd.l.mu.Lock()
	epoch, epochAt := rd.l.mu.meta.epoch, rd.l.mu.meta.epochStart
	rd.l.mu.Unlock()
	rd.win = nil
	if epoch != rd.epoch && epochAt < rd.pos {
		// A new epoch starts before the reader's position: what it read
		// from there on was cut.
		rd.epoch, rd.epochAt = epoch, epochAt
		return rd.truncated()
	}
	rd.epoch, rd.epochAt = epoch, epochAt
	return nil
}

// reset moves a reader without a pin (a consumer's) to pos, a record
// boundary its owner vouches for.
func (rd *Reader) reset(pos uint64) {
	rd.pos, rd.err, rd.win, rd.cur, rd.curRec, rd.last = pos, nil, nil, nil, nil, 0
	rd.l.mu.Lock()
	rd.epoch, rd.epochAt = rd.l.mu.meta.epoch, rd.l.mu.meta.epochStart
	rd.l.mu.Unlock()
}

func (rd *Reader) truncated() error {
	return fmt.Errorf("wal: read %s at position %d: %w; seek back to continue", rd.l.name, rd.pos, ErrTruncated)
}

// Follow iterates over the records from the reader's position on, like
// All, and when it reaches the end waits for more, until ctx ends or the
// reader fails; Err then says why (ctx's error when it ended). Waiting
// costs nothing while no record comes: in the writer's process the
// flusher wakes it, in another process a futex the writer wakes only
// while someone waits. With ReaderOptions.Durable it sees a record only
// once it is durable.
func (rd *Reader) Follow(ctx context.Context) iter.Seq2[uint64, []byte] {
	return func(yield func(uint64, []byte) bool) {
		for {
			for rd.Next() {
				if !yield(rd.Record()) {
					return
				}
			}
			if rd.err != nil || rd.closed {
				return
			}
			if err := rd.l.waitPast(ctx, rd.pos, rd.durable); err != nil {
				rd.err = err
				return
			}
		}
	}
}

// Record returns the current record's position and bytes. See the type's
// doc for how long the bytes stay valid.
func (rd *Reader) Record() (uint64, []byte) { return rd.curPos, rd.cur }

// Position is where the next record will be read from.
func (rd *Reader) Position() uint64 { return rd.pos }

// Err is the error that stopped the reader, if any.
func (rd *Reader) Err() error { return rd.err }

// All iterates over the records from the reader's position to the end of
// the log; check Err afterwards. The bytes are valid within the loop body
// only. The loop body's panics are not recovered.
func (rd *Reader) All() iter.Seq2[uint64, []byte] {
	return func(yield func(uint64, []byte) bool) {
		for rd.Next() {
			if !yield(rd.Record()) {
				return
			}
		}
	}
}

// Close releases the reader's pin. Its slices must no longer be used.
func (rd *Reader) Close() error {
	if rd.closed {
		return fmt.Errorf("wal: reader of %s: %w", rd.l.name, ErrClosed)
	}
	rd.closed = true
	rd.cur, rd.curRec = nil, nil
	if rd.pin != nil {
		rd.pin.Release()
	}
	return nil
}
