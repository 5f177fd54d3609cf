package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringlog/ringlog/internal/notify"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// Errors. Each is returned wrapped with the file (and offset where there is
// one); test with errors.Is.
var (
	ErrCorrupt     = errors.New("wal: corrupt log")
	ErrClosed      = errors.New("wal: log is closed")
	ErrTooLarge    = errors.New("wal: record larger than the maximum")
	ErrFailed      = errors.New("wal: an earlier write or sync failed; the log refuses writes")
	ErrNotDurable  = errors.New("wal: appended, but not known to be durable")
	ErrReadOnly    = errors.New("wal: log opened read-only")
	ErrLocked      = errors.New("wal: another writer has the log open")
	ErrRange       = errors.New("wal: position outside the log")
	ErrNotRecord   = errors.New("wal: no record starts at this position")
	ErrBadOptions  = errors.New("wal: invalid options")
	ErrFull        = errors.New("wal: log full: consumers or the checkpoint hold the space")
	ErrVersion     = errors.New("wal: the log was written in another format version")
	ErrBusy        = errors.New("wal: consumer attached elsewhere (another handle or process)")
	ErrInBatch     = errors.New("wal: position inside a batch: a batch is kept or dropped whole")
	ErrTruncated   = errors.New("wal: the log was cut back before the reader's position (TruncateBack, or recovery after a crash)")
	errEpochsSpent = errors.New("wal: epoch counter exhausted")
)

// IsCorruption reports whether err says the log's bytes are damaged.
func IsCorruption(err error) bool { return errors.Is(err, ErrCorrupt) }

// FullPolicy says what an append does when the log is full.
type FullPolicy uint8

// Full policies.
const (
	FullWait  FullPolicy = iota // wait for space, with the append's context
	FullError                   // fail with ErrFull
)

// SyncPolicy says when appends become durable.
type SyncPolicy uint8

// Sync policies.
const (
	// SyncAlways makes every Append wait until its record is durable
	// (fdatasync), with group commit: one sync covers every record
	// waiting for it.
	SyncAlways SyncPolicy = iota
	// SyncInterval syncs every Options.SyncInterval in the background;
	// Append returns once the record is in the log.
	SyncInterval
	// SyncNever leaves durability to the operating system, except for
	// explicit Sync, AppendSync and Close.
	SyncNever
)

// Options configure Create and Open. The zero value is a bounded log of
// 64 MiB on the Auto backend, every append synced, default recovery.
type Options struct {
	// Layout picks the bounded ring (the default) or the growing layout
	// (Create only; see the package doc). In the growing layout Capacity
	// is the most the log may hold (default 4 GiB of reserved address
	// space) and SegmentSize (default 64 MiB) the unit the file grows by;
	// a write of staged records, and so a batch, is at most a segment.
	Layout      Layout
	SegmentSize int64
	// Capacity is the size of the log's data area (Create only): a
	// multiple of 64 KiB; 0 means 64 MiB.
	Capacity int64
	// Backend picks the pager backend.
	Backend pager.Backend
	// Sync is the sync policy; SyncInterval uses SyncInterval (default
	// 10ms).
	Sync         SyncPolicy
	SyncInterval time.Duration
	// MaxRecordSize bounds a record's payload (Create only; stored in the
	// log). 0 means min(16 MiB, half the capacity or, growing, half a
	// segment).
	MaxRecordSize int
	// Recovery picks what Open does with damage; see RecoveryMode.
	Recovery RecoveryMode
	// ReadOnly opens the log to read it beside a writer in another
	// process (no recovery, no writes).
	ReadOnly bool
	// Perm is the mode of a created file; 0 means 0600.
	Perm os.FileMode
	// BufferSize is the size of the staging buffer that appends are
	// copied into and that the log writes with one pwrite; 0 means 1 MiB.
	BufferSize int
	// Compression is how Append, AppendSync, AppendBatch and
	// AppendBatchSync store records (AppendWith chooses per call): see
	// Compression. Readers of a log decode whatever each record says.
	Compression Compression
	// Full says what an append does when the log holds all it may (the
	// slowest consumer or the checkpoint holds the space): wait (with its
	// context) for space, or fail with ErrFull.
	Full FullPolicy
	// Replay, if set, receives every record recovery keeps, in order,
	// during Open: the one pass a storage engine needs at startup, with
	// every checksum verified once. data is valid only during the call
	// (it is a buffer recovery reuses). An error from Replay fails Open.
	// If Open fails for another reason (damage in synced data), Replay
	// may already have received the records before the damage: discard
	// them.
	Replay func(pos uint64, data []byte) error
	// Logger, if set, receives the log's events, never one per record:
	// every Open's recovery (Info, or Warn when it cut the log or
	// skipped damage: what Report says), the first failed write or sync
	// (Error), TruncateBack and consumer registration and removal
	// (Info), a consumer's reattachment (Info, or Warn when it skipped
	// records), TruncateFront and attaching to a registered consumer
	// (Debug), and what the ring and
	// the pager repaired or fell back from at open (see ring.Options).
	// Every record names the file. nil logs nothing.
	Logger *slog.Logger
}

const (
	defaultCapacity        = 64 << 20
	defaultGrowingCapacity = 4 << 30
	defaultSegmentSize     = 64 << 20
	defaultMaxRecord       = 16 << 20
	defaultBufferSize      = 1 << 20
	checkpointName         = "$wal"
)

// meta is the log's durable state, kept in the ring header's user data.
//
//	0   4  magic "RWAL"
//	4   4  log format version (2)
//	8   8  checkpoint: recovery starts scanning here (a record boundary)
//	16  4  epoch: records at or after the epoch start carry it
//	20  4  maximum record payload
//	24  8  epoch start
//	32  8  clean end: where the log ended when it was last closed cleanly
//	40  4  flags: bit 0 "clean": closed cleanly at the clean end (cleared
//	       while the log is open, so a crash leaves it clear)
//	44  4  zero
type meta struct {
	checkpoint uint64
	epoch      uint32
	maxRecord  uint32
	epochStart uint64
	cleanEnd   uint64
	clean      bool
}

const (
	metaMagic   = "RWAL"
	metaVersion = 2 // 2: batch "cont" and "epoch start" flags, compression
	metaSize    = 48
	metaClean   = 1
)

func (m meta) encode() []byte {
	b := make([]byte, metaSize)
	copy(b, metaMagic)
	le := binary.LittleEndian
	le.PutUint32(b[4:], metaVersion)
	le.PutUint64(b[8:], m.checkpoint)
	le.PutUint32(b[16:], m.epoch)
	le.PutUint32(b[20:], m.maxRecord)
	le.PutUint64(b[24:], m.epochStart)
	le.PutUint64(b[32:], m.cleanEnd)
	if m.clean {
		le.PutUint32(b[40:], metaClean)
	}
	return b
}

func decodeMeta(b []byte, capacity uint64) (meta, error) {
	if len(b) != metaSize || string(b[:4]) != metaMagic {
		return meta{}, fmt.Errorf("no log metadata in the ring header (%d bytes of user data): %w", len(b), ErrCorrupt)
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[4:]); v != metaVersion {
		return meta{}, fmt.Errorf("log format version %d, this build reads %d: %w", v, metaVersion, ErrVersion)
	}
	m := meta{
		checkpoint: le.Uint64(b[8:]),
		epoch:      le.Uint32(b[16:]),
		maxRecord:  le.Uint32(b[20:]),
		epochStart: le.Uint64(b[24:]),
		cleanEnd:   le.Uint64(b[32:]),
		clean:      le.Uint32(b[40:])&metaClean != 0,
	}
	if m.maxRecord == 0 || uint64(recordSize(int(m.maxRecord))) > capacity || m.checkpoint%align != 0 || m.epochStart%align != 0 {
		return meta{}, fmt.Errorf("log metadata out of range (maximum record %d, checkpoint %d, epoch start %d, capacity %d): %w",
			m.maxRecord, m.checkpoint, m.epochStart, capacity, ErrCorrupt)
	}
	return m, nil
}

// Log is a write-ahead log. See the package doc.
type Log struct {
	r        *ring.Ring
	name     string
	opts     Options
	maxRec   int
	readOnly bool
	cp       *ring.Consumer // retains the log from the checkpoint on
	truncMu  sync.Mutex     // one truncation at a time (it moves cp)
	report   Report
	dec      *decoder // compressed records

	mu struct {
		sync.Mutex
		meta    meta
		buf     []byte // staged records, starting with a sync marker
		start   uint64 // position of buf[0]
		err     error  // sticky failure
		closed  bool
		syncReq bool // a caller waits for a sync
		records int  // data records staged in buf
		// flusherIdle: the flusher waits to be woken. Counters of appends
		// are kept under the lock the appender holds anyway.
		flusherIdle    bool
		appends, bytes uint64
		limit          uint64 // FullError: the writer may write up to here (cached)
		// trunc is a TruncateBack the flusher carries out once it has
		// written what is staged; appends wait meanwhile.
		trunc *truncRequest
		// Packed records (AppendPacked): packAt is the offset in buf of
		// the one that may still grow, if packOpen; unsealed lists the
		// offsets of those whose checksums the flusher fills in.
		packOpen bool
		packAt   int
		unsealed []int
	}
	written atomic.Uint64 // end of the records handed to the OS (the ring head)
	// truncGen counts TruncateBacks; it changes under mu.
	truncGen atomic.Uint64
	synced   atomic.Uint64 // end of the durable records

	kick      chan struct{}   // wakes the flusher
	flushed   notify.Notifier // written or synced moved, or the log failed
	wrote     notify.Notifier // written moved (before the sync), or the log failed or closed
	roomFreed notify.Notifier // the flusher took the buffer
	done      chan struct{}   // the flusher has exited
	stats     stats
	// batchForTest keeps appends in the buffer until Flush or Sync, so
	// tests see the same writes (and sync markers) on every run.
	batchForTest bool
	syncTimer    *time.Ticker
	epochLimit   uint32
	// salvageCopy is where Open copied the file for salvage.
	salvageCopy string
}

// Create makes a new log at path. It fails if the file exists.
func Create(path string, opts *Options) (*Log, error) {
	o := optionsOf(opts)
	if o.ReadOnly {
		return nil, fmt.Errorf("wal: create %s: %w", path, ErrReadOnly)
	}
	capacity, span := o.Capacity, o.Capacity
	if o.Layout == Growing {
		if capacity == 0 {
			capacity = defaultGrowingCapacity
		}
		span = o.SegmentSize
		if span == 0 {
			span = min(defaultSegmentSize, capacity/2)
		}
	} else if capacity == 0 {
		capacity, span = defaultCapacity, defaultCapacity
	}
	maxRec := o.MaxRecordSize
	if maxRec == 0 {
		maxRec = int(min(defaultMaxRecord, span/2))
	}
	if maxRec < 0 || int64(recordSize(maxRec)+markerSize) > span || maxRec > 1<<31 {
		return nil, fmt.Errorf("wal: create %s: maximum record size %d for spans of %d bytes: %w", path, maxRec, span, ErrBadOptions)
	}
	m := meta{epoch: 1, maxRecord: uint32(maxRec), clean: true}
	r, err := ring.Create(path, &ring.Options{Capacity: capacity, Backend: o.Backend, Perm: o.Perm, UserData: m.encode(),
		Layout: o.Layout, SegmentSize: span})
	if err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", path, err)
	}
	if err := r.Close(); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", path, err)
	}
	return Open(path, opts)
}

func optionsOf(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 10 * time.Millisecond
	}
	if o.BufferSize <= 0 {
		o.BufferSize = defaultBufferSize
	}
	return o
}

// Open opens the log at path, runs recovery (see RecoveryMode) and starts
// its flusher. Report says what recovery did.
func Open(path string, opts *Options) (*Log, error) {
	o := optionsOf(opts)
	// Salvage copies the file aside as it is, before anything changes it:
	// the ring's open already repairs consumer slots. If the ring does
	// not open (another writer has it, or it is unreadable), the file is
	// left as it was and the copy is dropped.
	var aside string
	if o.Recovery == RecoverSalvage && !o.ReadOnly {
		var err error
		if aside, err = copyAside(path); err != nil {
			return nil, err
		}
	}
	r, err := ring.Open(path, &ring.Options{Backend: o.Backend, ReadOnly: o.ReadOnly, HeadUnknown: true, Logger: o.Logger})
	if err != nil {
		if aside != "" {
			os.Remove(aside)
		}
		if errors.Is(err, ring.ErrLocked) {
			return nil, fmt.Errorf("wal: open %s: %w", path, ErrLocked)
		}
		if errors.Is(err, ring.ErrCorrupt) {
			return nil, fmt.Errorf("wal: open %s: %w (%w)", path, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("wal: open %s: %w", path, err)
	}
	l, err := open(r, o, aside)
	if err != nil {
		r.Close()
		return nil, err
	}
	return l, nil
}

func open(r *ring.Ring, o Options, salvageCopy string) (*Log, error) {
	l := &Log{
		r:           r,
		name:        r.Name(),
		opts:        o,
		salvageCopy: salvageCopy,
		readOnly:    o.ReadOnly,
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
		epochLimit:  ^uint32(0),
	}
	m, err := decodeMeta(r.UserData(), uint64(r.Span()))
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", l.name, err)
	}
	l.maxRec = int(m.maxRecord)
	l.dec = &decoder{maxRec: l.maxRec}
	l.mu.meta = m
	if o.ReadOnly {
		l.written.Store(r.Head())
		l.synced.Store(r.Synced())
		close(l.done)
		return l, nil
	}
	t0 := time.Now()
	if err := l.recover(); err != nil {
		return nil, err
	}
	l.logRecovery(time.Since(t0))
	l.mu.flusherIdle = true
	// A write of the staged buffer is one write of the ring: at most a
	// span (a segment in the growing layout).
	o.BufferSize = min(o.BufferSize, r.Span()-markerSize)
	l.opts.BufferSize = o.BufferSize
	l.mu.buf = make([]byte, 0, o.BufferSize)
	l.mu.start = l.written.Load()
	if o.Sync == SyncInterval {
		l.syncTimer = time.NewTicker(o.SyncInterval)
	}
	go l.flusher()
	return l, nil
}

// Name is the log's file name.
func (l *Log) Name() string { return l.name }

// Report says what the last Open did.
func (l *Log) Report() Report { return l.report }

// MaxRecordSize is the largest payload a record may have.
func (l *Log) MaxRecordSize() int { return l.maxRec }

// Info describes the log's file: what it was created with and what Open
// found. It reads no more than the log's own fields (a read-only log's
// epoch is the one its header held at Open or the last refresh).
type Info struct {
	Layout      Layout        // bounded ring or growing segments
	Capacity    int64         // the ring's capacity in bytes (growing: the most the log may hold)
	SegmentSize int64         // growing layout: the segment size; bounded: 0
	Backend     pager.Backend // the pager backend the log's data is mapped with
	Epoch       uint32        // the epoch new records carry (a writer's; a reader's: the header's)
}

// Info describes the log's layout, capacity, backend and epoch.
func (l *Log) Info() Info {
	i := Info{
		Layout:   l.r.Layout(),
		Capacity: l.r.Capacity(),
		Backend:  l.r.Info().Backend,
	}
	if i.Layout == ring.Growing {
		i.SegmentSize = int64(l.r.Span())
	}
	l.mu.Lock()
	i.Epoch = l.mu.meta.epoch
	l.mu.Unlock()
	return i
}

// Written is the end of the records handed to the operating system:
// readers see records before it.
func (l *Log) Written() uint64 {
	if l.readOnly {
		return l.r.Head()
	}
	return l.written.Load()
}

// Durable is the end of the records known to be on stable storage.
func (l *Log) Durable() uint64 {
	if l.readOnly {
		return l.r.Synced()
	}
	return l.synced.Load()
}

// Checkpoint is where recovery starts and reading may begin: records
// before it have been truncated away.
func (l *Log) Checkpoint() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.meta.checkpoint
}

// refreshMeta takes the log's metadata again: on a read-only log from the
// header the writer wrote last.
func (l *Log) refreshMeta() error {
	if !l.readOnly {
		return nil // this process's meta is always current
	}
	if err := l.r.ReloadHeader(); err != nil {
		return fmt.Errorf("wal: %s: %w", l.name, err)
	}
	m, err := decodeMeta(l.r.UserData(), uint64(l.r.Span()))
	if err != nil {
		return fmt.Errorf("wal: %s: %w", l.name, err)
	}
	l.mu.Lock()
	l.mu.meta = m
	l.mu.Unlock()
	return nil
}

// waitPast waits until records (durable ones if durable) extend past pos,
// or ctx ends, or the log closes.
func (l *Log) waitPast(ctx context.Context, pos uint64, durable bool) error {
	if l.readOnly {
		if err := l.r.WaitHead(ctx, pos, durable); err != nil {
			return fmt.Errorf("wal: %s: %w", l.name, err)
		}
		return nil
	}
	for {
		reached := l.written.Load()
		if durable {
			reached = l.synced.Load()
		}
		if reached > pos {
			return nil
		}
		var ch <-chan struct{}
		if durable {
			ch = l.flushed.Wait()
		} else {
			ch = l.wrote.Wait()
		}
		l.mu.Lock()
		closed := l.mu.closed
		l.mu.Unlock()
		if closed {
			return fmt.Errorf("wal: %s: %w", l.name, ErrClosed)
		}
		reached = l.written.Load()
		if durable {
			reached = l.synced.Load()
		}
		if reached > pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wal: %s: %w", l.name, ctx.Err())
		case <-ch:
		}
	}
}

// Append adds a record and returns its position. It returns once the
// record has its place in the log; under SyncAlways it also waits until the
// record is durable. Records appended by one goroutine keep their order.
//
// If ctx ends before the record has its place (Append waits while the
// staging buffer is full), nothing was appended. If it ends while Append
// waits for durability, the record is in the log and may yet become
// durable: the error wraps ErrNotDurable and the position is returned.
func (l *Log) Append(ctx context.Context, p []byte) (uint64, error) {
	return l.append(ctx, [][]byte{p}, l.opts.Sync == SyncAlways, l.opts.Compression)
}

// AppendSync is Append that waits for durability whatever the policy.
func (l *Log) AppendSync(ctx context.Context, p []byte) (uint64, error) {
	return l.append(ctx, [][]byte{p}, true, l.opts.Compression)
}

// AppendBatch adds several records atomically: after any crash recovery
// finds all of them or none. It returns the position of the first; the
// others follow in order. Durability as for Append.
func (l *Log) AppendBatch(ctx context.Context, ps [][]byte) (uint64, error) {
	return l.append(ctx, ps, l.opts.Sync == SyncAlways, l.opts.Compression)
}

// AppendBatchSync is AppendBatch that waits for durability whatever the
// policy.
func (l *Log) AppendBatchSync(ctx context.Context, ps [][]byte) (uint64, error) {
	return l.append(ctx, ps, true, l.opts.Compression)
}

// AppendOptions choose, for one call of AppendWith, what the log's options
// choose for Append.
type AppendOptions struct {
	// Compression of these records (NoCompression stores them as they
	// are), whatever Options.Compression says.
	Compression Compression
	// Sync waits until the records are durable, whatever the policy.
	Sync bool
}

// AppendWith appends one record, or several as a batch (see AppendBatch),
// with per-call options: compression per record or per batch.
func (l *Log) AppendWith(ctx context.Context, o AppendOptions, ps ...[]byte) (uint64, error) {
	return l.append(ctx, ps, o.Sync || l.opts.Sync == SyncAlways, o.Compression)
}

// compressBufs hold compressed records between compression and staging.
var compressBufs = sync.Pool{New: func() any { return new([]byte) }}

func (l *Log) append(ctx context.Context, ps [][]byte, durable bool, codec Compression) (uint64, error) {
	if l.readOnly {
		return 0, fmt.Errorf("wal: append to %s: %w", l.name, ErrReadOnly)
	}
	size := 0
	for _, p := range ps {
		if len(p) > l.maxRec {
			return 0, fmt.Errorf("wal: append to %s: %d bytes, at most %d: %w", l.name, len(p), l.maxRec, ErrTooLarge)
		}
		size += recordSize(len(p))
	}
	if len(ps) == 0 {
		return 0, fmt.Errorf("wal: append to %s: an empty batch: %w", l.name, ErrBadOptions)
	}
	var codecs []uint8 // the codec flags of each record, if compressing
	if codec != NoCompression {
		// Compressed outside the lock; a record that does not shrink is
		// stored as it is.
		bp := compressBufs.Get().(*[]byte)
		defer func() {
			if cap(*bp) <= 4<<20 {
				compressBufs.Put(bp)
			}
		}()
		buf := (*bp)[:0]
		ends := make([]int, len(ps))
		codecs = make([]uint8, len(ps))
		for i, p := range ps {
			var ok bool
			var err error
			if buf, ok, err = compressInto(buf, codec, p); err != nil {
				return 0, fmt.Errorf("wal: append to %s: %w", l.name, err)
			}
			ends[i] = len(buf)
			if ok {
				codecs[i] = uint8(codec) << codecShift
			}
		}
		*bp = buf
		stored := make([][]byte, len(ps))
		size = 0
		start := 0
		for i, p := range ps {
			stored[i] = p
			if codecs[i] != 0 {
				stored[i] = buf[start:ends[i]]
			}
			start = ends[i]
			size += recordSize(len(stored[i]))
		}
		ps = stored
	}
	if size+markerSize > l.r.Span() {
		return 0, fmt.Errorf("wal: append to %s: a batch of %d bytes, at most %d in one write: %w", l.name, size, l.r.Span(), ErrTooLarge)
	}
	if err := l.lockRoom(ctx, size); err != nil {
		return 0, err
	}
	if l.opts.Full == FullError {
		if err := l.roomLocked(size); err != nil {
			l.mu.Unlock()
			return 0, err
		}
	}
	if len(l.mu.buf) == 0 {
		// Every write starts with a sync marker, filled in when the
		// buffer is written: recovery learns from it how far the log was
		// durable before this write.
		l.mu.buf = l.mu.buf[:markerSize]
	}
	first := l.mu.start + uint64(len(l.mu.buf))
	pos := first
	epoch := l.mu.meta.epoch
	l.mu.packOpen = false
	for i, p := range ps {
		h := recordHeader{pos: pos, epoch: epoch, typ: typeData}
		if i < len(ps)-1 {
			h.flags |= flagMore
		}
		if i > 0 {
			h.flags |= flagCont
		}
		if codecs != nil {
			h.flags |= codecs[i]
		}
		n := recordSize(len(p))
		at := len(l.mu.buf)
		l.mu.buf = growTo(l.mu.buf, at+n)
		putRecord(l.mu.buf[at:], h, p)
		pos += uint64(n)
	}
	gen := l.truncGen.Load()
	l.mu.records += len(ps)
	l.mu.appends += uint64(len(ps))
	l.mu.bytes += uint64(size)
	if durable {
		l.mu.syncReq = true
	}
	// A busy flusher comes back for more by itself: wake it only when it
	// sleeps, or when a writer waits for a sync.
	kick := durable || (l.mu.flusherIdle && !l.batchForTest)
	if kick {
		l.mu.flusherIdle = false
	}
	l.mu.Unlock()
	if kick {
		l.kickFlusher()
	}
	if !durable {
		return first, nil
	}
	if err := l.waitFor(ctx, pos, true, gen); err != nil {
		return first, err
	}
	return first, nil
}

// lockRoom takes l.mu once the staging buffer has room for size more
// bytes: at most one buffer's worth waits for the flusher (a single larger
// batch is staged alone). On error l.mu is not held.
func (l *Log) lockRoom(ctx context.Context, size int) error {
	l.mu.Lock()
	for {
		if err := l.usableLocked("append"); err != nil {
			l.mu.Unlock()
			return err
		}
		if l.mu.trunc == nil && (len(l.mu.buf) == 0 || len(l.mu.buf)+size <= cap(l.mu.buf)) {
			return nil
		}
		ch := l.roomFreed.Wait()
		l.mu.Unlock()
		l.kickFlusher()
		select {
		case <-ctx.Done():
			return fmt.Errorf("wal: append to %s: %w", l.name, ctx.Err())
		case <-ch:
		}
		l.mu.Lock()
	}
}

// roomLocked fails with ErrFull unless size more bytes of records fit in
// the log now (FullError). The limit is cached and looked at again only
// when it seems too small.
func (l *Log) roomLocked(size int) error {
	end := l.mu.start + uint64(len(l.mu.buf)) + uint64(size)
	if len(l.mu.buf) == 0 {
		end += uint64(markerSize)
	}
	if end <= l.mu.limit {
		return nil
	}
	lim, err := l.r.Limit()
	if err != nil {
		return fmt.Errorf("wal: append to %s: %w", l.name, err)
	}
	l.mu.limit = lim
	if end > lim {
		return fmt.Errorf("wal: append to %s: %d bytes wanted, %d free: %w", l.name, size, lim-min(lim, end-uint64(size)), ErrFull)
	}
	return nil
}

// markerSize is the space of a sync marker record.
var markerSize = recordSize(syncPayload)

func growTo(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

func (l *Log) usableLocked(what string) error {
	if l.mu.closed {
		return fmt.Errorf("wal: %s %s: %w", what, l.name, ErrClosed)
	}
	if l.mu.err != nil {
		return fmt.Errorf("wal: %s %s: %w", what, l.name, l.mu.err)
	}
	return nil
}

func (l *Log) kickFlusher() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// waitFor waits until records up to end, staged in truncation generation
// gen, are written (or durable). A TruncateBack writes and syncs
// everything staged before it starts, so once the generation moved on,
// the records were durable before they were (maybe) dropped.
func (l *Log) waitFor(ctx context.Context, end uint64, durable bool, gen uint64) error {
	for {
		reached := l.written.Load()
		if durable {
			reached = l.synced.Load()
		}
		if reached >= end || l.truncGen.Load() != gen {
			return nil
		}
		ch := l.flushed.Wait()
		l.mu.Lock()
		err := l.mu.err
		closed := l.mu.closed
		l.mu.Unlock()
		reached = l.written.Load()
		if durable {
			reached = l.synced.Load()
		}
		if reached >= end || l.truncGen.Load() != gen {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wal: %s: %w (%w)", l.name, ErrNotDurable, err)
		}
		if closed {
			return fmt.Errorf("wal: %s: %w (%w)", l.name, ErrNotDurable, ErrClosed)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wal: %s: position %d: %w (%w)", l.name, end, ErrNotDurable, ctx.Err())
		case <-ch:
		}
	}
}

// Flush hands every record appended so far to the operating system (it is
// then visible to readers, and survives a crash of this process) without
// waiting for it to be durable.
func (l *Log) Flush(ctx context.Context) error {
	end, gen, err := l.end()
	if err != nil {
		return err
	}
	l.kickFlusher()
	return l.waitFor(ctx, end, false, gen)
}

// Sync makes every record appended so far durable.
func (l *Log) Sync(ctx context.Context) error {
	l.mu.Lock()
	l.mu.syncReq = true
	l.mu.Unlock()
	end, gen, err := l.end()
	if err != nil {
		return err
	}
	l.kickFlusher()
	return l.waitFor(ctx, end, true, gen)
}

// end is the position after the last staged record, and the truncation
// generation it was staged in.
func (l *Log) end() (uint64, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readOnly {
		return 0, 0, fmt.Errorf("wal: %s: %w", l.name, ErrReadOnly)
	}
	if err := l.usableLocked("flush"); err != nil && !errors.Is(err, ErrClosed) {
		return 0, 0, err
	}
	return l.mu.start + uint64(len(l.mu.buf)), l.truncGen.Load(), nil
}

// flusher writes staged records with one pwrite per buffer and syncs them:
// group commit. While it writes or syncs, appends gather in the other
// buffer, and the next round takes them all, so every waiter covered by
// one fdatasync is released by it.
//
// Batching rule: the writers one sync releases usually append again at
// once. Starting the next sync with only the records that arrived during
// the last one would split the writers into groups that alternate (8
// writers, 4 records per sync). So before a sync the flusher waits until
// as many records are staged as the most any of the last 16 syncs
// covered (about the number of writers waiting), but no longer than a
// quarter of the last sync's duration (at most 200µs): a single writer
// never waits, and no writer waits longer than a fraction of a sync.
func (l *Log) flusher() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.syncTimer != nil {
		tick = l.syncTimer.C
	}
	var covered [16]int // records each of the last 16 syncs covered
	var nsyncs, sinceSync int
	var lastSync time.Duration
	spare := make([]byte, 0, l.opts.BufferSize)
	for {
		timed := false
		select {
		case <-l.kick:
		case <-tick:
			timed = true
		}
		for {
			l.lockFlusher()
			if l.mu.syncReq || timed || l.opts.Sync == SyncAlways {
				if want := slices.Max(covered[:]); want > 1 && l.mu.records > 0 && l.mu.records < want {
					l.mu.Unlock()
					l.gather(want, min(lastSync/4, 200*time.Microsecond))
					l.lockFlusher()
				}
			}
			if l.mu.err != nil {
				l.mu.Unlock()
				return
			}
			buf, start, records, unsealed := l.mu.buf, l.mu.start, l.mu.records, l.mu.unsealed
			epoch, epochStart := l.mu.meta.epoch, start == l.mu.meta.epochStart
			syncNow := l.mu.syncReq || timed || (l.opts.Sync == SyncAlways && len(buf) > 0)
			closing := l.mu.closed
			l.mu.syncReq = false
			timed = false
			if req := l.mu.trunc; req != nil && len(buf) == 0 && (!syncNow || l.synced.Load() == l.written.Load()) {
				// Everything staged is written: truncate while no write
				// can start.
				req.taken = true
				l.mu.Unlock()
				err := l.truncateBack(req.pos)
				l.mu.Lock()
				l.mu.trunc = nil
				l.mu.Unlock()
				req.done <- err
				l.roomFreed.Broadcast()
				l.flushed.Broadcast()
				l.wrote.Broadcast()
				continue
			}
			if len(buf) == 0 && (!syncNow || l.synced.Load() == l.written.Load()) {
				l.mu.flusherIdle = true
				l.mu.Unlock()
				if closing {
					return
				}
				break
			}
			if len(buf) > 0 {
				l.mu.buf = spare[:0]
				l.mu.start = start + uint64(len(buf))
				l.mu.records = 0
				l.mu.packOpen, l.mu.unsealed = false, nil
			}
			l.mu.Unlock()
			l.roomFreed.Broadcast()
			t0 := time.Now()
			seal(buf, unsealed)
			if err := l.writeBatch(buf, start, records, epoch, epochStart, syncNow); err != nil {
				l.fail(err)
				return
			}
			sinceSync += records
			if syncNow {
				covered[nsyncs%len(covered)] = sinceSync
				nsyncs, sinceSync, lastSync = nsyncs+1, 0, time.Since(t0)
			}
			if len(buf) > 0 {
				spare = buf[:0]
			}
		}
	}
}

// lockFlusher takes the log's lock for the flusher without queueing on
// it: a queued waiter makes every Unlock of the appenders wake it (a
// system call), which measured as half the cost of a small Append.
func (l *Log) lockFlusher() {
	l.mu.Lock()
}

// gather waits until n records are staged, for at most d.
func (l *Log) gather(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		staged, closing := l.mu.records, l.mu.closed
		l.mu.Unlock()
		left := time.Until(deadline)
		if staged >= n || closing || left <= 0 {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-l.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// writeBatch fills in the batch's sync marker, writes the batch and, if
// asked, syncs.
func (l *Log) writeBatch(buf []byte, start uint64, records int, epoch uint32, epochStart, syncNow bool) error {
	if len(buf) > 0 {
		var v [syncPayload]byte
		binary.LittleEndian.PutUint64(v[:], l.synced.Load())
		h := recordHeader{pos: start, epoch: epoch, typ: typeSync}
		if epochStart {
			// Readers that see the epoch change elsewhere know the log
			// was cut back under them.
			h.flags = flagEpochStart
		}
		putRecord(buf, h, v[:])
		// One pwrite per write of the ring; the ring takes at most a span
		// at a time (a segment in the growing layout). Readers see none of
		// it before written moves, below.
		for b := buf; len(b) > 0; {
			n := min(len(b), l.r.Span())
			if _, err := l.r.Write(context.Background(), b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		l.written.Store(start + uint64(len(buf)))
		// Followers of the written end go now, not after the sync.
		l.wrote.Broadcast()
		l.stats.wrote(records)
	}
	if syncNow {
		end := l.written.Load()
		t0 := time.Now()
		if err := syncData(l.r); err != nil {
			return err
		}
		l.stats.synced(time.Since(t0))
		l.synced.Store(end)
	}
	l.flushed.Broadcast()
	return nil
}

// syncData is a variable so tests can make syncs fail.
var syncData = (*ring.Ring).SyncData

// fail makes the log refuse writes after a failed write or sync: the kernel
// may have dropped the unwritten pages, so nothing after the last good sync
// can be promised. Every waiter gets the error.
func (l *Log) fail(err error) {
	l.mu.Lock()
	first := l.mu.err == nil
	if first {
		l.mu.err = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	l.mu.Unlock()
	if first {
		l.logFailure(err)
	}
	l.r.Fail(err) // the ring must not record anything as durable now
	l.flushed.Broadcast()
	l.wrote.Broadcast()
	l.roomFreed.Broadcast()
}

// Close writes and syncs every appended record, records the state in the
// header, and closes the file. Readers must be closed first; their slices
// are invalid afterwards.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return fmt.Errorf("wal: close %s: %w", l.name, ErrClosed)
	}
	var err error
	if !l.readOnly {
		l.mu.syncReq = true
	}
	l.mu.closed = true
	l.mu.Unlock()
	l.flushed.Broadcast() // followers waiting for records
	l.wrote.Broadcast()
	if !l.readOnly {
		l.kickFlusher()
		<-l.done
		if l.syncTimer != nil {
			l.syncTimer.Stop()
		}
		l.mu.Lock()
		err = l.mu.err
		if err == nil {
			l.mu.meta.cleanEnd, l.mu.meta.clean = l.written.Load(), true
		}
		l.mu.Unlock()
		if err == nil {
			err = l.writeMeta()
		}
	}
	l.dec.close()
	if cerr := l.r.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: close %s: %w", l.name, cerr)
	}
	return err
}

// writeMeta stores the log's metadata in the ring header durably.
func (l *Log) writeMeta() error {
	l.mu.Lock()
	m := l.mu.meta
	l.mu.Unlock()
	if err := l.r.SetUserData(m.encode()); err != nil {
		return err
	}
	if err := l.r.Sync(); err != nil {
		return fmt.Errorf("wal: %s: %w: %w", l.name, ErrFailed, err)
	}
	return nil
}

// TruncateFront drops the records before pos, which must be the position
// of a record or the end of what is written, and frees their space for new
// records. The new checkpoint is made durable before any of that space can
// be reused, so recovery never starts from bytes that were overwritten.
// Readers positioned before pos keep their records until they move on
// (the space is reused only past every reader's pin).
func (l *Log) TruncateFront(pos uint64) error {
	if l.readOnly {
		return fmt.Errorf("wal: truncate %s: %w", l.name, ErrReadOnly)
	}
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	l.mu.Lock()
	if err := l.usableLocked("truncate"); err != nil {
		l.mu.Unlock()
		return err
	}
	cp := l.mu.meta.checkpoint
	staged := l.mu.start + uint64(len(l.mu.buf))
	l.mu.Unlock()
	written := l.written.Load()
	if pos > written && pos <= staged {
		// Records appended but not yet written: write them first.
		if err := l.Flush(context.Background()); err != nil {
			return err
		}
		written = l.written.Load()
	}
	if pos < cp || pos > written {
		return fmt.Errorf("wal: truncate %s at %d: outside [%d, %d]: %w", l.name, pos, cp, written, ErrRange)
	}
	if pos == cp {
		return nil
	}
	if pos < written {
		rd := &Reader{l: l}
		l.mu.Lock()
		rd.epoch, rd.epochAt = l.mu.meta.epoch, l.mu.meta.epochStart
		l.mu.Unlock()
		if _, err := rd.header(pos); err != nil {
			return fmt.Errorf("wal: truncate %s at %d: %w (%w)", l.name, pos, ErrNotRecord, err)
		}
	}
	l.mu.Lock()
	if pos > l.mu.meta.checkpoint {
		l.mu.meta.checkpoint = pos
	}
	l.mu.Unlock()
	if err := l.writeMeta(); err != nil {
		l.fail(err)
		return err
	}
	if n := pos - l.cp.Position(); pos > l.cp.Position() {
		if err := l.cp.Release(int(n)); err != nil {
			return fmt.Errorf("wal: truncate %s: %w", l.name, err)
		}
	}
	l.logTruncateFront(cp, pos)
	return nil
}

type truncRequest struct {
	pos   uint64
	done  chan error
	taken bool // the flusher carries it out (under mu)
}

// TruncateBack drops every record from pos on, as a raft log does when a
// new leader's entries conflict with its suffix. pos must be the position
// of a record that does not continue a batch (a position Append or
// AppendBatch returned), or the end of the log. Appends wait while it
// runs; what they staged before is written first, then dropped with the
// rest if it lies past pos.
//
// The dropped records can never come back, whatever is appended after
// them and however the process ends: the log starts a new epoch at pos and
// makes it durable before any new record is written, and records of an
// older epoch past its start do not parse (see the package doc). Records
// before pos keep their durability.
//
// It fails with ErrRange if a Reader of this process holds a record at or
// past pos (close it or move it first). Readers and consumers positioned
// past pos, and those of other processes, learn of it on their next record
// with ErrTruncated; consumers that acknowledged past pos are moved back
// to it.
func (l *Log) TruncateBack(ctx context.Context, pos uint64) error {
	if l.readOnly {
		return fmt.Errorf("wal: truncate %s: %w", l.name, ErrReadOnly)
	}
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	req := &truncRequest{pos: pos, done: make(chan error, 1)}
	l.mu.Lock()
	if err := l.usableLocked("truncate"); err != nil {
		l.mu.Unlock()
		return err
	}
	l.mu.trunc = req
	l.mu.syncReq = true // what is staged must be written, and synced is cheap then
	l.mu.Unlock()
	l.kickFlusher()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		l.mu.Lock()
		if l.mu.trunc == req && !req.taken {
			l.mu.trunc = nil
			l.mu.Unlock()
			l.roomFreed.Broadcast()
			return fmt.Errorf("wal: truncate %s: %w", l.name, ctx.Err())
		}
		l.mu.Unlock()
		return <-req.done // under way: it ends soon
	case <-l.done:
		// The flusher failed (or the log closed) before taking it.
		select {
		case err := <-req.done:
			return err
		default:
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.mu.trunc = nil
		if err := l.usableLocked("truncate"); err != nil {
			return err
		}
		return fmt.Errorf("wal: truncate %s: %w", l.name, ErrClosed)
	}
}

// truncateBack runs in the flusher with nothing staged and appends
// waiting.
func (l *Log) truncateBack(pos uint64) error {
	l.mu.Lock()
	m := l.mu.meta
	l.mu.Unlock()
	written := l.written.Load()
	if pos < m.checkpoint || pos > written {
		return fmt.Errorf("wal: truncate %s back to %d: outside [%d, %d]: %w", l.name, pos, m.checkpoint, written, ErrRange)
	}
	if pos == written {
		return nil
	}
	rd := &Reader{l: l, epoch: m.epoch, epochAt: m.epochStart}
	h, err := rd.header(pos)
	if err != nil {
		return fmt.Errorf("wal: truncate %s back to %d: %w (%w)", l.name, pos, ErrNotRecord, err)
	}
	if h.typ == typeData && h.flags&flagCont != 0 {
		return fmt.Errorf("wal: truncate %s back to %d: %w", l.name, pos, ErrInBatch)
	}
	if m.epoch+1 >= l.epochLimit {
		return fmt.Errorf("wal: truncate %s: %w", l.name, errEpochsSpent)
	}
	// The ring refuses while a reader of this process holds a record that
	// would be dropped; nothing has changed yet then.
	if err := l.r.SetHead(pos); err != nil {
		if errors.Is(err, ring.ErrRange) {
			return fmt.Errorf("wal: truncate %s back to %d: %w (%w)", l.name, pos, ErrRange, err)
		}
		return fmt.Errorf("wal: truncate %s back to %d: %w", l.name, pos, err)
	}
	l.mu.Lock()
	l.mu.meta.epoch++
	l.mu.meta.epochStart = pos
	l.mu.start = pos
	l.mu.limit = 0
	l.written.Store(pos)
	if l.synced.Load() > pos {
		l.synced.Store(pos)
	}
	l.truncGen.Add(1)
	l.mu.Unlock()
	// Durable before any record of the new epoch is written: recovery
	// must never take the old suffix's records for live ones, nor the new
	// records for stale ones.
	if err := l.writeMeta(); err != nil {
		l.fail(err)
		return fmt.Errorf("wal: truncate %s back to %d: %w", l.name, pos, err)
	}
	l.logTruncateBack(pos, written)
	return nil
}

// Layout picks how the log's ring lives in its file: see ring.Layout.
type Layout = ring.Layout

// Layouts.
const (
	Bounded = ring.Bounded
	Growing = ring.Growing
)
