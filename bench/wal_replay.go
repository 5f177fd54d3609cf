package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/wal"
)

// The replay workloads read a log of 1 KiB records written once, in the
// parent's setup, by each system in its own format: a ringlog log (the
// same file for the three backends, which only change how it is mapped)
// and a Pebble log. Both hold records 0..n-1 (see wal_workloads.go).

const walReplaySize = 1 << 10

// walReplayRecords is the number of records of the replayed log: 256 MiB of
// payload with -quick (262,144 records), 1 GiB in the full run (4 MiB with
// the test size).
func walReplayRecords(s Size) int {
	return int(pick[int64](s, 4<<20, 256<<20, 1<<30) / walReplaySize)
}

// walSetupBatch is the number of records per write when setup builds the
// ringlog log: one AppendBatch and one Flush per batch, so each write
// carries one batch and one sync marker, and the log's size is known in
// advance.
const walSetupBatch = 256

// ringlogReplayCapacity is the capacity of the ringlog log of n records of
// size bytes built by setup: the records, a sync marker per batch, rounded
// up to 64 KiB. Recovery scans the unused space after the end for sync
// markers, so the log has no more of it than the rounding leaves.
func ringlogReplayCapacity(n, size int) int64 {
	batches := int64((n + walSetupBatch - 1) / walSetupBatch)
	return roundUp(int64(n)*ringlogRecordSpace(size)+batches*ringlogMarker, ringlogCapAlign)
}

// walReplayPath is the log of n records in format ("ringlog", "ringlog-s2"
// or "pebble")
// in dir. The ringlog log is a file named log in a directory of its own,
// with whatever files the log keeps beside it.
func walReplayPath(dir string, n int, format string) string {
	name := fmt.Sprintf("wal-replay-%dx%d.%s", n, walReplaySize, format)
	if format != "pebble" { // ringlog, ringlog-s2
		return filepath.Join(dir, name, "log")
	}
	return filepath.Join(dir, name)
}

func setupWALReplay(e *env) error {
	n := walReplayRecords(e.size)
	if err := createRinglogReplayFile(walReplayPath(e.dir, n, "ringlog"), n, walReplaySize, wal.NoCompression); err != nil {
		return fmt.Errorf("ringlog log: %w", err)
	}
	if err := createPebbleReplayFile(walReplayPath(e.dir, n, "pebble"), n, walReplaySize); err != nil {
		return fmt.Errorf("pebble log: %w", err)
	}
	return nil
}

// setupWALReplayS2 writes wal-replay-1k-s2's logs: ringlog's compressed
// with S2, Pebble's the plain one of wal-replay-1k.
func setupWALReplayS2(e *env) error {
	n := walReplayRecords(e.size)
	if err := createRinglogReplayFile(walReplayPath(e.dir, n, "ringlog-s2"), n, walReplaySize, wal.S2); err != nil {
		return fmt.Errorf("ringlog log: %w", err)
	}
	if err := createPebbleReplayFile(walReplayPath(e.dir, n, "pebble"), n, walReplaySize); err != nil {
		return fmt.Errorf("pebble log: %w", err)
	}
	return nil
}

// createRinglogReplayFile writes the ringlog log the replay workloads read:
// n records of size bytes, appended in batches of walSetupBatch, each
// batch flushed before the next, then closed (synced), compressed with
// codec. Its directory (path's) is built under a temporary name and
// renamed into place, so a log under path is always complete; an existing
// one is kept. A compressed log gets the capacity of the plain one (its
// records take less: the rest stays unused).
func createRinglogReplayFile(path string, n, size int, codec wal.Compression) (err error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	tmpDir := dir + ".tmp"
	if err := os.RemoveAll(tmpDir); err != nil {
		return err
	}
	if err := os.Mkdir(tmpDir, 0o755); err != nil {
		return err
	}
	l, err := wal.Create(filepath.Join(tmpDir, filepath.Base(path)), &wal.Options{Capacity: ringlogReplayCapacity(n, size), Sync: wal.SyncNever, Compression: codec})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	ctx := context.Background()
	buf := make([]byte, walSetupBatch*size)
	tmpl := spscTemplate(size)
	ps := make([][]byte, 0, walSetupBatch)
	batches := 0
	for i := 0; i < n; i += walSetupBatch {
		ps = ps[:0]
		for j := range min(walSetupBatch, n-i) {
			m := buf[j*size : (j+1)*size]
			spscFill(m, tmpl, i+j)
			ps = append(ps, m)
		}
		if _, err := l.AppendBatch(ctx, ps); err != nil {
			return fmt.Errorf("records %d..%d: %w", i, i+len(ps)-1, err)
		}
		if err := l.Flush(ctx); err != nil {
			return err
		}
		batches++
	}
	want := uint64(int64(n)*ringlogRecordSpace(size) + int64(batches)*ringlogMarker)
	if got := l.Written() - l.Checkpoint(); got != want && codec == wal.NoCompression {
		return fmt.Errorf("the log holds %d bytes after %d records in %d writes, want %d", got, n, batches, want)
	}
	closed = true
	if err := l.Close(); err != nil {
		return err
	}
	if err := osfile.SyncDir(tmpDir); err != nil {
		return err
	}
	if err := os.Rename(tmpDir, dir); err != nil {
		return err
	}
	return osfile.SyncDir(filepath.Dir(dir))
}

// warmFile reads the file at path with large preads, so its pages are in
// the page cache.
func warmFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening the log (setup should have written it): %w", err)
	}
	defer f.Close()
	buf := make([]byte, ioChunk)
	for off := int64(0); ; off += int64(len(buf)) {
		k, err := f.ReadAt(buf, off)
		if err == io.EOF || (err == nil && k < len(buf)) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("warming the page cache with %s: %w", path, err)
		}
	}
}

// walReplay measures reading a log that is open and was read before: the
// steady state of a reader of a live log.
//
// The log: n records of 1 KiB, 256 MiB of payload with -quick (n =
// 262,144), 1 GiB in the full run (4 MiB with the test size), written in
// setup by each system. Untimed: ringlog: wal.Open of the log on the run's
// backend (its recovery scan reads and checks every record; on
// ringlog/copy it also preads the data area into memory), then one
// verified pass as below, which faults the mapping in; pebble: open the
// file through Pebble's file system and make one verified pass as below,
// which leaves its pages in the page cache.
//
// Timed: one pass over every record from the start of the log to its end,
// each record's bytes handed to the caller, who folds its first and last
// words and counts it. ringlog: NewReader at the checkpoint and its All
// iterator (each record a slice of the mapping, its CRC-32C verified by
// the Reader), then Close. pebble: record.NewReader over the file from
// offset 0 (an io.SectionReader: preads of 32 KiB blocks, every chunk's
// checksum verified) and, per record, io.ReadFull into one reused buffer
// of 1 KiB + 1 byte until the record's end.
//
// Verified after timing (and after the untimed pass), the same way on
// every system: n records of 1 KiB whose first and last words fold to the
// XOR of records 0..n-1. No per-operation latency (p50/p99 are 0).
//
// n = records, bytes = n * 1 KiB.
var walReplay = &workload{
	name:     "wal-replay-1k",
	doc:      "read every 1 KiB record of an open log, read once before (page cache warm)",
	systems:  walSystems,
	baseline: "pebble",
	durable:  true,
	setup:    setupWALReplay,
	run: func(r *run) (work, error) {
		n := walReplayRecords(r.size)
		if r.system == "pebble" {
			return runWALReplayPebble(r, n)
		}
		return runWALReplayRinglog(r, n, "ringlog")
	},
}

// walReplayS2 is wal-replay-1k over a ringlog log whose records are
// compressed with S2 (written so in setup; the records' template
// compresses well): each record is decoded into the Reader's own buffer,
// the one read path that is not zero-copy. Pebble's log has no
// compression: its row is its plain replay, as in wal-replay-1k. bytes =
// n * 1 KiB of decoded records.
var walReplayS2 = &workload{
	name:     "wal-replay-1k-s2",
	doc:      "read every 1 KiB record of an open log, ringlog's compressed with S2 (pebble: plain)",
	systems:  walSystems,
	baseline: "pebble",
	durable:  true,
	setup:    setupWALReplayS2,
	run: func(r *run) (work, error) {
		n := walReplayRecords(r.size)
		if r.system == "pebble" {
			return runWALReplayPebble(r, n)
		}
		return runWALReplayRinglog(r, n, "ringlog-s2")
	},
}

func replayWork(n int) work { return work{n: int64(n), bytes: int64(n) * walReplaySize} }

func runWALReplayRinglog(r *run, n int, format string) (_ work, err error) {
	backend, err := pagerBackend(r.system)
	if err != nil {
		return work{}, err
	}
	l, err := wal.Open(walReplayPath(r.dir, n, format), &wal.Options{Backend: backend, Sync: wal.SyncNever})
	if err != nil {
		return work{}, err
	}
	defer closeLog(l, &err)
	t := newWALTally()
	if err := ringlogReplay(l, walReplaySize, &t); err != nil {
		return work{}, fmt.Errorf("first (untimed) pass: %w", err)
	}
	if err := t.verify("first (untimed) pass", n, walReplaySize); err != nil {
		return work{}, err
	}

	t = newWALTally()
	r.startTimer()
	err = ringlogReplay(l, walReplaySize, &t)
	r.stopTimer()
	if err != nil {
		return work{}, err
	}
	if err := t.verify("timed pass", n, walReplaySize); err != nil {
		return work{}, err
	}
	return replayWork(n), nil
}

func runWALReplayPebble(r *run, n int) (work, error) {
	fs, stopFS := pebbleFS()
	defer stopFS()
	f, err := fs.Open(walReplayPath(r.dir, n, "pebble"))
	if err != nil {
		return work{}, fmt.Errorf("opening the log (setup should have written it): %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return work{}, err
	}
	size := st.Size()
	buf := make([]byte, walReplaySize+1)
	t := newWALTally()
	if err := pebbleReplay(io.NewSectionReader(f, 0, size), buf, walReplaySize, &t); err != nil {
		return work{}, fmt.Errorf("first (untimed) pass: %w", err)
	}
	if err := t.verify("first (untimed) pass", n, walReplaySize); err != nil {
		return work{}, err
	}

	t = newWALTally()
	r.startTimer()
	err = pebbleReplay(io.NewSectionReader(f, 0, size), buf, walReplaySize, &t)
	r.stopTimer()
	if err != nil {
		return work{}, err
	}
	if err := t.verify("timed pass", n, walReplaySize); err != nil {
		return work{}, err
	}
	return replayWork(n), nil
}

// walOpenReplay measures the recovery path: opening a closed log and
// reading it from start to end.
//
// The log is wal-replay-1k's. Untimed: read the log file once with large
// preads, so its pages are in the page cache (and, for pebble, open
// Pebble's file system). Timed: open the log and make one pass over every
// record as in wal-replay-1k. ringlog: wal.Open on the run's backend
// (recovery: it maps the file, or on ringlog/copy preads the data area,
// scans every record from the checkpoint verifying its CRC-32C and hands
// it to Options.Replay, and writes and syncs the log's metadata for the
// new epoch). pebble: open the file and replay it through record.Reader as in
// wal-replay-1k (reading the file from its start: read calls of 32 KiB
// blocks). The log is closed after the timed region.
//
// ringlog replays during the open itself: wal.Open with Options.Replay,
// the path a storage engine takes at startup, hands every record recovery
// keeps to the caller in the same pass that verifies it (recovery reads
// with large preads into a reused buffer, not through the fresh mapping:
// see the wal package doc), so read_ms is 0 and open_ms is the whole pass.
//
// Verified after timing, the same way on every system: n records of 1 KiB
// whose first and last words fold to the XOR of records 0..n-1. No
// per-operation latency (p50/p99 are 0). The JSON row splits the timed
// region into open_ms (wal.Open; for pebble opening the file) and read_ms
// (the pass after it).
//
// n = records, bytes = n * 1 KiB.
var walOpenReplay = &workload{
	name:     "wal-open-replay-1k",
	doc:      "open a closed log (recovery included) and read every 1 KiB record (page cache warm)",
	systems:  walSystems,
	baseline: "pebble",
	durable:  true,
	setup:    setupWALReplay,
	run: func(r *run) (work, error) {
		n := walReplayRecords(r.size)
		if r.system == "pebble" {
			return runWALOpenReplayPebble(r, n)
		}
		return runWALOpenReplayRinglog(r, n)
	},
}

func runWALOpenReplayRinglog(r *run, n int) (_ work, err error) {
	backend, err := pagerBackend(r.system)
	if err != nil {
		return work{}, err
	}
	path := walReplayPath(r.dir, n, "ringlog")
	if err := warmFile(path); err != nil {
		return work{}, err
	}

	t := newWALTally()
	replay := func(pos uint64, b []byte) error {
		t.add(b, walReplaySize)
		return nil
	}
	r.startTimer()
	t0 := time.Now()
	l, err := wal.Open(path, &wal.Options{Backend: backend, Sync: wal.SyncNever, Replay: replay})
	t1 := time.Now()
	r.stopTimer()
	if err != nil {
		return work{}, err
	}
	defer closeLog(l, &err)
	r.setExtra("open_ms", ms(t1.Sub(t0)))
	r.setExtra("read_ms", 0)
	if got := l.Report().Records; got != n {
		return work{}, fmt.Errorf("verification failed: recovery found %d records, want %d", got, n)
	}
	if err := t.verify("timed pass", n, walReplaySize); err != nil {
		return work{}, err
	}
	return replayWork(n), nil
}

func runWALOpenReplayPebble(r *run, n int) (work, error) {
	path := walReplayPath(r.dir, n, "pebble")
	if err := warmFile(path); err != nil {
		return work{}, err
	}
	fs, stopFS := pebbleFS()
	defer stopFS()
	buf := make([]byte, walReplaySize+1)

	t := newWALTally()
	r.startTimer()
	t0 := time.Now()
	f, err := fs.Open(path)
	if err != nil {
		r.stopTimer()
		return work{}, err
	}
	defer f.Close()
	t1 := time.Now()
	err = pebbleReplay(f, buf, walReplaySize, &t)
	t2 := time.Now()
	r.stopTimer()
	if err != nil {
		return work{}, err
	}
	r.setExtra("open_ms", ms(t1.Sub(t0)))
	r.setExtra("read_ms", ms(t2.Sub(t1)))
	if err := t.verify("timed pass", n, walReplaySize); err != nil {
		return work{}, err
	}
	return replayWork(n), nil
}
