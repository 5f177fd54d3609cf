//go:build !linux

package osfile

import (
	"os"
	"runtime"
)

func fdatasync(f *os.File) error { return f.Sync() }

func fallocate(f *os.File, size int64) (bool, error) { return false, nil }

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func fsType(path string) string { return "unknown" }
