package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/ring"
)

// RecoveryMode says what Open does with a log that was not closed cleanly
// or is damaged. Every Open reports what it did (Log.Report).
type RecoveryMode uint8

// Recovery modes.
const (
	// RecoverDefault cuts only an ambiguous tail: records after the last
	// point the sync markers prove durable that do not parse (a write cut
	// short by a crash). Damage proven to lie inside synced data is an
	// error naming the file and offset: the log does not open.
	RecoverDefault RecoveryMode = iota
	// RecoverStrict treats any defect, a torn tail or an incomplete batch
	// included, as an error. For checking a log that was closed cleanly.
	RecoverStrict
	// RecoverPointInTime stops at the first record that does not parse,
	// wherever it is, and opens the log up to there, reporting what it
	// dropped.
	RecoverPointInTime
	// RecoverSalvage skips damaged records, reports each, and keeps
	// everything readable around them. It first copies the file aside
	// (Report.SalvageCopy). An offline tool for logs that will not
	// otherwise open.
	RecoverSalvage
)

// String returns the mode's name.
func (m RecoveryMode) String() string {
	switch m {
	case RecoverDefault:
		return "default"
	case RecoverStrict:
		return "strict"
	case RecoverPointInTime:
		return "point-in-time"
	case RecoverSalvage:
		return "salvage"
	}
	return fmt.Sprintf("RecoveryMode(%d)", uint8(m))
}

// Report says what an Open did.
type Report struct {
	Mode       RecoveryMode // the recovery mode Open ran
	Checkpoint uint64       // where the scan started
	End        uint64       // where the log ends now
	Synced     uint64       // how far the log was proven durable before recovery (sync markers, header)
	Records    int          // data records found
	// A cut: the log was shortened at CutAt, for Reason; DroppedRecords
	// complete records (DroppedBytes bytes up to the end of the last of
	// them) were found after the cut and dropped with it.
	CutAt          uint64
	Reason         string
	DroppedRecords int
	DroppedBytes   uint64
	// Rewritten bytes after the last proven sync were written again and
	// synced, so that no page the kernel may have marked clean after a
	// failed sync can leave a hole under later records.
	Rewritten uint64
	// Salvage: Skipped are the damaged ranges skipped, and SalvageCopy
	// is where the original file was copied.
	Skipped     []Damage
	SalvageCopy string
	Epoch       uint32 // the epoch new records carry
}

// Damage is a damaged range found by recovery.
type Damage struct {
	Position   uint64 // log position of the first damaged byte
	FileOffset int64  // file offset of the first damaged byte
	Length     uint64 // bytes skipped
	Reason     string // what was wrong, as a reader's error would say it
}

// Cut reports whether recovery shortened the log.
func (r Report) Cut() bool { return r.Reason != "" }

// String describes the recovery in one line: what was kept, and what was cut and why.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "recovery (%v): scanned from %d to %d, %d records, proven durable through %d", r.Mode, r.Checkpoint, r.End, r.Records, r.Synced)
	if r.Cut() {
		fmt.Fprintf(&b, "; cut at %d: %s; dropped %d complete records (%d bytes)", r.CutAt, r.Reason, r.DroppedRecords, r.DroppedBytes)
	}
	for _, d := range r.Skipped {
		fmt.Fprintf(&b, "; skipped %d bytes at position %d (file offset %d): %s", d.Length, d.Position, d.FileOffset, d.Reason)
	}
	if r.Rewritten > 0 {
		fmt.Fprintf(&b, "; rewrote %d bytes after the last proven sync", r.Rewritten)
	}
	if r.SalvageCopy != "" {
		fmt.Fprintf(&b, "; original copied to %s", r.SalvageCopy)
	}
	return b.String()
}

// scanner walks the records of a log from its checkpoint. It reads with
// large preads into a reused buffer, not through the mapping: see
// "Recovery" in the package doc for why.
type scanner struct {
	l      *Log
	m      meta
	limit  uint64 // no record may end past this (checkpoint + capacity)
	maxRec int
	buf    []byte // bytes of positions [bufAt, bufAt+len(buf))
	bufAt  uint64
	seg    uint64 // the segment size in the growing layout, else 0
	// replay receives every data record the scan keeps (Options.Replay).
	replay func(pos uint64, data []byte) error
	// The members of an open batch, and their payloads.
	pending []heldRecord
	held    []byte
	dec     []byte // a compressed record, decoded for replay
}

// scanChunk is the size of the scanner's reads: small enough that a chunk
// is still in the CPU's cache when the checksums read it. Measured
// opening and replaying a 256 MiB log in a fresh process here: 4 MiB
// chunks 60-65 ms, 1 MiB 51-53 ms, 256 KiB 41-47 ms, 128 KiB 44-47 ms,
// 64 KiB 50-54 ms. (Reading the next chunk on another goroutine while
// this one is checked made it slower on this 2-core machine: 79-85 ms.)
const scanChunk = 256 << 10

// bytes returns the n bytes at pos, reading them if the buffer does not
// hold them. The slice is valid until the next call.
func (s *scanner) bytes(pos uint64, n int) ([]byte, error) {
	if pos >= s.bufAt && pos+uint64(n) <= s.bufAt+uint64(len(s.buf)) {
		off := int(pos - s.bufAt)
		return s.buf[off : off+n], nil
	}
	want := uint64(max(n, scanChunk))
	if room := s.limit - min(pos, s.limit); want > room {
		want = max(room, uint64(n))
	}
	want = min(want, uint64(s.l.r.Capacity()))
	if s.seg != 0 {
		// Read up to the end of the segment (unless n needs more): the
		// next slot may hold no segment yet.
		want = max(uint64(n), min(want, s.seg-pos%s.seg))
	}
	if cap(s.buf) < int(want) {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	if err := s.l.r.ReadAt(s.buf, pos); err != nil {
		s.buf = s.buf[:0]
		if errors.Is(err, ring.ErrRange) {
			// No segment holds these positions: the log ends before them.
			return nil, fmt.Errorf("%w: %v", errStale, err)
		}
		return nil, err
	}
	s.bufAt = pos
	return s.buf[:n], nil
}

// epochs is the range of epochs a record at pos may carry.
func (s *scanner) epochs(pos uint64) (uint32, uint32) {
	if pos >= s.m.epochStart {
		return s.m.epoch, s.m.epoch
	}
	return 1, s.m.epoch - 1
}

// record parses the record at pos: its header, its full bytes (header and
// payload, valid until the next read) and an error saying why it is not a
// valid record.
func (s *scanner) record(pos uint64) (recordHeader, []byte, error) {
	if pos+headerSize > s.limit {
		return recordHeader{}, nil, errStale
	}
	hb, err := s.bytes(pos, headerSize)
	if err != nil {
		return recordHeader{}, nil, err
	}
	lo, hi := s.epochs(pos)
	h, err := parseHeader(hb, pos, lo, hi, s.maxRec)
	if err != nil {
		return h, nil, err
	}
	if pos+uint64(recordSize(int(h.length))) > s.limit {
		return h, nil, fmt.Errorf("%w: a record of %d bytes at %d runs past the end of the log space (%d)", errBadHeader, h.length, pos, s.limit)
	}
	rec, err := s.bytes(pos, headerSize+int(h.length))
	if err != nil {
		return h, nil, err
	}
	if err := checkRecord(rec); err != nil {
		return h, nil, err
	}
	if h.typ == typeSync {
		if v := binary.LittleEndian.Uint64(rec[headerSize:]); v > pos {
			return h, nil, fmt.Errorf("%w: sync marker at %d claims %d", errBadHeader, pos, v)
		}
	}
	return h, rec, nil
}

// damaged reports whether err says a record claimed this place but is
// broken, rather than that no record is here.
func damaged(err error) bool { return !errors.Is(err, errZeroed) && !errors.Is(err, errStale) }

// scanResult is what a scan from the checkpoint found.
type scanResult struct {
	end       uint64 // end of the last complete record or batch
	stopAt    uint64 // where the chain of records stopped
	stopErr   error  // why
	synced    uint64 // the largest synced-through value of a marker before stopAt
	records   int
	openBatch bool // stopAt is inside a batch that never ended
	pending   int  // complete members of that batch (held in the scanner)
}

// scan follows the chain of records from pos until one does not parse.
// Records it keeps go to the replay function as they are found; members
// of a batch only once the batch is complete.
func (s *scanner) scan(pos uint64) (scanResult, error) {
	// Everything before the scan's start was durable when it was written
	// down as the checkpoint.
	res := scanResult{end: pos, synced: pos}
	s.pending = s.pending[:0]
	s.held = s.held[:0]
	inBatch := false
	for {
		h, rec, err := s.record(pos)
		if err == nil && h.typ == typeSync && inBatch {
			err = fmt.Errorf("%w: a type %d record inside a batch", errBadHeader, h.typ)
		}
		if err != nil {
			res.stopAt, res.stopErr, res.openBatch, res.pending = pos, err, inBatch, len(s.pending)
			return res, nil
		}
		at := pos
		pos += uint64(recordSize(int(h.length)))
		switch h.typ {
		case typeSync:
			res.synced = max(res.synced, binary.LittleEndian.Uint64(rec[headerSize:]))
		case typeSkip:
			// Salvage broke a batch here and kept its intact members.
			inBatch = false
		case typeData:
			inBatch = h.flags&flagMore != 0
			if inBatch || len(s.pending) > 0 {
				// Held until the batch proves complete: copied, since the
				// read buffer moves on (a batch is at most a span).
				s.pending = append(s.pending, heldRecord{pos: at, off: len(s.held), n: int(h.length), flags: h.flags})
				if s.replay != nil {
					s.held = append(s.held, rec[headerSize:]...)
				}
			} else if s.replay != nil {
				if err := s.deliver(at, h.flags, rec[headerSize:]); err != nil {
					return res, err
				}
			}
		}
		if !inBatch {
			res.end = pos
			switch {
			case len(s.pending) > 0:
				res.records += len(s.pending)
				if err := s.replayHeld(); err != nil {
					return res, err
				}
			case h.typ == typeData:
				res.records++
			}
		}
	}
}

// heldRecord is a batch member waiting for its batch to complete.
type heldRecord struct {
	pos    uint64
	off, n int // its payload in scanner.held
	flags  uint8
}

// deliver hands a record to the replay function, decoded if it is
// compressed (into a buffer the scanner reuses).
func (s *scanner) deliver(pos uint64, flags uint8, payload []byte) error {
	if c := codecOf(flags); c != NoCompression {
		out, err := s.l.dec.decode(s.dec, c, payload)
		if err != nil {
			return fmt.Errorf("record at position %d (file offset %d): %w: %w", pos, s.l.r.FileOffset(pos), ErrCorrupt, err)
		}
		s.dec = out
		payload = out
	}
	if err := s.replay(pos, payload); err != nil {
		return fmt.Errorf("replay of the record at position %d (file offset %d): %w", pos, s.l.r.FileOffset(pos), err)
	}
	return nil
}

// replayHeld hands the held members of a batch to the replay function.
func (s *scanner) replayHeld() error {
	if s.replay != nil {
		for _, m := range s.pending {
			if err := s.deliver(m.pos, m.flags, s.held[m.off:m.off+m.n]); err != nil {
				return err
			}
		}
	}
	s.pending = s.pending[:0]
	s.held = s.held[:0]
	return nil
}

// markersAfter looks past a stop for valid sync markers: proof of how far
// the log was durable when later writes were made. It also counts the
// complete records found there (what a cut drops).
func (s *scanner) markersAfter(from uint64) (synced uint64, records int, lastEnd uint64) {
	s.validAfter(from, func(pos uint64, h recordHeader, rec []byte) bool {
		if h.typ == typeSync {
			synced = max(synced, binary.LittleEndian.Uint64(rec[headerSize:]))
		} else if h.typ == typeData {
			records++
		}
		lastEnd = pos + uint64(recordSize(int(h.length)))
		return true
	})
	return synced, records, lastEnd
}

// nextRecord finds the first valid record after from (salvage).
func (s *scanner) nextRecord(from uint64) (next uint64, ok bool) {
	s.validAfter(from, func(pos uint64, _ recordHeader, _ []byte) bool {
		next, ok = pos, true
		return false
	})
	return next, ok
}

// validAfter calls fn for each valid record after from, in order, while fn
// returns true. A record names its own position, so one comparison per 8
// bytes passes over everything else.
func (s *scanner) validAfter(from uint64, fn func(pos uint64, h recordHeader, rec []byte) bool) {
	for base := from + align; base+headerSize <= s.limit; {
		n := int(min(s.limit-base, scanChunk))
		if s.seg != 0 {
			// Up to the end of the segment, and a header's worth into the
			// next (a header may straddle them).
			n = int(min(uint64(n), s.seg-base%s.seg+headerSize))
		}
		if n < headerSize {
			return
		}
		win, err := s.bytes(base, n)
		last := false
		if err != nil && s.seg != 0 && uint64(n) > s.seg-base%s.seg {
			// No segment holds the next slot (the log ends in this
			// one): search the rest of this segment, the last.
			n, last = int(s.seg-base%s.seg), true
			win, err = s.bytes(base, n)
		}
		if err != nil {
			return
		}
		var hits []uint64
		for i := 0; i+headerSize <= len(win); i += align {
			if pos := base + uint64(i); binary.LittleEndian.Uint64(win[i+8:i+16]) == pos {
				hits = append(hits, pos)
			}
		}
		for _, pos := range hits { // record() may read over the window
			if h, rec, err := s.record(pos); err == nil && !fn(pos, h, rec) {
				return
			}
		}
		if last {
			return
		}
		base += uint64((n-headerSize)/align*align + align)
	}
}

// recover scans the log from its checkpoint, decides where it ends
// according to the recovery mode, makes what it keeps durable, and starts
// a new epoch for the records to come.
func (l *Log) recover() error {
	l.mu.Lock()
	m := l.mu.meta
	l.mu.Unlock()
	mode := l.opts.Recovery
	s := &scanner{l: l, m: m, limit: m.checkpoint + uint64(l.r.Capacity()), maxRec: l.maxRec, replay: l.opts.Replay}
	if l.r.Layout() == ring.Growing {
		s.seg = uint64(l.r.Span())
	}
	rep := Report{Mode: mode, Checkpoint: m.checkpoint}
	fail := func(pos uint64, format string, args ...any) error {
		return fmt.Errorf("wal: open %s: record at position %d (file offset %d): %s: %w",
			l.name, pos, l.r.FileOffset(pos), fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if m.epoch == l.epochLimit {
		return fmt.Errorf("wal: open %s: %w", l.name, errEpochsSpent)
	}
	if mode == RecoverSalvage {
		rep.SalvageCopy = l.salvageCopy // copied by Open
	}
	// The ring header's head was written after a sync (at the last Close
	// or Open): durable, like what sync markers prove.
	if h := l.r.Head(); h >= m.checkpoint && h <= s.limit {
		rep.Synced = h
	}
	pos := m.checkpoint
	var res scanResult
	for {
		var err error
		if res, err = s.scan(pos); err != nil {
			return fmt.Errorf("wal: open %s: replay: %w", l.name, err)
		}
		rep.Records += res.records
		rep.Synced = max(rep.Synced, res.synced)
		var later, dropEnd uint64
		var dropRecs int
		// A log closed cleanly at exactly where the chain ends has nothing
		// after it to prove; otherwise look.
		if clean := m.clean && res.stopAt == m.cleanEnd && !damaged(res.stopErr) && !res.openBatch; !clean {
			later, dropRecs, dropEnd = s.markersAfter(res.stopAt)
		}
		dropRecs += res.pending
		provenSynced := max(rep.Synced, later)
		rep.Synced = provenSynced
		isDamage := damaged(res.stopErr)
		inSynced := res.stopAt < provenSynced
		why := res.stopErr.Error()
		if res.openBatch && !isDamage {
			why = "a batch that never ended (" + why + ")"
		}
		switch {
		case mode == RecoverSalvage && (isDamage || inSynced):
			next, ok := s.nextRecord(res.stopAt)
			if !ok {
				break
			}
			// Cover the damage with a record readers skip, so the chain
			// goes on to the next good record. The intact members of a
			// batch the damage broke are kept, like every intact record.
			rep.Records += len(s.pending)
			if err := s.replayHeld(); err != nil {
				return fmt.Errorf("wal: open %s: replay: %w", l.name, err)
			}
			if err := l.skipRange(res.stopAt, next); err != nil {
				return err
			}
			rep.Skipped = append(rep.Skipped, Damage{Position: res.stopAt, FileOffset: l.r.FileOffset(res.stopAt), Length: next - res.stopAt, Reason: why})
			pos = next
			continue
		case inSynced && (mode == RecoverDefault || mode == RecoverStrict):
			return fail(res.stopAt, "%s, inside data a sync marker proves durable through position %d", why, provenSynced)
		case mode == RecoverStrict && (isDamage || res.openBatch):
			return fail(res.stopAt, "%s (strict recovery accepts no torn tail)", why)
		}
		// A stop before the proven end drops synced records, even when
		// nothing after it parses: a cut to report.
		if isDamage || inSynced || res.openBatch || dropRecs > 0 {
			rep.CutAt = res.end
			rep.Reason = why
			if isDamage || inSynced {
				rep.Reason = fmt.Sprintf("%s at position %d (file offset %d)", why, res.stopAt, l.r.FileOffset(res.stopAt))
			}
			rep.DroppedRecords = dropRecs
			rep.DroppedBytes = max(dropEnd, res.stopAt) - res.end
		}
		break
	}
	end := res.end
	rep.End = end
	if err := l.r.SetHead(end); err != nil {
		return fmt.Errorf("wal: open %s: %w", l.name, err)
	}
	// The checkpoint consumer retains the log from the checkpoint on
	// (where the header says, whatever its slot says).
	at := m.checkpoint
	cp, err := l.r.Consumer(checkpointName, &ring.ConsumerOptions{ProducerOwned: true, At: &at})
	if err != nil {
		return fmt.Errorf("wal: open %s: %w", l.name, err)
	}
	l.cp = cp
	// Bytes after the last proven sync may sit in pages the kernel
	// marked clean after a failed write in an earlier process: write them
	// again before syncing.
	from := max(min(rep.Synced, end), m.checkpoint)
	if end > from {
		if err := l.r.Rewrite(from, end); err != nil {
			return fmt.Errorf("wal: open %s: %w", l.name, err)
		}
		rep.Rewritten = end - from
	}
	// A new epoch from the end on: whatever lies past the end (a torn
	// write, a dropped suffix) can never be read as a record of it.
	m.epoch++
	m.epochStart = end
	m.clean = false // set again by a clean Close
	rep.Epoch = m.epoch
	l.mu.Lock()
	l.mu.meta = m
	l.mu.Unlock()
	if err := l.writeMeta(); err != nil {
		return err
	}
	l.written.Store(end)
	l.synced.Store(end)
	l.report = rep
	return nil
}

// skipRange covers [from, to) with skip records (salvage): as many as it
// takes for each to be a record the log can read (a payload of at most
// the maximum record size), each carrying the epoch allowed where it is.
func (l *Log) skipRange(from, to uint64) error {
	if to-from < headerSize {
		return fmt.Errorf("wal: salvage %s: %d damaged bytes at position %d are too few for a skip record", l.name, to-from, from)
	}
	l.mu.Lock()
	epoch, epochStart := l.mu.meta.epoch, l.mu.meta.epochStart
	l.mu.Unlock()
	// Head must cover the range for Overwrite; the scan sets it for real
	// afterwards.
	if l.r.Head() < to {
		if err := l.r.SetHead(to); err != nil {
			return err
		}
	}
	most := uint64(headerSize+l.maxRec) &^ (align - 1)
	for p := from; p < to; {
		n := min(to-p, most)
		if rest := to - p - n; rest > 0 && rest < headerSize {
			n = to - p - headerSize // room for the last one's header
		}
		if n < headerSize {
			return fmt.Errorf("wal: salvage %s: %d damaged bytes at position %d cannot be covered by skip records of at most %d bytes", l.name, to-from, from, most)
		}
		payload, err := l.r.Raw(p+headerSize, int(n)-headerSize)
		if err != nil {
			return err
		}
		e := epoch
		if p < epochStart {
			e = max(epoch-1, 1)
		}
		rec := make([]byte, n)
		putRecord(rec, recordHeader{pos: p, epoch: e, typ: typeSkip}, payload)
		if err := l.r.Overwrite(p, rec); err != nil {
			return err
		}
		p += n
	}
	return nil
}

// copyAside copies the log file before salvage changes it, under a name
// of its own (path.salvage-<UTC time>, with -2, -3, ... when that exists:
// two salvages in the same second keep both copies), and makes the copy
// durable before the original is touched.
func copyAside(path string) (string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("wal: salvage %s: %w", path, err)
	}
	defer in.Close()
	base := path + ".salvage-" + time.Now().UTC().Format("20060102T150405")
	dst := base
	var out *os.File
	for n := 2; ; n++ {
		out, err = os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, os.ErrExist) || n > 1000 {
			break
		}
		dst = fmt.Sprintf("%s-%d", base, n)
	}
	if err != nil {
		return "", fmt.Errorf("wal: salvage %s: %w", path, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("wal: salvage %s: copying to %s: %w", path, dst, err)
	}
	if err := osfile.Fdatasync(out); err != nil {
		out.Close()
		return "", fmt.Errorf("wal: salvage %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("wal: salvage %s: %w", path, err)
	}
	if err := osfile.SyncDir(filepath.Dir(dst)); err != nil {
		return "", fmt.Errorf("wal: salvage %s: %w", path, err)
	}
	return dst, nil
}
