package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ringlog/ringlog/wal"
)

// The wal-* workloads compare the write-ahead log of package wal, on each
// pager backend (ringlog/remap, ringlog/mmap, ringlog/copy), with the log
// Pebble writes and replays for itself (pebble, the baseline; see
// pebble_wal.go for how it is driven). They are durable: they refuse a data
// directory on tmpfs. The wal-tail-latency workloads (wal_tail.go) run on
// the ringlog backends only: Pebble has no tailing API.
//
// Records: record i (0, 1, 2, ... in the order written; with several
// writers, a number unique to the record) has size bytes; its first 8 bytes
// hold spscFirst(i), its last 8 bytes spscLast(i), and the bytes between
// are a constant template (spscTemplate). A reader folds the first and last
// words of every record into a running XOR and counts records; the result
// must equal what the record numbers give without reading anything, and
// every record must have size bytes. Checksums are each system's own job:
// ringlog's Reader and recovery verify every record's CRC-32C, Pebble's
// record.Reader every chunk's.
//
// The ringlog log runs with the default staging buffer (1 MiB).

var walSystems = []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy", "pebble"}

func init() {
	registerWorkload(newWALAppend(128, "128b", wal.NoCompression))
	registerWorkload(newWALAppend(1<<10, "1k", wal.NoCompression))
	registerWorkload(newWALAppend(64<<10, "64k", wal.NoCompression))
	registerWorkload(newWALAppend(1<<10, "1k", wal.S2))
	registerWorkload(walSync8w)
	registerWorkload(walReplay)
	registerWorkload(walReplayS2)
	registerWorkload(walOpenReplay)
	registerWorkload(walTailLatency) // wal_tail.go
	registerWorkload(walTailLatencyXProc)
}

// ringlog's framing (wal/record.go): a 24-byte header before each payload,
// padded to a multiple of 8 bytes, and a 32-byte sync marker record at the
// start of every write to the file. A log's capacity is a multiple of
// 64 KiB.
const (
	ringlogHeader   = 24
	ringlogMarker   = 32
	ringlogCapAlign = 64 << 10
)

// ringlogRecordSpace is the space a record of size bytes takes in a log.
func ringlogRecordSpace(size int) int64 { return int64(ringlogHeader+size+7) &^ 7 }

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// walLogSize is the size of the log a run writes n records of size bytes
// into, the same for both systems: ringlog's capacity and the size of
// Pebble's recycled file. It holds the records with ringlog's framing and a
// sync marker per record (each write of the log has at least one record,
// so this is the most markers a run can write: a bounded log that fills up
// would block), and it holds Pebble's log of the same records, rounded up
// to 64 KiB.
func walLogSize(n, size int) int64 {
	ringlog := int64(n) * (ringlogRecordSpace(size) + ringlogMarker)
	return roundUp(max(ringlog, pebbleLogBytes(n, size)), ringlogCapAlign)
}

// walRecordBuf returns a record of size bytes holding the template; walStamp
// makes it record i.
func walRecordBuf(size int) []byte {
	m := make([]byte, size)
	spscFill(m, spscTemplate(size), 0)
	return m
}

// walStamp writes the first and last words of record i into m, which holds
// the template between them already.
func walStamp(m []byte, i int) {
	binary.LittleEndian.PutUint64(m, spscFirst(i))
	binary.LittleEndian.PutUint64(m[len(m)-8:], spscLast(i))
}

// walTally is what a reader saw: the records, the XOR of their first and
// last words, and the first record of the wrong size.
type walTally struct {
	count  int
	xor    uint64
	badAt  int // -1: none
	badLen int
}

func newWALTally() walTally { return walTally{badAt: -1} }

// add counts the record b, which should have size bytes.
func (t *walTally) add(b []byte, size int) {
	if len(b) != size && t.badAt < 0 {
		t.badAt, t.badLen = t.count, len(b)
	}
	if len(b) >= 8 {
		t.xor ^= binary.LittleEndian.Uint64(b) ^ binary.LittleEndian.Uint64(b[len(b)-8:])
	}
	t.count++
}

// verify compares the tally with n records 0..n-1 of size bytes.
func (t *walTally) verify(what string, n, size int) error {
	if t.badAt >= 0 {
		return fmt.Errorf("verification failed: %s: record %d has %d bytes, want %d", what, t.badAt, t.badLen, size)
	}
	if t.count != n {
		return fmt.Errorf("verification failed: %s: %d records read, %d were written", what, t.count, n)
	}
	if want := spscWantXOR(n); t.xor != want {
		return fmt.Errorf("verification failed: %s: XOR of the first and last words of %d records is %#x, want %#x", what, n, t.xor, want)
	}
	return nil
}

// ringlogReplay reads every record of l from its checkpoint with a Reader
// and folds it into t.
func ringlogReplay(l *wal.Log, size int, t *walTally) error {
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		return err
	}
	for _, b := range rd.All() {
		t.add(b, size)
	}
	if err := rd.Err(); err != nil {
		rd.Close()
		return err
	}
	return rd.Close()
}

// createRinglogLog creates the log a run writes: in a directory of its
// own under the data directory (removed by cleanup), with the options o
// on the run's backend.
func createRinglogLog(r *run, prefix string, o wal.Options) (l *wal.Log, cleanup func(), err error) {
	backend, err := pagerBackend(r.system)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp(r.dir, prefix)
	if err != nil {
		return nil, nil, err
	}
	o.Backend = backend
	l, err = wal.Create(filepath.Join(dir, "log"), &o)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return l, func() { os.RemoveAll(dir) }, nil
}

// closeLog closes l, reporting its error through *err unless there is one
// already.
func closeLog(l *wal.Log, err *error) {
	if cerr := l.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}

// checkRinglogAppends checks the log's counters after n appends of size
// bytes: they confirm the framing walLogSize assumes.
func checkRinglogAppends(l *wal.Log, n, size int) error {
	m := l.Metrics()
	if m.Appends != uint64(n) || m.Bytes != uint64(n)*uint64(ringlogRecordSpace(size)) {
		return fmt.Errorf("verification failed: the log counts %d appends of %d bytes in all, want %d of %d bytes",
			m.Appends, m.Bytes, n, int64(n)*ringlogRecordSpace(size))
	}
	return nil
}

// walAppendBytes is the payload one run of a wal-append workload appends:
// 256 MiB with -quick, 1 GiB in the full run (2 MiB with the test size).
func walAppendBytes(s Size) int64 { return pick[int64](s, 2<<20, 256<<20, 1<<30) }

// newWALAppend defines wal-append-<label>: one goroutine appends records
// of size bytes, no per-record sync; n = walAppendBytes / size records
// (2M of 128 B, 256k of 1 KiB, 4096 of 64 KiB with -quick).
//
// Untimed: create the log in a directory of the run's own under the data
// directory, so both systems start from an already written file of
// walLogSize bytes (the records with ringlog's framing and one sync marker
// per record, or Pebble's log of them if larger; rounded up to 64 KiB):
// ringlog: wal.Create of that capacity (it writes zeroes over the whole
// data area and syncs), sync policy SyncNever; pebble: a file of zeroes of
// that size, synced, reused as a new log (see pebble_wal.go). The record
// buffer is allocated and filled with the template.
//
// Timed: write the first and last words of record i into the buffer and
// append it, for i = 0..n-1, then wait until every appended byte has been
// handed to the operating system (written, not synced): ringlog: Append
// each record, then Flush; pebble: SyncRecord without a WaitGroup (what
// WriteRecord does) for records 0..n-2, then the last one with a WaitGroup
// and wait for it, over a file that offers the LogWriter no Sync, so the
// flush loop writes out every queued block and the partial one and
// releases the waiter without syncing.
//
// Verified after timing, the same way on every system: the log read back
// from the start (ringlog: a Reader on the open log; pebble: the LogWriter
// closed, the file replayed with record.Reader) holds n records of size
// bytes whose first and last words fold to the XOR the record numbers
// give. ringlog also: Metrics counts n appends of the expected framed
// size.
//
// n = records, bytes = n * size. No per-operation latency (p50/p99 are 0):
// an unsynced append returns once its record is staged in memory, so its
// latency says nothing about the log's work, which the flush at the end
// waits for. The JSON row adds writes: the write calls that handed the
// log to the OS in the timed region (ringlog: pwrites of its staging
// buffer; pebble: Write calls of its flush loop, one per 32 KiB block or
// partial block).
//
// wal-append-1k-s2 is wal-append-1k with ringlog's records compressed with
// S2 (Options.Compression; the records' template compresses well, see
// spscTemplate). Pebble's log has no compression: its row is its plain
// path, the same as in wal-append-1k. ringlog's Metrics then count the
// stored (compressed) bytes, reported as stored_ratio in the JSON row
// (stored bytes / framed uncompressed bytes); the read-back decodes every
// record.
func newWALAppend(size int, label string, codec wal.Compression) *workload {
	name, doc := "wal-append-"+label, fmt.Sprintf("append %s records, no per-record sync; until all is handed to the OS", label)
	if codec != wal.NoCompression {
		name += "-" + codec.String()
		doc = fmt.Sprintf("append compressible %s records, ringlog compressing with %v (pebble: plain); until all is handed to the OS", label, codec)
	}
	return &workload{
		name:     name,
		doc:      doc,
		systems:  walSystems,
		baseline: "pebble",
		durable:  true,
		run: func(r *run) (work, error) {
			n := int(walAppendBytes(r.size) / int64(size))
			if r.system == "pebble" {
				return runWALAppendPebble(r, size, n)
			}
			return runWALAppendRinglog(r, size, n, codec)
		},
	}
}

func runWALAppendRinglog(r *run, size, n int, codec wal.Compression) (_ work, err error) {
	l, cleanup, err := createRinglogLog(r, "wal-append-", wal.Options{Capacity: walLogSize(n, size), Sync: wal.SyncNever, Compression: codec})
	if err != nil {
		return work{}, err
	}
	defer cleanup()
	defer closeLog(l, &err)
	m := walRecordBuf(size)
	ctx := context.Background()

	r.startTimer()
	for i := range n {
		walStamp(m, i)
		if _, err := l.Append(ctx, m); err != nil {
			return work{}, fmt.Errorf("append %d: %w", i, err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		return work{}, err
	}
	r.stopTimer()
	r.setExtra("writes", float64(l.Metrics().Writes))

	if codec != wal.NoCompression {
		m := l.Metrics()
		if m.Appends != uint64(n) {
			return work{}, fmt.Errorf("verification failed: the log counts %d appends, want %d", m.Appends, n)
		}
		r.setExtra("stored_ratio", float64(m.Bytes)/float64(int64(n)*ringlogRecordSpace(size)))
	} else if err := checkRinglogAppends(l, n, size); err != nil {
		return work{}, err
	}
	t := newWALTally()
	if err := ringlogReplay(l, size, &t); err != nil {
		return work{}, fmt.Errorf("reading back: %w", err)
	}
	if err := t.verify("reading back", n, size); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * int64(size)}, nil
}

func runWALAppendPebble(r *run, size, n int) (_ work, err error) {
	dir, err := os.MkdirTemp(r.dir, "wal-append-")
	if err != nil {
		return work{}, err
	}
	defer os.RemoveAll(dir)
	if err := createRecycledPebbleLog(dir, walLogSize(n, size)); err != nil {
		return work{}, err
	}
	pl, err := openPebbleLog(dir, false)
	if err != nil {
		return work{}, err
	}
	defer func() {
		if cerr := pl.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	m := walRecordBuf(size)

	r.startTimer()
	for i := range n - 1 {
		walStamp(m, i)
		if _, err := pl.w.SyncRecord(m, nil, nil); err != nil {
			return work{}, fmt.Errorf("append %d: %w", i, err)
		}
	}
	walStamp(m, n-1)
	if err := pl.flush(m); err != nil {
		return work{}, fmt.Errorf("append %d and flush: %w", n-1, err)
	}
	r.stopTimer()
	r.setExtra("writes", float64(pl.file.writes.Load()))

	if err := pl.close(); err != nil {
		return work{}, err
	}
	t := newWALTally()
	if err := replayPebbleFile(pebbleLogName(dir, pebbleLogNum), make([]byte, size+1), size, &t); err != nil {
		return work{}, fmt.Errorf("reading back: %w", err)
	}
	if err := t.verify("reading back", n, size); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * int64(size)}, nil
}

// Geometry of wal-sync-8w.
const (
	walSyncWriters = 8
	walSyncSize    = 1 << 10
)

// walSyncRecords is the number of records of one run of wal-sync-8w, over
// all writers.
func walSyncRecords(s Size) int { return pick(s, 400, 20_000, 100_000) }

// walSync8w measures durable appends from 8 goroutines: group commit.
//
// 8 writers append 1 KiB records; each waits until its record is durable
// (fdatasync) before it appends the next. n records in all per run (20,000
// with -quick, 100,000 in the full run, 400 with the test size), n/8 per
// writer; writer w appends records w*n/8 .. (w+1)*n/8-1 in order. The same
// n on every system.
//
// Untimed: create the log as for wal-append-* (walLogSize of n records;
// ringlog with sync policy SyncAlways, pebble over a recycled file that
// syncs), one record buffer per writer, the latency record.
//
// Timed: from starting the writers until the last has returned. ringlog:
// Append (under SyncAlways it returns once the record is durable; the
// log's flusher syncs once for every record staged by then). pebble: a
// slot of the sync-queue semaphore, SyncRecord with the writer's
// WaitGroup under a mutex shared by the writers, then the wait on the
// WaitGroup outside it (Pebble's commit pipeline). Each record's latency,
// from just before the append to its return as durable, is recorded for
// p50/p99.
//
// Verified after timing, the same way on every system: the log read back
// (ringlog: a Reader on the open log; pebble: the LogWriter closed, the
// file replayed) holds n records of 1 KiB whose first and last words fold
// to the XOR of records 0..n-1.
//
// n = records, bytes = n * 1 KiB. The JSON row adds records_per_sync: the
// records made durable per fdatasync in the timed region (ringlog:
// Metrics().RecordsPerSync; pebble: n divided by the Sync calls of the
// LogWriter, counted by the file it writes to).
var walSync8w = &workload{
	name:     "wal-sync-8w",
	doc:      "8 goroutines append 1 KiB records, each waiting for durability; p50/p99",
	systems:  walSystems,
	baseline: "pebble",
	durable:  true,
	run: func(r *run) (work, error) {
		n := walSyncRecords(r.size)
		if r.system == "pebble" {
			return runWALSyncPebble(r, n)
		}
		return runWALSyncRinglog(r, n)
	},
}

// walSyncPass runs the writers of wal-sync-8w: appendOne appends record i
// from writer w's buffer m and returns when it is durable. It returns each
// writer's latencies and the first error.
func walSyncPass(n int, appendOne func(w int, m []byte, i int) error) ([][]time.Duration, error) {
	per := n / walSyncWriters
	lat := make([][]time.Duration, walSyncWriters)
	bufs := make([][]byte, walSyncWriters)
	for w := range walSyncWriters {
		lat[w] = make([]time.Duration, 0, per)
		bufs[w] = walRecordBuf(walSyncSize)
	}
	errs := make([]error, walSyncWriters)
	var wg sync.WaitGroup
	for w := range walSyncWriters {
		wg.Go(func() {
			m := bufs[w]
			for i := w * per; i < (w+1)*per; i++ {
				walStamp(m, i)
				t0 := time.Now()
				err := appendOne(w, m, i)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					errs[w] = fmt.Errorf("writer %d, record %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return lat, err
		}
	}
	return lat, nil
}

func recordLatencies(r *run, lat [][]time.Duration) {
	total := 0
	for _, l := range lat {
		total += len(l)
	}
	r.expectOps(total)
	for _, l := range lat {
		for _, d := range l {
			r.recordOp(d)
		}
	}
}

func runWALSyncRinglog(r *run, n int) (_ work, err error) {
	l, cleanup, err := createRinglogLog(r, "wal-sync-", wal.Options{Capacity: walLogSize(n, walSyncSize), Sync: wal.SyncAlways})
	if err != nil {
		return work{}, err
	}
	defer cleanup()
	defer closeLog(l, &err)
	ctx := context.Background()
	before := l.Metrics()

	r.startTimer()
	lat, err := walSyncPass(n, func(_ int, m []byte, _ int) error {
		_, err := l.Append(ctx, m)
		return err
	})
	r.stopTimer()
	if err != nil {
		return work{}, err
	}
	m := l.Metrics()
	if syncs := m.Syncs - before.Syncs; syncs > 0 {
		r.setExtra("records_per_sync", float64(m.SyncedRecords-before.SyncedRecords)/float64(syncs))
	}
	recordLatencies(r, lat)

	if err := checkRinglogAppends(l, n, walSyncSize); err != nil {
		return work{}, err
	}
	t := newWALTally()
	if err := ringlogReplay(l, walSyncSize, &t); err != nil {
		return work{}, fmt.Errorf("reading back: %w", err)
	}
	if err := t.verify("reading back", n, walSyncSize); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * walSyncSize}, nil
}

func runWALSyncPebble(r *run, n int) (_ work, err error) {
	dir, err := os.MkdirTemp(r.dir, "wal-sync-")
	if err != nil {
		return work{}, err
	}
	defer os.RemoveAll(dir)
	if err := createRecycledPebbleLog(dir, walLogSize(n, walSyncSize)); err != nil {
		return work{}, err
	}
	pl, err := openPebbleLog(dir, true)
	if err != nil {
		return work{}, err
	}
	defer func() {
		if cerr := pl.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c := &pebbleCommitter{w: pl.w, sem: pl.sem}
	wgs := make([]sync.WaitGroup, walSyncWriters)
	serrs := make([]error, walSyncWriters)

	r.startTimer()
	lat, err := walSyncPass(n, func(w int, m []byte, _ int) error {
		return c.commit(m, &wgs[w], &serrs[w])
	})
	r.stopTimer()
	if err != nil {
		return work{}, err
	}
	if syncs := pl.file.syncs.Load(); syncs > 0 {
		r.setExtra("records_per_sync", float64(n)/float64(syncs))
	}
	recordLatencies(r, lat)

	if err := pl.close(); err != nil {
		return work{}, err
	}
	t := newWALTally()
	if err := replayPebbleFile(pebbleLogName(dir, pebbleLogNum), make([]byte, walSyncSize+1), walSyncSize, &t); err != nil {
		return work{}, fmt.Errorf("reading back: %w", err)
	}
	if err := t.verify("reading back", n, walSyncSize); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * walSyncSize}, nil
}
