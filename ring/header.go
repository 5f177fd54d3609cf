package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"unicode/utf8"
)

// On-disk layout constants. Frozen once the format is declared stable; see
// the package doc.
const (
	headerCopySize = 4096     // one header copy: a 4 KiB sector-aligned block
	headerA        = 0        // offset of copy A (even sequence numbers)
	headerB        = 4096     // offset of copy B (odd sequence numbers)
	livePage       = 8192     // live counters shared by the processes using the ring
	slotsOff       = 12288    // consumer slots
	slotSize       = 128      // one consumer slot
	dataOff        = 64 << 10 // the data area starts at 64 KiB
	layoutAlign    = 64 << 10 // capacities and the data offset are multiples of this
	formatVersion  = 1        // version of this layout
	maxUserData    = 1024     // bytes of opaque user data in the header
	maxNameLen     = 63       // bytes of a consumer name
	maxSlots       = (dataOff - slotsOff) / slotSize
	crcOff         = headerCopySize - 4
	userDataOff    = 72
	magic          = "RINGLOG\x00"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the durable description of a ring, stored twice.
type header struct {
	seq      uint64 // bumped by every header write; the newer valid copy wins
	capacity uint64 // C: bytes of the data area (growing layout: of the view)
	segUnits uint32 // growing layout: segment size in 64 KiB units; 0: bounded
	head     uint64 // committed bytes, all synced, at the time of the write
	tail     uint64 // oldest byte retained at the time of the write
	userData []byte // opaque bytes for the layer above (at most maxUserData)
}

// Header decoding errors (wrapped with the file and offset).
var (
	errBadMagic    = errors.New("not a ringlog ring (bad magic)")
	errBadChecksum = errors.New("header checksum mismatch")
	errBadField    = errors.New("header field out of range")
)

// encode renders h as one header copy.
func (h *header) encode() []byte {
	b := make([]byte, headerCopySize)
	copy(b[0:8], magic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], formatVersion)
	le.PutUint32(b[12:], headerCopySize)
	le.PutUint64(b[16:], h.seq)
	le.PutUint64(b[24:], h.capacity)
	le.PutUint64(b[32:], dataOff)
	le.PutUint32(b[40:], layoutAlign)
	le.PutUint32(b[44:], 0) // flags
	le.PutUint64(b[48:], h.head)
	le.PutUint64(b[56:], h.tail)
	le.PutUint32(b[64:], uint32(len(h.userData)))
	le.PutUint32(b[68:], h.segUnits)
	copy(b[userDataOff:], h.userData)
	le.PutUint32(b[crcOff:], crc32.Checksum(b[:crcOff], castagnoli))
	return b
}

// decodeHeader parses one header copy. It never panics and never
// allocates more than the copy's own size, whatever b holds.
func decodeHeader(b []byte) (*header, error) {
	if len(b) != headerCopySize {
		return nil, fmt.Errorf("%w: copy of %d bytes, want %d", errBadField, len(b), headerCopySize)
	}
	le := binary.LittleEndian
	if !bytes.Equal(b[0:8], []byte(magic)) {
		if allZero(b) {
			return nil, fmt.Errorf("%w: the copy is all zeroes", errBadMagic)
		}
		return nil, errBadMagic
	}
	if got, want := le.Uint32(b[crcOff:]), crc32.Checksum(b[:crcOff], castagnoli); got != want {
		return nil, fmt.Errorf("%w: stored %#08x, computed %#08x", errBadChecksum, got, want)
	}
	if v := le.Uint32(b[8:]); v != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", errBadField, v, formatVersion)
	}
	h := &header{
		seq:      le.Uint64(b[16:]),
		capacity: le.Uint64(b[24:]),
		head:     le.Uint64(b[48:]),
		tail:     le.Uint64(b[56:]),
	}
	switch {
	case le.Uint32(b[12:]) != headerCopySize:
		return nil, fmt.Errorf("%w: header size %d", errBadField, le.Uint32(b[12:]))
	case le.Uint64(b[32:]) != dataOff:
		return nil, fmt.Errorf("%w: data offset %d, want %d", errBadField, le.Uint64(b[32:]), dataOff)
	case le.Uint32(b[40:]) != layoutAlign:
		return nil, fmt.Errorf("%w: layout alignment %d, want %d", errBadField, le.Uint32(b[40:]), layoutAlign)
	case h.capacity == 0 || h.capacity%layoutAlign != 0 || h.capacity > maxCapacity:
		return nil, fmt.Errorf("%w: capacity %d (want a positive multiple of %d, at most %d)", errBadField, h.capacity, layoutAlign, uint64(maxCapacity))
	case h.head > maxPosition || h.tail > h.head || h.head-h.tail > h.capacity:
		return nil, fmt.Errorf("%w: tail %d and head %d for capacity %d", errBadField, h.tail, h.head, h.capacity)
	}
	h.segUnits = le.Uint32(b[68:])
	if S := uint64(h.segUnits) * layoutAlign; h.segUnits != 0 && (S > maxSegmentSize || h.capacity%S != 0 || h.capacity/S < 2) {
		return nil, fmt.Errorf("%w: segments of %d bytes for a capacity of %d", errBadField, S, h.capacity)
	}
	n := le.Uint32(b[64:])
	if n > maxUserData {
		return nil, fmt.Errorf("%w: %d bytes of user data, at most %d", errBadField, n, maxUserData)
	}
	h.userData = bytes.Clone(b[userDataOff : userDataOff+int(n)])
	return h, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Consumer slot layout, inside the slot region (offsets within a slot).
// Words that change while the ring is live are accessed atomically through
// the shared mapping.
const (
	slotState   = 0   // uint32: slotFree, slotClaimed, slotRegistered
	slotFlags   = 4   // uint32: flagLossy | flagDetached
	slotPos     = 8   // uint64: acknowledged position
	slotMaxLag  = 16  // uint64: lossy consumers are detached beyond this lag
	slotWaiting = 24  // uint32: the consumer is waiting for data
	slotPID     = 28  // uint32: process attached to the slot, 0 if none
	slotNameLen = 32  // uint8
	slotName    = 33  // up to maxNameLen bytes
	slotNameCRC = 96  // uint32: CRC-32C of name length and name
	slotOwner   = 104 // uint64: token of the attached handle, 0 if none
)

const (
	slotFree       = 0
	slotClaimed    = 1 // being registered; a crash here leaves it to be freed on open
	slotRegistered = 2

	flagLossy    = 1
	flagDetached = 2
)

// The live file (the ring's path + liveSuffix): words every process using
// the ring shares, never synced. Offsets within it. Tokens are
// pid<<32 | a random number: one per open handle.
const (
	liveSuffix   = ".live"
	liveFileSize = 4096

	liveHead    = 0  // uint64: committed position
	liveSynced  = 8  // uint64: durable position
	liveRegGen  = 16 // uint64: bumped when consumers or pins come or go
	liveDataSeq = 24 // uint32: bumped when the head or synced position moves while someone waits (a futex)
	liveWaiters = 28 // uint32: handles of other processes waiting for data
	liveWriter  = 40 // uint64: token of the producer, 0 if none
	liveRegLock = 48 // uint64: token of the handle registering a slot
	liveLimit   = 56 // uint64: how far the producer may write without looking again
	liveSegGen  = 64 // uint64: bumped when the producer moves segments (growing layout)
)

// validName reports whether name can be stored in a slot.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("empty consumer name")
	case len(name) > maxNameLen:
		return fmt.Errorf("consumer name of %d bytes, at most %d", len(name), maxNameLen)
	case !utf8.ValidString(name):
		return errors.New("consumer name is not valid UTF-8")
	}
	return nil
}

// slotNameSum is the checksum guarding a slot's registration.
func slotNameSum(slot []byte) uint32 {
	n := int(slot[slotNameLen])
	if n > maxNameLen {
		n = maxNameLen
	}
	return crc32.Checksum(slot[slotNameLen:slotName+n], castagnoli)
}
