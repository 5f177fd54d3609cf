package logkv

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/tidwall/btree"

	"github.com/ringlog/ringlog/internal/invariants"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/wal"
)

// view is a frozen copy of the index with a pin that keeps every entry it
// points at readable: the base of iterators and snapshots.
type view struct {
	db   *DB
	tree *btree.BTreeG[item]
	pin  *wal.Pin
	end  uint64 // the log holds every entry of tree before end

	mu     sync.Mutex
	closed bool
}

// newView copies the index (copy-on-write: O(1) now, the writers copy the
// nodes they change later) and pins the log where the store's own pin is.
func (db *DB) newView(what string) (*view, error) {
	db.mu.Lock()
	if db.mu.closed {
		db.mu.Unlock()
		return nil, db.errClosed(what)
	}
	pin, err := db.log.Pin(db.mu.pin.Position())
	if err != nil {
		db.mu.Unlock()
		return nil, fmt.Errorf("logkv: %s %s: %w", what, db.dir, err)
	}
	v := &view{db: db, tree: db.mu.tree.Copy(), pin: pin, end: db.mu.end}
	db.open.Add(1)
	db.mu.Unlock()
	if err := db.flushTo(v.end); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

func (v *view) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return fmt.Errorf("logkv: %s: %w", v.db.dir, storage.ErrClosed)
	}
	v.closed = true
	v.pin.Release()
	v.db.open.Add(-1)
	return nil
}

func (v *view) get(key, buf []byte) ([]byte, error) {
	it, ok := v.tree.Get(probe(key))
	if !ok {
		return nil, fmt.Errorf("logkv: get %q from a snapshot of %s: %w", truncKey(key), v.db.dir, storage.ErrNotFound)
	}
	e, _, err := v.db.readEntry(it)
	if err != nil {
		return nil, err
	}
	if ferr := pager.Guard(func() { buf = append(buf[:0], e.value...) }); ferr != nil {
		return nil, fmt.Errorf("logkv: get %q from a snapshot of %s: %w", truncKey(key), v.db.dir, ferr)
	}
	if buf == nil {
		buf = []byte{}
	}
	return buf, nil
}

// Snapshot is a consistent read-only view of a store. It holds the log
// space its entries lie in (the log grows rather than reuse it) until
// closed. Safe for concurrent use.
type Snapshot struct {
	v *view
}

// NewSnapshot returns a snapshot of the store as it is now.
func (db *DB) NewSnapshot() (storage.Snapshot, error) {
	v, err := db.newView("snapshot of")
	if err != nil {
		return nil, err
	}
	return &Snapshot{v: v}, nil
}

func (s *Snapshot) closedErr() error {
	s.v.mu.Lock()
	defer s.v.mu.Unlock()
	if s.v.closed {
		return fmt.Errorf("logkv: snapshot of %s: %w", s.v.db.dir, storage.ErrClosed)
	}
	return nil
}

// Get appends the value key had when the snapshot was taken to buf[:0].
func (s *Snapshot) Get(key, buf []byte) ([]byte, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	return s.v.get(key, buf)
}

// NewIter iterates over the snapshot.
func (s *Snapshot) NewIter(o *storage.IterOptions) (storage.Iterator, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	pin, err := s.v.db.log.Pin(s.v.pin.Position())
	if err != nil {
		return nil, fmt.Errorf("logkv: iterator of %s: %w", s.v.db.dir, err)
	}
	s.v.db.open.Add(1)
	v := &view{db: s.v.db, tree: s.v.tree, pin: pin, end: s.v.end}
	return newIter(v, o), nil
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.v.close() }

// NewIter returns an iterator over the store as it is now.
func (db *DB) NewIter(o *storage.IterOptions) (storage.Iterator, error) {
	v, err := db.newView("iterator of")
	if err != nil {
		return nil, err
	}
	return newIter(v, o), nil
}

// Iterator walks a frozen copy of the index. Value returns the mapped
// bytes of the log (no copy), valid until the iterator moves or closes.
type Iterator struct {
	v            *view
	it           btree.IterG[item]
	lower, upper []byte
	valid        bool
	cur          item
	val          []byte
	valOK        bool
	err          error
}

func newIter(v *view, o *storage.IterOptions) *Iterator {
	it := &Iterator{v: v}
	if o != nil {
		if o.LowerBound != nil {
			it.lower = bytes.Clone(o.LowerBound)
		}
		if o.UpperBound != nil {
			it.upper = bytes.Clone(o.UpperBound)
		}
	}
	it.it = v.tree.Iter()
	return it
}

func (it *Iterator) closed() bool {
	if it.v.closed {
		it.valid = false
		if it.err == nil {
			it.err = fmt.Errorf("logkv: iterator of %s: %w", it.v.db.dir, storage.ErrClosed)
		}
		return true
	}
	return false
}

// set makes the btree iterator's position current if ok and within the
// bounds.
func (it *Iterator) set(ok bool) bool {
	it.val, it.valOK = nil, false
	if ok {
		it.cur = it.it.Item()
		k := unsafeBytes(it.cur.key)
		ok = (it.lower == nil || bytes.Compare(k, it.lower) >= 0) && (it.upper == nil || bytes.Compare(k, it.upper) < 0)
	}
	it.valid = ok
	return ok
}

// First moves to the smallest key within the bounds.
func (it *Iterator) First() bool {
	if it.closed() {
		return false
	}
	if it.lower != nil {
		return it.set(it.it.Seek(probe(it.lower)))
	}
	return it.set(it.it.First())
}

// Last moves to the largest key within the bounds.
func (it *Iterator) Last() bool {
	if it.closed() {
		return false
	}
	if it.upper != nil {
		return it.seekLT(it.upper)
	}
	return it.set(it.it.Last())
}

func (it *Iterator) seekLT(k []byte) bool {
	if it.it.Seek(probe(k)) {
		return it.set(it.it.Prev())
	}
	return it.set(it.it.Last())
}

// SeekGE moves to the smallest key >= key within the bounds.
func (it *Iterator) SeekGE(key []byte) bool {
	if it.closed() {
		return false
	}
	if it.lower != nil && bytes.Compare(key, it.lower) < 0 {
		key = it.lower
	}
	return it.set(it.it.Seek(probe(key)))
}

// SeekLT moves to the largest key < key within the bounds.
func (it *Iterator) SeekLT(key []byte) bool {
	if it.closed() {
		return false
	}
	if it.upper != nil && bytes.Compare(key, it.upper) > 0 {
		key = it.upper
	}
	return it.seekLT(key)
}

// Next moves to the next key.
func (it *Iterator) Next() bool {
	if it.closed() || !it.valid {
		return false
	}
	return it.set(it.it.Next())
}

// Prev moves to the previous key.
func (it *Iterator) Prev() bool {
	if it.closed() || !it.valid {
		return false
	}
	return it.set(it.it.Prev())
}

// Valid reports whether the iterator is at a key.
func (it *Iterator) Valid() bool { return it.valid }

// Key is the current key; it must not be modified.
func (it *Iterator) Key() []byte {
	if !it.valid {
		return nil
	}
	return unsafeBytes(it.cur.key)
}

// Value is the current value: the log's mapped bytes, valid until the
// iterator moves or closes; it must not be modified (and, like
// Value.Bytes, read inside pager.Guard where the file may be cut short
// under the store). A damaged entry, or one the file no longer holds,
// yields nil and stops the iterator (see Error).
func (it *Iterator) Value() []byte {
	if !it.valid {
		return nil
	}
	if !it.valOK {
		e, _, err := it.v.db.readEntry(it.cur)
		if err != nil {
			it.err, it.valid = err, false
			return nil
		}
		it.val, it.valOK = e.value, true
		if it.val == nil {
			it.val = []byte{}
		}
	}
	if invariants.Enabled {
		// Re-read and compare: catches a value changed under the pin.
		if e, _, err := it.v.db.readEntry(it.cur); err != nil || !bytes.Equal(e.value, it.val) {
			panic(fmt.Sprintf("logkv: iterator value of %q changed under its pin", it.cur.key))
		}
	}
	return it.val
}

// Error is the error that stopped the iterator, if any.
func (it *Iterator) Error() error { return it.err }

// Close releases the iterator.
func (it *Iterator) Close() error {
	it.valid = false
	it.it.Release()
	return it.v.close()
}
