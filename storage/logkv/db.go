// Package logkv is ringlog's native key-value engine ("ringlog" in
// storage.Open): values live in a write-ahead log (package wal, growing
// layout) and an ordered in-memory index maps each key to where its value
// lies in the log.
//
// # Design
//
//   - Writes: every Put, Delete and Batch is a run of entries appended with
//     wal.AppendPacked (see format.go): writes staged together share a wal
//     record, and a write never spans two, so a batch is atomic. The index
//     is updated under the same lock, so the index and the log agree on the
//     order of writes to a key. A synced write waits for the wal's group
//     commit after releasing the lock: concurrent synced writers share
//     fdatasyncs.
//   - Reads: the index (github.com/tidwall/btree, chosen over google/btree
//     for its generic B-tree with hinted operations, bidirectional seekable
//     iterators and O(1) copy-on-write copies, which make snapshots and
//     consistent iterators cheap) gives the entry's position and length; Get
//     reads the entry where the log is mapped, checks the entry's checksum
//     and copies the value into the caller's buffer. GetView hands out the
//     mapped bytes themselves (see Value for their lifetime).
//   - Reopen: Close writes an index checkpoint (checkpoint.go); Open loads
//     it and the wal's recovery hands the records written after it to the
//     engine in one pass (wal.Options.Replay). Without a usable checkpoint
//     the whole log is replayed.
//   - Space: the cleaner (gc.go) copies the live entries of the oldest
//     segment to the head of the log and truncates the log's front; freed
//     segments are recycled by the log in place, by remapping, without
//     copying the rest.
//
// # Memory
//
// The index holds, per key, a 40-byte item (the key's first 8 bytes, its
// string header, the entry's position and length) in B-tree nodes, plus
// the key itself in its own allocation. See the README for the
// measured figure per key.
package logkv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tidwall/btree"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/wal"
)

func init() {
	storage.Register("ringlog", func(dir string, opts any) (storage.Engine, error) {
		switch o := opts.(type) {
		case nil:
			return Open(dir, nil)
		case *Options:
			return Open(dir, o)
		case Options:
			return Open(dir, &o)
		default:
			return nil, fmt.Errorf("logkv: open %s: options of type %T, want *logkv.Options: %w", dir, opts, storage.ErrBadOption)
		}
	})
}

// LogName is the name of the store's log file in its directory.
const LogName = "ringlog.wal"

// Defaults.
const (
	// DefaultSegmentSize holds the largest record (a 16 MiB value with a
	// key of 64 KiB) in one segment: the log's contiguous span.
	DefaultSegmentSize = 17 << 20
	// defaultSegments: 4.25 GiB of log by default. The view costs a
	// page table entry per page (8 bytes per 4 KiB) and, on the copy
	// backend, heap address space for all of it, so it is not made
	// larger than a store is likely to need; set Capacity for more.
	defaultSegments = 256
	// defaultCopySegments: 544 MiB of log on the copy backend.
	defaultCopySegments = 32
	defaultGCRatio      = 2
	// maxRecord is the largest record the store writes: one entry of the
	// largest key and value. A batch is at most this size encoded.
	maxRecord = maxEntryHeader + storage.MaxKeySize + storage.MaxValueSize
	// packLimit: writes staged together share records of up to this
	// size (a larger write has a record of its own).
	packLimit = 256 << 10
)

// item is one key of the index: 40 bytes.
type item struct {
	// pre is the key's first 8 bytes, big-endian, zero-padded: most
	// comparisons of a search end there, without touching the key's own
	// allocation (a cache miss each).
	pre uint64
	key string
	pos uint64 // position of the key's entry in the log
	n   uint32 // the entry's length
}

// less orders items as bytes.Compare orders their keys: a shorter key
// padded with zeroes compares as itself within the first 8 bytes, and
// equal prefixes fall back to the whole keys.
func less(a, b item) bool {
	if a.pre != b.pre {
		return a.pre < b.pre
	}
	return a.key < b.key
}

func prefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var b [8]byte
	copy(b[:], k)
	return binary.BigEndian.Uint64(b[:])
}

// probe is an item to look key up with; it must not outlive the call.
func probe(key []byte) item { return item{pre: prefix(key), key: unsafeString(key)} }

// DB is a store. Its methods are safe for concurrent use.
type DB struct {
	dir     string
	path    string
	log     *wal.Log
	maxRec  int // the largest record the log takes
	o       Options
	segSize uint64

	mu struct {
		sync.RWMutex // writers (and the cleaner) lock; readers read-lock
		tree         *btree.BTreeG[item]
		closed       bool
		end          uint64 // end of the last record appended
		live         int64  // bytes accounted to live entries
		liveKV       int64  // key and value bytes of live entries
		segs         liveSet
		open         int      // iterators and snapshots not closed
		pin          *wal.Pin // holds the log from the oldest position the index may point to
		gcErr        error    // the cleaner's last failure
	}
	stats struct {
		puts, deletes, gets, batches atomic.Int64
		gcRuns, gcCopied             atomic.Int64
	}
	open   atomic.Int64 // iterators, snapshots and values out (changed under mu, read or write)
	gcCond *sync.Cond   // on mu: the cleaner made progress, failed, or the store closed
	gcMu   sync.Mutex   // one cleaner at a time (the background one, GC)
	gcKick chan struct{}
	stop   chan struct{}

	report    OpenReport
	skipBelow uint64 // during Open: the index checkpoint holds the log before this
	index     struct {
		sync.Mutex            // renaming or removing the index checkpoint file
		upTo       uint64     // the file's upTo, if there is one
		there      bool       // the file exists (as far as the store knows)
		write      sync.Mutex // held through a whole writeIndex: one temporary file at a time
	}
	gcDone chan struct{}
}

// Open opens the store in dir, creating it if dir holds none.
func Open(dir string, o *Options) (*DB, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.Capacity == 0 {
		opts.Capacity = opts.SegmentSize * defaultSegments
		if b := opts.Backend; b == pager.Copy || (b == pager.Auto && pager.DefaultBackend(false) == pager.Copy) {
			// The copy backend allocates the whole view on the heap, and
			// the runtime zeroes recycled heap memory at every open.
			opts.Capacity = opts.SegmentSize * defaultCopySegments
		}
	}
	if opts.GCRatio == 0 {
		opts.GCRatio = defaultGCRatio
	}
	if opts.GCRatio < 1.05 {
		return nil, fmt.Errorf("logkv: open %s: GCRatio %v below 1.05: %w", dir, opts.GCRatio, storage.ErrBadOption)
	}
	if err := osfile.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logkv: open %s: %w", dir, err)
	}
	db := &DB{dir: dir, path: filepath.Join(dir, LogName), o: opts, segSize: uint64(opts.SegmentSize),
		gcKick: make(chan struct{}, 1), stop: make(chan struct{}), gcDone: make(chan struct{})}
	db.mu.tree = btree.NewBTreeGOptions(less, btree.Options{NoLocks: true})
	db.mu.segs.segSize = db.segSize
	db.gcCond = sync.NewCond(&db.mu)
	wo := &wal.Options{
		Layout:        wal.Growing,
		SegmentSize:   opts.SegmentSize,
		Capacity:      opts.Capacity,
		Backend:       opts.Backend,
		Sync:          wal.SyncNever,
		MaxRecordSize: int(min(maxRecord, opts.SegmentSize-128)),
		Recovery:      opts.Recovery,
		Replay:        db.replay,
		Logger:        opts.Logger,
		// A full log (Capacity reached, or space held by values and
		// snapshots not released) fails writes at once rather than
		// blocking them while they hold the index.
		Full: wal.FullError,
	}
	if opts.SyncInterval > 0 {
		wo.Sync, wo.SyncInterval = wal.SyncInterval, opts.SyncInterval
	}
	var err error
	t0 := time.Now()
	if _, serr := os.Stat(db.path); errors.Is(serr, os.ErrNotExist) {
		db.log, err = wal.Create(db.path, wo)
		if err == nil {
			err = osfile.SyncDir(dir)
		}
	} else {
		db.log, err = db.openLog(wo)
	}
	if err != nil {
		if db.log != nil {
			db.log.Close()
		}
		return nil, fmt.Errorf("logkv: open %s: %w", dir, err)
	}
	db.mu.end = db.log.Written()
	db.maxRec = db.log.MaxRecordSize()
	if db.mu.pin, err = db.log.Pin(db.log.Checkpoint()); err != nil {
		db.log.Close()
		return nil, fmt.Errorf("logkv: open %s: %w", dir, err)
	}
	if opts.GCDisabled {
		close(db.gcDone)
	} else {
		go db.gcLoop()
	}
	db.logOpen(time.Since(t0))
	return db, nil
}

// openLog opens the existing log: with the index checkpoint if there is a
// usable one (replaying only what was written after it), else replaying
// the whole log.
func (db *DB) openLog(wo *wal.Options) (*wal.Log, error) {
	upTo, err := db.loadIndex()
	if err == nil {
		db.report.IndexLoaded = true
		db.skipBelow = upTo
	} else if !errors.Is(err, os.ErrNotExist) {
		db.report.IndexError = err
		db.resetIndex()
	}
	l, err := wal.Open(db.path, wo)
	if err != nil || !db.report.IndexLoaded {
		return l, err
	}
	if cp, end := l.Checkpoint(), l.Written(); cp > upTo || upTo > end {
		// The index is older than a truncation of the log (its deletes
		// may be gone), or newer than the log: replay everything.
		db.report.IndexLoaded = false
		db.report.IndexError = fmt.Errorf("logkv: %s holds the log up to %d, the log holds [%d, %d]: %w",
			filepath.Join(db.dir, IndexName), upTo, cp, end, errIndex)
		if err := l.Close(); err != nil {
			return nil, err
		}
		db.dropStaleIndex(cp)
		db.resetIndex()
		return wal.Open(db.path, wo)
	}
	return l, nil
}

func (db *DB) resetIndex() {
	db.mu.tree.Clear()
	db.mu.live, db.mu.liveKV, db.skipBelow = 0, 0, 0
	db.mu.segs.reset()
}

// OpenReport says what Open did.
type OpenReport struct {
	// IndexLoaded: the index came from the index checkpoint, and only the
	// log after it was replayed.
	IndexLoaded bool
	// IndexError is why an index checkpoint found was not used.
	IndexError error
	// Replayed counts the log records replayed (a record holds the entries
	// of one or more writes; the part of a record the index checkpoint
	// already holds is not replayed).
	Replayed int64
	// Log is the log's own report (recovery).
	Log wal.Report
}

// Report says what Open did.
func (db *DB) Report() OpenReport {
	r := db.report
	r.Log = db.log.Report()
	return r
}

// replay applies a record recovery kept to the index (during Open),
// except the entries the index checkpoint already holds.
func (db *DB) replay(pos uint64, payload []byte) error {
	base := pos + wal.HeaderSize
	if base+uint64(len(payload)) <= db.skipBelow {
		return nil
	}
	if base < db.skipBelow {
		// A record written on both sides of the checkpoint: entries are
		// whole on either side (the checkpoint is taken between writes).
		skip := int(db.skipBelow - base)
		err := entries(payload, false, func(off int, e entry) error {
			if off < skip && off+e.size > skip {
				return errors.New("the index checkpoint ends inside an entry")
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("logkv: %s: record at position %d: %w (%w)", db.path, pos, storage.ErrCorrupt, err)
		}
		base, payload = db.skipBelow, payload[skip:]
	}
	if len(payload) == 0 {
		return nil
	}
	db.report.Replayed++
	if err := db.applyLocked(base, payload); err != nil {
		return fmt.Errorf("logkv: %s: record at position %d: %w (%w)", db.path, pos, storage.ErrCorrupt, err)
	}
	return nil
}

// applyLocked applies entries written at position pos to the index.
func (db *DB) applyLocked(pos uint64, data []byte) error {
	t := db.mu.tree
	return entries(data, false, func(off int, e entry) error {
		switch e.kind {
		case storage.KindPut:
			it := item{pre: prefix(e.key), key: string(e.key), pos: pos + uint64(off), n: uint32(e.size)}
			if prev, ok := t.Set(it); ok {
				db.deadLocked(prev)
			}
			db.liveLocked(it, len(e.key)+len(e.value))
		case storage.KindDelete:
			if prev, ok := t.Delete(probe(e.key)); ok {
				db.deadLocked(prev)
			}
		}
		return nil
	})
}

func (db *DB) liveLocked(it item, kv int) {
	db.mu.live += int64(it.n)
	db.mu.liveKV += int64(kv)
	db.mu.segs.add(it.pos, it.n)
}

func (db *DB) deadLocked(it item) {
	db.mu.live -= int64(it.n)
	db.mu.liveKV -= int64(len(it.key) + valueLen(it))
	db.mu.segs.remove(it.pos, it.n)
}

// valueLen is the length of the value of the entry it describes.
func valueLen(it item) int {
	r := int(it.n) - entryFixed - len(it.key) - uvarintLen(uint64(len(it.key)))
	for n := 1; n <= binary32; n++ {
		if v := r - n; v >= 0 && uvarintLen(uint64(v)) == n {
			return v
		}
	}
	return 0
}

const binary32 = 5 // longest uvarint of a 32-bit length

// unsafeString views b as a string for a lookup; the string must not
// outlive the call.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// unsafeBytes views s as a byte slice the caller must not modify.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (db *DB) errClosed(what string) error {
	return fmt.Errorf("logkv: %s %s: %w", what, db.dir, storage.ErrClosed)
}

var recordBufs = sync.Pool{New: func() any { return new([]byte) }}

// Put sets key to value.
func (db *DB) Put(key, value []byte, o *storage.WriteOptions) error {
	if err := storage.CheckSizes(key, value); err != nil {
		return fmt.Errorf("logkv: put in %s: %w", db.dir, err)
	}
	bp := recordBufs.Get().(*[]byte)
	rec := appendEntry((*bp)[:0], storage.KindPut, key, value)
	err := db.write("put", rec, o)
	*bp = rec
	recordBufs.Put(bp)
	db.stats.puts.Add(1)
	return err
}

// Delete removes key.
func (db *DB) Delete(key []byte, o *storage.WriteOptions) error {
	if err := storage.CheckSizes(key, nil); err != nil {
		return fmt.Errorf("logkv: delete in %s: %w", db.dir, err)
	}
	bp := recordBufs.Get().(*[]byte)
	rec := appendEntry((*bp)[:0], storage.KindDelete, key, nil)
	err := db.write("delete", rec, o)
	*bp = rec
	recordBufs.Put(bp)
	db.stats.deletes.Add(1)
	return err
}

// Apply applies a batch as one log record: atomically, also across
// crashes. An encoded batch is at most about 16 MiB (the largest record).
func (db *DB) Apply(b *storage.Batch, o *storage.WriteOptions) error {
	if err := b.Err(); err != nil {
		return fmt.Errorf("logkv: apply to %s: %w", db.dir, err)
	}
	if b.Len() == 0 {
		return nil
	}
	bp := recordBufs.Get().(*[]byte)
	rec := (*bp)[:0]
	for op := range b.Ops() {
		if op.Kind == storage.KindDelete {
			op.Value = nil
		}
		rec = appendEntry(rec, op.Kind, op.Key, op.Value)
	}
	err := db.write("apply", rec, o)
	*bp = rec[:0]
	recordBufs.Put(bp)
	db.stats.batches.Add(1)
	return err
}

// write appends a record and applies it to the index, then waits for
// durability if asked.
func (db *DB) write(what string, rec []byte, o *storage.WriteOptions) error {
	ctx := context.Background()
	if len(rec) > db.maxRec {
		return fmt.Errorf("logkv: %s in %s: a record of %d bytes, at most %d (the segment size bounds it): %w", what, db.dir, len(rec), db.maxRec, storage.ErrTooLarge)
	}
	db.mu.Lock()
	if db.mu.closed {
		db.mu.Unlock()
		return db.errClosed(what)
	}
	pos, err := db.log.AppendPacked(ctx, rec, max(packLimit, len(rec)))
	if err != nil {
		db.mu.Unlock()
		return fmt.Errorf("logkv: %s in %s: %w", what, db.dir, err)
	}
	end := pos + uint64(len(rec))
	db.mu.end = end
	err = db.applyLocked(pos, rec)
	kick := !db.o.GCDisabled && db.needGCLocked()
	if kick && db.stallLocked() {
		// The cleaner lags: wait for it, as an LSM stalls writes when
		// compactions lag, so the log (and the file) stays bounded.
		db.kickGC()
		for db.stallLocked() {
			db.gcCond.Wait()
		}
	}
	db.mu.Unlock()
	if err != nil {
		return fmt.Errorf("logkv: %s in %s: %w", what, db.dir, err)
	}
	if kick {
		db.kickGC()
	}
	if o != nil && o.Sync {
		if err := db.log.WaitDurable(ctx, end); err != nil {
			return fmt.Errorf("logkv: %s in %s: %w", what, db.dir, err)
		}
	}
	return nil
}

// flushTo makes sure the log's mapping holds every record before end: a
// record just appended may still be staged in the wal's buffer.
func (db *DB) flushTo(end uint64) error {
	if db.log.Written() >= end {
		return nil
	}
	if err := db.log.Flush(context.Background()); err != nil {
		return fmt.Errorf("logkv: %s: %w", db.dir, err)
	}
	return nil
}

// readEntry reads and verifies the entry it points at. The log must hold
// it (db.mu read-locked, or a pin).
func (db *DB) readEntry(it item) (entry, []byte, error) {
	var b []byte
	var e entry
	var err error
	// The checksum reads every byte of the entry where the log is mapped:
	// a file cut short under the store is an error, not a SIGBUS.
	if ferr := pager.Guard(func() {
		if b, err = db.log.Bytes(it.pos, int(it.n)); err != nil {
			return
		}
		if e, err = parseEntry(b, true); err == nil &&
			(e.kind != storage.KindPut || e.size != int(it.n) || unsafeString(e.key) != it.key) {
			err = errors.New("the entry there is not the key's")
		}
	}); ferr != nil {
		err = ferr
	}
	if err == nil {
		return e, b, nil
	}
	return entry{}, nil, fmt.Errorf("logkv: %s: entry of %d bytes at log position %d (file offset %d): %w (%w)",
		db.path, it.n, it.pos, db.log.FileOffset(it.pos), storage.ErrCorrupt, err)
}

// Get appends the value of key to buf[:0].
func (db *DB) Get(key, buf []byte) ([]byte, error) {
	db.stats.gets.Add(1)
	e, err := db.rlockEntry(key)
	if err != nil {
		return nil, err
	}
	ferr := pager.Guard(func() { buf = append(buf[:0], e.value...) })
	db.mu.RUnlock()
	if ferr != nil {
		return nil, fmt.Errorf("logkv: get %q from %s: %w", truncKey(key), db.dir, ferr)
	}
	if buf == nil {
		buf = []byte{}
	}
	return buf, nil
}

// rlockEntry finds key's entry in the log and reads it (checksum
// verified). On success it returns with db.mu read-locked, which keeps the
// entry's bytes from being moved and reused until the caller unlocks.
func (db *DB) rlockEntry(key []byte) (entry, error) {
	for {
		db.mu.RLock()
		if db.mu.closed {
			db.mu.RUnlock()
			return entry{}, db.errClosed("get from")
		}
		it, ok := db.mu.tree.Get(probe(key))
		if !ok {
			db.mu.RUnlock()
			return entry{}, fmt.Errorf("logkv: get %q from %s: %w", truncKey(key), db.dir, storage.ErrNotFound)
		}
		if end := it.pos + uint64(it.n); db.log.Written() < end {
			// Still in the wal's staging buffer: write it out first.
			db.mu.RUnlock()
			if err := db.flushTo(end); err != nil {
				return entry{}, err
			}
			continue
		}
		e, _, err := db.readEntry(it)
		if err != nil {
			db.mu.RUnlock()
			return entry{}, err
		}
		e.pos = it.pos
		return e, nil
	}
}

// truncKey shortens a key for a message.
func truncKey(k []byte) []byte {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}

// Sync makes every write so far durable.
func (db *DB) Sync() error {
	db.mu.RLock()
	closed := db.mu.closed
	db.mu.RUnlock()
	if closed {
		return db.errClosed("sync")
	}
	if err := db.log.Sync(context.Background()); err != nil {
		return fmt.Errorf("logkv: sync %s: %w", db.dir, err)
	}
	return nil
}

// Close stops the cleaner, syncs and closes the store. Iterators,
// snapshots and values from GetView must be closed or released first:
// Close refuses (and leaves the store open) while any is out.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.mu.closed {
		db.mu.Unlock()
		return db.errClosed("close")
	}
	if n := db.open.Load(); n > 0 {
		db.mu.Unlock()
		return fmt.Errorf("logkv: close %s: %d iterators, snapshots or values still open", db.dir, n)
	}
	db.mu.closed = true
	db.gcCond.Broadcast()
	db.mu.Unlock()
	close(db.stop)
	<-db.gcDone
	db.mu.Lock()
	db.mu.pin.Release()
	db.mu.Unlock()
	err := db.log.Sync(context.Background())
	if err == nil && !db.o.NoIndexCheckpoint {
		err = db.writeIndex(db.mu.tree, db.mu.end)
	}
	if cerr := db.log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("logkv: close %s: %w", db.dir, err)
	}
	return nil
}

// Stats returns the store's counters. IndexBytes is an estimate: the
// index's items (at the B-tree's typical fill) and the keys' allocations.
func (db *DB) Stats() storage.Stats {
	s := storage.Stats{Engine: "ringlog", DiskBytes: -1}
	db.mu.RLock()
	s.Keys = int64(db.mu.tree.Len())
	s.LiveBytes = db.mu.liveKV
	db.mu.RUnlock()
	s.IndexBytes = s.Keys * indexBytesPerKey
	if n, err := dirUsage(db.dir); err == nil {
		s.DiskBytes = n
	}
	s.Puts, s.Deletes, s.Gets, s.Batches = db.stats.puts.Load(), db.stats.deletes.Load(), db.stats.gets.Load(), db.stats.batches.Load()
	s.GCRuns, s.GCBytesCopied = db.stats.gcRuns.Load(), db.stats.gcCopied.Load()
	return s
}

// indexBytesPerKey is the index's memory per key for 16-byte keys,
// measured by TestIndexMemory (items in B-tree nodes and the keys'
// allocations).
const indexBytesPerKey = 84

// Log is the store's log, for inspection (metrics, a reader of its
// records). Writing to it directly corrupts the store.
func (db *DB) Log() *wal.Log { return db.log }

// dirUsage is the disk space of the regular files in dir.
func dirUsage(dir string) (int64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, de := range des {
		if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() {
			n += osfile.DiskUsage(fi)
		}
	}
	return n, nil
}
