package osfile

import (
	"os"
	"sync/atomic"
)

// Hooks let the reliability suites (internal/torture) watch every sync
// the storage layers make: each is called instead of the sync with a
// function that does it, and returns what the caller of Fdatasync or
// SyncDir gets. A hook may snapshot what the sync makes durable, or skip
// the sync (to prove that the suites notice a missing one).
type Hooks struct {
	File func(f *os.File, sync func() error) error
	Dir  func(dir string, sync func() error) error
}

var hooks atomic.Pointer[Hooks]

// SetHooks installs h (nil removes them) for the whole process and
// returns a function that puts back the previous ones.
func SetHooks(h *Hooks) (restore func()) {
	old := hooks.Swap(h)
	return func() { hooks.Store(old) }
}

func hookedFdatasync(f *os.File) error {
	if h := hooks.Load(); h != nil && h.File != nil {
		return h.File(f, func() error { return fdatasync(f) })
	}
	return fdatasync(f)
}

func hookedSyncDir(dir string) error {
	if h := hooks.Load(); h != nil && h.Dir != nil {
		return h.Dir(dir, func() error { return syncDir(dir) })
	}
	return syncDir(dir)
}
