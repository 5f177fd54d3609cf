package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/raftstore"
)

// The raft-* workloads measure log stores of github.com/hashicorp/raft
// through the raft.LogStore interface:
//
//   - ringlog/remap, ringlog/mmap, ringlog/copy: package raftstore on that
//     pager backend, every option its default but Capacity (raftCapacity,
//     the same on every backend);
//   - raft-wal, the baseline: github.com/hashicorp/raft-wal with its
//     defaults (64 MiB segments, its BinaryCodec, a bbolt meta store) and a
//     null logger;
//   - raft-boltdb: github.com/hashicorp/raft-boltdb/v2 (bbolt) with its
//     defaults (every write transaction synced). v2.3.0: v2.3.1 imports
//     go-metrics/compat, which the go-metrics that raft v1.8.0 requires
//     no longer has.
//
// Every StoreLogs is durable when it returns on every system (raftstore
// and raft-wal fdatasync or fsync their log, raft-boltdb commits a synced
// transaction), so the workloads refuse tmpfs.
//
// Entries: entry k (k = 0, 1, 2, ...) has raft index k+1, term 1, type
// LogCommand, AppendedAt a fixed instant plus k nanoseconds, and 256 bytes
// of Data: spscFirst(k) in its first 8 bytes, spscLast(k) in its last 8,
// the spscTemplate between. A reader checks each entry's Index and Term
// and folds its Data's first and last words into a walTally (Data of
// another size fails), which must equal what the entry numbers give,
// computed without the store. The untimed passes that read every entry
// (raftVerifyAll) also compare all 256 bytes of each entry's Data.

// raftSystems are the systems of the raft-* workloads, in table order.
var raftSystems = []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy", "raft-wal", "raft-boltdb"}

// Geometry of the entries.
const (
	raftDataSize = 256
	raftBatch    = 64 // entries per StoreLogs of raft-append
	// raftFillBatch is the entries per StoreLogs when setup fills the
	// store of raft-get: fewer syncs, the same records.
	raftFillBatch = 4096
)

// raftAppendBatches is the number of StoreLogs calls of one run of
// raft-append: 1,000 with -quick (64,000 entries), 5,000 in the full run
// (8 with the test size). A synced batch takes about a millisecond here.
func raftAppendBatches(s Size) int { return pick(s, 8, 1000, 5000) }

// raftGetEntries is the number of entries of the store raft-get reads:
// 1M with -quick, 4M in the full run (5,000 with the test size).
func raftGetEntries(s Size) int { return pick(s, 5000, 1_000_000, 4_000_000) }

// raftGets is the number of GetLog calls of one run of raft-get.
func raftGets(s Size) int { return pick(s, 2000, 500_000, 2_000_000) }

// raftCapacity is raftstore's Capacity on every backend: room for the
// store of raft-get (about 300 bytes of log per entry).
func raftCapacity(s Size) int64 { return pick[int64](s, 64<<20, 1<<30, 2<<30) }

// raftGetSeed seeds the sequence of GetLog indices.
const raftGetSeed = 0x7261667467657421 // "raftget!"

// raftEpoch is the AppendedAt of entry 0.
var raftEpoch = time.Unix(1_700_000_000, 0)

func init() {
	registerSystem(&system{name: "raft-wal", available: func() error { return nil }})
	registerSystem(&system{name: "raft-boltdb", available: func() error { return nil }})
	registerWorkload(raftAppend)
	registerWorkload(raftGet)
}

// raftLogStore is what the workloads use of a store.
type raftLogStore interface {
	raft.LogStore
	io.Closer
}

// openRaftStore opens (creating it if needed) the store of system in dir.
func openRaftStore(system, dir string, size Size) (raftLogStore, error) {
	if err := osfile.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	switch system {
	case "raft-wal":
		return raftwal.Open(dir, raftwal.WithLogger(hclog.NewNullLogger()))
	case "raft-boltdb":
		return raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	}
	if !strings.HasPrefix(system, "ringlog/") {
		return nil, fmt.Errorf("system %s has no raft log store", system)
	}
	b, err := pagerBackend(system)
	if err != nil {
		return nil, err
	}
	return raftstore.Open(dir, &raftstore.Options{Backend: b, Capacity: raftCapacity(size)})
}

// raftEntries are reusable entries and their Data buffers.
type raftEntries struct {
	logs []*raft.Log
	tmpl []byte
}

func newRaftEntries(n int) *raftEntries {
	e := &raftEntries{logs: make([]*raft.Log, n), tmpl: spscTemplate(raftDataSize)}
	for i := range e.logs {
		e.logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: make([]byte, raftDataSize)}
	}
	return e
}

// fill makes the first n entries entries k, k+1, ... and returns them.
func (e *raftEntries) fill(k, n int) []*raft.Log {
	for j, l := range e.logs[:n] {
		l.Index = uint64(k+j) + 1
		l.AppendedAt = raftEpoch.Add(time.Duration(k + j))
		spscFill(l.Data, e.tmpl, k+j)
	}
	return e.logs[:n]
}

// raftStoreN stores entries 0..n-1 in batches of batch entries.
func raftStoreN(st raft.LogStore, n, batch int) error {
	e := newRaftEntries(batch)
	for k := 0; k < n; k += batch {
		m := min(batch, n-k)
		if err := st.StoreLogs(e.fill(k, m)); err != nil {
			return fmt.Errorf("StoreLogs of entries %d..%d: %w", k, k+m-1, err)
		}
	}
	return nil
}

// raftRead reads entry k into l and folds it into t.
func raftRead(st raft.LogStore, k int, l *raft.Log, t *walTally) error {
	if err := st.GetLog(uint64(k)+1, l); err != nil {
		return fmt.Errorf("GetLog(%d): %w", k+1, err)
	}
	if l.Index != uint64(k)+1 || l.Term != 1 {
		return fmt.Errorf("verification failed: GetLog(%d) returned index %d term %d", k+1, l.Index, l.Term)
	}
	t.add(l.Data, raftDataSize)
	return nil
}

// raftVerifyAll reads entries 0..n-1 in order and checks them, and that
// the store holds nothing else.
func raftVerifyAll(st raft.LogStore, what string, n int) error {
	first, err := st.FirstIndex()
	if err != nil {
		return err
	}
	last, err := st.LastIndex()
	if err != nil {
		return err
	}
	if first != 1 || last != uint64(n) {
		return fmt.Errorf("verification failed: %s: the store holds entries %d..%d, want 1..%d", what, first, last, n)
	}
	t := newWALTally()
	var l raft.Log
	tmpl, want := spscTemplate(raftDataSize), make([]byte, raftDataSize)
	for k := range n {
		if err := raftRead(st, k, &l, &t); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		// Untimed: every byte, not only the words the tally folds.
		spscFill(want, tmpl, k)
		if !bytes.Equal(l.Data, want) {
			return fmt.Errorf("verification failed: %s: GetLog(%d) returned other Data", what, k+1)
		}
	}
	return t.verify(what, n, raftDataSize)
}

// raftAppend measures durable StoreLogs of batches, as a raft leader or
// follower writes its log.
//
// Untimed: open an empty store in a directory of the run's own under the
// data directory; allocate 64 entries with their Data buffers. Timed:
// B = 1,000 batches with -quick (5,000 in the full run, 8 with the test
// size): batch b makes the 64 entries 64b..64b+63 (stamping their Data)
// and stores them with one StoreLogs, which returns once they are durable.
// Each StoreLogs's latency is recorded: p50/p99 are per batch of 64
// entries. Untimed after: every entry read back with GetLog and checked
// (see above); then the store is closed.
//
// n = entries (64 B), bytes = n × 256 (Data bytes).
var raftAppend = &workload{
	name:     "raft-append",
	doc:      "StoreLogs of 1,000 (full: 5,000) batches of 64 entries of 256 B, each batch durable; p50/p99 per batch",
	systems:  raftSystems,
	baseline: "raft-wal",
	durable:  true,
	run:      runRaftAppend,
}

func runRaftAppend(r *run) (_ work, err error) {
	batches := raftAppendBatches(r.size)
	n := batches * raftBatch
	dir, err := os.MkdirTemp(r.dir, "raft-append-")
	if err != nil {
		return work{}, err
	}
	defer os.RemoveAll(dir)
	st, err := openRaftStore(r.system, filepath.Join(dir, "store"), r.size)
	if err != nil {
		return work{}, err
	}
	defer closeRaftStore(st, &err)
	e := newRaftEntries(raftBatch)
	r.expectOps(batches)

	r.startTimer()
	for b := range batches {
		logs := e.fill(b*raftBatch, raftBatch)
		t0 := time.Now()
		err := st.StoreLogs(logs)
		r.recordOp(time.Since(t0))
		if err != nil {
			return work{}, fmt.Errorf("StoreLogs of batch %d: %w", b, err)
		}
	}
	r.stopTimer()

	if err := raftVerifyAll(st, "reading back", n); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * raftDataSize}, nil
}

// closeRaftStore closes st, reporting its error through *err unless there
// is one already.
func closeRaftStore(st raftLogStore, err *error) {
	if cerr := st.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("closing the store: %w", cerr)
	}
}

// raftGetIndex is the entry read by GetLog number j of raft-get over a
// store of n entries: uniform, with repeats, the same for every system.
func raftGetIndex(j, n int) int { return kvGetIndex(j, n, raftGetSeed) }

// raftWantGets is what G gets over a store of n entries fold to.
func raftWantGets(gets, n int) uint64 {
	var x uint64
	for j := range gets {
		k := raftGetIndex(j, n)
		x ^= spscFirst(k) ^ spscLast(k)
	}
	return x
}

// raftGet measures random reads of a log: GetLog of entries a follower
// lags behind, or of a leader's log being replicated.
//
// Prepared store: setup builds, once per bench run and system, a store of
// N entries 0..N-1 (N = 1M with -quick, 4M in the full run, 5,000 with
// the test size) stored in batches of 4,096, closed, under a temporary
// name renamed into place. Untimed: copy it into a directory of the
// run's own (copyStore: every file synced) and open the copy; read every
// entry once in order and check it (warms the page cache, the mapping,
// bbolt's pages). Timed: G GetLog calls (G = 500,000 with -quick, 2M in
// the full run, 2,000 with the test size) of entries raftGetIndex(j),
// uniform with repeats, into one reused raft.Log, each checked and folded
// as above. Verified after timing: G entries whose Data fold to what
// those entries give.
//
// n = GetLog calls, bytes = n × 256.
var raftGet = &workload{
	name:     "raft-get",
	doc:      "500k (full: 2M) random GetLog of a store of 1M (full: 4M) entries of 256 B",
	systems:  raftSystems,
	baseline: "raft-wal",
	durable:  true,
	setup:    setupRaftStores,
	run:      runRaftGet,
}

// raftStorePath is the prepared store of n entries of system in dir.
func raftStorePath(dir string, n int, system string) string {
	return filepath.Join(dir, fmt.Sprintf("raft-store-%d.%s", n, strings.ReplaceAll(system, "/", "-")))
}

// setupRaftStores builds the prepared store of every system to run,
// unless it is there already. A system whose store cannot be built fails
// alone, as with the kv stores (kvStoreError).
func setupRaftStores(e *env) error {
	systems := e.systems
	if systems == nil {
		systems = raftSystems
	}
	n := raftGetEntries(e.size)
	for _, s := range systems {
		path := raftStorePath(e.dir, n, s)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if _, err := os.Stat(kvStoreError(path)); err == nil {
			continue // failed already
		}
		if err := createRaftStore(path, s, n, e.size); err != nil {
			msg := fmt.Sprintf("building the %s store of %d entries: %v", s, n, err)
			if werr := os.WriteFile(kvStoreError(path), []byte(msg), 0o644); werr != nil {
				return errors.New(msg)
			}
		}
	}
	return nil
}

// createRaftStore builds the store of n entries of system at path.
func createRaftStore(path, system string, n int, size Size) (err error) {
	tmp := path + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	st, err := openRaftStore(system, tmp, size)
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := raftStoreN(st, n, raftFillBatch); err != nil {
		st.Close()
		os.RemoveAll(tmp)
		return err
	}
	if err := st.Close(); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := osfile.SyncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return osfile.SyncDir(filepath.Dir(path))
}

func runRaftGet(r *run) (_ work, err error) {
	n, gets := raftGetEntries(r.size), raftGets(r.size)
	src := raftStorePath(r.dir, n, r.system)
	if msg, err := os.ReadFile(kvStoreError(src)); err == nil {
		return work{}, fmt.Errorf("no prepared store: setup failed %s", msg)
	}
	if _, err := os.Stat(src); err != nil {
		return work{}, fmt.Errorf("the prepared store (setup should have built it): %w", err)
	}
	dir, err := os.MkdirTemp(r.dir, "raft-get-")
	if err != nil {
		return work{}, err
	}
	defer os.RemoveAll(dir)
	store := filepath.Join(dir, "store")
	if err := copyStore(src, store); err != nil {
		return work{}, fmt.Errorf("copying the prepared store: %w", err)
	}
	st, err := openRaftStore(r.system, store, r.size)
	if err != nil {
		return work{}, err
	}
	defer closeRaftStore(st, &err)
	if err := raftVerifyAll(st, "warm-up pass", n); err != nil {
		return work{}, err
	}
	t := newWALTally()
	var l raft.Log

	r.startTimer()
	for j := range gets {
		if err := raftRead(st, raftGetIndex(j, n), &l, &t); err != nil {
			return work{}, fmt.Errorf("get %d: %w", j, err)
		}
	}
	r.stopTimer()

	if t.badAt >= 0 {
		return work{}, fmt.Errorf("verification failed: get %d returned %d bytes of Data, want %d", t.badAt, t.badLen, raftDataSize)
	}
	if want := raftWantGets(gets, n); t.count != gets || t.xor != want {
		return work{}, fmt.Errorf("verification failed: %d gets fold to %#x, want %d folding to %#x", t.count, t.xor, gets, want)
	}
	return work{n: int64(gets), bytes: int64(gets) * raftDataSize}, nil
}
