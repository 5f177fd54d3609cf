package pager

import (
	"context"
	"log/slog"
)

// logFallback tells l why Auto chose b for a view of the file name when
// it is not the backend Auto prefers: Remap for a writable view, Mmap for
// a read-only one (which Remap cannot map).
func logFallback(l *slog.Logger, name string, readOnly bool, b Backend) {
	if l == nil {
		return
	}
	preferred := Remap
	if readOnly {
		preferred = Mmap
	}
	if b == preferred {
		return
	}
	attrs := []slog.Attr{
		slog.String("file", name),
		slog.String("backend", b.String()),
		slog.Bool("read_only", readOnly),
	}
	for _, c := range []Backend{Remap, Mmap} {
		if c < preferred || c == b {
			continue
		}
		if err := Available(c); err != nil {
			attrs = append(attrs, slog.String(c.String()+"_unavailable", err.Error()))
		}
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "pager: auto backend fell back", attrs...)
}
