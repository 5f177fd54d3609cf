//go:build !linux

package futex

import (
	"sync/atomic"
	"time"
)

const supported = false

// wait polls: it sleeps a little (at most timeout) unless the word moved.
func wait(w *atomic.Uint32, val uint32, timeout time.Duration) {
	if w.Load() != val {
		return
	}
	time.Sleep(min(timeout, time.Millisecond))
}

func wake(w *atomic.Uint32) {}
