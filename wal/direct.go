package wal

import (
	"context"
	"fmt"

	"github.com/ringlog/ringlog/ring"
)

// Direct access, for layers that index the log themselves (a key-value
// store keeps, per key, where its value lies in the log and reads it from
// there). They address bytes inside records rather than whole records.

// HeaderSize is the size of a record's header: the payload of the record
// at position pos starts at pos+HeaderSize.
const HeaderSize = headerSize

// RecordSize is the space in the log a record of an n-byte payload takes:
// the record at pos ends at pos+RecordSize(n).
func RecordSize(n int) int { return recordSize(n) }

// WaitDurable waits until every record before end is durable (syncing
// them if no sync is under way), or ctx ends. It is how a writer that
// appended without waiting waits for durability later, sharing syncs with
// every other writer (group commit). end is a position after a record, as
// pos+RecordSize(len(payload)) gives it.
func (l *Log) WaitDurable(ctx context.Context, end uint64) error {
	if l.readOnly {
		return fmt.Errorf("wal: %s: %w", l.name, ErrReadOnly)
	}
	l.mu.Lock()
	gen := l.truncGen.Load()
	staged := l.mu.start + uint64(len(l.mu.buf))
	if end > staged {
		l.mu.Unlock()
		return fmt.Errorf("wal: %s: wait for durability up to %d, past the end %d: %w", l.name, end, staged, ErrRange)
	}
	if l.synced.Load() >= end {
		l.mu.Unlock()
		return nil
	}
	l.mu.syncReq = true
	l.mu.Unlock()
	l.kickFlusher()
	return l.waitFor(ctx, end, true, gen)
}

// Pin keeps the log from position pos on from being reused (see
// Options.Full: the writer waits, or the growing layout takes a new
// segment) until it is released; truncation still moves the checkpoint.
// pos must lie between the oldest position the log still holds (the
// checkpoint, or an older pin) and the written end.
func (l *Log) Pin(pos uint64) (*Pin, error) {
	if w := l.Written(); pos > w {
		return nil, fmt.Errorf("wal: pin %s at %d: past the written end %d: %w", l.name, pos, w, ErrRange)
	}
	p, err := l.r.Pin(pos)
	if err != nil {
		return nil, fmt.Errorf("wal: pin %s at %d: %w", l.name, pos, err)
	}
	return &Pin{p: p}, nil
}

// Pin holds the log from a position on. See Log.Pin. A Pin is for one
// goroutine at a time.
type Pin struct {
	p *ring.Pin
}

// Position is where the pin holds the log.
func (p *Pin) Position() uint64 { return p.p.Position() }

// Move moves the pin forward to pos (never backward).
func (p *Pin) Move(pos uint64) { p.p.Move(pos) }

// Release drops the pin; slices read under it must no longer be used.
func (p *Pin) Release() { p.p.Release() }

// Bytes returns the n bytes at position pos as one slice of the log's
// mapping: no copy, also across the wrap (n up to MaxRecordSize plus
// HeaderSize). The bytes must lie before the written end and after the
// checkpoint, and the caller must hold them (a Pin at or before pos, or a
// Reader whose current record holds them) for as long as it uses the
// slice. Bytes does not verify checksums: the caller reads inside records
// whose checksums were verified, or verifies its own. On the copy backend
// the slice is the log's heap copy. The slice must not be modified.
func (l *Log) Bytes(pos uint64, n int) ([]byte, error) {
	if w := l.Written(); n < 0 || pos > w || w-pos < uint64(n) {
		return nil, fmt.Errorf("wal: %s: %d bytes at position %d, past the written end %d: %w", l.name, n, pos, w, ErrRange)
	}
	b, err := l.r.Slice(pos, n)
	if err != nil {
		return nil, fmt.Errorf("wal: %s: %w", l.name, err)
	}
	return b, nil
}

// FileOffset is the offset in the log's file of the byte at position pos,
// or -1 if no part of the file holds it (growing layout): for error
// messages that name where damage is.
func (l *Log) FileOffset(pos uint64) int64 { return l.r.FileOffset(pos) }
