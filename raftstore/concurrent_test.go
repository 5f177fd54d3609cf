package raftstore

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// TestConcurrentCalls: readers GetLog at random while a writer appends
// and a compactor deletes prefixes, with small segments so that the log
// grows and reuses them; then Close while all of them run. Every entry
// read is the one stored, and a reopen finds a consistent range. (Run it
// under -race: CI does.)
func TestConcurrentCalls(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.String(), func(t *testing.T) {
			dir := t.TempDir()
			o := &Options{Backend: b, SegmentSize: 64 << 10, Capacity: 1 << 20}
			s := openStore(t, dir, o)
			var stop atomic.Bool
			var next atomic.Uint64
			next.Store(1)
			var wg sync.WaitGroup
			wg.Go(func() { // the writer
				for !stop.Load() {
					n := next.Load()
					if err := s.StoreLogs(entries(n, n+15, 1)); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("StoreLogs: %v", err)
						}
						return
					}
					next.Store(n + 16)
				}
			})
			wg.Go(func() { // the compactor
				for !stop.Load() {
					first, err1 := s.FirstIndex()
					last, err2 := s.LastIndex()
					if err1 != nil || err2 != nil {
						return
					}
					if last > first+200 {
						if err := s.DeleteRange(first, last-100); err != nil {
							if !errors.Is(err, ErrClosed) {
								t.Errorf("DeleteRange: %v", err)
							}
							return
						}
					}
					runtime.Gosched()
				}
			})
			var reads atomic.Int64
			for r := range 3 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(r), 1))
					var l raft.Log
					for !stop.Load() {
						first, _ := s.FirstIndex()
						last, _ := s.LastIndex()
						if first == 0 {
							runtime.Gosched()
							continue
						}
						i := first + rng.Uint64N(last-first+1)
						err := s.GetLog(i, &l)
						switch {
						case errors.Is(err, raft.ErrLogNotFound) || errors.Is(err, ErrClosed):
							continue // deleted since, or closing
						case err != nil:
							t.Errorf("GetLog(%d): %v", i, err)
							return
						case !sameLog(&l, entry(i, 1)):
							t.Errorf("GetLog(%d) = %+v, not the entry stored", i, l)
							return
						}
						reads.Add(1)
					}
				})
			}
			for next.Load() < 2000 && !t.Failed() {
				runtime.Gosched()
			}
			if err := s.Close(); err != nil { // while the calls run
				t.Fatal(err)
			}
			stop.Store(true)
			wg.Wait()
			if reads.Load() == 0 {
				t.Fatal("no entry read")
			}
			s = openStore(t, dir, o)
			defer s.Close()
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			if last < 2000-16 || first == 0 {
				t.Fatalf("reopened with [%d, %d], want up to at least %d", first, last, 2000-16)
			}
			checkRange(t, s, first, last, func(uint64) uint64 { return 1 })
		})
	}
}
