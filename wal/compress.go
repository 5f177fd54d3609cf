package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a record's payload is stored.
//
// A compressed record's payload is its uncompressed length (4 bytes,
// little-endian) and then an S2 block or a zstd frame; the codec is in
// bits 3-4 of the record's flags (1 S2, 2 zstd). The record's CRC-32C
// covers the stored (compressed) bytes, so damage is caught before any
// decoding. A record that would not shrink is stored as it is.
//
// Reading a compressed record is not zero-copy: it is decoded into a
// buffer its reader owns (see Reader), never larger than the log's
// maximum record size whatever the stored length claims.
type Compression uint8

// Codecs.
const (
	NoCompression Compression = 0
	S2            Compression = 1 // fast, moderate ratio (github.com/klauspost/compress/s2)
	Zstd          Compression = 2 // slower, better ratio (zstd, default level)
)

// String returns the codec's name ("none", "s2", "zstd").
func (c Compression) String() string {
	switch c {
	case NoCompression:
		return "none"
	case S2:
		return "s2"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

const (
	codecShift = 3
	codecMask  = 3 << codecShift
	// compressMin: shorter payloads are stored as they are; the 4-byte
	// length and the codec's framing would eat what compression saves.
	compressMin = 64
	lenPrefix   = 4
)

func codecOf(flags uint8) Compression { return Compression(flags & codecMask >> codecShift) }

// errPayload says a compressed payload with a valid checksum does not
// decode: written by something other than this package.
var errPayload = errors.New("compressed payload does not decode")

// zstdEncoder is shared by every log of the process: EncodeAll may be
// called concurrently.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true),
		zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
})

// compressInto appends the stored form of p under c to dst, or returns
// false if it would not be smaller than p.
func compressInto(dst []byte, c Compression, p []byte) ([]byte, bool, error) {
	if c == NoCompression || len(p) < compressMin {
		return dst, false, nil
	}
	at := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
	switch c {
	case S2:
		n := s2.MaxEncodedLen(len(p))
		if n < 0 {
			return dst[:at], false, nil
		}
		dst = growTo(dst, len(dst)+n)
		enc := s2.Encode(dst[at+lenPrefix:], p)
		dst = dst[:at+lenPrefix+len(enc)]
	case Zstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst[:at], false, err
		}
		dst = enc.EncodeAll(p, dst)
	default:
		return dst[:at], false, fmt.Errorf("wal: unknown compression %v: %w", c, ErrBadOptions)
	}
	if len(dst)-at >= len(p) {
		return dst[:at], false, nil
	}
	return dst, true, nil
}

// decoder decodes the compressed records of one log, bounded by its
// maximum record size.
type decoder struct {
	maxRec int
	mu     sync.Mutex
	z      *zstd.Decoder // made on first use; DecodeAll may be called concurrently
	closed bool
}

func (d *decoder) zstd() (*zstd.Decoder, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.z == nil && !d.closed {
		z, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(max(d.maxRec, 1))),
			zstd.WithDecoderLowmem(true), zstd.WithDecoderConcurrency(0))
		if err != nil {
			return nil, err
		}
		d.z = z
	}
	if d.z == nil {
		return nil, ErrClosed
	}
	return d.z, nil
}

// close releases the zstd decoder's memory; the log is closed.
func (d *decoder) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.z != nil {
		d.z.Close()
		d.z = nil
	}
	d.closed = true
}

// decode decodes the stored payload p of codec c into dst (grown to fit,
// at most the maximum record size) and returns it.
func (d *decoder) decode(dst []byte, c Compression, p []byte) ([]byte, error) {
	if len(p) < lenPrefix {
		return nil, fmt.Errorf("%w: %d bytes", errPayload, len(p))
	}
	n := int(binary.LittleEndian.Uint32(p))
	if n > d.maxRec {
		return nil, fmt.Errorf("%w: claims %d bytes decoded, the maximum record is %d", errPayload, n, d.maxRec)
	}
	block := p[lenPrefix:]
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	switch c {
	case S2:
		dl, err := s2.DecodedLen(block)
		if err != nil || dl != n {
			return nil, fmt.Errorf("%w: s2 block of %d bytes decodes to %d bytes, %d expected (%v)", errPayload, len(block), dl, n, err)
		}
		out, err := s2.Decode(dst, block)
		if err != nil || len(out) != n {
			return nil, fmt.Errorf("%w: s2: %v", errPayload, err)
		}
		return out, nil
	case Zstd:
		dec, err := d.zstd()
		if err != nil {
			return nil, err
		}
		out, err := dec.DecodeAll(block, dst[:0])
		if err != nil || len(out) != n {
			return nil, fmt.Errorf("%w: zstd frame of %d bytes decodes to %d bytes, %d expected (%v)", errPayload, len(block), len(out), n, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown codec %d", errPayload, c)
}
