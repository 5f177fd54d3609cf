//go:build !(linux || darwin || freebsd) || ringlog_portable

package pager

import "fmt"

// Without mapped backends (other platforms, or the ringlog_portable tag)
// every view is a Copy view.

func newMmapOps(v *View) (ops, error) {
	return nil, fmt.Errorf("pager: view of %s: mmap backend not built for this platform: %w", v.name, ErrUnsupported)
}

func newRemapOps(v *View) (ops, error) {
	return nil, fmt.Errorf("pager: view of %s: remap backend not built for this platform: %w", v.name, ErrUnsupported)
}

func (v *View) checkKernelLocked() error { return nil }
