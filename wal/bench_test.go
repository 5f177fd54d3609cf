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
