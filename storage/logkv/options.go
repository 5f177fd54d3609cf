package logkv

import (
	"log/slog"
	"time"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// Options configure a store. nil or the zero value means the defaults.
type Options struct {
	// Backend is the pager backend of the store's log (default Auto).
	Backend pager.Backend
	// SegmentSize is the log's segment size (created stores only; default
	// DefaultSegmentSize, 17 MiB): the unit the log file grows by and the
	// cleaner frees, and the largest record (so the largest value) the
	// store takes.
	SegmentSize int64
	// Capacity is the most log the store may hold (created stores only):
	// address space reserved, not disk; the view keeps 8 bytes of page
	// table per 4 KiB page of it, and the copy backend reserves it on the
	// heap (untouched pages cost no memory, but the runtime zeroes
	// recycled heap memory at every open). Default 256 segments (4.25
	// GiB), 32 (544 MiB) on the copy backend. When the log holds Capacity
	// bytes, writes fail with an error wrapping wal.ErrFull until the
	// cleaner frees segments; a store that needs more must be copied into
	// a new one with a larger Capacity.
	Capacity int64
	// SyncInterval: if positive, writes not marked Sync reach the disk
	// within this interval; 0 (the default) leaves them to the operating
	// system until a synced write, Sync or Close, as pebble.NoSync does.
	SyncInterval time.Duration
	// GCRatio: the cleaner runs when the log holds more than GCRatio
	// times the live bytes (default 2). It trades disk space for write
	// speed: the cleaner frees the log's oldest segment, and the more room
	// it has, the more of that segment's entries have been overwritten by
	// then and the less it copies (BenchmarkOverwriteGC measures both
	// sides). GCDisabled turns it off.
	GCRatio    float64
	GCDisabled bool
	// NoIndexCheckpoint: Close does not write the index checkpoint, so the
	// next Open replays the whole log.
	NoIndexCheckpoint bool
	// Recovery is the log's recovery mode on open.
	Recovery wal.RecoveryMode
	// Logger, if set, receives the store's events, never one per write:
	// each Open (Info: whether the index came from its checkpoint or the
	// whole log was replayed, and why; Warn when a checkpoint was found
	// but not usable), each index checkpoint written (Info; Error when
	// it fails), each pass of the cleaner (Info: the segment freed, the
	// bytes copied, how long it took), the background cleaner's failure
	// (Error the first time after a pass that worked, Debug while it
	// keeps failing: it retries every 200 ms; DB.GC returns its errors
	// instead), and the log's own events (see wal.Options.Logger). nil
	// logs nothing.
	Logger *slog.Logger
}
