package pager

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// FaultError reports a memory fault (SIGBUS or SIGSEGV) caught by a guard:
// typically a mapped page past the end of a file that shrank, or a page
// whose read from disk failed.
type FaultError struct {
	File       string  // the file mapped at the address, "" if no view holds it
	Offset     int64   // file offset of the faulting byte, -1 if unknown
	ViewOffset int     // offset in the view, -1 if no view holds the address
	Addr       uintptr // the faulting address
}

// Error names the file, the offset and the address of the fault.
func (e *FaultError) Error() string {
	switch {
	case e.File == "":
		return fmt.Sprintf("pager: memory fault at address %#x, outside every view", e.Addr)
	case e.Offset < 0:
		return fmt.Sprintf("pager: memory fault reading %s at view offset %d (page not mapped)", e.File, e.ViewOffset)
	}
	return fmt.Sprintf("pager: memory fault reading %s at offset %d (view offset %d): the file is shorter than its mapping or the read failed",
		e.File, e.Offset, e.ViewOffset)
}

// Unwrap returns ErrFault, so errors.Is(err, ErrFault) matches any fault.
func (e *FaultError) Unwrap() error { return ErrFault }

// Guard runs fn with faults turned into errors: if fn touches a view page
// that cannot be read (SIGBUS: the file was truncated, the disk failed),
// Guard returns a *FaultError naming the file and offset instead of the
// process dying. Other panics pass through unchanged. The protection covers
// only the goroutine that calls Guard, and only fn's own accesses; memory
// fn's goroutines touch is not covered. A fault leaves fn's work half done:
// treat the data it was reading as unavailable.
func Guard(fn func()) error {
	return guard(fn, lookupFault)
}

func guard(fn func(), resolve func(addr uintptr) *FaultError) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			f, ok := r.(interface{ Addr() uintptr })
			if !ok {
				panic(r)
			}
			err = resolve(f.Addr())
		}
	}()
	fn()
	return nil
}

// registry lists the live views with memory outside the Go heap, so a
// fault address can be named.
var registry struct {
	sync.RWMutex
	views []*View
}

func register(v *View) {
	registry.Lock()
	registry.views = append(registry.views, v)
	registry.Unlock()
}

func unregister(v *View) {
	registry.Lock()
	defer registry.Unlock()
	for i, w := range registry.views {
		if w == v {
			registry.views = append(registry.views[:i], registry.views[i+1:]...)
			return
		}
	}
}

func lookupFault(addr uintptr) *FaultError {
	registry.RLock()
	var v *View
	for _, w := range registry.views {
		if addr >= w.base && addr < w.base+uintptr(w.size) {
			v = w
			break
		}
	}
	registry.RUnlock()
	if v == nil {
		return &FaultError{Offset: -1, ViewOffset: -1, Addr: addr}
	}
	// A writer holding the lock must not make the fault path wait (or
	// deadlock); the offset is then reported unknown.
	if !v.mu.TryRLock() {
		return &FaultError{File: v.name, Offset: -1, ViewOffset: int(addr - v.base), Addr: addr}
	}
	defer v.mu.RUnlock()
	return v.faultLocked(addr)
}

// faultLocked names a fault address inside v.
func (v *View) faultLocked(addr uintptr) *FaultError {
	if addr < v.base || addr >= v.base+uintptr(v.size) {
		return &FaultError{File: v.name, Offset: -1, ViewOffset: -1, Addr: addr}
	}
	off := int(addr - v.base)
	e := &FaultError{File: v.name, Offset: -1, ViewOffset: off, Addr: addr}
	if fp := v.mu.table[off/v.pageSize]; fp >= 0 {
		e.Offset = fp*int64(v.pageSize) + int64(off%v.pageSize)
	}
	return e
}
