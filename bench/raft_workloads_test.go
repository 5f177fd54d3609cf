package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// Each raft workload on each system, at the test size, in this process:
// the work it reports, a latency per batch for raft-append, the timer
// stopped, the run's directory removed.
func TestRaftWorkloadsRun(t *testing.T) {
	dir := diskTempDir(t)
	for _, w := range []*workload{raftAppend, raftGet} {
		for _, s := range w.systems {
			t.Run(w.name+"/"+s, func(t *testing.T) {
				if err := lookupSystem(s).available(); err != nil {
					t.Skip(err)
				}
				if w.setup != nil {
					if err := w.setup(&env{dir: dir, size: SizeTiny, systems: []string{s}}); err != nil {
						t.Fatal(err)
					}
				}
				r := &run{env: env{dir: dir, size: SizeTiny}, system: s}
				wk, err := w.run(r)
				if err != nil {
					t.Fatal(err)
				}
				want := work{n: int64(raftAppendBatches(SizeTiny) * raftBatch)}
				if w == raftGet {
					want.n = int64(raftGets(SizeTiny))
				}
				want.bytes = want.n * raftDataSize
				if wk != want {
					t.Errorf("work %+v, want %+v", wk, want)
				}
				if r.timing || r.elapsed <= 0 {
					t.Errorf("timer running %v, elapsed %v", r.timing, r.elapsed)
				}
				if w == raftAppend && len(r.lat) != raftAppendBatches(SizeTiny) {
					t.Errorf("%d latencies, want one per batch", len(r.lat))
				}
			})
		}
	}
	// Only the prepared stores are left.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "raft-store-") || strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("data directory holds %s", e.Name())
		}
	}
}

// mangled is a store whose GetLog hands out entry 78 changed by bad.
type mangled struct {
	raftLogStore
	bad func(l *raft.Log)
}

func (m mangled) GetLog(i uint64, l *raft.Log) error {
	err := m.raftLogStore.GetLog(i, l)
	if i == 78 {
		m.bad(l)
	}
	return err
}

// The read check fails on an entry of another index, term or content,
// and passes a good store.
func TestRaftVerify(t *testing.T) {
	const n = 300
	st, err := openRaftStore("raft-wal", filepath.Join(t.TempDir(), "store"), SizeTiny)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := raftStoreN(st, n, 64); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		bad  func(l *raft.Log)
	}{
		{"index", func(l *raft.Log) { l.Index++ }},
		{"term", func(l *raft.Log) { l.Term = 2 }},
		{"data", func(l *raft.Log) { l.Data[3] = 0; l.Data[raftDataSize-1] ^= 1 }},
		{"short", func(l *raft.Log) { l.Data = l.Data[:100] }},
		{"middle of data", func(l *raft.Log) { l.Data[raftDataSize/2] ^= 1 }}, // no word the tally folds
	} {
		err = raftVerifyAll(mangled{st, c.bad}, "check", n)
		if err == nil || !strings.Contains(err.Error(), "verification failed") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if err := raftVerifyAll(st, "check", n); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := st.GetLog(n+1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog past the end: %v", err)
	}
}
