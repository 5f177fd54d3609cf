// Package atomicmem gives atomic access to words inside byte slices, for
// counters and flags that live in memory shared with other processes (a
// shared file mapping). It is the only place outside the pager that turns a
// []byte into a typed pointer.
package atomicmem

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Uint64 returns the 8 bytes of b at off as an atomic word. off must be a
// multiple of 8 and the bytes must be 8-byte aligned in memory (true for
// page-aligned mappings and large heap buffers); it panics otherwise, since
// that is a layout bug, not bad input.
func Uint64(b []byte, off int) *atomic.Uint64 {
	p := word(b, off, 8)
	return (*atomic.Uint64)(p)
}

// Uint32 is Uint64 for a 4-byte word.
func Uint32(b []byte, off int) *atomic.Uint32 {
	p := word(b, off, 4)
	return (*atomic.Uint32)(p)
}

func word(b []byte, off, size int) unsafe.Pointer {
	if off < 0 || off+size > len(b) || off%size != 0 {
		panic(fmt.Sprintf("atomicmem: %d-byte word at offset %d of a %d-byte buffer", size, off, len(b)))
	}
	p := unsafe.Pointer(&b[off])
	if uintptr(p)%uintptr(size) != 0 {
		panic(fmt.Sprintf("atomicmem: %d-byte word at unaligned address %p", size, p))
	}
	return p
}
