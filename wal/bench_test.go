package wal

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
)

// BenchmarkSyncWriters: w goroutines append 1 KiB records, each waiting
// for durability. Reports records per fdatasync and latency percentiles.
func BenchmarkSyncWriters(b *testing.B) {
	for _, w := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			l, _ := createLog(b, pager.Auto, Options{Capacity: 256 << 20, Sync: SyncAlways})
			defer l.Close()
			rec := make([]byte, 1024)
			var mu sync.Mutex
			var lat []time.Duration
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/w + 1
			for i := 0; i < w; i++ {
				wg.Go(func() {
					mine := make([]time.Duration, 0, per)
					for k := 0; k < per; k++ {
						t0 := time.Now()
						if _, err := l.Append(context.Background(), rec); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			m := l.Metrics()
			b.ReportMetric(m.RecordsPerSync, "records/sync")
			b.ReportMetric(float64(m.SyncTime.Microseconds())/float64(m.Syncs), "µs/sync")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppend: one goroutine appends records of a size, no syncs; the
// records are handed to the operating system before the timer stops.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{128, 1024, 64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			capacity := int64(recordSize(size)+8) * int64(b.N+100)
			capacity = (capacity + 1<<20) &^ (64<<10 - 1)
			l, _ := createLog(b, pager.Auto, Options{Capacity: capacity, Sync: SyncNever})
			defer l.Close()
			rec := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Append(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := l.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/float64(l.Metrics().Writes), "records/write")
		})
	}
}

// BenchmarkReplay reads 64 MiB of 1 KiB records through a live, warm
// log, every checksum verified.
func BenchmarkReplay(b *testing.B) {
	l, _ := createLog(b, pager.Auto, Options{Capacity: 80 << 20, Sync: SyncNever})
	defer l.Close()
	rec := make([]byte, 1024)
	ctx := context.Background()
	const n = 64 << 10
	for i := 0; i < n; i++ {
		l.Append(ctx, rec)
	}
	l.Flush(ctx)
	read := func() int {
		rd, err := l.NewReader(l.Checkpoint(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer rd.Close()
		c := 0
		for range rd.All() {
			c++
		}
		if rd.Err() != nil || c != n {
			b.Fatalf("read %d records: %v", c, rd.Err())
		}
		return c
	}
	read()
	b.SetBytes(n * 1024)
	b.ResetTimer()
	for b.Loop() {
		read()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
}

// BenchmarkCompressed: append and read back 1 KiB compressible records
// with each codec (the compressed paths beside the plain one).
func BenchmarkCompressed(b *testing.B) {
	for _, codec := range []Compression{NoCompression, S2, Zstd} {
		rec := compressible(1, 1024)
		b.Run("append/"+codec.String(), func(b *testing.B) {
			capacity := (int64(recordSize(len(rec))+8)*int64(b.N+100) + 1<<20) &^ (64<<10 - 1)
			l, _ := createLog(b, pager.Auto, Options{Capacity: capacity, Sync: SyncNever, Compression: codec})
			defer l.Close()
			ctx := context.Background()
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Append(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := l.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		})
		b.Run("read/"+codec.String(), func(b *testing.B) {
			const n = 10000
			l, _ := createLog(b, pager.Auto, Options{Capacity: 16 << 20, Sync: SyncNever, Compression: codec})
			defer l.Close()
			ctx := context.Background()
			for range n {
				if _, err := l.Append(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := l.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				rd, err := l.NewReader(l.Checkpoint(), nil)
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range rd.All() {
					if len(d) != len(rec) {
						b.Fatal("wrong length")
					}
					if done++; done == b.N {
						break
					}
				}
				rd.Close()
			}
		})
	}
}
