package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyFileData copies the content of src into dst (both open, dst empty)
// without filling src's holes: only the ranges SEEK_DATA finds are
// copied (with copy_file_range, through os.File.ReadFrom), then dst is
// given src's size. A store's sparse files (a log grown by ftruncate, a
// preallocated one) so take no more disk in the copy than in the
// original.
func copyFileData(dst, src *os.File, size int64) error {
	for off := int64(0); off < size; {
		data, err := src.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole from off to the end
		}
		if err != nil {
			return err
		}
		hole, err := src.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if _, err := dst.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := src.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(dst, src, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return dst.Truncate(size)
}

// diskBytes is the disk space a file takes: st_blocks × 512, so that
// holes count nothing and allocated space past the end counts in full.
func diskBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
