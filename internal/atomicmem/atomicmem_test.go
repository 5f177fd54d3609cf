package atomicmem

import (
	"encoding/binary"
	"testing"
)

func TestWords(t *testing.T) {
	b := make([]byte, 64)
	Uint64(b, 8).Store(0x0102030405060708)
	if got := binary.LittleEndian.Uint64(b[8:]); got != 0x0102030405060708 && binary.BigEndian.Uint64(b[8:]) != 0x0102030405060708 {
		t.Fatalf("stored word reads %#x", got)
	}
	if !Uint32(b, 4).CompareAndSwap(0, 7) || Uint32(b, 4).Load() != 7 {
		t.Fatal("CAS on a 4-byte word failed")
	}
	for _, c := range []struct{ off, size int }{{3, 8}, {60, 8}, {-8, 8}, {2, 4}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("word of %d bytes at %d did not panic", c.size, c.off)
				}
			}()
			if c.size == 8 {
				Uint64(b, c.off)
			} else {
				Uint32(b, c.off)
			}
		}()
	}
}
