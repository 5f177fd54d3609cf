package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/ringlog/ringlog/internal/osfile"
)

// The stable file (see the package doc):
//
//	0   4  magic "RSTB"
//	4   4  version (1)
//	8   4  CRC-32C (Castagnoli) of bytes 16 .. 16+length
//	12  4  length of the body
//	16  n  body: pairs, each uvarint len(key), key, uvarint len(value), value
const (
	stableMagic   = "RSTB"
	stableVersion = 1
	stableHeader  = 16
	// stableMaxSize bounds the file read at open, so a damaged length
	// never makes a huge allocation.
	stableMaxSize = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeStable encodes the pairs of m, keys in order (so equal maps give
// equal files).
func encodeStable(m map[string][]byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := make([]byte, stableHeader, 256)
	copy(b, stableMagic)
	binary.LittleEndian.PutUint32(b[4:], stableVersion)
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	body := b[stableHeader:]
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(body, castagnoli))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(body)))
	return b
}

// decodeStable decodes a stable file's bytes; path names it in errors.
func decodeStable(path string, b []byte) (map[string][]byte, error) {
	bad := func(off int, format string, args ...any) error {
		return fmt.Errorf("raftstore: %s at offset %d: %s: %w", path, off, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if len(b) < stableHeader {
		return nil, bad(0, "%d bytes, shorter than the %d-byte header", len(b), stableHeader)
	}
	if string(b[:4]) != stableMagic {
		return nil, bad(0, "magic %q, want %q", b[:4], stableMagic)
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != stableVersion {
		return nil, bad(4, "version %d, want %d", v, stableVersion)
	}
	n := binary.LittleEndian.Uint32(b[12:])
	if uint64(n) != uint64(len(b)-stableHeader) {
		return nil, bad(12, "body of %d bytes, the file has %d after the header", n, len(b)-stableHeader)
	}
	body := b[stableHeader:]
	if sum, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[8:]); sum != want {
		return nil, bad(8, "checksum %#x, the body's is %#x", want, sum)
	}
	m := map[string][]byte{}
	off := 0
	field := func(what string) ([]byte, error) {
		l, k := binary.Uvarint(body[off:])
		if k <= 0 || l > uint64(len(body)-off-k) {
			return nil, bad(stableHeader+off, "bad %s length", what)
		}
		v := body[off+k : off+k+int(l)]
		off += k + int(l)
		return v, nil
	}
	for off < len(body) {
		k, err := field("key")
		if err != nil {
			return nil, err
		}
		v, err := field("value")
		if err != nil {
			return nil, err
		}
		m[string(k)] = append([]byte(nil), v...)
	}
	return m, nil
}

// loadStable reads the stable file at path; a missing file is an empty
// store.
func loadStable(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	if st.Size() > stableMaxSize {
		return nil, fmt.Errorf("raftstore: %s: %d bytes, more than a stable file may hold (%d): %w", path, st.Size(), stableMaxSize, ErrCorrupt)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("raftstore: reading %s: %w", path, err)
	}
	return decodeStable(path, b)
}

// writeStable replaces the stable file at path with b atomically: b is
// written to a temporary file in the same directory, synced, renamed over
// path, and the directory synced. A crash leaves the old file or the new
// one, never a mix.
func writeStable(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("raftstore: writing %s: %w", tmp, err)
	}
	if err := osfile.Fdatasync(f); err != nil {
		f.Close()
		return fmt.Errorf("raftstore: syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	if err := osfile.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("raftstore: syncing the directory of %s: %w", path, err)
	}
	return nil
}
