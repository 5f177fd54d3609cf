package wal

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// AppendPacked appends p to the log's last staged record if that record
// was also made by AppendPacked, is still staged (the flusher has not
// taken it) and would hold at most limit bytes; otherwise it starts a new
// record holding p. It returns the position of p's first byte, not of a
// record: the record's position plus HeaderSize plus p's offset in its
// payload.
//
// It is for layers whose payloads frame themselves (a key-value store's
// entries): many small appends share a record's header, padding and
// checksum, and the record, whole or not at all after a crash, is still
// the unit of atomicity, so each p is atomic. A reader sees one record
// holding the p of several calls back to back. The record's checksum is
// computed when the flusher takes it. Each call counts as a record in
// Metrics (Appends, SyncedRecords, records per sync) and in the group
// commit rule, whether it started a record or not. Durability: wait with WaitDurable
// for pos+len(p); the policies of Options.Sync apply as for Append but
// AppendPacked never waits for a sync itself. Compression does not apply.
func (l *Log) AppendPacked(ctx context.Context, p []byte, limit int) (uint64, error) {
	if l.readOnly {
		return 0, fmt.Errorf("wal: append to %s: %w", l.name, ErrReadOnly)
	}
	limit = min(limit, l.maxRec)
	if len(p) > limit {
		return 0, fmt.Errorf("wal: append to %s: %d bytes, at most %d: %w", l.name, len(p), limit, ErrTooLarge)
	}
	size := recordSize(len(p))
	if err := l.lockRoom(ctx, size); err != nil {
		return 0, err
	}
	le := binary.LittleEndian
	var pos uint64
	if at := l.mu.packAt; l.mu.packOpen {
		cur := int(le.Uint32(l.mu.buf[at+4:]))
		if at+recordSize(cur) == len(l.mu.buf) && cur+len(p) <= limit {
			grow := recordSize(cur+len(p)) - recordSize(cur)
			if l.opts.Full == FullError {
				if err := l.roomLocked(grow); err != nil {
					l.mu.Unlock()
					return 0, err
				}
			}
			off := at + headerSize + cur
			l.mu.buf = growTo(l.mu.buf, at+recordSize(cur+len(p)))
			copy(l.mu.buf[off:], p)
			clear(l.mu.buf[off+len(p):])
			le.PutUint32(l.mu.buf[at+4:], uint32(cur+len(p)))
			pos = l.mu.start + uint64(off)
			l.mu.bytes += uint64(grow)
			// Counted as a record of its own for the flusher's group
			// commit rule and the metrics: it is one writer's append.
			l.mu.records++
			size = 0
		}
	}
	if size > 0 {
		if l.opts.Full == FullError {
			if err := l.roomLocked(size); err != nil {
				l.mu.Unlock()
				return 0, err
			}
		}
		if len(l.mu.buf) == 0 {
			l.mu.buf = l.mu.buf[:markerSize] // see append
		}
		at := len(l.mu.buf)
		l.mu.buf = growTo(l.mu.buf, at+size)
		putRecord(l.mu.buf[at:], recordHeader{pos: l.mu.start + uint64(at), epoch: l.mu.meta.epoch, typ: typeData}, p)
		l.mu.packOpen, l.mu.packAt = true, at
		l.mu.unsealed = append(l.mu.unsealed, at)
		l.mu.records++
		l.mu.bytes += uint64(size)
		pos = l.mu.start + uint64(at+headerSize)
	}
	l.mu.appends++
	kick := l.mu.flusherIdle && !l.batchForTest
	if kick {
		l.mu.flusherIdle = false
	}
	l.mu.Unlock()
	if kick {
		l.kickFlusher()
	}
	return pos, nil
}

// seal fills in the checksums of the packed records at the offsets of buf
// listed.
func seal(buf []byte, at []int) {
	le := binary.LittleEndian
	for _, a := range at {
		n := int(le.Uint32(buf[a+4:]))
		le.PutUint32(buf[a:], crc32.Checksum(buf[a+4:a+headerSize+n], castagnoli))
	}
}
