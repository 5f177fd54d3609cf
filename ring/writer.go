package ring

import (
	"context"
	"fmt"
)

// Writer is the staged producer path: appends are copied into a buffer and
// written to the ring with one large pwrite per buffer (Ring.Write), the
// path that measured fastest for durable files (see the package doc). A
// Writer is the ring's producer while it has bytes buffered: do not mix
// its appends with Reserve or Write calls in between flushes.
type Writer struct {
	r   *Ring
	buf []byte
}

// NewWriter returns a Writer with a buffer of size bytes (at most the
// capacity; 1 MiB is a good size).
func (r *Ring) NewWriter(size int) *Writer {
	size = min(max(size, 1), int(r.capacity))
	return &Writer{r: r, buf: make([]byte, 0, size)}
}

// Append stages p and returns the position it will have in the ring. It
// writes the buffer out first if p does not fit, and writes p directly if
// it is larger than the buffer. Bytes still buffered are not visible to
// consumers: Flush makes them so.
func (w *Writer) Append(ctx context.Context, p []byte) (uint64, error) {
	if len(w.buf)+len(p) > cap(w.buf) {
		if err := w.Flush(ctx); err != nil {
			return 0, err
		}
		if len(p) > cap(w.buf) {
			return w.r.Write(ctx, p)
		}
	}
	pos := w.r.Head() + uint64(len(w.buf))
	w.buf = append(w.buf, p...)
	return pos, nil
}

// Flush writes the buffered bytes to the ring (waiting for space with ctx)
// and commits them. It does not sync.
func (w *Writer) Flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.r.Write(ctx, w.buf); err != nil {
		return fmt.Errorf("ring: flush of %d buffered bytes: %w", len(w.buf), err)
	}
	w.buf = w.buf[:0]
	return nil
}

// Buffered is the number of bytes appended but not yet flushed.
func (w *Writer) Buffered() int { return len(w.buf) }
