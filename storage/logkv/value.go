package logkv

import (
	"bytes"
	"fmt"
	"sync/atomic"

	"github.com/ringlog/ringlog/internal/invariants"
	"github.com/ringlog/ringlog/wal"
)

// Value is a value read without copying: Bytes is the log's mapped bytes.
//
// Lifetime: the bytes stay valid, and unchanged, until Release. The value
// pins the log from its entry on, so neither new writes nor the cleaner
// reuse that space meanwhile (the log grows instead): release values
// promptly. The bytes must not be modified. After Release, Bytes returns
// nil; builds with the invariants tag also verify at Release that the
// bytes were not written to. Reading them touches the file through the
// mapping: if the file can be cut short under the store (another process,
// a failing disk), read them inside pager.Guard, which turns the SIGBUS
// into an error.
type Value struct {
	db       *DB
	b        []byte
	pin      *wal.Pin
	sum      []byte // invariant builds: a copy to compare at Release
	released atomic.Bool
}

// GetView returns the value of key without copying it. Release it when
// done; Close refuses while values are out.
func (db *DB) GetView(key []byte) (*Value, error) {
	db.stats.gets.Add(1)
	e, err := db.rlockEntry(key)
	if err != nil {
		return nil, err
	}
	// The read lock keeps the cleaner from moving the store's pin past
	// the entry until this pin holds it.
	pin, err := db.log.Pin(e.pos)
	if err != nil {
		db.mu.RUnlock()
		return nil, fmt.Errorf("logkv: get from %s: %w", db.dir, err)
	}
	db.open.Add(1) // under the read lock: Close sees it
	db.mu.RUnlock()
	v := &Value{db: db, b: e.value, pin: pin}
	if v.b == nil {
		v.b = []byte{}
	}
	if invariants.Enabled {
		v.sum = bytes.Clone(v.b)
	}
	return v, nil
}

// Bytes is the value; nil after Release.
func (v *Value) Bytes() []byte {
	if v.released.Load() {
		return nil
	}
	return v.b
}

// Release gives the value's log space back. Releasing twice is a no-op.
func (v *Value) Release() {
	if v.released.Swap(true) {
		return
	}
	if invariants.Enabled && !bytes.Equal(v.sum, v.b) {
		panic("logkv: a value's bytes changed while it was held (written to, or its space reused)")
	}
	v.b = nil
	v.pin.Release()
	v.db.open.Add(-1)
}
