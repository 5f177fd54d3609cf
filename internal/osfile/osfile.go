// Package osfile holds the small file-system helpers the storage layers
// share: data-only sync, preallocation, directory sync and the name of the
// file system under a path. Platform differences live in the _linux and
// _other files; the signatures are the same everywhere.
package osfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrLocked is returned by TryLock when another holder has the file.
var ErrLocked = errors.New("osfile: file is locked by another writer")

// zeroChunk is the size of the buffer WriteZeroes writes with.
const zeroChunk = 1 << 20

// WriteZeroes writes n zero bytes to f at offset off with large pwrites,
// extending the file if needed. Unlike fallocate it leaves the blocks
// written (not merely reserved), so a later overwrite plus fdatasync needs
// no extent conversion in the file system's journal.
func WriteZeroes(f *os.File, off, n int64) error {
	buf := make([]byte, min(n, zeroChunk))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.WriteAt(buf[:k], off); err != nil {
			return fmt.Errorf("osfile: writing zeroes to %s at offset %d: %w", f.Name(), off, err)
		}
		off += k
		n -= k
	}
	return nil
}

// SyncDir fsyncs the directory dir, so that a file created, renamed or
// removed in it survives a crash. It is a no-op where directories cannot be
// synced (Windows).
func SyncDir(dir string) error {
	return hookedSyncDir(filepath.Clean(dir))
}

// Fdatasync flushes f's data (and the metadata needed to read it back, such
// as its size) to stable storage. Where the platform has no fdatasync it
// falls back to f.Sync. After a failure the caller must assume that the
// unsynced data is lost even if the page cache still shows it.
func Fdatasync(f *os.File) error {
	if err := hookedFdatasync(f); err != nil {
		return fmt.Errorf("osfile: fdatasync %s: %w", f.Name(), err)
	}
	return nil
}

// Preallocate makes sure the first size bytes of f are allocated on disk,
// extending the file to size if it is shorter, so that a mapping of that
// range cannot fault for lack of space later. It uses fallocate where the
// file system supports it and writes zeroes otherwise.
func Preallocate(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("osfile: preallocate %s: %w", f.Name(), err)
	}
	ok, err := fallocate(f, size)
	if err != nil {
		return fmt.Errorf("osfile: preallocate %s to %d bytes: %w", f.Name(), size, err)
	}
	if ok {
		return nil
	}
	if cur := st.Size(); cur < size {
		return WriteZeroes(f, cur, size-cur)
	}
	return nil
}

// FSType names the file system that holds path ("ext4", "xfs", "tmpfs",
// "btrfs", ...) or returns "unknown".
func FSType(path string) string {
	return fsType(path)
}

// IsMemFS says whether the file system named fs (see FSType) keeps files
// in memory only, where fdatasync makes nothing durable.
func IsMemFS(fs string) bool { return fs == "tmpfs" || fs == "ramfs" }

// DurableTempDir is where temporary files that must reach a disk go: the
// temporary directory, or /var/tmp or the current directory when the
// temporary directory is in memory; the temporary directory if all are.
func DurableTempDir() string {
	for _, c := range []string{os.TempDir(), "/var/tmp", "."} {
		if !IsMemFS(FSType(c)) {
			return c
		}
	}
	return os.TempDir()
}

// MkdirAll creates dir and any missing parents, like os.MkdirAll, and
// makes each new directory's entry durable by syncing its parent, so that
// files later synced inside it cannot vanish with it in a crash.
func MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	// Outermost first: a parent's entry before its child's.
	for i := len(created) - 1; i >= 0; i-- {
		if err := SyncDir(filepath.Dir(created[i])); err != nil {
			return err
		}
	}
	return nil
}

// IsTerminal reports whether w is a terminal (a character device), where
// progress can be drawn and redrawn in place.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
