package wal

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// ErrOverrun says a lossy consumer was detached: the writer reused space it
// had not acknowledged. Reattach resumes it at the end of the log.
var ErrOverrun = errors.New("wal: consumer overrun: the writer reused records it had not acknowledged")

// ConsumerOptions configure a consumer's registration.
type ConsumerOptions struct {
	// Lossy consumers never hold the writer back: one that lags more than
	// MaxLag bytes (or is about to be overwritten) is detached and gets
	// ErrOverrun on its next call. The bytes of records it still holds may
	// change under it. Fixed at registration.
	Lossy  bool
	MaxLag int64
	// FromStart starts a new consumer at the oldest record the log still
	// has instead of at its end.
	FromStart bool
	// Durable makes the consumer see a record only once it is durable.
	Durable bool
}

// ConsumerInfo describes a registered consumer.
type ConsumerInfo struct {
	Name     string // the name it was registered under
	Acked    uint64 // acknowledged position: records before it are done
	Lag      uint64 // bytes of the log after the acknowledged position
	Lossy    bool   // registered with ConsumerOptions.Lossy: it never holds the writer back
	Detached bool   // a lossy consumer the writer overran: ErrOverrun until it reattaches
	PID      int    // process attached to it, 0 if none
}

// Consumer reads the log from its own durable acknowledged position: a
// named reader whose progress survives restarts, in this process or
// another (open the log ReadOnly there). The log retains every record from
// the acknowledged position on: in the bounded layout the writer waits (or
// fails with ErrFull, see Options.Full) rather than reuse them, unless the
// consumer is lossy.
//
// Lifetime: the slices Record returns stay valid until the consumer
// acknowledges past them (Ack) or is closed, not merely until the next
// call: a consumer can hold a window of records and acknowledge them
// together. A Consumer is for one goroutine at a time.
type Consumer struct {
	l  *Log
	rc *ring.Consumer
	rd *Reader
}

// Consumer registers a consumer under name (not starting with "$"), or
// attaches to the existing registration, which keeps its acknowledged
// position.
func (l *Log) Consumer(name string, opts *ConsumerOptions) (*Consumer, error) {
	if strings.HasPrefix(name, "$") {
		return nil, fmt.Errorf("wal: consumer %q of %s: names starting with $ are the log's own: %w", name, l.name, ErrBadOptions)
	}
	var o ConsumerOptions
	if opts != nil {
		o = *opts
	}
	if err := l.refreshMeta(); err != nil {
		return nil, err
	}
	registered := l.registered(name)
	rc, err := l.r.Consumer(name, &ring.ConsumerOptions{Lossy: o.Lossy, MaxLag: o.MaxLag, FromTail: o.FromStart})
	if errors.Is(err, ring.ErrConsumerBusy) {
		return nil, fmt.Errorf("wal: consumer %q of %s: %w (%w)", name, l.name, ErrBusy, err)
	}
	if err != nil {
		return nil, fmt.Errorf("wal: consumer %q of %s: %w", name, l.name, err)
	}
	c := &Consumer{l: l, rc: rc}
	l.mu.Lock()
	m := l.mu.meta
	l.mu.Unlock()
	// The consumer's records are retained even where the checkpoint moved
	// past them (the ring's tail is the slowest of both).
	c.rd = &Reader{l: l, epoch: m.epoch, epochAt: m.epochStart, durable: o.Durable, pos: rc.Position(), fresh: true}
	l.logConsumer(name, registered, o, rc.Position())
	return c, nil
}

// Consumers lists the registered consumers with their lag.
func (l *Log) Consumers() []ConsumerInfo {
	var out []ConsumerInfo
	for _, ci := range l.r.Consumers() {
		if strings.HasPrefix(ci.Name, "$") {
			continue
		}
		out = append(out, ConsumerInfo{Name: ci.Name, Acked: ci.Position, Lag: ci.Lag, Lossy: ci.Lossy, Detached: ci.Detached, PID: ci.PID})
	}
	return out
}

// RemoveConsumer deletes a registration no handle is attached to, and
// stops retaining records for it.
func (l *Log) RemoveConsumer(name string) error {
	if strings.HasPrefix(name, "$") {
		return fmt.Errorf("wal: remove consumer %q of %s: %w", name, l.name, ErrBadOptions)
	}
	if err := l.r.RemoveConsumer(name); errors.Is(err, ring.ErrConsumerBusy) {
		return fmt.Errorf("wal: remove consumer %q of %s: %w (%w)", name, l.name, ErrBusy, err)
	} else if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	l.logRemoveConsumer(name)
	return nil
}

// Name is the consumer's name.
func (c *Consumer) Name() string { return c.rc.Name() }

// Position is where the consumer reads next.
func (c *Consumer) Position() uint64 { return c.rd.pos }

// Acked is the acknowledged position.
func (c *Consumer) Acked() uint64 { return c.rc.Position() }

func (c *Consumer) overrun() error {
	if c.rc.Detached() {
		return fmt.Errorf("wal: consumer %q of %s at %d: %w", c.Name(), c.l.name, c.Acked(), ErrOverrun)
	}
	return nil
}

// Next moves to the next record, false at the end of the log (for now) or
// on an error (see Err).
func (c *Consumer) Next() bool {
	if err := c.overrun(); err != nil {
		c.rd.err = err
		return false
	}
	ok := c.rd.Next()
	if !ok && c.rd.err != nil && c.rc.Detached() {
		c.rd.err = c.overrun() // a lossy consumer's bytes changed under it
	}
	return ok
}

// Record is the current record: its position and bytes, valid until the
// consumer acknowledges past it.
func (c *Consumer) Record() (uint64, []byte) { return c.rd.Record() }

// Err is the error that stopped the consumer, if any.
func (c *Consumer) Err() error { return c.rd.err }

// Follow iterates from the consumer's position on and waits for more at
// the end, until ctx ends (see Reader.Follow). It does not acknowledge:
// call Ack as records are done.
func (c *Consumer) Follow(ctx context.Context) iter.Seq2[uint64, []byte] {
	return func(yield func(uint64, []byte) bool) {
		for {
			for c.Next() {
				if !yield(c.Record()) {
					return
				}
			}
			if c.rd.err != nil {
				return
			}
			if err := c.l.waitPast(ctx, c.rd.pos, c.rd.durable); err != nil {
				c.rd.err = err
				return
			}
		}
	}
}

// Ack acknowledges every record before pos, which must be a position the
// consumer has read up to (Position, or the position of a record it
// returned): their space may be reused and their slices must no longer be
// used. The position is durable after the next Sync of the log or of the
// consumer. For a lossy consumer, ErrOverrun means records it read may
// have been overwritten while it held them.
func (c *Consumer) Ack(pos uint64) error {
	acked := c.rc.Position()
	if pos < acked || pos > c.rd.pos {
		return fmt.Errorf("wal: consumer %q of %s: acknowledge %d, acknowledged %d, read up to %d: %w", c.Name(), c.l.name, pos, acked, c.rd.pos, ErrRange)
	}
	if pos != c.rd.pos && (c.rd.cur == nil || pos != c.rd.curPos) {
		// The position a restarted consumer reads from must be a record's.
		// The header is read from the mapping, under the fault guard as
		// the reader's own accesses are (a file truncated under the log).
		var err error
		if ferr := pager.Guard(func() { _, err = c.rd.header(pos) }); ferr != nil {
			return fmt.Errorf("wal: consumer %q of %s: acknowledge %d: %w", c.Name(), c.l.name, pos, ferr)
		}
		if err != nil {
			return fmt.Errorf("wal: consumer %q of %s: acknowledge %d: %w (%w)", c.Name(), c.l.name, pos, ErrNotRecord, err)
		}
	}
	if c.rd.cur != nil && pos > c.rd.curPos {
		c.rd.curRec = nil // acknowledged: its slice is no longer the consumer's
	}
	if err := c.rc.Release(int(pos - acked)); err != nil {
		if errors.Is(err, ring.ErrOverrun) {
			return fmt.Errorf("wal: consumer %q of %s: %w (%w)", c.Name(), c.l.name, ErrOverrun, err)
		}
		return fmt.Errorf("wal: consumer %q of %s: %w", c.Name(), c.l.name, err)
	}
	return nil
}

// Sync makes the acknowledged position durable.
func (c *Consumer) Sync() error {
	if err := c.rc.Sync(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// Reattach resumes a detached (lossy) consumer at the end of the log and
// reports how many bytes it skipped; or a consumer that got ErrTruncated
// at its acknowledged position (which the truncation moved back to the
// cut if it was past it), skipping nothing.
func (c *Consumer) Reattach() (uint64, error) {
	if errors.Is(c.rd.err, ErrTruncated) && !c.rc.Detached() {
		c.rd.reset(c.rc.Position())
		return 0, nil
	}
	n, err := c.rc.Reattach()
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	c.rd.reset(c.rc.Position())
	c.l.logReattach(c.Name(), n, c.rc.Position())
	return n, nil
}

// Close detaches the handle; the registration and its acknowledged
// position stay (see RemoveConsumer).
func (c *Consumer) Close() error {
	c.rd.closed = true
	if err := c.rc.Close(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}
