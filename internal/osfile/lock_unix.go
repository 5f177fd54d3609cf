//go:build linux || darwin || freebsd

package osfile

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// TryLock takes an exclusive lock on f without waiting, so that a second
// writer (in this process or another) gets ErrLocked instead of corrupting
// the file. The lock is released when f is closed. On Linux it is an
// open-file-description lock (not lost when another descriptor of the same
// file is closed, unlike a POSIX lock); elsewhere flock.
func TryLock(f *os.File) error {
	err := tryLock(f)
	if errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("osfile: lock %s: %w", f.Name(), ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("osfile: lock %s: %w", f.Name(), err)
	}
	return nil
}

// ProcessAlive reports whether a process with this pid exists.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
