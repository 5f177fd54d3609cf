package wal

import (
	"context"
	"log/slog"
	"time"
)

// Logging of the log's events (Options.Logger). None of it runs per
// record: only at open, on failure, and on calls that change the log's
// extent or its consumers.

// logAt sends one record to the logger, if there is one.
func (l *Log) logAt(level slog.Level, msg string, attrs ...slog.Attr) {
	if lg := l.opts.Logger; lg != nil && lg.Enabled(context.Background(), level) {
		lg.LogAttrs(context.Background(), level, msg, append([]slog.Attr{slog.String("file", l.name)}, attrs...)...)
	}
}

// logRecovery logs what recovery did (l.report), which took d: Info, or
// Warn when it cut the log or skipped damaged ranges (then one more Warn
// per range).
func (l *Log) logRecovery(d time.Duration) {
	if l.opts.Logger == nil {
		return
	}
	rep := l.report
	attrs := []slog.Attr{
		slog.String("mode", rep.Mode.String()),
		slog.Uint64("checkpoint", rep.Checkpoint),
		slog.Uint64("end", rep.End),
		slog.Uint64("synced", rep.Synced),
		slog.Int("records", rep.Records),
		slog.Uint64("rewritten_bytes", rep.Rewritten),
		slog.Uint64("epoch", uint64(rep.Epoch)),
		slog.Duration("duration", d),
	}
	level, msg := slog.LevelInfo, "wal: recovered"
	if rep.Cut() {
		level, msg = slog.LevelWarn, "wal: recovery cut the log"
		attrs = append(attrs,
			slog.Uint64("cut_at", rep.CutAt),
			slog.Int64("cut_file_offset", l.r.FileOffset(rep.CutAt)),
			slog.String("reason", rep.Reason),
			slog.Int("dropped_records", rep.DroppedRecords),
			slog.Uint64("dropped_bytes", rep.DroppedBytes))
	}
	if len(rep.Skipped) > 0 {
		var n uint64
		for _, s := range rep.Skipped {
			n += s.Length
		}
		level = slog.LevelWarn
		if !rep.Cut() {
			msg = "wal: recovery skipped damaged ranges"
		}
		attrs = append(attrs, slog.Int("skipped_ranges", len(rep.Skipped)), slog.Uint64("skipped_bytes", n))
	}
	if rep.SalvageCopy != "" {
		attrs = append(attrs, slog.String("salvage_copy", rep.SalvageCopy))
	}
	l.logAt(level, msg, attrs...)
	for _, s := range rep.Skipped {
		l.logAt(slog.LevelWarn, "wal: salvage skipped a damaged range",
			slog.Uint64("position", s.Position),
			slog.Int64("file_offset", s.FileOffset),
			slog.Uint64("length", s.Length),
			slog.String("reason", s.Reason))
	}
}

// logFailure logs the failure that made the log refuse writes.
func (l *Log) logFailure(err error) {
	l.logAt(slog.LevelError, "wal: write or sync failed; the log refuses writes",
		slog.String("error", err.Error()),
		slog.Uint64("written", l.written.Load()),
		slog.Uint64("durable", l.synced.Load()))
}

// logTruncateFront logs a TruncateFront that moved the checkpoint from
// from to to.
func (l *Log) logTruncateFront(from, to uint64) {
	l.logAt(slog.LevelDebug, "wal: truncated the front",
		slog.Uint64("from", from), slog.Uint64("to", to), slog.Uint64("bytes", to-from))
}

// logTruncateBack logs a TruncateBack that dropped the log from pos to
// written.
func (l *Log) logTruncateBack(pos, written uint64) {
	l.logAt(slog.LevelInfo, "wal: truncated the back",
		slog.Uint64("position", pos), slog.Uint64("dropped_bytes", written-pos))
}

// registered reports whether a consumer called name is registered, for
// logging whether Consumer registers it or attaches to it.
func (l *Log) registered(name string) bool {
	if l.opts.Logger == nil {
		return false
	}
	for _, c := range l.Consumers() {
		if c.Name == name {
			return true
		}
	}
	return false
}

// logConsumer logs a Consumer call: a new registration (Info) or an
// attachment to an existing one (Debug).
func (l *Log) logConsumer(name string, existed bool, o ConsumerOptions, pos uint64) {
	level, msg := slog.LevelInfo, "wal: consumer registered"
	if existed {
		level, msg = slog.LevelDebug, "wal: consumer attached"
	}
	l.logAt(level, msg, slog.String("consumer", name), slog.Uint64("position", pos),
		slog.Bool("lossy", o.Lossy), slog.Int64("max_lag", o.MaxLag))
}

// logRemoveConsumer logs a removed registration.
func (l *Log) logRemoveConsumer(name string) {
	l.logAt(slog.LevelInfo, "wal: consumer removed", slog.String("consumer", name))
}

// logReattach logs a consumer resumed at pos after skipping n bytes.
func (l *Log) logReattach(name string, n, pos uint64) {
	level := slog.LevelInfo
	if n > 0 {
		level = slog.LevelWarn // records it never read
	}
	l.logAt(level, "wal: consumer reattached", slog.String("consumer", name),
		slog.Uint64("position", pos), slog.Uint64("skipped_bytes", n))
}

// Err is the failure that made the log refuse writes (it wraps ErrFailed
// and the cause), or nil while the log accepts them: for health checks
// and metrics, without making a write to find out.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.err
}
