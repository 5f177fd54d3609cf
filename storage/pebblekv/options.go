package pebblekv

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/ringlog/ringlog/storage"
)

// Defaults of Options.
const (
	DefaultCacheSize       = 256 << 20
	DefaultMemTableSize    = 64 << 20
	DefaultBloomBitsPerKey = 10
)

// Options configure a store. nil or the zero value means the defaults,
// which are the settings Pebble's users run it with rather than Pebble's own
// (much smaller) built-in defaults.
type Options struct {
	// CacheSize is the size in bytes of the block cache, which holds
	// uncompressed sstable blocks (default 256 MiB).
	CacheSize int64

	// MemTableSize is the size in bytes a memtable grows to before it is
	// flushed to an sstable (default 64 MiB). Up to
	// MemTableStopWritesThreshold memtables (Pebble's default: 2) may be
	// queued, so memtables may take twice this much memory.
	MemTableSize uint64

	// BloomBitsPerKey is the number of bits per key of the bloom filters
	// written for every level, L0 included (default 10: about 1% false
	// positives). A negative value writes no filters.
	BloomBitsPerKey int

	// MaxConcurrentCompactions is the most compactions Pebble runs at once
	// when it falls behind (default: Pebble's, 1). One compaction always
	// may run.
	MaxConcurrentCompactions int

	// MaxOpenFiles is a soft limit on the number of files Pebble keeps
	// open (default: Pebble's, 1000).
	MaxOpenFiles int

	// FormatMajorVersion is the on-disk format Pebble writes (default
	// pebble.FormatNewest). A store written with an older format is
	// upgraded to it when opened.
	FormatMajorVersion pebble.FormatMajorVersion

	// Logger receives Pebble's log messages. The default drops the
	// informational ones (such as the WAL replay report of every open) and
	// writes errors with the standard library's log package, as Pebble's
	// own default logger does; pebble.DefaultLogger keeps them all.
	Logger pebble.Logger

	// Pebble, if set, is used as the complete Pebble configuration and
	// every other field above is ignored: the settings it leaves zero get
	// Pebble's built-in defaults, not this package's. It is copied, not
	// retained, so it may be reused. It must not set ReadOnly or
	// DisableWAL, which the storage.Engine contract does not allow, and its
	// Comparer must order keys as bytes.Compare does (nil, the default,
	// does).
	Pebble *pebble.Options
}

// pebbleOptions returns the Pebble configuration o describes.
func (o *Options) pebbleOptions() (*pebble.Options, error) {
	if o == nil {
		o = &Options{}
	}
	if o.Pebble != nil {
		if o.Pebble.ReadOnly {
			return nil, fmt.Errorf("pebblekv: Options.Pebble.ReadOnly is set: %w", storage.ErrBadOption)
		}
		if o.Pebble.DisableWAL {
			return nil, fmt.Errorf("pebblekv: Options.Pebble.DisableWAL is set: %w", storage.ErrBadOption)
		}
		return o.Pebble.Clone(), nil
	}
	if o.CacheSize < 0 {
		return nil, fmt.Errorf("pebblekv: CacheSize %d is negative: %w", o.CacheSize, storage.ErrBadOption)
	}
	if o.MaxConcurrentCompactions < 0 {
		return nil, fmt.Errorf("pebblekv: MaxConcurrentCompactions %d is negative: %w", o.MaxConcurrentCompactions, storage.ErrBadOption)
	}
	if o.MaxOpenFiles < 0 {
		return nil, fmt.Errorf("pebblekv: MaxOpenFiles %d is negative: %w", o.MaxOpenFiles, storage.ErrBadOption)
	}
	po := &pebble.Options{
		CacheSize:          o.CacheSize,
		MemTableSize:       o.MemTableSize,
		MaxOpenFiles:       o.MaxOpenFiles,
		FormatMajorVersion: o.FormatMajorVersion,
		Logger:             o.Logger,
	}
	if po.CacheSize == 0 {
		po.CacheSize = DefaultCacheSize
	}
	if po.MemTableSize == 0 {
		po.MemTableSize = DefaultMemTableSize
	}
	if po.Logger == nil {
		po.Logger = quietLogger{}
	}
	if po.FormatMajorVersion == pebble.FormatDefault {
		po.FormatMajorVersion = pebble.FormatNewest
	}
	if n := o.MaxConcurrentCompactions; n > 0 {
		po.CompactionConcurrencyRange = func() (int, int) { return 1, n }
	}
	bits := o.BloomBitsPerKey
	if bits == 0 {
		bits = DefaultBloomBitsPerKey
	}
	if bits > 0 {
		for i := range po.Levels {
			po.Levels[i].FilterPolicy = bloom.FilterPolicy(bits)
		}
	}
	return po, nil
}

// quietLogger drops Pebble's informational messages and passes the others
// to pebble.DefaultLogger.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}

func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
