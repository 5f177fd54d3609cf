package logkv

import (
	"time"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// Options configure a store. nil or the zero value means the defaults.
type Options struct {
	// Backend is the pager backend of the store's log (default Auto).
	Backend pager.Backend
	// SegmentSize is the log's segment size (default 64 MiB): the unit
	// the log file grows by and the cleaner frees.
	SegmentSize int64
	// Capacity is the most log the store may hold: address space
	// reserved, not memory or disk (default 64 GiB).
	Capacity int64
	// SyncInterval: writes not marked Sync reach the disk within this
	// interval (default 10ms); negative leaves it to the OS.
	SyncInterval time.Duration
	// GCRatio: the cleaner runs when the log holds more than GCRatio
	// times the live bytes (default 1.25). GCDisabled turns it off.
	GCRatio    float64
	GCDisabled bool
	// Recovery is the log's recovery mode on open.
	Recovery wal.RecoveryMode
}
