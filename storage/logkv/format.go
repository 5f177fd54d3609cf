package logkv

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/ringlog/ringlog/storage"
)

// The store's records in the log. Every write (a Put, a Delete, a Batch)
// is a run of entries appended with wal.AppendPacked: writes staged
// together share one wal record (one header, padding and checksum), and a
// write's entries are always in one record, so a batch is atomic across
// crashes with no extra machinery: the wal's recovery keeps a record whole
// or drops it. Frozen once the format is declared stable.
//
//	record payload: entries, each starting at a multiple of 4 bytes
//	(zeroes pad an entry up to the next); the record's payload starts at a
//	multiple of 8 in the log, so every entry's position is a multiple of 4
//
//	entry:
//	0   4  CRC-32C (Castagnoli) of the entry's bytes after these 4
//	4   1  kind: 1 put, 2 delete (storage.KindPut, storage.KindDelete)
//	5   .  key length, value length (uvarints, shortest form; a delete's
//	       value length is 0)
//	.   .  key, value
//
// The index keeps, per key, the position of its entry in the log and the
// entry's length. A Get reads the entry where the log is mapped and checks
// the entry's own checksum, so it never hashes the rest of its record;
// recovery checks the record's checksum, which covers every entry.
const (
	entryAlign     = 4 // entries start at multiples of 4 in the log
	entryFixed     = 5 // CRC and kind
	maxEntryHeader = entryFixed + 2*binary.MaxVarintLen32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entrySize is the size of an entry of key and value.
func entrySize(key, value []byte) int {
	return entryFixed + uvarintLen(uint64(len(key))) + uvarintLen(uint64(len(value))) + len(key) + len(value)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendEntry appends an entry to dst.
func appendEntry(dst []byte, kind storage.Kind, key, value []byte) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(kind))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	dst = append(dst, key...)
	dst = append(dst, value...)
	binary.LittleEndian.PutUint32(dst[at:], crc32.Checksum(dst[at+4:], castagnoli))
	return padEntry(dst)
}

// padEntry pads an entry just appended with zeroes up to entryAlign.
func padEntry(dst []byte) []byte {
	for len(dst)%entryAlign != 0 {
		dst = append(dst, 0)
	}
	return dst
}

var (
	errEntryShort    = errors.New("entry cut short")
	errEntryKind     = errors.New("unknown entry kind")
	errEntryChecksum = errors.New("entry checksum mismatch")
	errEntryPadding  = errors.New("entry padding not zero")
)

// entry is a parsed entry; key and value alias the bytes parsed.
type entry struct {
	kind  storage.Kind
	key   []byte
	value []byte
	size  int    // bytes the entry takes
	pos   uint64 // where it is in the log, if known
}

// parseEntry parses the entry at the start of b; verify checks its
// checksum.
func parseEntry(b []byte, verify bool) (entry, error) {
	if len(b) < entryFixed+2 {
		return entry{}, errEntryShort
	}
	e := entry{kind: storage.Kind(b[4])}
	if e.kind != storage.KindPut && e.kind != storage.KindDelete {
		return entry{}, errEntryKind
	}
	kl, n1 := binary.Uvarint(b[entryFixed:])
	if n1 <= 0 || kl > storage.MaxKeySize || n1 != uvarintLen(kl) {
		return entry{}, errEntryShort
	}
	vl, n2 := binary.Uvarint(b[entryFixed+n1:])
	if n2 <= 0 || vl > storage.MaxValueSize || n2 != uvarintLen(vl) || (e.kind == storage.KindDelete && vl != 0) {
		return entry{}, errEntryShort
	}
	h := entryFixed + n1 + n2
	if uint64(len(b)-h) < kl+vl {
		return entry{}, errEntryShort
	}
	e.size = h + int(kl) + int(vl)
	if verify && binary.LittleEndian.Uint32(b) != crc32.Checksum(b[4:e.size], castagnoli) {
		return entry{}, errEntryChecksum
	}
	e.key = b[h : h+int(kl) : h+int(kl)]
	e.value = b[h+int(kl) : e.size : e.size]
	return e, nil
}

// entries calls fn with each entry of a record payload and its offset in
// the payload.
func entries(payload []byte, verify bool, fn func(off int, e entry) error) error {
	if len(payload) == 0 {
		return errEntryShort
	}
	for off := 0; off < len(payload); {
		e, err := parseEntry(payload[off:], verify)
		if err != nil {
			return err
		}
		end := off + e.size
		next := (end + entryAlign - 1) &^ (entryAlign - 1)
		if next > len(payload) {
			return errEntryShort
		}
		for _, c := range payload[end:next] {
			if c != 0 {
				return errEntryPadding
			}
		}
		if err := fn(off, e); err != nil {
			return err
		}
		off = next
	}
	return nil
}
