package logkv

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// benchKey is a 16-byte key of i, in an order that looks random.
func benchKey(dst []byte, i int) []byte {
	binary.BigEndian.PutUint64(dst[:8], uint64(i)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint64(dst[8:16], uint64(i))
	return dst[:16]
}

// BenchmarkPut: 16-byte keys, 100-byte values, not synced.
func BenchmarkPut(b *testing.B) {
	db, err := Open(b.TempDir(), &Options{GCDisabled: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	k := make([]byte, 16)
	v := make([]byte, 100)
	b.SetBytes(116)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := db.Put(benchKey(k, i), v, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet: random Gets over 1M keys.
func BenchmarkGet(b *testing.B) {
	db, err := Open(b.TempDir(), &Options{GCDisabled: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n = 1 << 20
	k := make([]byte, 16)
	v := make([]byte, 100)
	for i := range n {
		if err := db.Put(benchKey(k, i), v, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = db.Get(benchKey(k, rng.IntN(n)), buf); err != nil || len(buf) != 100 {
			b.Fatal(err)
		}
	}
}
