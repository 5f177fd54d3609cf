//go:build !linux

package main

import (
	"io"
	"io/fs"
	"os"
)

// copyFileData copies the content of src into dst (both open, dst
// empty), holes included.
func copyFileData(dst, src *os.File, size int64) error {
	_, err := io.Copy(dst, io.NewSectionReader(src, 0, size))
	return err
}

// diskBytes is the disk space a file takes; here, its size.
func diskBytes(fi fs.FileInfo) int64 { return fi.Size() }
