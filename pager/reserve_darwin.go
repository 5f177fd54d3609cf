//go:build darwin && !ringlog_portable

package pager

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const reserveFlags = unix.MAP_PRIVATE | unix.MAP_ANON | unix.MAP_NORESERVE

// macOS has no populate flag for mmap; pages fault in on first touch.
const populateFlag = 0

// reserveAt reserves [addr, addr+n) only if nothing is mapped there. macOS
// has no MAP_FIXED_NOREPLACE: addr is passed as a hint, and a reservation
// the kernel placed elsewhere is undone and reported as EEXIST.
func reserveAt(addr unsafe.Pointer, n int) error {
	p, err := sysMmap(-1, 0, addr, uintptr(n), unix.PROT_NONE, reserveFlags)
	if err != nil {
		return err
	}
	if p != addr {
		unix.MunmapPtr(p, uintptr(n))
		return unix.EEXIST
	}
	return nil
}
