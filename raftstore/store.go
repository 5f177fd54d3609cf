package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// File names in a store's directory.
const (
	LogName    = "raft.log"    // the write-ahead log of entries and deletes
	StableName = "raft.stable" // the stable store's values
)

// Defaults of Options.
const (
	DefaultSegmentSize = 64 << 20
	// DefaultCapacity is the most log a store holds at once on the mapped
	// backends: reserved address space, not disk or memory.
	DefaultCapacity = 4 << 30
	// DefaultCopyCapacity is the default on the copy backend, which
	// reserves the whole view on the heap.
	DefaultCopyCapacity = 512 << 20
)

// Errors. Each is returned wrapped with the file (and position or offset
// where there is one); test with errors.Is. Reads of missing entries
// return raft.ErrLogNotFound.
var (
	ErrCorrupt  = errors.New("raftstore: corrupt store")
	ErrClosed   = errors.New("raftstore: store is closed")
	ErrNotNext  = errors.New("raftstore: entries do not follow the last index (the store is monotonic)")
	ErrMidRange = errors.New("raftstore: DeleteRange may remove a prefix or a suffix of the log, not the middle")
	ErrFailed   = errors.New("raftstore: an earlier write failed; the store refuses writes")
)

// Options configure a store. nil or the zero value means the defaults.
type Options struct {
	// Backend is the pager backend of the log (default Auto).
	Backend pager.Backend
	// SegmentSize is the unit the log file grows by and reuses once
	// DeleteRange has removed the entries in it (new stores only; a
	// multiple of 64 KiB; default 64 MiB, or a quarter of Capacity if
	// that is less). A record, and so an entry,
	// is at most half a segment; a StoreLogs batch of more than half a
	// segment is written as several atomic parts (see the package doc).
	SegmentSize int64
	// Capacity is the most log the store holds at once (new stores only):
	// address space reserved, not disk. Default DefaultCapacity,
	// DefaultCopyCapacity on the copy backend. StoreLogs fails with an
	// error wrapping wal.ErrFull while the log holds that much.
	Capacity int64
	// Recovery is the log's recovery mode at open (see wal.RecoveryMode).
	Recovery wal.RecoveryMode
	// Logger, if set, receives the log's events (recovery at open,
	// failures, truncations; see wal.Options.Logger). nil logs nothing.
	Logger *slog.Logger
}

// Store is a raft LogStore, StableStore and MonotonicLogStore on a
// write-ahead log. See the package doc. Its methods may be called from
// several goroutines at once.
type Store struct {
	dir        string
	path       string // the log file
	stablePath string
	log        *wal.Log
	maxRec     int
	maxBatch   int // bytes of records in one wal batch

	mu struct {
		sync.RWMutex
		// The entries first .. first+len(pos)-head-1 are at the wal
		// positions pos[head:], appended (not all durable yet: see
		// visible). Empty when head == len(pos).
		first uint64
		pos   []uint64
		head  int
		// visible is the last index StoreLogs has made durable and
		// returned (or will return) for: reads see entries up to it.
		visible uint64
		// gen counts DeleteRange calls, so a StoreLogs that waited for
		// durability while one ran publishes nothing.
		gen    uint64
		failed error
		closed bool
		pin    *wal.Pin
		// Encoding buffers, used under the write lock.
		enc      []byte
		ends     []int
		payloads [][]byte
	}
	inflight sync.WaitGroup // StoreLogs waiting for durability outside mu

	stableMu struct {
		sync.Mutex
		m map[string][]byte
	}
}

var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.StableStore       = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
)

// Open opens the store in dir, creating dir and an empty store if it
// holds none. Recovery reads the log from its checkpoint and rebuilds the
// index of entries.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
		if b := o.Backend; b == pager.Copy || (b == pager.Auto && pager.DefaultBackend(false) == pager.Copy) {
			o.Capacity = DefaultCopyCapacity
		}
	}
	if o.SegmentSize == 0 {
		// At most a quarter of the capacity, so that segments behind
		// the first entry can be reused while others fill.
		o.SegmentSize = min(DefaultSegmentSize, max(o.Capacity/4, 64<<10)&^(64<<10-1))
	}
	if err := osfile.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	s := &Store{
		dir:        dir,
		path:       filepath.Join(dir, LogName),
		stablePath: filepath.Join(dir, StableName),
	}
	m, err := loadStable(s.stablePath)
	if err != nil {
		return nil, err
	}
	s.stableMu.m = m
	wo := &wal.Options{
		Layout:        wal.Growing,
		SegmentSize:   o.SegmentSize,
		Capacity:      o.Capacity,
		Backend:       o.Backend,
		Sync:          wal.SyncNever,
		MaxRecordSize: int(o.SegmentSize / 2),
		Recovery:      o.Recovery,
		Replay:        s.replay,
		Logger:        o.Logger,
		// A full log fails StoreLogs rather than blocking it forever
		// while it holds the store's lock.
		Full: wal.FullError,
	}
	if _, serr := os.Stat(s.path); errors.Is(serr, fs.ErrNotExist) {
		s.log, err = wal.Create(s.path, wo)
		if err == nil {
			// The log grows by a segment written with zeroes at its
			// first append, and the sync after that writes the whole
			// segment: let that happen here, with a delete record of
			// nothing (no entry has index 0), not under the first
			// StoreLogs.
			if _, err = s.log.AppendSync(context.Background(), appendDelete(nil, 0, 0)); err != nil {
				s.log.Close()
			}
		}
	} else {
		s.log, err = wal.Open(s.path, wo)
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	s.maxRec = s.log.MaxRecordSize()
	// From the log, not from o: SegmentSize applies to new stores only,
	// and a reopened store keeps the segment size it was created with.
	s.maxBatch = int(s.log.Info().SegmentSize / 2)
	s.mu.visible = s.lastLocked()
	at := s.log.Written()
	if s.countLocked() > 0 {
		at = s.mu.pos[s.mu.head]
	}
	if s.mu.pin, err = s.log.Pin(at); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	return s, nil
}

// replay applies a record recovery kept: the log's records from its
// checkpoint on are the store's StoreLogs and DeleteRange calls, replayed
// in order.
func (s *Store) replay(pos uint64, p []byte) error {
	kind, index, max, err := peekRecord(p)
	if err == nil {
		if kind == kindEntry {
			err = s.applyEntryLocked(index, pos)
		} else {
			err = s.applyDeleteLocked(index, max)
		}
	}
	if err != nil {
		return fmt.Errorf("raftstore: %s: record at position %d: %w (%w)", s.path, pos, err, ErrCorrupt)
	}
	return nil
}

// countLocked is the number of entries in the index.
func (s *Store) countLocked() int { return len(s.mu.pos) - s.mu.head }

// lastLocked is the index of the last entry appended, 0 if none.
func (s *Store) lastLocked() uint64 {
	if n := s.countLocked(); n > 0 {
		return s.mu.first + uint64(n) - 1
	}
	return 0
}

// applyEntryLocked adds entry index at position pos to the index.
func (s *Store) applyEntryLocked(index, pos uint64) error {
	if s.countLocked() == 0 {
		s.mu.first, s.mu.pos, s.mu.head = index, s.mu.pos[:0], 0
	} else if last := s.lastLocked(); index != last+1 {
		return fmt.Errorf("entry %d after entry %d: %w", index, last, ErrNotNext)
	}
	s.mu.pos = append(s.mu.pos, pos)
	return nil
}

// checkDeleteLocked says whether DeleteRange(min, max) removes anything,
// or why it cannot be applied.
func (s *Store) checkDeleteLocked(min, max uint64) (bool, error) {
	if min > max || s.countLocked() == 0 {
		return false, nil
	}
	first, last := s.mu.first, s.lastLocked()
	if max < first || min > last {
		return false, nil
	}
	if min > first && max < last {
		return false, fmt.Errorf("DeleteRange(%d, %d) of entries [%d, %d]: %w", min, max, first, last, ErrMidRange)
	}
	return true, nil
}

// applyDeleteLocked removes the entries in [min, max] from the index.
func (s *Store) applyDeleteLocked(min, max uint64) error {
	ok, err := s.checkDeleteLocked(min, max)
	if !ok {
		return err
	}
	first, last := s.mu.first, s.lastLocked()
	switch {
	case min <= first && max >= last: // all
		s.mu.pos, s.mu.head, s.mu.first = s.mu.pos[:0], 0, 0
	case min <= first: // a prefix
		s.mu.head += int(max - first + 1)
		s.mu.first = max + 1
		// Keep the dropped prefix from growing without bound: move the
		// live positions down once they are the smaller half.
		if s.mu.head >= 1024 && s.mu.head > len(s.mu.pos)/2 {
			n := copy(s.mu.pos, s.mu.pos[s.mu.head:])
			s.mu.pos, s.mu.head = s.mu.pos[:n], 0
		}
	default: // a suffix
		s.mu.pos = s.mu.pos[:len(s.mu.pos)-int(last-min+1)]
	}
	return nil
}

// usableLocked returns why the store cannot be used, if it cannot.
func (s *Store) usableLocked() error {
	if s.mu.closed {
		return fmt.Errorf("raftstore: %s: %w", s.dir, ErrClosed)
	}
	return nil
}

// writableLocked returns why the store cannot be written, if it cannot.
func (s *Store) writableLocked() error {
	if err := s.usableLocked(); err != nil {
		return err
	}
	if s.mu.failed != nil {
		return fmt.Errorf("raftstore: %s: %w (%w)", s.dir, ErrFailed, s.mu.failed)
	}
	return nil
}

// failLocked records a write error that leaves the index unsure of what
// the log holds: the store refuses writes from then on.
func (s *Store) failLocked(err error) {
	if s.mu.failed == nil {
		s.mu.failed = err
	}
}

// FirstIndex returns the first index written, 0 for no entries.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usableLocked(); err != nil {
		return 0, err
	}
	if s.countLocked() == 0 || s.mu.visible < s.mu.first {
		return 0, nil
	}
	return s.mu.first, nil
}

// LastIndex returns the last index written, 0 for no entries.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usableLocked(); err != nil {
		return 0, err
	}
	if s.countLocked() == 0 || s.mu.visible < s.mu.first {
		return 0, nil
	}
	return s.mu.visible, nil
}

// GetLog gets the entry at index into l, or returns raft.ErrLogNotFound.
// l owns the Data and Extensions it gets.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if s.countLocked() == 0 || index < s.mu.first || index > s.mu.visible {
		return raft.ErrLogNotFound
	}
	pos := s.mu.pos[s.mu.head+int(index-s.mu.first)]
	// The record is read where the log is mapped: under the fault guard,
	// so a file cut short under the store, or a read error of the disk,
	// is an error naming the file, not a SIGBUS.
	var err error
	if ferr := pager.Guard(func() {
		var p []byte
		if p, err = s.recordLocked(pos); err != nil {
			return
		}
		if derr := decodeEntry(p, l); derr != nil {
			err = s.corrupt(pos, derr)
		}
	}); ferr != nil {
		return s.corrupt(pos, ferr)
	}
	if err != nil {
		return err
	}
	if l.Index != index {
		return s.corrupt(pos, fmt.Errorf("entry %d where entry %d should be", l.Index, index))
	}
	return nil
}

// corrupt is the error for damage found in the record at pos.
func (s *Store) corrupt(pos uint64, err error) error {
	return fmt.Errorf("raftstore: %s at offset %d (log position %d): %w (%w)", s.path, s.log.FileOffset(pos), pos, err, ErrCorrupt)
}

// recordLocked returns the payload of the data record at pos, its header
// and checksum verified (see the wal package doc for the record header).
// The slice is the log's mapping: valid while mu is held.
func (s *Store) recordLocked(pos uint64) ([]byte, error) {
	h, err := s.log.Bytes(pos, wal.HeaderSize)
	if err != nil {
		return nil, s.corrupt(pos, err)
	}
	n := binary.LittleEndian.Uint32(h[4:])
	switch {
	case binary.LittleEndian.Uint64(h[8:]) != pos:
		return nil, s.corrupt(pos, fmt.Errorf("the record header names position %d", binary.LittleEndian.Uint64(h[8:])))
	case h[20] != 1:
		return nil, s.corrupt(pos, fmt.Errorf("record of type %d, not a data record", h[20]))
	case h[21]&^3 != 0:
		return nil, s.corrupt(pos, fmt.Errorf("record flags %#x", h[21]))
	case int64(n) > int64(s.maxRec):
		return nil, s.corrupt(pos, fmt.Errorf("record of %d bytes, at most %d", n, s.maxRec))
	}
	p, err := s.log.Bytes(pos+wal.HeaderSize, int(n))
	if err != nil {
		return nil, s.corrupt(pos, err)
	}
	sum := crc32.Update(crc32.Checksum(h[4:wal.HeaderSize], castagnoli), castagnoli, p)
	if want := binary.LittleEndian.Uint32(h); sum != want {
		return nil, s.corrupt(pos, fmt.Errorf("record checksum %#x, its bytes give %#x", want, sum))
	}
	return p, nil
}

// StoreLog stores one entry; see StoreLogs.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries whose indices follow the last index (any index
// in an empty store) one by one. When it returns nil they are durable,
// and a crash keeps all of them or none (a batch of more than half a
// segment: a prefix of its parts, see the package doc). Concurrent calls
// share the log's syncs.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	if n := s.countLocked(); n > 0 && logs[0].Index != s.lastLocked()+1 {
		err := fmt.Errorf("raftstore: %s: StoreLogs of entry %d after entry %d: %w", s.dir, logs[0].Index, s.lastLocked(), ErrNotNext)
		s.mu.Unlock()
		return err
	}
	for i, l := range logs {
		if l.Index == 0 || (i > 0 && l.Index != logs[i-1].Index+1) {
			s.mu.Unlock()
			return fmt.Errorf("raftstore: %s: StoreLogs: entry %d at place %d of the batch: %w", s.dir, l.Index, i, ErrNotNext)
		}
	}
	// Encode every entry into one buffer, then cut it into payloads.
	size := 0
	for _, l := range logs {
		size += entrySize(l)
	}
	enc, ends := s.mu.enc[:0], s.mu.ends[:0]
	if cap(enc) < size {
		enc = make([]byte, 0, size)
	}
	for _, l := range logs {
		enc = appendEntry(enc, l)
		ends = append(ends, len(enc))
	}
	payloads := s.mu.payloads[:0]
	start := 0
	for i, e := range ends {
		if e-start > s.maxRec {
			s.mu.Unlock()
			return fmt.Errorf("raftstore: %s: entry %d encodes to %d bytes, at most %d: %w", s.dir, logs[i].Index, e-start, s.maxRec, wal.ErrTooLarge)
		}
		payloads = append(payloads, enc[start:e])
		start = e
	}
	s.mu.enc, s.mu.ends = enc, ends
	defer func() { clear(payloads); s.mu.payloads = payloads[:0] }()

	// Append in parts of at most maxBatch bytes (one part for any batch
	// of normal size), and index every entry.
	ctx := context.Background()
	var end uint64
	for i := 0; i < len(payloads); {
		j, bytes := i, 0
		for j < len(payloads) && (j == i || bytes+wal.RecordSize(len(payloads[j])) <= s.maxBatch) {
			bytes += wal.RecordSize(len(payloads[j]))
			j++
		}
		pos, err := s.log.AppendBatch(ctx, payloads[i:j])
		if err != nil {
			if i > 0 {
				// Parts already appended may or may not reach the
				// disk: the index cannot say what the log holds.
				s.failLocked(err)
			}
			s.mu.Unlock()
			return fmt.Errorf("raftstore: %s: StoreLogs: %w", s.dir, err)
		}
		for k := i; k < j; k++ {
			if err := s.applyEntryLocked(logs[k].Index, pos); err != nil {
				panic(err) // checked above
			}
			pos += uint64(wal.RecordSize(len(payloads[k])))
		}
		end = pos
		i = j
	}
	gen, last := s.mu.gen, logs[len(logs)-1].Index
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	err := s.log.WaitDurable(ctx, end)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failLocked(err)
		return fmt.Errorf("raftstore: %s: StoreLogs: %w", s.dir, err)
	}
	// Every record before end is durable, so every entry appended before
	// these is too: the visible end moves to them (unless a DeleteRange
	// ran meanwhile; it made everything appended before it visible).
	if gen == s.mu.gen && last > s.mu.visible {
		s.mu.visible = last
	}
	return nil
}

// DeleteRange deletes the entries min through max. It must remove a
// prefix of the log (after a snapshot), a suffix (entries a new leader
// overwrites), or all of it; ranges outside the log are no-ops. When it
// returns nil the deletion is durable: a delete record is appended and
// synced, and recovery applies it. Deleting a prefix frees its space
// (wal TruncateFront): segments behind it are reused. If that last step
// fails, DeleteRange returns its error although the entries are deleted
// (durably): only the space stays in use until a later prefix deletion.
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	ok, err := s.checkDeleteLocked(min, max)
	if err != nil {
		return fmt.Errorf("raftstore: %s: %w", s.dir, err)
	}
	if !ok {
		return nil
	}
	s.mu.enc = appendDelete(s.mu.enc[:0], min, max)
	if _, err := s.log.AppendSync(context.Background(), s.mu.enc); err != nil {
		// The record may yet reach the disk: the store cannot say
		// whether the range is deleted after a crash.
		s.failLocked(err)
		return fmt.Errorf("raftstore: %s: DeleteRange(%d, %d): %w", s.dir, min, max, err)
	}
	prefix := min <= s.mu.first
	if err := s.applyDeleteLocked(min, max); err != nil {
		return err
	}
	// The sync made every entry appended before the record durable.
	s.mu.visible = s.lastLocked()
	s.mu.gen++
	if !prefix {
		return nil
	}
	at := s.log.Written()
	if s.countLocked() > 0 {
		at = s.mu.pos[s.mu.head]
	}
	if err := s.log.TruncateFront(at); err != nil {
		return fmt.Errorf("raftstore: %s: DeleteRange(%d, %d): freeing the space: %w", s.dir, min, max, err)
	}
	s.mu.pin.Move(at)
	return nil
}

// IsMonotonic reports true: the store keeps entries by index in a dense
// array of log positions, so it refuses a gap (StoreLogs must continue
// the last index), and raft removes every entry after restoring a
// snapshot instead of leaving one, which costs one record here.
func (s *Store) IsMonotonic() bool { return true }

// Set stores val under key durably (see the package doc: the stable
// file is replaced atomically).
func (s *Store) Set(key, val []byte) error {
	// stableMu first: Close takes it after marking the store closed, so
	// no Set writes the file once Close has returned.
	s.stableMu.Lock()
	defer s.stableMu.Unlock()
	s.mu.RLock()
	err := s.usableLocked()
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	next := make(map[string][]byte, len(s.stableMu.m)+1)
	for k, v := range s.stableMu.m {
		next[k] = v
	}
	next[string(key)] = append([]byte{}, val...)
	b := encodeStable(next)
	if len(b) > stableMaxSize {
		return fmt.Errorf("raftstore: %s: set %q: the values would take %d bytes, more than the stable file may hold (%d): %w",
			s.stablePath, key, len(b), stableMaxSize, wal.ErrTooLarge)
	}
	if err := writeStable(s.stablePath, b); err != nil {
		return err
	}
	s.stableMu.m = next
	return nil
}

// Get returns the value stored under key: a copy, or nil with no error if
// key was never set (as raft.StableStore says; raft also accepts an
// error reading "not found", which raft-boltdb returns).
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	err := s.usableLocked()
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	s.stableMu.Lock()
	defer s.stableMu.Unlock()
	v, ok := s.stableMu.m[string(key)]
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

// SetUint64 stores val under key as 8 little-endian bytes, in the key
// space of Set.
func (s *Store) SetUint64(key []byte, val uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], val)
	return s.Set(key, b[:])
}

// GetUint64 returns the value SetUint64 stored under key, or 0 with no
// error if key was never set (as raft.StableStore says). A value of
// another size than 8 bytes (set with Set) is an error.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftstore: %s: key %q holds %d bytes, not a uint64", s.stablePath, key, len(v))
	}
	return binary.LittleEndian.Uint64(v), nil
}

// Stats is a snapshot of a store's state and its log's counters.
type Stats struct {
	// FirstIndex and LastIndex are the store's first and last entries,
	// as FirstIndex and LastIndex return them (0 and 0 when empty).
	FirstIndex, LastIndex uint64
	// LogBytes is the part of the log file in use: live entries, and
	// deleted entries and delete records not yet behind the first live
	// entry.
	LogBytes uint64
	// Log is the log's metrics (appends, syncs, records per sync, sync
	// latency).
	Log wal.Metrics
}

// Stats returns the store's figures.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var st Stats
	if s.mu.closed {
		return st
	}
	if s.countLocked() > 0 && s.mu.visible >= s.mu.first {
		st.FirstIndex, st.LastIndex = s.mu.first, s.mu.visible
	}
	st.LogBytes = s.log.Written() - s.log.Checkpoint()
	st.Log = s.log.Metrics()
	return st
}

// Recovery says what opening the log did (see wal.Report).
func (s *Store) Recovery() wal.Report { return s.log.Report() }

// Close waits for StoreLogs calls under way, then closes the log. The
// store must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return fmt.Errorf("raftstore: %s: %w", s.dir, ErrClosed)
	}
	s.mu.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	s.stableMu.Lock() // wait for a Set under way; later ones see closed
	s.stableMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.pin.Release()
	if err := s.log.Close(); err != nil {
		return fmt.Errorf("raftstore: close %s: %w", s.dir, err)
	}
	return nil
}
