package ring

import (
	"context"
	"log/slog"
)

// logOpen tells l what Open repaired: a header copy it could not use, and
// consumer slots it cleared or moved.
func (r *Ring) logOpen(l *slog.Logger) {
	if l == nil {
		return
	}
	ctx := context.Background()
	if err := r.info.HeaderError; err != nil {
		l.LogAttrs(ctx, slog.LevelWarn, "ring: a header copy is invalid; using the other",
			slog.String("file", r.name), slog.Int64("header_offset", r.info.HeaderCopy), slog.String("error", err.Error()))
	}
	for _, what := range r.info.Reset {
		l.LogAttrs(ctx, slog.LevelWarn, "ring: consumer slot repaired", slog.String("file", r.name), slog.String("repair", what))
	}
}

// logCopyControl tells l that the header region of the ring name is kept
// on the Copy backend because the platform cannot map it (err says why):
// other processes cannot follow this one's live positions.
func logCopyControl(l *slog.Logger, name string, err error) {
	if l == nil {
		return
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "ring: header region on the copy backend",
		slog.String("file", name), slog.String("mmap_unavailable", err.Error()))
}
