// Package pebblekv is the "pebble" storage engine: a storage.Engine over a
// github.com/cockroachdb/pebble/v2 DB.
//
// Importing the package registers the engine, so either form opens a
// store:
//
//	db, err := pebblekv.Open(dir, nil)         // *pebblekv.DB
//	e, err := storage.Open("pebble", dir, nil) // storage.Engine
//	e, err := storage.Open("pebble", dir, &pebblekv.Options{CacheSize: 1 << 30})
//
// # Configuration
//
// Options holds the settings users tune. Its zero value (and nil) is Pebble
// configured as its users run it, not Pebble's own small defaults: a
// 256 MiB block cache, 64 MiB memtables, 10-bit bloom filters on every
// level (L0 too) and the newest on-disk format (columnar sstable blocks).
// Everything else is Pebble's default: one compaction at a time unless
// MaxConcurrentCompactions says more, Snappy compression, 4 KiB blocks,
// 2 MiB L0 files, L0 compactions from 4 files. Pebble's informational log
// lines are dropped unless Options.Logger says otherwise. For any other
// Pebble setting, build a *pebble.Options and pass it as Options.Pebble:
// it is then the whole configuration.
//
// # Mapping onto Pebble
//
// Every key is stored in Pebble followed by one zero byte, as CockroachDB
// ends its keys with a zero sentinel byte: this keeps the order of keys
// (bytes.Compare) and keeps the empty key, which storage allows, away from
// Pebble, which fails on empty keys in several places (v2.1.7: its default
// comparer's Separator panics when an sstable block ends with the empty
// key; its columnar block writer panics on a block holding only empty
// keys; its invariant checks, on under -race, reject empty seek keys and
// separators). Keys read through the Pebble method carry that byte.
//
// Put, Delete and Apply write with pebble.Sync when WriteOptions.Sync is
// set and pebble.NoSync otherwise; Pebble commits concurrent synced writes
// with one WAL sync (group commit). Apply turns a storage.Batch into one
// pebble.Batch, so it is atomic on disk and to readers. Iterators are
// pebble.Iterators (they read a consistent view as of their creation),
// snapshots are pebble.Snapshots. Sync writes an empty synced WAL record.
// Stats come from pebble.DB.Metrics: DiskBytes is the space the store's
// files take, IndexBytes the memtables plus the block cache in use, GCRuns
// and GCBytesCopied the compactions and the bytes they wrote; Keys and
// LiveBytes are not known (-1).
//
// Compact compacts the whole key space; Pebble is the underlying
// pebble.DB, for what this package does not wrap.
package pebblekv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ringlog/ringlog/storage"
)

// Name is the engine's name in the storage registry.
const Name = "pebble"

func init() {
	storage.Register(Name, func(dir string, opts any) (storage.Engine, error) {
		switch o := opts.(type) {
		case nil:
			return Open(dir, nil)
		case *Options:
			return Open(dir, o)
		default:
			return nil, fmt.Errorf("pebblekv: open %s: options of type %T, want *pebblekv.Options: %w", dir, opts, storage.ErrBadOption)
		}
	})
}

// encodeKey appends the Pebble key of key to dst: key and a zero byte.
// The encoding keeps bytes.Compare order: of two keys where one is a
// proper prefix p of the other, p+"\x00" is either a prefix of the other's
// encoding or below it.
func encodeKey(dst, key []byte) []byte {
	return append(append(dst, key...), 0)
}

// decodeKey returns the key of Pebble key pk.
func decodeKey(pk []byte) []byte {
	if len(pk) == 0 {
		return pk
	}
	return pk[:len(pk)-1]
}

// keyBufs holds buffers for encoded keys that Pebble copies (it does not
// keep the keys of Get, Set, Delete, batch operations and seeks).
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

func getKeyBuf() *[]byte { return keyBufs.Get().(*[]byte) }

func putKeyBuf(b *[]byte, used []byte) {
	if cap(used) <= 4<<10 {
		*b = used[:0]
		keyBufs.Put(b)
	}
}

// DB is a store. Its methods are safe for concurrent use.
type DB struct {
	db  *pebble.DB
	dir string

	// mu is read-held by every call that uses db and write-held by Close,
	// so that no call reaches a closed pebble.DB.
	mu     sync.RWMutex
	closed bool

	// open are the iterators and snapshots not closed yet; Close closes
	// the ones left over.
	omu  sync.Mutex
	open map[leftover]struct{}

	puts, deletes, gets, batches atomic.Int64
}

// leftover is an iterator or snapshot that Close may have to close.
type leftover interface {
	forceClose()
}

var _ storage.Engine = (*DB)(nil)

// Open opens, creating it if needed, the store in dir. o may be nil.
func Open(dir string, o *Options) (*DB, error) {
	po, err := o.pebbleOptions()
	if err != nil {
		return nil, err
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("pebblekv: open %s: %w", dir, err)
	}
	return &DB{db: pdb, dir: dir, open: map[leftover]struct{}{}}, nil
}

func (d *DB) errClosed(op string) error {
	return fmt.Errorf("pebblekv: %s %s: %w", op, d.dir, storage.ErrClosed)
}

func writeOptions(o *storage.WriteOptions) *pebble.WriteOptions {
	if o != nil && o.Sync {
		return pebble.Sync
	}
	return pebble.NoSync
}

// Get appends the value of key to buf[:0] and returns it, or
// storage.ErrNotFound.
func (d *DB) Get(key, buf []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, d.errClosed("get")
	}
	d.gets.Add(1)
	return get(d.db.Get, key, buf)
}

// get reads key with a pebble Get (the DB's or a snapshot's).
func get(pget func([]byte) ([]byte, io.Closer, error), key, buf []byte) ([]byte, error) {
	kb := getKeyBuf()
	pk := encodeKey(*kb, key)
	v, c, err := pget(pk)
	putKeyBuf(kb, pk)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, storage.ErrNotFound
		}
		return nil, fmt.Errorf("pebblekv: get: %w", err)
	}
	out := append(buf[:0], v...)
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("pebblekv: get: %w", err)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// Put sets key to value.
func (d *DB) Put(key, value []byte, o *storage.WriteOptions) error {
	if err := storage.CheckSizes(key, value); err != nil {
		return fmt.Errorf("pebblekv: put: %w", err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return d.errClosed("put")
	}
	d.puts.Add(1)
	kb := getKeyBuf()
	pk := encodeKey(*kb, key)
	err := d.db.Set(pk, value, writeOptions(o))
	putKeyBuf(kb, pk)
	if err != nil {
		return fmt.Errorf("pebblekv: put: %w", err)
	}
	return nil
}

// Delete removes key; deleting an absent key is not an error.
func (d *DB) Delete(key []byte, o *storage.WriteOptions) error {
	if err := storage.CheckSizes(key, nil); err != nil {
		return fmt.Errorf("pebblekv: delete: %w", err)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return d.errClosed("delete")
	}
	d.deletes.Add(1)
	kb := getKeyBuf()
	pk := encodeKey(*kb, key)
	err := d.db.Delete(pk, writeOptions(o))
	putKeyBuf(kb, pk)
	if err != nil {
		return fmt.Errorf("pebblekv: delete: %w", err)
	}
	return nil
}

// Apply applies every operation of b atomically, in order, as one Pebble
// batch. A batch whose Err is set is refused whole.
func (d *DB) Apply(b *storage.Batch, o *storage.WriteOptions) error {
	if err := b.Err(); err != nil {
		return fmt.Errorf("pebblekv: apply: %w", err)
	}
	for op := range b.Ops() {
		if err := storage.CheckSizes(op.Key, op.Value); err != nil {
			return fmt.Errorf("pebblekv: apply: %w", err)
		}
		if op.Kind != storage.KindPut && op.Kind != storage.KindDelete {
			return fmt.Errorf("pebblekv: apply: operation of kind %d: %w", op.Kind, storage.ErrCorrupt)
		}
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return d.errClosed("apply")
	}
	d.batches.Add(1)
	if b.Len() == 0 {
		return nil
	}
	pb := d.db.NewBatchWithSize(b.Size() + 17*b.Len() + 12)
	defer pb.Close()
	kb := getKeyBuf()
	pk := *kb
	for op := range b.Ops() {
		pk = encodeKey(pk[:0], op.Key)
		var err error
		if op.Kind == storage.KindPut {
			err = pb.Set(pk, op.Value, nil)
		} else {
			err = pb.Delete(pk, nil)
		}
		if err != nil {
			putKeyBuf(kb, pk)
			return fmt.Errorf("pebblekv: apply: %w", err)
		}
	}
	putKeyBuf(kb, pk)
	if err := d.db.Apply(pb, writeOptions(o)); err != nil {
		return fmt.Errorf("pebblekv: apply: %w", err)
	}
	return nil
}

// NewIter returns an iterator over the keys within o's bounds, reading the
// store as it is now.
func (d *DB) NewIter(o *storage.IterOptions) (storage.Iterator, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, d.errClosed("new iterator")
	}
	return d.newIter(d.db.NewIter, o)
}

// newIter makes an iterator with a pebble NewIter (the DB's or a
// snapshot's). d.mu is read-held.
func (d *DB) newIter(pnew func(*pebble.IterOptions) (*pebble.Iterator, error), o *storage.IterOptions) (storage.Iterator, error) {
	it := &iterator{db: d}
	var lo, hi []byte
	if o != nil {
		lo, hi = o.LowerBound, o.UpperBound
	}
	// An empty range leaves it.it nil (Pebble expects lower < upper).
	if lo == nil || hi == nil || bytes.Compare(lo, hi) < 0 {
		var po pebble.IterOptions // Pebble copies the bounds
		if lo != nil {
			po.LowerBound = encodeKey(nil, lo)
		}
		if hi != nil {
			po.UpperBound = encodeKey(nil, hi)
		}
		pit, err := pnew(&po)
		if err != nil {
			return nil, fmt.Errorf("pebblekv: new iterator: %w", err)
		}
		it.it = pit
	}
	d.track(it)
	return it, nil
}

func (d *DB) track(l leftover) {
	d.omu.Lock()
	d.open[l] = struct{}{}
	d.omu.Unlock()
}

func (d *DB) untrack(l leftover) {
	d.omu.Lock()
	delete(d.open, l)
	d.omu.Unlock()
}

// NewSnapshot returns a consistent read-only view of the store as it is
// now. Close it when done: until then Pebble keeps the versions it sees.
func (d *DB) NewSnapshot() (storage.Snapshot, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, d.errClosed("new snapshot")
	}
	s := &snapshot{db: d, s: d.db.NewSnapshot()}
	d.track(s)
	return s, nil
}

// Sync makes every write made before it durable.
func (d *DB) Sync() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return d.errClosed("sync")
	}
	if err := d.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("pebblekv: sync: %w", err)
	}
	return nil
}

// Compact compacts the whole key space, waiting until it is done: it
// flushes the memtables and rewrites the sstables, dropping overwritten and
// deleted entries no snapshot needs.
func (d *DB) Compact(ctx context.Context) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return d.errClosed("compact")
	}
	if err := d.db.Flush(); err != nil {
		return fmt.Errorf("pebblekv: compact: %w", err)
	}
	// The smallest Pebble key is the empty key's, "\x00"; the largest is
	// below MaxKeySize+2 bytes of 0xff.
	end := bytes.Repeat([]byte{0xff}, storage.MaxKeySize+2)
	if err := d.db.Compact(ctx, []byte{0}, end, true); err != nil {
		return fmt.Errorf("pebblekv: compact: %w", err)
	}
	return nil
}

// Pebble returns the underlying pebble.DB, for what this package does not
// wrap (metrics, checkpoints, manual flushes). Its keys are this package's
// keys followed by a zero byte. Do not close it, and do not use it after
// Close.
func (d *DB) Pebble() *pebble.DB { return d.db }

// Stats returns the engine's counters and what Pebble's metrics say of
// disk and memory use and compactions.
func (d *DB) Stats() storage.Stats {
	st := storage.Stats{
		Engine:        Name,
		Keys:          -1,
		LiveBytes:     -1,
		DiskBytes:     -1,
		IndexBytes:    -1,
		Puts:          d.puts.Load(),
		Deletes:       d.deletes.Load(),
		Gets:          d.gets.Load(),
		Batches:       d.batches.Load(),
		GCRuns:        -1,
		GCBytesCopied: -1,
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return st
	}
	m := d.db.Metrics()
	st.DiskBytes = int64(m.DiskSpaceUsage())
	st.IndexBytes = int64(m.MemTable.Size) + m.BlockCache.Size
	st.GCRuns = m.Compact.Count
	var copied uint64
	for i := range m.Levels {
		copied += m.Levels[i].TableBytesCompacted + m.Levels[i].BlobBytesCompacted
	}
	st.GCBytesCopied = int64(copied)
	return st
}

// Close syncs and closes the store. Iterators and snapshots must be closed
// first: Close closes those left open (their later calls fail with
// storage.ErrClosed) and reports them in its error. A second Close returns
// an error wrapping storage.ErrClosed.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return d.errClosed("close")
	}
	d.closed = true

	d.omu.Lock()
	left := make([]leftover, 0, len(d.open))
	for l := range d.open {
		left = append(left, l)
	}
	d.omu.Unlock()
	var nIters, nSnaps int
	// Iterators first: a snapshot's iterators read through it.
	for _, l := range left {
		if _, ok := l.(*iterator); ok {
			nIters++
			l.forceClose()
		}
	}
	for _, l := range left {
		if _, ok := l.(*snapshot); ok {
			nSnaps++
			l.forceClose()
		}
	}

	err := d.db.LogData(nil, pebble.Sync)
	if cerr := d.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pebblekv: close %s: %w", d.dir, err)
	}
	if nIters+nSnaps > 0 {
		return fmt.Errorf("pebblekv: close %s: %d iterators and %d snapshots were left open (closed now)", d.dir, nIters, nSnaps)
	}
	return nil
}

// snapshot is a pebble.Snapshot.
type snapshot struct {
	db *DB
	s  *pebble.Snapshot

	// mu is read-held by Get and NewIter, write-held by Close; DB.mu is
	// taken before it.
	mu     sync.RWMutex
	closed bool
}

func (s *snapshot) errClosed(op string) error {
	return fmt.Errorf("pebblekv: snapshot %s: %w", op, storage.ErrClosed)
}

func (s *snapshot) Get(key, buf []byte) ([]byte, error) {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.errClosed("get")
	}
	s.db.gets.Add(1)
	return get(s.s.Get, key, buf)
}

func (s *snapshot) NewIter(o *storage.IterOptions) (storage.Iterator, error) {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.errClosed("new iterator")
	}
	return s.db.newIter(s.s.NewIter, o)
}

func (s *snapshot) Close() error {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.errClosed("close")
	}
	s.closed = true
	s.db.untrack(s)
	if err := s.s.Close(); err != nil {
		return fmt.Errorf("pebblekv: snapshot close: %w", err)
	}
	return nil
}

// forceClose closes s for DB.Close, which write-holds DB.mu.
func (s *snapshot) forceClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.db.untrack(s)
		_ = s.s.Close()
	}
}

// iterator is a pebble.Iterator; it is nil for an empty range and once
// closed.
type iterator struct {
	db     *DB
	it     *pebble.Iterator
	seek   []byte // the encoded seek key
	closed bool
}

func (i *iterator) First() bool {
	return i.it != nil && i.it.First()
}

func (i *iterator) Last() bool {
	return i.it != nil && i.it.Last()
}

func (i *iterator) SeekGE(key []byte) bool {
	if i.it == nil {
		return false
	}
	i.seek = encodeKey(i.seek[:0], key)
	return i.it.SeekGE(i.seek)
}

func (i *iterator) SeekLT(key []byte) bool {
	if i.it == nil {
		return false
	}
	i.seek = encodeKey(i.seek[:0], key)
	return i.it.SeekLT(i.seek)
}

func (i *iterator) Next() bool {
	return i.it != nil && i.it.Next()
}

func (i *iterator) Prev() bool {
	return i.it != nil && i.it.Prev()
}

func (i *iterator) Valid() bool {
	return i.it != nil && i.it.Valid()
}

func (i *iterator) Key() []byte {
	if !i.Valid() {
		return nil
	}
	return decodeKey(i.it.Key())
}

func (i *iterator) Value() []byte {
	if !i.Valid() {
		return nil
	}
	v, err := i.it.ValueAndErr()
	if err != nil {
		return nil
	}
	if v == nil {
		v = []byte{}
	}
	return v
}

func (i *iterator) Error() error {
	if i.closed {
		return fmt.Errorf("pebblekv: iterator: %w", storage.ErrClosed)
	}
	if i.it == nil {
		return nil
	}
	if err := i.it.Error(); err != nil {
		return fmt.Errorf("pebblekv: iterator: %w", err)
	}
	return nil
}

func (i *iterator) Close() error {
	if i.closed {
		return fmt.Errorf("pebblekv: iterator close: %w", storage.ErrClosed)
	}
	i.closed = true
	i.db.untrack(i)
	if i.it == nil {
		return nil
	}
	err := i.it.Close()
	i.it = nil
	if err != nil {
		return fmt.Errorf("pebblekv: iterator close: %w", err)
	}
	return nil
}

// forceClose closes i for DB.Close.
func (i *iterator) forceClose() {
	if !i.closed {
		_ = i.Close()
	}
}
