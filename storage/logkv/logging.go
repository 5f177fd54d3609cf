package logkv

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"
)

// Logging of the store's events (Options.Logger): open, index
// checkpoints and cleaner passes, never a single write.

// logAt sends one record to the logger, if there is one.
func (db *DB) logAt(level slog.Level, msg string, attrs ...slog.Attr) {
	if lg := db.o.Logger; lg != nil && lg.Enabled(context.Background(), level) {
		lg.LogAttrs(context.Background(), level, msg, append([]slog.Attr{slog.String("dir", db.dir)}, attrs...)...)
	}
}

// logOpen logs what Open did, which took d: how the index was rebuilt
// (from its checkpoint, or by replaying the whole log, and why).
func (db *DB) logOpen(d time.Duration) {
	if db.o.Logger == nil {
		return
	}
	rep := db.report
	db.mu.RLock()
	keys, live := db.mu.tree.Len(), db.mu.liveKV
	db.mu.RUnlock()
	attrs := []slog.Attr{
		slog.Int("keys", keys),
		slog.Int64("live_bytes", live),
		slog.Int64("replayed_records", rep.Replayed),
		slog.Uint64("log_checkpoint", db.log.Checkpoint()),
		slog.Uint64("log_end", db.log.Written()),
		slog.Int64("capacity", db.o.Capacity),
		slog.Int64("segment_size", db.o.SegmentSize),
		slog.Duration("duration", d),
	}
	index := filepath.Join(db.dir, IndexName)
	switch {
	case rep.IndexLoaded:
		db.logAt(slog.LevelInfo, "logkv: opened with the index checkpoint", append(attrs, slog.String("index", index))...)
	case rep.IndexError != nil:
		db.logAt(slog.LevelWarn, "logkv: index checkpoint not usable; replayed the whole log",
			append(attrs, slog.String("index", index), slog.String("error", rep.IndexError.Error()))...)
	default:
		why := "no index checkpoint (a new store, a crash, Options.NoIndexCheckpoint, or the cleaner freed the log it described)"
		db.logAt(slog.LevelInfo, "logkv: opened by replaying the whole log", append(attrs, slog.String("reason", why))...)
	}
}

// logIndexWrite logs an index checkpoint of n keys up to upTo, started
// at t0, that ended with *err.
func (db *DB) logIndexWrite(t0 time.Time, n int, upTo uint64, err *error) {
	if db.o.Logger == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("file", filepath.Join(db.dir, IndexName)),
		slog.Int("keys", n),
		slog.Uint64("up_to", upTo),
		slog.Duration("duration", time.Since(t0)),
	}
	if *err != nil {
		db.logAt(slog.LevelError, "logkv: writing the index checkpoint failed; the next open replays the whole log",
			append(attrs, slog.String("error", (*err).Error()))...)
		return
	}
	db.logAt(slog.LevelInfo, "logkv: index checkpoint written", attrs...)
}

// logGC logs a pass of the cleaner that freed the log from from to to,
// copying copied bytes of moved live entries, in d; and the bytes of live
// entries (framing included) and of log it leaves.
func (db *DB) logGC(from, to uint64, copied int64, moved int, d time.Duration) {
	if db.o.Logger == nil {
		return
	}
	db.mu.RLock()
	live, span := db.mu.live, db.mu.end-db.mu.pin.Position()
	db.mu.RUnlock()
	db.logAt(slog.LevelInfo, "logkv: cleaned a segment",
		slog.Uint64("from", from),
		slog.Uint64("to", to),
		slog.Uint64("freed_bytes", to-from),
		slog.Int64("copied_bytes", copied),
		slog.Int("moved_entries", moved),
		slog.Int64("live_entry_bytes", live),
		slog.Uint64("log_bytes", span),
		slog.Duration("duration", d))
}

// logGCError logs a failure of the background cleaner: at Error the
// first after a pass that succeeded, at Debug while it keeps failing (it
// tries again at each check, every 200ms).
func (db *DB) logGCError(err error) {
	if db.o.Logger == nil {
		return
	}
	level := slog.LevelError
	if db.GCError() != nil {
		level = slog.LevelDebug
	}
	db.logAt(level, "logkv: the cleaner failed", slog.String("error", err.Error()))
}
