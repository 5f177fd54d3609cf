package main

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"
)

func naiveXOR(b []byte) uint64 {
	var x uint64
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		copy(w[:], b[i:])
		x ^= binary.LittleEndian.Uint64(w[:])
	}
	return x
}

func TestXORWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096+13)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for n := 0; n <= len(buf); n += 1 + n/7 {
		for _, start := range []int{0, 1, 7} {
			if start > n {
				continue
			}
			b := buf[start:n]
			if got, want := xorWords(b), naiveXOR(b); got != want {
				t.Fatalf("xorWords(buf[%d:%d]) = %#x, want %#x", start, n, got, want)
			}
		}
	}
}

func TestPatternXOR(t *testing.T) {
	for _, size := range []int64{0, 8, 64, 4096, 1 << 20} {
		b := make([]byte, size)
		fillPattern(b, 0)
		if got, want := xorWords(b), patternXOR(size); got != want {
			t.Errorf("size %d: XOR of the content %#x, patternXOR %#x", size, got, want)
		}
	}
	// The expected value of the sizes the workloads read is not the XOR of
	// an all-zero file.
	for _, s := range []Size{SizeTiny, SizeQuick, SizeFull} {
		if patternXOR(readFileSize(s)) == 0 {
			t.Errorf("size %v: the file's XOR is 0, so a view of zeroes would pass", s)
		}
	}
}

func TestPatternFile(t *testing.T) {
	dir := t.TempDir()
	const size = 3*ioChunk + 4096
	if err := createPatternFile(dir, size); err != nil {
		t.Fatal(err)
	}
	if err := createPatternFile(dir, size); err != nil { // idempotent
		t.Fatal(err)
	}
	b, err := os.ReadFile(patternPath(dir, size))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != size {
		t.Fatalf("%d bytes, want %d", len(b), size)
	}
	for _, off := range []int64{0, 8, ioChunk - 8, ioChunk, size - 8} {
		if got := binary.LittleEndian.Uint64(b[off:]); got != patternWord(off) {
			t.Errorf("word at %d = %#x, want %#x", off, got, patternWord(off))
		}
	}
	f, err := openPatternFile(dir, size)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := openPatternFile(dir, size+8); err == nil {
		t.Error("opened a data file that was never created")
	}
}
