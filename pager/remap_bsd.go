//go:build (darwin || freebsd) && !ringlog_portable

package pager

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newRemapOps(v *View) (ops, error) {
	return nil, fmt.Errorf("pager: view of %s: remap_file_pages is Linux only: %w", v.name, ErrUnsupported)
}

func remapFilePages(addr unsafe.Pointer, size int, pgoff int, nonblock bool) error {
	return unix.ENOSYS
}
