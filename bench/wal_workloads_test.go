package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ringlog/ringlog/wal"
)

// pebbleLogBytes matches the size of the log a LogWriter writes, EOF
// trailer included, for records that fit a block, span blocks, and leave
// block tails too short for a header.
func TestPebbleLogBytes(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ n, size int }{
		{1, 128}, {1000, 128}, {3000, 1 << 10}, {5, 64 << 10}, {700, 32768 - 11 - 3}, {40, 100_000},
	} {
		path := filepath.Join(dir, "log")
		f, err := vfs.Default.Create(path, "pebble-wal")
		if err != nil {
			t.Fatal(err)
		}
		lw := record.NewLogWriter(f, pebbleLogNum, pebbleLogWriterConfig(make(chan struct{}, 1)))
		m := make([]byte, c.size)
		for range c.n {
			if _, err := lw.WriteRecord(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := pebbleLogBytes(c.n, c.size); got != st.Size() {
			t.Errorf("%d records of %d bytes: pebbleLogBytes = %d, the log has %d", c.n, c.size, got, st.Size())
		}
		os.Remove(path)
	}
}

func TestWALLogSize(t *testing.T) {
	for _, c := range []struct{ n, size int }{{1, 128}, {1 << 20, 128}, {1000, 1 << 10}, {7, 64 << 10}} {
		got := walLogSize(c.n, c.size)
		if got%ringlogCapAlign != 0 || got < int64(c.n)*(ringlogRecordSpace(c.size)+ringlogMarker) || got < pebbleLogBytes(c.n, c.size) {
			t.Errorf("walLogSize(%d, %d) = %d: not a 64 KiB multiple holding both logs", c.n, c.size, got)
		}
	}
}

// The read check notices a record missing, doubled, of the wrong size or
// with other content.
func TestWALTally(t *testing.T) {
	const n, size = 1000, 128
	m := walRecordBuf(size)
	tally := func(skip, double, short, other int) walTally {
		tl := newWALTally()
		for i := range n {
			if i == skip {
				continue
			}
			walStamp(m, i)
			b := m
			if i == short {
				b = m[:size-8]
			}
			if i == other {
				walStamp(m, n+i)
			}
			tl.add(b, size)
			if i == double {
				tl.add(b, size)
			}
		}
		return tl
	}
	good := tally(-1, -1, -1, -1)
	if err := good.verify("pass", n, size); err != nil {
		t.Fatal(err)
	}
	for name, tl := range map[string]walTally{
		"missing": tally(17, -1, -1, -1),
		"doubled": tally(-1, 17, -1, -1),
		"short":   tally(-1, -1, 17, -1),
		"other":   tally(-1, -1, -1, 17),
	} {
		if err := tl.verify("pass", n, size); err == nil || !strings.Contains(err.Error(), "verification failed") {
			t.Errorf("%s record: %v", name, err)
		}
	}
}

// A LogWriter over a file without Sync writes out every record when asked
// for a sync, and the records read back.
func TestPebbleFlushWithoutSync(t *testing.T) {
	const n, size = 5000, 1 << 10
	dir := t.TempDir()
	if err := createRecycledPebbleLog(dir, walLogSize(n, size)); err != nil {
		t.Fatal(err)
	}
	pl, err := openPebbleLog(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.close()
	if _, ok := io.Writer(pl.file).(interface{ Sync() error }); ok {
		t.Fatal("the LogWriter's file offers Sync")
	}
	m := walRecordBuf(size)
	for i := range n - 1 {
		walStamp(m, i)
		if _, err := pl.w.WriteRecord(m); err != nil {
			t.Fatal(err)
		}
	}
	walStamp(m, n-1)
	if err := pl.flush(m); err != nil {
		t.Fatal(err)
	}
	// Read the file while the writer is open: what it wrote so far.
	f, err := os.Open(pebbleLogName(dir, pebbleLogNum))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tl := newWALTally()
	if err := pebbleReplay(io.NewSectionReader(f, 0, pl.w.Size()), make([]byte, size+1), size, &tl); err != nil {
		t.Fatal(err)
	}
	if err := tl.verify("flushed records", n, size); err != nil {
		t.Fatal(err)
	}
	if pl.file.writes.Load() == 0 {
		t.Error("no writes counted")
	}
}

// Pebble's replay notices a record longer than expected.
func TestPebbleReplayLongRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := createPebbleReplayFile(path, 10, 200); err != nil {
		t.Fatal(err)
	}
	tl := newWALTally()
	err := replayPebbleFile(path, make([]byte, 101), 100, &tl)
	if err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Fatalf("200-byte records read as 100-byte ones: %v", err)
	}
}

// The ringlog log built for the replay workloads has the size its
// capacity assumes (createRinglogReplayFile checks it), also with a last
// batch that is not full, and reads back.
// The S2 log of wal-replay-1k-s2 is smaller and reads back the same.
func TestRinglogReplayFile(t *testing.T) {
	const n, size = 1000, 1 << 10
	for _, codec := range []wal.Compression{wal.NoCompression, wal.S2} {
		path := filepath.Join(t.TempDir(), "replay", "log")
		if err := createRinglogReplayFile(path, n, size, codec); err != nil {
			t.Fatal(err)
		}
		// Idempotent: an existing file is kept.
		if err := createRinglogReplayFile(path, n, size, codec); err != nil {
			t.Fatal(err)
		}
		l, err := wal.Open(path, &wal.Options{Sync: wal.SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if got := l.Report().Records; got != n {
			t.Fatalf("%v: recovery found %d records, want %d", codec, got, n)
		}
		if used := int64(l.Written() - l.Checkpoint()); codec != wal.NoCompression && used > int64(n)*ringlogRecordSpace(size)/2 {
			t.Fatalf("%v: %d bytes for %d records of %d bytes: the template should compress", codec, used, n, size)
		}
		tl := newWALTally()
		if err := ringlogReplay(l, size, &tl); err != nil {
			t.Fatal(err)
		}
		if err := tl.verify("replay", n, size); err != nil {
			t.Fatal(err)
		}
	}
}
