package ring

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzSegHeader feeds arbitrary bytes to the segment header decoder (the
// growing layout), with seal the header's checksum made to match its
// bytes so that its fields get past it: it must never panic, what it
// accepts must be a base inside the ring's positions on a segment
// boundary, for the segment asked about, and the header of what it
// accepts must decode to the same base.
func FuzzSegHeader(f *testing.F) {
	f.Add(encodeSegHeader(3, 3*64<<10), uint32(3), uint16(1), false)
	f.Add(encodeSegHeader(0, 0), uint32(0), uint16(16), false)
	f.Add(make([]byte, segHeaderLen), uint32(0), uint16(1), true)
	f.Add([]byte("RLSEGMT\x00\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x00\x00"), uint32(7), uint16(2), true)
	f.Fuzz(func(t *testing.T, b []byte, index uint32, units uint16, seal bool) {
		if units == 0 {
			return
		}
		if seal && len(b) >= segHeaderLen {
			binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
		}
		size := uint64(units) * layoutAlign
		base, ok := decodeSegHeader(b, int(index), size)
		if !ok {
			return
		}
		if base%size != 0 || base > maxPosition || binary.LittleEndian.Uint32(b[12:]) != index {
			t.Fatalf("accepted base %d for segment %d of %d bytes", base, index, size)
		}
		if again, ok := decodeSegHeader(encodeSegHeader(int(index), base), int(index), size); !ok || again != base {
			t.Fatalf("round trip of base %d: %d, %v", base, again, ok)
		}
	})
}
