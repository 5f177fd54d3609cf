//go:build linux && !ringlog_portable

package pager

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func newRemapOps(v *View) (ops, error) { return newMappedOps(v, true) }

// remapFilePages puts file page pgoff onward at addr within an existing
// shared mapping of the same file. nonblock skips populating the pages.
func remapFilePages(addr unsafe.Pointer, size int, pgoff int, nonblock bool) error {
	flags := uintptr(0)
	if nonblock {
		flags = unix.MAP_NONBLOCK
	}
	_, _, errno := unix.Syscall6(unix.SYS_REMAP_FILE_PAGES, uintptr(addr), uintptr(size), 0, uintptr(pgoff), flags, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
