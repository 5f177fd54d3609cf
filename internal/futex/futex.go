// Package futex waits on and wakes a 32-bit word in memory shared between
// processes (a shared file mapping): Linux futexes, and a sleeping poll
// where the platform has none.
package futex

import (
	"sync/atomic"
	"time"
)

// Wait blocks while the word still holds val, until Wake, or at most
// timeout (which must be positive). It may return early for no reason:
// callers check their condition again.
func Wait(w *atomic.Uint32, val uint32, timeout time.Duration) {
	wait(w, val, timeout)
}

// Wake wakes every process and goroutine waiting on the word.
func Wake(w *atomic.Uint32) { wake(w) }

// Supported reports whether Wait really blocks on the word (rather than
// sleeping a little and returning).
func Supported() bool { return supported }
