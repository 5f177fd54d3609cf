package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringlog/ringlog/internal/osfile"
)

// Pebble's write-ahead log, driven the way a pebble.DB drives it in steady
// state, through its own packages:
//
//   - the file system is vfs.Default wrapped with disk-health checks (5 s
//     threshold), as pebble.Options.WithFSDefaults does;
//   - a new log reuses an already written (recycled) log file:
//     FS.ReuseForWrite renames it to the new log number's name and opens it
//     without truncating, then the directory is synced, as pebble's
//     standalone WAL manager does (wal.StandaloneManager.Create);
//   - the file is wrapped with vfs.NewSyncingFile with Pebble's defaults:
//     WALBytesPerSync 0 (no background sync_file_range), preallocation of
//     110% of the memtable size (64 MiB memtables, the size the bench
//     configures Pebble with), sync on close;
//   - record.NewLogWriter with the configuration pebble.Open passes: an fsync
//     latency histogram with pebble.FsyncLatencyBuckets, no minimum sync
//     interval (WALMinSyncInterval unset, the default), a sync-queue
//     semaphore of record.SyncConcurrency-1 slots (the commit pipeline's
//     logSyncQSem), and the recyclable chunk format: WriteWALSyncOffsets is
//     false because a DB at the default format major version
//     (FormatMinSupported) predates FormatWALSyncChunks;
//   - records are appended with LogWriter.SyncRecord. It needs external
//     synchronisation (the commit pipeline's mutex): concurrent writers
//     take a mutex around it; a lone writer calls it directly. A writer that
//     waits for durability passes a WaitGroup, and the LogWriter's flush
//     loop writes out everything queued before it, syncs once for every
//     waiter queued by then (group commit) and releases them;
//   - replay is record.NewReader over the file and, for each record,
//     io.ReadFull into one reused buffer until the record's end, as
//     pebble.DB replays a WAL (it copies each record into a reused buffer).
//
// The logs a run writes are named as Pebble names them: NNNNNN.log.

func init() {
	registerSystem(&system{name: "pebble", available: func() error { return nil }})
}

// Log numbers: the recycled file was written as pebbleOldLogNum, the log a
// run writes is pebbleLogNum. They are untyped constants because the
// record package takes an internal type for them.
const (
	pebbleOldLogNum = 6
	pebbleLogNum    = 7
)

// Pebble's framing (record/record.go): 32 KiB blocks, an 11-byte header per
// chunk in the recyclable format, block tails shorter than a header left as
// zeroes, and an EOF trailer (one header) when the writer closes.
const (
	pebbleBlockSize   = 32 << 10
	pebbleChunkHeader = 11
)

// pebbleMemTableSize is the memtable size the bench configures Pebble
// with; the WAL preallocation follows from it.
const pebbleMemTableSize = 64 << 20

func pebbleWALPreallocateSize() int { return pebbleMemTableSize/10 + pebbleMemTableSize }

// pebbleLogBytes is the size of a Pebble log holding n records of size
// bytes, its EOF trailer included.
func pebbleLogBytes(n, size int) int64 {
	var blocks int64
	off := 0 // in the current block
	for range n {
		p := size
		for {
			room := pebbleBlockSize - off - pebbleChunkHeader
			k := min(p, room)
			off += pebbleChunkHeader + k
			p -= k
			if pebbleBlockSize-off < pebbleChunkHeader {
				blocks++
				off = 0
			}
			if p == 0 {
				break
			}
		}
	}
	return blocks*pebbleBlockSize + int64(off) + pebbleChunkHeader
}

func pebbleLogName(dir string, num int) string {
	return filepath.Join(dir, fmt.Sprintf("%06d.log", num))
}

// pebbleFS is Pebble's default file system: vfs.Default with disk-health
// checks. close stops the checker.
func pebbleFS() (fs vfs.FS, close func()) {
	fs, closer := vfs.WithDiskHealthChecks(vfs.Default, 5*time.Second, nil, func(vfs.DiskSlowInfo) {})
	return fs, func() { closer.Close() }
}

// createRecycledPebbleLog writes the log file that a run's LogWriter
// reuses: size bytes of zeroes under pebbleOldLogNum's name, written (not
// just allocated) and synced, the state ring.Create leaves ringlog's data
// area in. Zeroes read as the end of the log to Pebble's reader, so what the
// new log does not overwrite is never mistaken for its records.
func createRecycledPebbleLog(dir string, size int64) error {
	f, err := os.OpenFile(pebbleLogName(dir, pebbleOldLogNum), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := osfile.WriteZeroes(f, 0, size); err != nil {
		return err
	}
	if err := osfile.Fdatasync(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return osfile.SyncDir(dir)
}

// pebbleLog is a LogWriter over a recycled file and what the bench counts
// about it.
type pebbleLog struct {
	w      *record.LogWriter
	file   *pebbleFile
	sem    chan struct{} // the LogWriter's QueueSemChan
	closed bool
	stopFS func()
}

// pebbleFile is the LogWriter's file. It counts the write and sync calls
// the LogWriter makes. With syncs false it does not offer Sync to the
// LogWriter, which then only writes out what was queued when asked for a
// sync (see openPebbleLog).
type pebbleFile struct {
	f      vfs.File
	writes atomic.Int64
	syncs  atomic.Int64
}

func (p *pebbleFile) Write(b []byte) (int, error) {
	p.writes.Add(1)
	return p.f.Write(b)
}

func (p *pebbleFile) Close() error { return p.f.Close() }

// pebbleSyncingFile is a pebbleFile that syncs.
type pebbleSyncingFile struct{ *pebbleFile }

func (p pebbleSyncingFile) Sync() error {
	p.syncs.Add(1)
	return p.f.Sync()
}

// openPebbleLog reuses the recycled log file in dir for log pebbleLogNum
// and opens a LogWriter over it, as Pebble does when it rotates its WAL.
//
// With syncs false the LogWriter gets a file without a Sync method: a
// SyncRecord with a WaitGroup then makes the flush loop write out every
// queued byte (full blocks and the partial one) and release the waiter
// without syncing. That is how the append workloads end their timed region
// when every byte has been handed to the OS: LogWriter has no flush
// without a sync otherwise.
func openPebbleLog(dir string, syncs bool) (*pebbleLog, error) {
	fs, stopFS := pebbleFS()
	f, err := fs.ReuseForWrite(pebbleLogName(dir, pebbleOldLogNum), pebbleLogName(dir, pebbleLogNum), "pebble-wal")
	if err != nil {
		stopFS()
		return nil, err
	}
	if err := osfile.SyncDir(dir); err != nil {
		f.Close()
		stopFS()
		return nil, err
	}
	f = vfs.NewSyncingFile(f, vfs.SyncingFileOptions{
		BytesPerSync:    0,
		PreallocateSize: pebbleWALPreallocateSize(),
	})
	pf := &pebbleFile{f: f}
	var w io.Writer = pf
	if syncs {
		w = pebbleSyncingFile{pf}
	}
	sem := make(chan struct{}, record.SyncConcurrency-1)
	lw := record.NewLogWriter(w, pebbleLogNum, pebbleLogWriterConfig(sem))
	return &pebbleLog{w: lw, file: pf, sem: sem, stopFS: stopFS}, nil
}

// pebbleLogWriterConfig is the configuration pebble.Open gives its
// LogWriters; sem is the commit pipeline's sync-queue semaphore: a
// writer that asks for a sync takes a slot, the flush loop frees it once
// the sync is done.
func pebbleLogWriterConfig(sem chan struct{}) record.LogWriterConfig {
	return record.LogWriterConfig{
		WALFsyncLatency:     prometheus.NewHistogram(prometheus.HistogramOpts{Buckets: pebble.FsyncLatencyBuckets}),
		QueueSemChan:        sem,
		WriteWALSyncOffsets: func() bool { return false },
	}
}

// flush queues p as the last record with a WaitGroup and waits until the
// flush loop has released it: every record is then written (and synced,
// if the file syncs).
func (l *pebbleLog) flush(p []byte) error {
	var wg sync.WaitGroup
	var serr error
	l.sem <- struct{}{}
	wg.Add(1)
	if _, err := l.w.SyncRecord(p, &wg, &serr); err != nil {
		<-l.sem
		return err
	}
	wg.Wait()
	return serr
}

// close closes the LogWriter (EOF trailer, sync, close of the file) once.
func (l *pebbleLog) close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.w.Close()
	l.stopFS()
	return err
}

// pebbleCommitter appends records from several goroutines as Pebble's
// commit pipeline does for synced commits: a slot of the sync-queue
// semaphore first, SyncRecord under the pipeline's mutex, then the wait
// for the sync outside it.
type pebbleCommitter struct {
	mu  sync.Mutex
	w   *record.LogWriter
	sem chan struct{}
}

// commit appends p and waits until it is durable. wg and serr are the
// caller's, reused from one record to the next.
func (c *pebbleCommitter) commit(p []byte, wg *sync.WaitGroup, serr *error) error {
	c.sem <- struct{}{}
	wg.Add(1)
	c.mu.Lock()
	_, err := c.w.SyncRecord(p, wg, serr)
	c.mu.Unlock()
	if err != nil {
		// Not queued: nobody will release the wait or the slot.
		wg.Done()
		<-c.sem
		return err
	}
	wg.Wait()
	return *serr
}

// createPebbleReplayFile writes the Pebble log the replay workloads read:
// n records of size bytes (see walStamp), written by a LogWriter as log
// pebbleLogNum and closed (EOF trailer, synced). It is built under a
// temporary name and renamed into place, so a file under path is always
// complete; an existing one is kept.
func createPebbleReplayFile(path string, n, size int) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := vfs.Default.Create(tmp, "pebble-wal")
	if err != nil {
		return err
	}
	lw := record.NewLogWriter(f, pebbleLogNum, pebbleLogWriterConfig(make(chan struct{}, record.SyncConcurrency-1)))
	m := walRecordBuf(size)
	for i := range n {
		walStamp(m, i)
		if _, err := lw.WriteRecord(m); err != nil {
			lw.Close()
			return err
		}
	}
	if err := lw.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return osfile.SyncDir(filepath.Dir(path))
}

// pebbleReplay reads every record of the Pebble log in r (log pebbleLogNum)
// with record.Reader, copying each into buf (at least size+1 bytes, so
// that a longer record is noticed) with io.ReadFull, and folds it into t.
func pebbleReplay(r io.Reader, buf []byte, size int, t *walTally) error {
	rr := record.NewReader(r, pebbleLogNum)
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pebble replay after %d records: %w", t.count, err)
		}
		k, err := io.ReadFull(rec, buf)
		switch {
		case err == nil:
			return fmt.Errorf("verification failed: record %d is longer than %d bytes", t.count, len(buf))
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			// The record ended before buf did: k bytes.
		default:
			return fmt.Errorf("pebble replay, record %d: %w", t.count, err)
		}
		t.add(buf[:k], size)
	}
}

// replayPebbleFile opens the Pebble log at path with Pebble's file system
// and replays it into t.
func replayPebbleFile(path string, buf []byte, size int, t *walTally) error {
	fs, stopFS := pebbleFS()
	defer stopFS()
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pebbleReplay(f, buf, size, t)
}
