// Package storage is an ordered key-value store interface with engines
// chosen by name, so that a program swaps one engine for another by
// changing one string:
//
//	import _ "github.com/ringlog/ringlog/storage/engines" // registers "ringlog" and "pebble"
//
//	db, err := storage.Open("ringlog", dir, nil)
//
// Engines:
//
//   - "ringlog" (package storage/logkv): values live in a write-ahead log
//     (package wal, growing layout) and an ordered in-memory index points
//     at them; reads are served from the log's mapping.
//   - "pebble" (package storage/pebblekv): a pebble.DB configured as its
//     users run it.
//
// Engines register themselves when their package is imported (as
// database/sql drivers do), so a program that uses only one engine does not
// link the other.
//
// # Keys and values
//
// A key is 0 to MaxKeySize bytes; the empty key is a valid key and sorts
// before every other. A value is 0 to MaxValueSize bytes; a nil value and an
// empty one are the same value (Get returns an empty, non-nil slice). Keys
// are ordered by bytes.Compare. Every engine refuses larger keys and values
// with ErrTooLarge, before writing anything.
//
// # Durability
//
// A write with WriteOptions.Sync set returns once it is on stable storage;
// concurrent synced writes share syncs (group commit). A write without it is
// visible to readers at once and reaches the disk later (Sync forces it).
// A Batch is applied atomically: after a crash, all of it or none. Put,
// Delete and Apply keep no reference to the caller's keys, values or
// batch once they return: the buffers may be reused at once.
//
// # Iterators and snapshots
//
// An iterator's bounds are copied by NewIter; bounds with lower > upper
// give an error or an empty iterator, depending on the engine. Next and
// Prev on an iterator that is not at a key return false. Iterators are for
// one goroutine; snapshots are safe for concurrent use. Calls on a closed
// iterator or snapshot return errors wrapping ErrClosed. Close iterators
// and snapshots before the engine: "ringlog" refuses to close while any is
// out (they hold its log's space), "pebble" closes them and says so in its
// error.
package storage

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Limits every engine enforces.
const (
	MaxKeySize   = 1<<16 - 1
	MaxValueSize = 16 << 20
)

// Errors. Engines wrap them; test with errors.Is.
var (
	ErrNotFound  = errors.New("storage: not found")
	ErrClosed    = errors.New("storage: closed")
	ErrTooLarge  = errors.New("storage: key or value too large")
	ErrNoEngine  = errors.New("storage: no such engine")
	ErrCorrupt   = errors.New("storage: corrupt data")
	ErrBadOption = errors.New("storage: bad option")
)

// Reader reads a store or a snapshot of it.
type Reader interface {
	// Get appends the value of key to buf[:0] and returns it, or
	// ErrNotFound. The result belongs to the caller.
	Get(key, buf []byte) ([]byte, error)
	// NewIter returns an iterator over the keys within o's bounds (nil:
	// all keys). It sees the store as it was when NewIter was called
	// (on a snapshot: as it was when the snapshot was taken); writes made
	// after that are not seen. Close it when done.
	NewIter(o *IterOptions) (Iterator, error)
}

// Engine is an ordered key-value store. Its methods are safe for
// concurrent use.
type Engine interface {
	Reader
	// Put sets key to value.
	Put(key, value []byte, o *WriteOptions) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte, o *WriteOptions) error
	// Apply applies every operation of b atomically, in order. b may be
	// reused after Apply returns.
	Apply(b *Batch, o *WriteOptions) error
	// NewSnapshot returns a consistent read-only view of the store as it
	// is now. Close it when done: it holds resources (log space, or an
	// LSM's older versions) until then.
	NewSnapshot() (Snapshot, error)
	// Sync makes every write made before it durable.
	Sync() error
	// Stats returns a snapshot of the engine's counters.
	Stats() Stats
	// Close syncs and closes the store. Iterators and snapshots must be
	// closed first.
	Close() error
}

// Snapshot is a consistent read-only view of an engine.
type Snapshot interface {
	Reader
	// Close releases the snapshot and what it holds (log space, or an
	// LSM's older versions).
	Close() error
}

// WriteOptions configure a write. nil means the zero value: not synced.
type WriteOptions struct {
	// Sync makes the write return only once it is durable.
	Sync bool
}

// Shorthands for WriteOptions.
var (
	Synced = &WriteOptions{Sync: true}
	NoSync = &WriteOptions{}
)

// IterOptions bound an iteration to [LowerBound, UpperBound); a nil bound
// is open.
type IterOptions struct {
	LowerBound []byte // the smallest key included; nil: no lower bound
	UpperBound []byte // the first key excluded; nil: no upper bound
}

// Iterator walks keys in order, in either direction. The slices Key and
// Value return are valid until the iterator moves or closes. An iterator is
// for one goroutine.
type Iterator interface {
	// First and Last move to the smallest and the largest key within the
	// bounds; SeekGE to the smallest key >= key, SeekLT to the largest
	// key < key; Next and Prev one key on. Each returns Valid().
	First() bool
	Last() bool
	SeekGE(key []byte) bool
	SeekLT(key []byte) bool
	Next() bool
	Prev() bool
	Valid() bool
	// Key and Value are the current key and its value, valid until the
	// iterator moves or closes; they must not be modified.
	Key() []byte
	Value() []byte
	// Error is the error that stopped the iteration, if any.
	Error() error
	// Close releases the iterator.
	Close() error
}

// Stats are an engine's counters. Fields an engine does not know are -1.
type Stats struct {
	// Engine is the engine's name, as storage.Open takes it.
	Engine string
	// Keys is the number of live keys.
	Keys int64
	// LiveBytes is the size of live keys and values.
	LiveBytes int64
	// DiskBytes is the space the store's files take on disk.
	DiskBytes int64
	// IndexBytes is the memory the engine's in-memory index takes
	// (ringlog), or its memtables and caches in use (pebble).
	IndexBytes int64
	// Puts, Deletes, Gets count calls since open; Batches counts Apply.
	Puts, Deletes, Gets, Batches int64
	// GCRuns and GCBytesCopied describe space reclamation (ringlog: the
	// log cleaner; pebble: compactions and their bytes written).
	GCRuns, GCBytesCopied int64
}

// Opener opens an engine of a kind in dir. opts are the engine's own
// options (nil: defaults).
type Opener func(dir string, opts any) (Engine, error)

var registry struct {
	sync.Mutex
	m map[string]Opener
}

// Register makes an engine available to Open under name. Engines call it
// from an init function; registering a name twice panics.
func Register(name string, open Opener) {
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = map[string]Opener{}
	}
	if _, dup := registry.m[name]; dup {
		panic("storage: engine " + name + " registered twice")
	}
	registry.m[name] = open
}

// Engines lists the registered engine names, sorted.
func Engines() []string {
	registry.Lock()
	defer registry.Unlock()
	var names []string
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open opens (creating if needed) the store in dir with the engine called
// name. opts are the engine's own options (for example *logkv.Options or
// *pebblekv.Options); nil means its defaults.
func Open(name, dir string, opts any) (Engine, error) {
	registry.Lock()
	open := registry.m[name]
	registry.Unlock()
	if open == nil {
		return nil, fmt.Errorf("storage: open %s: engine %q not registered (import github.com/ringlog/ringlog/storage/engines, or the engine's package): %w", dir, name, ErrNoEngine)
	}
	return open(dir, opts)
}

// CheckSizes returns ErrTooLarge if key or value exceed the limits.
func CheckSizes(key, value []byte) error {
	if len(key) > MaxKeySize {
		return fmt.Errorf("storage: key of %d bytes, limit %d: %w", len(key), MaxKeySize, ErrTooLarge)
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("storage: value of %d bytes, limit %d: %w", len(value), MaxValueSize, ErrTooLarge)
	}
	return nil
}
