package wal

import (
	"sync/atomic"
	"time"
)

// stats are the log's counters; Metrics takes a snapshot.
type stats struct {
	writes        atomic.Uint64
	syncs         atomic.Uint64
	syncedRecords atomic.Uint64
	unsynced      atomic.Uint64 // records written since the last sync
	syncNanos     atomic.Uint64
	syncHist      [latencyBuckets]atomic.Uint64
}

// latencyBuckets: bucket i counts syncs that took less than 2^i µs (the
// last one everything slower).
const latencyBuckets = 24

func (s *stats) wrote(records int) {
	s.writes.Add(1)
	s.unsynced.Add(uint64(records))
}

func (s *stats) synced(d time.Duration) {
	s.syncs.Add(1)
	s.syncedRecords.Add(s.unsynced.Swap(0))
	s.syncNanos.Add(uint64(d.Nanoseconds()))
	us := uint64(d / time.Microsecond)
	i := 0
	for i < latencyBuckets-1 && us >= 1<<i {
		i++
	}
	s.syncHist[i].Add(1)
}

// Metrics is a snapshot of a log's counters. It has no dependencies: export
// it to whatever metrics system the application uses.
type Metrics struct {
	Appends       uint64 // records appended (batch members each count)
	Bytes         uint64 // bytes appended, framing included
	Writes        uint64 // pwrites of staged records
	Syncs         uint64 // fdatasyncs
	SyncedRecords uint64 // records those syncs made durable
	// RecordsPerSync is SyncedRecords / Syncs: how well group commit
	// shares one fdatasync among writers.
	RecordsPerSync float64
	// SyncTime is the total time spent in fdatasync.
	SyncTime time.Duration
	// SyncLatency counts syncs by duration: SyncLatency[i].Count syncs
	// took less than SyncLatency[i].Below (the last bucket: at least the
	// one before). Empty buckets are left out.
	SyncLatency []LatencyBucket
	// Consumers are the registered consumers with their lag (bytes of the
	// log after each one's acknowledged position); MaxConsumerLag is the
	// largest.
	Consumers      []ConsumerInfo
	MaxConsumerLag uint64
}

// LatencyBucket is one bucket of a latency histogram.
type LatencyBucket struct {
	Below time.Duration // 0 for the overflow bucket
	Count uint64        // syncs in this bucket only (not cumulative)
}

// Metrics returns a snapshot of the log's counters.
func (l *Log) Metrics() Metrics {
	s := &l.stats
	l.mu.Lock()
	appends, bytes := l.mu.appends, l.mu.bytes
	l.mu.Unlock()
	m := Metrics{
		Appends:       appends,
		Bytes:         bytes,
		Writes:        s.writes.Load(),
		Syncs:         s.syncs.Load(),
		SyncedRecords: s.syncedRecords.Load(),
		SyncTime:      time.Duration(s.syncNanos.Load()),
	}
	if m.Syncs > 0 {
		m.RecordsPerSync = float64(m.SyncedRecords) / float64(m.Syncs)
	}
	for i := range s.syncHist {
		if n := s.syncHist[i].Load(); n > 0 {
			b := LatencyBucket{Count: n}
			if i < latencyBuckets-1 {
				b.Below = time.Duration(1<<i) * time.Microsecond
			}
			m.SyncLatency = append(m.SyncLatency, b)
		}
	}
	m.Consumers = l.Consumers()
	for _, c := range m.Consumers {
		m.MaxConsumerLag = max(m.MaxConsumerLag, c.Lag)
	}
	return m
}
