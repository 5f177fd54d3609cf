package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/ringlog/ringlog/ring"
)

// The ring-spsc workloads move fixed-size messages from one producer
// goroutine to one consumer goroutine of the same process. The systems are
// the ring on each pager backend (ringlog/remap, ringlog/mmap,
// ringlog/copy), used through its in-memory path: Reserve and Commit into
// the mapping, Peek and Release on the consumer side, no syncs; and chan, a
// buffered Go channel of []byte messages, each freshly allocated: what Go
// code does without a ring. The baseline is chan.

var spscSystems = []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy", "chan"}

func init() {
	registerSystem(&system{name: "chan", available: func() error { return nil }})
	registerWorkload(newSPSC(64, "64b", 20_000, 8_000_000, 32_000_000))
	registerWorkload(newSPSC(1<<10, "1k", 5_000, 4_000_000, 16_000_000))
	registerWorkload(newSPSC(64<<10, "64k", 200, 200_000, 800_000))
}

// spscCapacity is the capacity of the ring: 256 messages of 64 KiB (64
// with the test size).
func spscCapacity(s Size) int { return pick(s, 4<<20, 16<<20, 16<<20) }

// spscChanCap is the buffer of the channel, in messages: as many as the
// ring holds, at most 4096 (4096 for 64 B and 1 KiB messages, 256 for
// 64 KiB ones; 64 with the test size).
func spscChanCap(s Size, size int) int { return min(spscCapacity(s)/size, 4096) }

// spscBatchMax bounds the bytes the ring consumer processes between two
// Releases: a quarter of the ring, so the producer always has room to go
// on while the consumer works through a large batch.
func spscBatchMax(s Size) int { return spscCapacity(s) / 4 }

// spscWarm is the number of messages of the untimed warm-up pass: one lap
// of the ring, or n if that is fewer (only with the test size).
func spscWarm(s Size, size, n int) int { return min(spscCapacity(s)/size, n) }

// newSPSC defines ring-spsc-<label>: messages of size bytes, n of them per
// run (tiny, quick, full): 8M messages of 64 B with -quick (32M in the full
// run), 4M of 1 KiB (16M), 200k of 64 KiB (800k); about half a second to
// one second per run on the ring with -quick.
//
// Each message is written whole by the producer: its first 8 bytes hold
// spscFirst(i) and its last 8 bytes spscLast(i), two words derived from its
// sequence number i (0, 1, 2, ... within a pass), and the bytes between are
// copied from a constant template. For the ring the producer reserves size
// bytes with Reserve (which blocks while the ring is full; the consumer's
// Release wakes it), writes the message into the mapping and commits it;
// on ringlog/copy, which has no second mapping of the data area, Commit
// also copies the message into the second copy itself.
// For chan it allocates the message with make, writes it and sends it.
//
// The consumer reads the first and last words of every message and folds
// them into a running XOR, and counts messages. The ring consumer calls
// Peek, which returns every committed byte it has not released as one
// slice (many messages, also across the end of the data area), processes
// the batch (at most a quarter of the ring at a time) and then releases it
// with one Release; when Peek returns nothing it blocks in Wait until the
// producer commits. The chan consumer receives messages one by one until
// the producer closes the channel. A ring consumer that finds a batch that
// is not a whole number of messages fails.
//
// The ring is 16 MiB (4 MiB with the test size), created in a directory
// of the run's own under the data directory; Create writes the file and
// syncs it, then the timed work issues no syncs. The channel's buffer
// holds as many messages as the ring, at most 4096 (4096 for 64 B and
// 1 KiB, 256 for 64 KiB). The same n is used on every system.
//
// Untimed: create the ring and register the consumer (ring systems), then
// one warm-up pass of capacity/size messages (one lap of the ring; fewer
// with the test size) through the same code, so the ring's pages are
// faulted in and the heap has grown (the warm-up is verified like the
// timed pass). Timed: one pass of n messages, from
// starting the producer to the consumer having folded the last message.
//
// Verified after timing, the same way on every system: the consumer saw
// exactly n messages, and the XOR of their first and last words equals the
// one computed from the sequence numbers without the ring. For the ring
// also: the head is n messages past where the pass started and nothing is
// left unread.
//
// n = messages, bytes = n * size. No per-operation latency (p50/p99 are
// 0): a message's delivery time is not measured here (see
// wal-tail-latency). Ring systems add to the JSON row peek_batch (mean
// messages per non-empty Peek) and waits (consumer Wait calls in the timed
// pass).
func newSPSC(size int, label string, tiny, quick, full int) *workload {
	return &workload{
		name:     "ring-spsc-" + label,
		doc:      fmt.Sprintf("one producer and one consumer goroutine move %s messages, no syncs", label),
		systems:  spscSystems,
		baseline: "chan",
		run: func(r *run) (work, error) {
			n := pick(r.size, tiny, quick, full)
			if r.system == "chan" {
				return runSPSCChan(r, size, n)
			}
			return runSPSCRing(r, size, n)
		},
	}
}

// spscFirst and spscLast are the first and last words of message i. The
// rotation keeps first^last varying with i, so the XOR of a pass notices a
// message missing, doubled or replaced by another.
func spscFirst(i int) uint64 { return uint64(i)*patternMul ^ patternXor }
func spscLast(i int) uint64  { return bits.RotateLeft64(spscFirst(i), 29) }

// spscWantXOR is the XOR of first^last over messages 0..n-1.
func spscWantXOR(n int) uint64 {
	var x uint64
	for i := range n {
		x ^= spscFirst(i) ^ spscLast(i)
	}
	return x
}

// spscTemplate is the constant content of a message's middle bytes.
func spscTemplate(size int) []byte {
	t := make([]byte, size-16)
	for i := range t {
		t[i] = byte(i*7 + 1)
	}
	return t
}

// spscFill writes message i into m (len(m) = size).
func spscFill(m, tmpl []byte, i int) {
	binary.LittleEndian.PutUint64(m, spscFirst(i))
	copy(m[8:len(m)-8], tmpl)
	binary.LittleEndian.PutUint64(m[len(m)-8:], spscLast(i))
}

// spscFold is the consumer's check of one message.
func spscFold(m []byte) uint64 {
	return binary.LittleEndian.Uint64(m) ^ binary.LittleEndian.Uint64(m[len(m)-8:])
}

// spscVerify compares what the consumer of a pass of n messages saw (count
// messages whose words fold to got) with what was sent (n, want).
func spscVerify(what string, n, count int, want, got uint64) error {
	if count != n {
		return fmt.Errorf("verification failed: %s: the consumer saw %d messages, %d were sent", what, count, n)
	}
	if got != want {
		return fmt.Errorf("verification failed: %s: XOR of the first and last words of %d messages is %#x, want %#x", what, n, got, want)
	}
	return nil
}

func runSPSCRing(r *run, size, n int) (_ work, err error) {
	backend, err := pagerBackend(r.system)
	if err != nil {
		return work{}, err
	}
	dir, err := os.MkdirTemp(r.dir, "ring-spsc-")
	if err != nil {
		return work{}, err
	}
	defer os.RemoveAll(dir)
	capacity := spscCapacity(r.size)
	rg, err := ring.Create(filepath.Join(dir, "ring"), &ring.Options{Capacity: int64(capacity), Backend: backend})
	if err != nil {
		return work{}, err
	}
	defer func() {
		if cerr := rg.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c, err := rg.Consumer("bench", nil)
	if err != nil {
		return work{}, err
	}
	p := &spscRingPass{r: rg, c: c, size: size, tmpl: spscTemplate(size), batchMax: spscBatchMax(r.size)}

	warm := spscWarm(r.size, size, n)
	if _, err := p.run(warm); err != nil {
		return work{}, fmt.Errorf("warm-up pass: %w", err)
	}
	if err := spscVerify("warm-up pass", warm, p.count, spscWantXOR(warm), p.xor); err != nil {
		return work{}, err
	}
	want := spscWantXOR(n)
	start := rg.Head()

	r.startTimer()
	perr, err := p.run(n)
	r.stopTimer()
	if err != nil {
		return work{}, err
	}
	if perr != nil {
		return work{}, perr
	}
	if err := spscVerify("timed pass", n, p.count, want, p.xor); err != nil {
		return work{}, err
	}
	if head := rg.Head(); head-start != uint64(n)*uint64(size) {
		return work{}, fmt.Errorf("verification failed: the head moved %d bytes, want %d", head-start, n*size)
	}
	if b, _, err := c.Peek(); err != nil || len(b) != 0 {
		return work{}, fmt.Errorf("verification failed: %d bytes left unread after the pass (%v)", len(b), err)
	}
	if p.batches > 0 {
		r.setExtra("peek_batch", float64(p.count)/float64(p.batches))
	}
	r.setExtra("waits", float64(p.waits))
	return work{n: int64(n), bytes: int64(n) * int64(size)}, nil
}

// spscRingPass moves messages through a ring: the caller's goroutine is
// the consumer, the producer runs in a goroutine of its own.
type spscRingPass struct {
	r        *ring.Ring
	c        *ring.Consumer
	size     int
	tmpl     []byte
	batchMax int

	// Results of the last pass.
	count   int    // messages consumed
	xor     uint64 // XOR of their first and last words
	batches int    // non-empty Peeks
	waits   int    // Wait calls
}

// run moves n messages and returns when the consumer has folded the last
// one: the producer's error (if it failed; nil otherwise) and the
// consumer's.
func (p *spscRingPass) run(n int) (producerErr, consumerErr error) {
	p.count, p.xor, p.batches, p.waits = 0, 0, 0, 0
	// stop ends the producer's waits for space if the consumer fails;
	// produced ends when the producer returns, so that a consumer short of
	// messages stops waiting instead of hanging.
	stop, stopProducer := context.WithCancel(context.Background())
	defer stopProducer()
	produced, producerDone := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		defer producerDone()
		errc <- p.produce(stop, n)
	}()
	consumerErr = p.consume(produced, n)
	if consumerErr != nil {
		stopProducer()
	}
	return <-errc, consumerErr
}

func (p *spscRingPass) produce(ctx context.Context, n int) error {
	for i := range n {
		m, err := p.r.Reserve(ctx, p.size)
		if err != nil {
			return fmt.Errorf("producer, message %d: %w", i, err)
		}
		spscFill(m, p.tmpl, i)
		if err := p.r.Commit(p.size); err != nil {
			return fmt.Errorf("producer, message %d: %w", i, err)
		}
	}
	return nil
}

func (p *spscRingPass) consume(produced context.Context, n int) error {
	size := p.size
	var x uint64
	count, batches, waits := 0, 0, 0
	defer func() { p.count, p.xor, p.batches, p.waits = count, x, batches, waits }()
	producerGone := false
	for count < n {
		b, _, err := p.c.Peek()
		if err != nil {
			return fmt.Errorf("consumer after %d messages: %w", count, err)
		}
		if len(b) == 0 {
			if producerGone {
				// Every commit happened before the producer
				// returned, and this Peek came after: nothing more
				// will arrive.
				return nil
			}
			waits++
			if err := p.c.Wait(produced); err != nil {
				if produced.Err() == nil {
					return fmt.Errorf("consumer after %d messages: %w", count, err)
				}
				producerGone = true
			}
			continue
		}
		if len(b)%size != 0 {
			return fmt.Errorf("verification failed: consumer after %d messages: Peek returned %d bytes, not a whole number of %d-byte messages", count, len(b), size)
		}
		batches++
		b = b[:min(len(b), p.batchMax)]
		for off := 0; off < len(b); off += size {
			x ^= spscFold(b[off : off+size])
		}
		count += len(b) / size
		if err := p.c.Release(len(b)); err != nil {
			return fmt.Errorf("consumer after %d messages: %w", count, err)
		}
	}
	return nil
}

func runSPSCChan(r *run, size, n int) (work, error) {
	tmpl := spscTemplate(size)
	chanCap := spscChanCap(r.size, size)

	warm := spscWarm(r.size, size, n)
	count, x := spscChanPass(size, warm, chanCap, tmpl)
	if err := spscVerify("warm-up pass", warm, count, spscWantXOR(warm), x); err != nil {
		return work{}, err
	}
	want := spscWantXOR(n)

	r.startTimer()
	count, x = spscChanPass(size, n, chanCap, tmpl)
	r.stopTimer()

	if err := spscVerify("timed pass", n, count, want, x); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * int64(size)}, nil
}

// spscChanPass sends n messages through a channel with a buffer of chanCap
// from a producer goroutine to the caller's goroutine and returns the
// number received and the XOR of their first and last words.
func spscChanPass(size, n, chanCap int, tmpl []byte) (count int, x uint64) {
	ch := make(chan []byte, chanCap)
	go func() {
		for i := range n {
			m := make([]byte, size)
			spscFill(m, tmpl, i)
			ch <- m
		}
		close(ch)
	}()
	for m := range ch {
		x ^= spscFold(m)
		count++
	}
	return count, x
}
