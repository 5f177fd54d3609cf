//go:build linux && !ringlog_portable

package pager

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// reserveFlags make a PROT_NONE reservation that commits no memory or swap.
const reserveFlags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE

const populateFlag = unix.MAP_POPULATE

// reserveAt reserves [addr, addr+n) only if nothing is mapped there
// (MAP_FIXED_NOREPLACE). Kernels before 4.17 ignore that flag and treat addr
// as a hint; a reservation placed elsewhere is undone and reported as EEXIST.
func reserveAt(addr unsafe.Pointer, n int) error {
	p, err := sysMmap(-1, 0, addr, uintptr(n), unix.PROT_NONE, reserveFlags|unix.MAP_FIXED_NOREPLACE)
	if err != nil {
		return err
	}
	if p != addr {
		unix.MunmapPtr(p, uintptr(n))
		return unix.EEXIST
	}
	return nil
}
