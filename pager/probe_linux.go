//go:build linux

package pager

import (
	"os"

	"golang.org/x/sys/unix"
)

// probeFile is an anonymous memory file: the probe needs no file system.
func probeFile() (*os.File, func(), error) {
	fd, err := unix.MemfdCreate("ringlog-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return tempProbeFile()
	}
	f := os.NewFile(uintptr(fd), "memfd:ringlog-probe")
	return f, func() { f.Close() }, nil
}
