//go:build (darwin || freebsd) && !ringlog_portable

package pager

// kernelMapping is what the kernel shows of one mapping; these platforms
// offer no /proc/self/maps, so nothing is read and pages that cannot be
// re-reserved after a failed call are marked lost.
type kernelMapping struct {
	start, end uintptr
	perms      string
	offset     int64
	dev, ino   uint64
	shared     bool
	noReserve  bool
}

func readKernelMappings(lo, hi uintptr, withFlags bool) ([]kernelMapping, error) { return nil, nil }
