package raftstore

import (
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// benchStore is a store under comparison.
type benchStore interface {
	raft.LogStore
	io.Closer
}

// benchStores opens each store compared: raftstore on every backend, and
// raft-wal with its defaults.
func benchStores(b *testing.B, run func(b *testing.B, s benchStore)) {
	for _, be := range backends(b) {
		b.Run("v=ringlog-"+be.String(), func(b *testing.B) {
			s, err := Open(b.TempDir(), &Options{Backend: be, Capacity: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			run(b, s)
			m := s.Stats().Log
			b.ReportMetric(float64(m.SyncTime.Nanoseconds())/float64(max(m.Syncs, 1)), "ns/sync")
		})
	}
	b.Run("v=raft-wal", func(b *testing.B) {
		w, err := raftwal.Open(b.TempDir(), raftwal.WithLogger(hclog.NewNullLogger()))
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		run(b, w)
	})
}

// benchEntries are n entries of 256 bytes of Data from index 1 on.
func benchEntries(n int) []*raft.Log {
	ls := make([]*raft.Log, n)
	for i := range ls {
		ls[i] = &raft.Log{Index: uint64(i) + 1, Term: 1, Data: make([]byte, 256)}
	}
	return ls
}

// StoreLogs of batches of 64 entries of 256 bytes, each durable: what
// raft's leader does under load. ns/op is per batch.
func BenchmarkStoreLogs(b *testing.B) {
	benchStores(b, func(b *testing.B, s benchStore) {
		batch := benchEntries(64)
		next := uint64(1)
		b.SetBytes(64 * 256)
		for b.Loop() {
			for k, l := range batch {
				l.Index = next + uint64(k)
			}
			if err := s.StoreLogs(batch); err != nil {
				b.Fatal(err)
			}
			next += 64
		}
	})
}

// GetLog of random entries of a store of 100,000.
func BenchmarkGetLog(b *testing.B) {
	benchStores(b, func(b *testing.B, s benchStore) {
		const n = 100_000
		ls := benchEntries(n)
		for i := 0; i < n; i += 4096 {
			if err := s.StoreLogs(ls[i:min(i+4096, n)]); err != nil {
				b.Fatal(err)
			}
		}
		var l raft.Log
		x := uint64(1)
		b.SetBytes(256)
		for b.Loop() {
			x = x*6364136223846793005 + 1442695040888963407
			if err := s.GetLog(x%n+1, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
}
