package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ringlog/ringlog/internal/osfile"
)

// Data files hold a fixed function of the byte offset: the little-endian
// 8-byte word at offset o (a multiple of 8) is patternWord(o). So what any
// range of a file must contain is known without reading it, and a read
// workload checks what a system handed it against that.
const (
	patternMul = 0x9E3779B97F4A7C15 // odd: o -> o*patternMul is a bijection
	patternXor = 0x5DEECE66DBADC0DE
)

// patternWord is the word at byte offset off (a multiple of 8) of a data
// file.
func patternWord(off int64) uint64 { return uint64(off)*patternMul ^ patternXor }

// fillPattern fills b with the data-file content found at byte offset off.
// off and len(b) must be multiples of 8.
func fillPattern(b []byte, off int64) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], patternWord(off+int64(i)))
	}
}

// patternXOR is the XOR of every word of the first size bytes of a data
// file, computed from patternWord without reading anything.
func patternXOR(size int64) uint64 {
	var x uint64
	for o := int64(0); o+8 <= size; o += 8 {
		x ^= patternWord(o)
	}
	return x
}

// xorWords folds every little-endian 8-byte word of b with XOR (a tail
// shorter than 8 bytes counts as a zero-padded word). Eight independent
// accumulators over 64-byte blocks keep the loop bound by loads, not by the
// dependency chain of a single accumulator.
func xorWords(b []byte) uint64 {
	var x0, x1, x2, x3, x4, x5, x6, x7 uint64
	for len(b) >= 64 {
		x0 ^= binary.LittleEndian.Uint64(b[0:8])
		x1 ^= binary.LittleEndian.Uint64(b[8:16])
		x2 ^= binary.LittleEndian.Uint64(b[16:24])
		x3 ^= binary.LittleEndian.Uint64(b[24:32])
		x4 ^= binary.LittleEndian.Uint64(b[32:40])
		x5 ^= binary.LittleEndian.Uint64(b[40:48])
		x6 ^= binary.LittleEndian.Uint64(b[48:56])
		x7 ^= binary.LittleEndian.Uint64(b[56:64])
		b = b[64:]
	}
	for len(b) >= 8 {
		x0 ^= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	if len(b) > 0 {
		var t [8]byte
		copy(t[:], b)
		x0 ^= binary.LittleEndian.Uint64(t[:])
	}
	return x0 ^ x1 ^ x2 ^ x3 ^ x4 ^ x5 ^ x6 ^ x7
}

// patternPath is the data file of size bytes in dir. Workloads that need a
// file of the same size share it.
func patternPath(dir string, size int64) string {
	return filepath.Join(dir, fmt.Sprintf("pattern-%d.data", size))
}

// ioChunk is the size of the reads and writes that create data files and
// warm the page cache.
const ioChunk = 4 << 20

// createPatternFile creates the data file of size bytes in dir unless it is
// there already: written with large pwrites to a temporary name, synced,
// then renamed, so a file under the final name is always complete.
func createPatternFile(dir string, size int64) error {
	path := patternPath(dir, size)
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return nil
	}
	if size%8 != 0 {
		return fmt.Errorf("data file size %d is not a multiple of 8", size)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, min(size, ioChunk))
	for off := int64(0); off < size; {
		chunk := buf[:min(int64(len(buf)), size-off)]
		fillPattern(chunk, off)
		if _, err := f.WriteAt(chunk, off); err != nil {
			return err
		}
		off += int64(len(chunk))
	}
	if err := osfile.Fdatasync(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return osfile.SyncDir(dir)
}

// openPatternFile opens the data file of size bytes that setup created,
// read-write (the remap backend needs that), and reads it once with large
// preads so that its pages are in the page cache before anything is timed.
func openPatternFile(dir string, size int64) (*os.File, error) {
	path := patternPath(dir, size)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the data file (setup should have created it): %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() != size {
		f.Close()
		return nil, fmt.Errorf("data file %s has %d bytes, want %d", path, st.Size(), size)
	}
	buf := make([]byte, min(size, ioChunk))
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			f.Close()
			return nil, fmt.Errorf("warming the page cache with %s: %w", path, err)
		}
	}
	return f, nil
}
