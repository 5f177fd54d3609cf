//go:build freebsd && !ringlog_portable

package pager

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// FreeBSD has no MAP_NORESERVE: anonymous PROT_NONE memory commits nothing.
const reserveFlags = unix.MAP_PRIVATE | unix.MAP_ANON

const populateFlag = unix.MAP_PREFAULT_READ

// reserveAt reserves [addr, addr+n) only if nothing is mapped there
// (MAP_FIXED|MAP_EXCL).
func reserveAt(addr unsafe.Pointer, n int) error {
	_, err := sysMmap(-1, 0, addr, uintptr(n), unix.PROT_NONE, reserveFlags|unix.MAP_FIXED|unix.MAP_EXCL)
	return err
}
