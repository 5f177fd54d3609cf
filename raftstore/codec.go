package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Kinds of record payload (byte 0). Frozen: see the package doc.
const (
	kindEntry  = 1 // a raft log entry
	kindDelete = 2 // DeleteRange(min, max)
)

// Flags of an entry (byte 1).
const (
	flagAppendedAt = 1 << 0 // AppendedAt is present (it is not the zero time)
	knownFlags     = flagAppendedAt
)

// entryFixed is the size of an entry's fixed part: kind, flags, type.
const entryFixed = 3

// errFormat says a record's payload is not a valid encoding; the caller
// wraps it with the file and position.
var errFormat = errors.New("malformed record")

// appendEntry appends the encoding of l to b:
//
//	0  1  kind 1
//	1  1  flags: bit 0 AppendedAt present
//	2  1  LogType
//	   uvarint Index, uvarint Term,
//	   if bit 0: varint Unix seconds, uvarint nanoseconds (< 1e9),
//	   uvarint len(Extensions), Extensions, Data (the rest)
func appendEntry(b []byte, l *raft.Log) []byte {
	var flags byte
	if !l.AppendedAt.IsZero() {
		flags |= flagAppendedAt
	}
	b = append(b, kindEntry, flags, byte(l.Type))
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	if flags&flagAppendedAt != 0 {
		b = binary.AppendVarint(b, l.AppendedAt.Unix())
		b = binary.AppendUvarint(b, uint64(l.AppendedAt.Nanosecond()))
	}
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return append(b, l.Data...)
}

// entrySize bounds the size of l's encoding.
func entrySize(l *raft.Log) int {
	return entryFixed + 4*binary.MaxVarintLen64 + 1 + len(l.Extensions) + len(l.Data)
}

// appendDelete appends the encoding of DeleteRange(min, max):
//
//	0  1  kind 2
//	   uvarint min, uvarint max
func appendDelete(b []byte, min, max uint64) []byte {
	b = append(b, kindDelete)
	b = binary.AppendUvarint(b, min)
	return binary.AppendUvarint(b, max)
}

// peekRecord returns the kind of the record payload p and its index (an
// entry) or its range [index, max] (a delete record), checking no more of
// an entry than that.
func peekRecord(p []byte) (kind byte, index, max uint64, err error) {
	if len(p) == 0 {
		return 0, 0, 0, fmt.Errorf("empty payload: %w", errFormat)
	}
	switch p[0] {
	case kindEntry:
		if len(p) < entryFixed {
			return 0, 0, 0, fmt.Errorf("entry of %d bytes: %w", len(p), errFormat)
		}
		if p[1]&^knownFlags != 0 {
			return 0, 0, 0, fmt.Errorf("entry with unknown flags %#x: %w", p[1], errFormat)
		}
		i, n := binary.Uvarint(p[entryFixed:])
		if n <= 0 {
			return 0, 0, 0, fmt.Errorf("entry index: %w", errFormat)
		}
		if i == 0 {
			return 0, 0, 0, fmt.Errorf("entry of index 0: %w", errFormat)
		}
		return kindEntry, i, 0, nil
	case kindDelete:
		lo, n := binary.Uvarint(p[1:])
		if n <= 0 {
			return 0, 0, 0, fmt.Errorf("delete record min: %w", errFormat)
		}
		hi, m := binary.Uvarint(p[1+n:])
		if m <= 0 || 1+n+m != len(p) {
			return 0, 0, 0, fmt.Errorf("delete record max: %w", errFormat)
		}
		if lo > hi {
			return 0, 0, 0, fmt.Errorf("delete record of [%d, %d]: %w", lo, hi, errFormat)
		}
		return kindDelete, lo, hi, nil
	}
	return 0, 0, 0, fmt.Errorf("unknown kind %d: %w", p[0], errFormat)
}

// decodeEntry decodes the entry record p into l, every field set. Data and
// Extensions are copied into one new allocation: l owns them.
func decodeEntry(p []byte, l *raft.Log) error {
	if len(p) < entryFixed || p[0] != kindEntry {
		return fmt.Errorf("not an entry: %w", errFormat)
	}
	flags := p[1]
	if flags&^knownFlags != 0 {
		return fmt.Errorf("entry with unknown flags %#x: %w", flags, errFormat)
	}
	typ := raft.LogType(p[2])
	off := entryFixed
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(p[off:])
		if n <= 0 {
			return 0, fmt.Errorf("entry %s: %w", what, errFormat)
		}
		off += n
		return v, nil
	}
	index, err := uv("index")
	if err != nil {
		return err
	}
	term, err := uv("term")
	if err != nil {
		return err
	}
	var at time.Time
	if flags&flagAppendedAt != 0 {
		sec, n := binary.Varint(p[off:])
		if n <= 0 {
			return fmt.Errorf("entry AppendedAt seconds: %w", errFormat)
		}
		off += n
		nsec, err := uv("AppendedAt nanoseconds")
		if err != nil {
			return err
		}
		if nsec >= 1e9 {
			return fmt.Errorf("entry AppendedAt of %d nanoseconds: %w", nsec, errFormat)
		}
		at = time.Unix(sec, int64(nsec))
	}
	extLen, err := uv("extensions length")
	if err != nil {
		return err
	}
	if extLen > uint64(len(p)-off) {
		return fmt.Errorf("entry extensions of %d bytes, %d left: %w", extLen, len(p)-off, errFormat)
	}
	if index == 0 {
		return fmt.Errorf("entry of index 0: %w", errFormat)
	}
	rest := p[off:]
	var ext, data []byte
	if len(rest) > 0 {
		buf := make([]byte, len(rest))
		copy(buf, rest)
		e := int(extLen)
		if e > 0 {
			ext = buf[:e:e]
		}
		if e < len(buf) {
			data = buf[e:]
		}
	}
	*l = raft.Log{Index: index, Term: term, Type: typ, Data: data, Extensions: ext, AppendedAt: at}
	return nil
}
