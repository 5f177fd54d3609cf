//go:build linux || darwin || freebsd

package pager

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// checkAccess matches the file's open mode against the view's.
func checkAccess(f *os.File, readOnly bool) error {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("pager: view of %s: %w", f.Name(), err)
	}
	switch fl & unix.O_ACCMODE {
	case unix.O_RDONLY:
		if !readOnly {
			return fmt.Errorf("pager: view of %s: the file is open read-only; set Options.ReadOnly: %w", f.Name(), ErrReadOnly)
		}
	case unix.O_WRONLY:
		return fmt.Errorf("pager: view of %s: the file is open write-only; a view must read it", f.Name())
	}
	return nil
}
