package logkv

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
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

// BenchmarkOverwriteGC: the kv-overwrite-gc workload at several GCRatio
// settings: 1M keys of 16+100 bytes, then every key overwritten three
// times in random order with the cleaner running. It reports the
// overwrites per second, the space amplification at the end (the file's
// disk blocks over the live key and value bytes) and the bytes the cleaner
// copied. Run it with -benchtime 1x (each iteration is the whole
// workload) on a real disk:
//
//	go test -run XXX -bench OverwriteGC -benchtime 1x ./storage/logkv
func BenchmarkOverwriteGC(b *testing.B) {
	for _, ratio := range []float64{1.25, 1.5, 2} {
		b.Run(fmt.Sprintf("ratio=%v", ratio), func(b *testing.B) {
			const n = 1 << 20
			for b.Loop() {
				dir := b.TempDir()
				db, err := Open(dir, &Options{GCRatio: ratio})
				if err != nil {
					b.Fatal(err)
				}
				k := make([]byte, 16)
				v := make([]byte, 100)
				for i := range n {
					if err := db.Put(benchKey(k, i), v, nil); err != nil {
						b.Fatal(err)
					}
				}
				rng := rand.New(rand.NewPCG(1, 1))
				t0 := time.Now()
				for pass := range 3 {
					for _, i := range rng.Perm(n) {
						v[0] = byte(pass)
						if err := db.Put(benchKey(k, i), v, nil); err != nil {
							b.Fatal(err)
						}
					}
				}
				el := time.Since(t0)
				if err := db.Sync(); err != nil {
					b.Fatal(err)
				}
				st := db.Stats()
				b.ReportMetric(3*n/el.Seconds(), "puts/s")
				b.ReportMetric(float64(st.DiskBytes)/float64(n*116), "space_amp")
				b.ReportMetric(float64(st.GCBytesCopied)/(1<<20), "copied_MB")
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
