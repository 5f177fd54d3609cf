package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record framing. Frozen once the format is declared stable (see the
// package doc); until then the format version in the header guards it.
const (
	headerSize = 24 // bytes before the payload
	align      = 8  // every record starts at a multiple of 8

	// Record types. Zero is invalid, so zeroed space never parses.
	typeData = 1 // a record the user appended
	typeSync = 2 // a sync marker: payload is the synced-through position
	typeSkip = 3 // damaged bytes salvage covered; readers skip it

	// Flags.
	flagMore       = 1 << 0                          // data: a batch member with more members after it
	flagCont       = 1 << 1                          // data: a batch member after the first
	flagEpochStart = 1 << 2                          // sync marker: the first record of its epoch
	dataFlags      = flagMore | flagCont | codecMask // codecMask: see Compression

	syncPayload = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordHeader is the fixed part of a record:
//
//	0   4  CRC-32C (Castagnoli) of bytes 4..24+length: the rest of the
//	       header and the payload
//	4   4  payload length
//	8   8  position of the record (of this header's first byte)
//	16  4  epoch: bumped by TruncateBack, so records of a truncated suffix
//	       never parse as new ones
//	20  1  type: 1 data, 2 sync marker, 3 skip (0 is invalid)
//	21  1  flags: bit 0 "more": a batch member with members after it;
//	       bit 1 "cont": a batch member after the first; bit 2 "epoch
//	       start" (sync markers): the first record written in its epoch;
//	       bits 3-4 (data): compression, 0 none, 1 S2, 2 zstd
//	22  2  reserved, zero
//	24  n  payload, then zeroes up to a multiple of 8
type recordHeader struct {
	length uint32
	pos    uint64
	epoch  uint32
	typ    uint8
	flags  uint8
}

// recordSize is the space a record with an n-byte payload takes.
func recordSize(n int) int { return (headerSize + n + align - 1) &^ (align - 1) }

// putRecord writes a record with payload p at the start of dst, which must
// hold recordSize(len(p)) bytes, and returns that size.
func putRecord(dst []byte, h recordHeader, p []byte) int {
	n := recordSize(len(p))
	le := binary.LittleEndian
	le.PutUint32(dst[4:], uint32(len(p)))
	le.PutUint64(dst[8:], h.pos)
	le.PutUint32(dst[16:], h.epoch)
	dst[20] = h.typ
	dst[21] = h.flags
	dst[22], dst[23] = 0, 0
	copy(dst[headerSize:], p)
	clear(dst[headerSize+len(p) : n])
	le.PutUint32(dst[0:], crc32.Checksum(dst[4:headerSize+len(p)], castagnoli))
	return n
}

// Why a record does not parse. Recovery tells them apart: a zeroed or
// stale header (wrong position or epoch) is where the log ends; a header
// that claims this position and epoch but fails its checksum is damage.
var (
	errZeroed    = errors.New("zeroed space")
	errStale     = errors.New("no record for this position (old or foreign bytes)")
	errChecksum  = errors.New("checksum mismatch")
	errBadHeader = errors.New("invalid record header")
	errTooLong   = errors.New("record longer than the maximum")
)

// parseHeader reads the header in b (at least headerSize bytes) of a record
// expected at position pos. minEpoch..maxEpoch bounds the epochs allowed
// there. It checks everything but the checksum.
func parseHeader(b []byte, pos uint64, minEpoch, maxEpoch uint32, maxLen int) (recordHeader, error) {
	le := binary.LittleEndian
	h := recordHeader{
		length: le.Uint32(b[4:]),
		pos:    le.Uint64(b[8:]),
		epoch:  le.Uint32(b[16:]),
		typ:    b[20],
		flags:  b[21],
	}
	switch {
	case h.typ == 0 && h.pos == 0 && le.Uint32(b[0:]) == 0:
		return h, errZeroed
	case h.pos != pos || h.epoch < minEpoch || h.epoch > maxEpoch:
		return h, errStale
	case h.typ < typeData || h.typ > typeSkip, h.typ == typeData && h.flags&^dataFlags != 0, b[22] != 0 || b[23] != 0:
		return h, fmt.Errorf("%w: type %d, flags %#x", errBadHeader, h.typ, h.flags)
	case h.typ == typeData && codecOf(h.flags) > Zstd:
		return h, fmt.Errorf("%w: unknown compression %d", errBadHeader, codecOf(h.flags))
	case h.typ == typeSync && (h.length != syncPayload || h.flags&^flagEpochStart != 0):
		return h, fmt.Errorf("%w: sync marker of %d bytes, flags %#x", errBadHeader, h.length, h.flags)
	case h.typ == typeSkip && h.flags != 0:
		return h, fmt.Errorf("%w: skip record with flags %#x", errBadHeader, h.flags)
	case int64(h.length) > int64(maxLen):
		return h, fmt.Errorf("%w: %d bytes, at most %d", errTooLong, h.length, maxLen)
	}
	return h, nil
}

// checkRecord verifies the checksum of the record r (header and payload,
// without padding).
func checkRecord(r []byte) error {
	want := binary.LittleEndian.Uint32(r[0:])
	if got := crc32.Checksum(r[4:], castagnoli); got != want {
		return fmt.Errorf("%w: stored %#08x, computed %#08x", errChecksum, want, got)
	}
	return nil
}
