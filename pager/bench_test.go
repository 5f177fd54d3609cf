package pager

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// BenchmarkSplice measures one Map call that moves a run of pages to
// another place in a live view: per call (ns/op) and per page (ns/page).
// On Remap and Mmap this is a system call that changes page tables, not a
// copy; on Copy it is a pread of the run.
func BenchmarkSplice(b *testing.B) {
	for _, be := range allBackends {
		for _, pages := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("backend=%v/pages=%d", be, pages), func(b *testing.B) {
				if err := Available(be); err != nil {
					b.Skipf("%v unavailable: %v", be, err)
				}
				const slots = 16
				f := makeFile(b, slots*pages)
				v := openView(b, f, slots*pages, be)
				mustMap(b, v, 0, 0, slots*pages)
				b.SetBytes(int64(pages * PageSize))
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if err := v.Map((i*7%slots)*pages*PageSize, int64((i*5%slots)*pages*PageSize), pages*PageSize); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(pages), "ns/page")
			})
		}
	}
}

// BenchmarkRead reads a 64 MiB warm file once per op, XOR-folding every
// word: through a live view of each backend (pages already faulted in),
// and with 1 MiB preads into a reused buffer.
func BenchmarkRead(b *testing.B) {
	const pagesPerMiB = (1 << 20) / 4096
	pages := (64 << 20) / PageSize
	f := makeFile(b, pages)
	for _, be := range allBackends {
		b.Run("backend="+be.String(), func(b *testing.B) {
			if err := Available(be); err != nil {
				b.Skipf("%v unavailable: %v", be, err)
			}
			v := openView(b, f, pages, be)
			mustMap(b, v, 0, 0, pages)
			mem, _ := v.Bytes(0, pages*PageSize)
			sinkWord = xorWords(mem) // fault in
			b.SetBytes(int64(len(mem)))
			b.ResetTimer()
			for b.Loop() {
				sinkWord ^= xorWords(mem)
			}
		})
	}
	b.Run("pread", func(b *testing.B) {
		buf := make([]byte, pagesPerMiB*4096)
		b.SetBytes(int64(pages * PageSize))
		for b.Loop() {
			for off := int64(0); off < int64(pages*PageSize); off += int64(len(buf)) {
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
				sinkWord ^= xorWords(buf)
			}
		}
	})
}

var sinkWord uint64

// xorWords folds b's little-endian words with four independent
// accumulators (len(b) a multiple of 32).
func xorWords(b []byte) uint64 {
	var a0, a1, a2, a3 uint64
	for len(b) >= 32 {
		a0 ^= binary.LittleEndian.Uint64(b[0:])
		a1 ^= binary.LittleEndian.Uint64(b[8:])
		a2 ^= binary.LittleEndian.Uint64(b[16:])
		a3 ^= binary.LittleEndian.Uint64(b[24:])
		b = b[32:]
	}
	return a0 ^ a1 ^ a2 ^ a3
}
