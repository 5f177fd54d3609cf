//go:build !(linux || darwin || freebsd)

package pager

import "os"

// checkAccess cannot ask the file for its mode here; a mismatch shows up as
// an error from the first read or write.
func checkAccess(f *os.File, readOnly bool) error { return nil }
