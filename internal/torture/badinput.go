//go:build linux

package torture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
	"github.com/ringlog/ringlog/wal"
)

// The badinput suite. It writes small logs (random backend, bounded or
// growing layout, 64-512 KiB; single records, batches, compressed records,
// sync markers; most get their front truncated and are written on until
// the ring wraps or, growing, a freed segment is reused; some are reopened
// midway so that two epochs meet), closes them cleanly, and then, trial
// after trial, damages a copy of one log's file in one way, opens it in
// one recovery mode and reads everything. Kinds of damage, in rotation,
// each kind (and each variant of it) meeting every mode in turn:
//
//   - flip: one bit inside a record of the log (its 24-byte header or its
//     payload, sync markers included). Trial by trial the flipped bit walks
//     through every bit of the header and across the payload.
//   - elsewhere: one bit outside the records: padding after a record, the
//     spare ring header copy, the reserved page, the consumer slots (the
//     state, flags, position and name of the log's checkpoint consumer
//     among them), unused or truncated space of the data area, the unused
//     part of a segment's header unit.
//   - file: hand-made damage: flips in a record header and in another
//     record's payload; a record length of 2^32-1 or another huge one; a
//     zeroed tail and a garbage tail (of the log, or of the file), or a run
//     of zeroed or garbage records longer than the largest record; a record
//     copied over another; a region or a segment copied from another log;
//     the file cut inside the ring header or inside a record header; the
//     ring header copies swapped; the ring header (or its current copy) of
//     another log; a flip in the current ring header copy or in a segment
//     header.
//   - clean: no damage; every mode opens the log without complaint.
//   - kv: a key-value store (storage/logkv): a flip in an entry, or in the
//     index checkpoint.
//
// What each recovery mode must do with a log closed cleanly (everything in
// it synced, the header's head proving it) once records are damaged:
//
//   - default and strict refuse to open it, with a corruption error naming
//     the file and the file offset of the first damaged record;
//   - point-in-time opens it cut before the first damaged record (before
//     its batch), reports the cut, and keeps every record before it;
//   - salvage copies the file aside first (the copy must equal the damaged
//     input), covers the damaged records with skip records, reports them,
//     and keeps every intact record around them; damage with no intact
//     record after it is cut off instead, before its batch. The salvaged
//     log must then open in the default mode with the same records.
//
// Damage outside the records may go unnoticed, but every record must come
// back intact in every mode. Damage to the file's metadata (a header from
// another log, a cut file, a broken segment header: records no mode can
// reach) may end in an error, which must name the file, or in a log that
// reports what it dropped; a log that opens without a word must hold every
// record.
//
// Another log's bytes are foreign to a log only by the positions and
// epochs its records name (see the wal package doc): two logs with the
// same history share both, and a record of one at the same position is a
// valid record of the other. So the other log a trial takes bytes from is
// built with epochs the damaged one never had (biBuild).
//
// In every trial: no panic (recovered, counted corrupt), no record returned
// that was not written at its position with these bytes (corrupt), and at
// most 64 MiB + 4x the file size allocated by the open and the read
// (corrupt otherwise).
//
// Counts: acked, records a mode promises to keep, checked; lost, of those,
// missing; undetected, trials whose damage to synced records went
// unreported (the log opened and read without a word).

func init() {
	register(Suite{Name: "badinput", order: 3, Quick: 1000, Full: 20000, Writes: true, run: runBadinput,
		Doc: "bit flips inside and outside records, huge lengths, zeroed and garbage tails, regions and headers from other logs, cut files, in every recovery mode and on a key-value store: damage inside synced records is always reported, recovery is the documented one, never a panic, wrong bytes or a huge allocation"})
}

// badinputBlind, for the package's tests: trials read the damaged file
// with a reader that trusts it (no checksums, no recovery), which the
// suite must catch.
var badinputBlind bool

// Sizes of the ring file (see package ring).
const (
	biHeaderCopy = 4096
	biSlotsEnd   = 64 << 10 // the data area starts here
	biSegUnit    = 64 << 10 // a segment's header unit (growing layout)
	biSegHdrLen  = 32
	biSlotsOff   = 12288 // consumer slots
	biSlotSize   = 128
)

// Classes of the bytes of a base log's file.
const (
	biUnused   = iota // unused data space, truncated records, the rest of a segment header unit
	biContent         // a record's header or payload
	biPad             // zeroes after a record's payload
	biHdrCur          // the ring header copy in use
	biHdrSpare        // the other copy
	biCtl             // the reserved page and the consumer slots
	biSegHdr          // a segment header (growing layout)
)

// biRec is a record of a base log's chain.
type biRec struct {
	pos    uint64
	typ    uint8
	flags  uint8
	length int     // stored payload length
	batch  int     // index (in biBase.recs) of the first record of its batch
	file   []int64 // file offset of each of its wal.RecordSize(length) bytes
	data   []byte  // data records: the payload appended
}

func (r *biRec) isData() bool { return r.typ == 1 }

// biBase is a log written once and damaged by many trials.
type biBase struct {
	lc     logConfig
	image  []byte
	recs   []biRec        // the chain of records from the checkpoint, in order
	byPos  map[uint64]int // data records by position
	class  []byte         // class of every byte of image
	recOf  []int32        // the record a content or padding byte belongs to
	cur    int64          // offset of the header copy in use
	spare  int64
	segs   []int64 // offsets of the segment header units
	slots  []int64 // offsets of the registered consumer slots
	segLen int64   // a segment's size (growing), else 0
	maxRec int
	data   int  // data records
	late   bool // see biBuild
}

func (b *biBase) String() string { return b.lc.String() }

// biLateReopens is how many times a late base is reopened before its
// first record.
const biLateReopens = 8

// biShape picks a small log shape.
func biShape(rng *rand.Rand) logConfig {
	bs := backends()
	lc := logConfig{Backend: bs[rng.IntN(len(bs))], Policy: "never"}
	if rng.IntN(3) == 0 {
		lc.Growing = true
		lc.SegmentSize = 64 << 10
		lc.Capacity = int64(4+rng.IntN(5)) * lc.SegmentSize
	} else {
		lc.Capacity = int64(1+rng.IntN(4)) << 16
	}
	return lc
}

// biPayload is record id's payload: the self-describing bytes of payload,
// or (compressible) its 24 bytes of description followed by a repeated
// pattern, so that a compressed record really is stored compressed.
func biPayload(id recID, size int, compressible bool) []byte {
	if !compressible {
		return payload(id, size)
	}
	b := payload(id, minPayload)
	binary.LittleEndian.PutUint32(b[20:], uint32(size))
	pat := byte(mix(id.run^uint64(id.k)) | 1)
	for len(b) < size {
		b = append(b, pat, pat, byte(len(b)>>8), 0)
	}
	return b[:size]
}

// biBuild writes a base log in dir and reads back its structure. With
// late, the log is reopened 8 times before its first record (its records
// carry epochs from 10 on) and never while it is written; otherwise its
// epochs stay below 4. Two bases built one late and one not share no
// epoch, so that bytes of one are foreign to the other: the format tells
// records of another log only by their position and epoch (see the
// package doc of wal), and logs with the same history share both.
func biBuild(ctx context.Context, rng *rand.Rand, dir string, lc logConfig, late bool) (*biBase, error) {
	path := filepath.Join(dir, "base.wal")
	os.Remove(path)
	os.Remove(path + ".live")
	defer os.Remove(path)
	defer os.Remove(path + ".live")
	o, err := lc.options()
	if err != nil {
		return nil, err
	}
	o.Full = wal.FullError // a full log fails the build rather than wait
	l, err := wal.Create(path, o)
	if err != nil {
		return nil, fmt.Errorf("create %s (%v): %w", path, lc, err)
	}
	for range biLateReopens {
		if !late {
			break
		}
		if err := l.Close(); err != nil {
			return nil, err
		}
		if l, err = wal.Open(path, o); err != nil {
			return nil, fmt.Errorf("reopen %s (%v): %w", path, lc, err)
		}
	}
	var (
		run     = rng.Uint64()
		k       int
		written [][]byte // payloads in the order appended
		starts  []uint64 // positions Append returned (record or batch starts)
		first   []int    // index in written of the record at each start
	)
	span := lc.Capacity
	if lc.Growing {
		span = lc.SegmentSize
	}
	maxSize := min(int(span)/12, l.MaxRecordSize()/2, 8<<10)
	size := func() int {
		if rng.IntN(4) == 0 {
			return minPayload + rng.IntN(maxSize-minPayload)
		}
		return minPayload + rng.IntN(512)
	}
	next := func(compressible bool) []byte {
		p := biPayload(recID{run: run, k: k}, size(), compressible)
		k++
		return p
	}
	// appendSome appends records until about n bytes are written.
	appendSome := func(n int64) error {
		if n <= 0 {
			return nil
		}
		for target := l.Written() + uint64(n); l.Written() < target; {
			at := len(written)
			var pos uint64
			var err error
			switch op := rng.IntN(10); {
			case op < 4:
				p := next(false)
				written = append(written, p)
				pos, err = l.AppendSync(ctx, p)
			case op < 6:
				ps := make([][]byte, 2+rng.IntN(3))
				for i := range ps {
					ps[i] = next(false)
				}
				written = append(written, ps...)
				pos, err = l.AppendBatchSync(ctx, ps)
			case op < 8:
				c := []wal.Compression{wal.S2, wal.Zstd}[rng.IntN(2)]
				ps := [][]byte{next(true)}
				if rng.IntN(3) == 0 {
					ps = append(ps, next(true)) // a compressed batch
				}
				written = append(written, ps...)
				pos, err = l.AppendWith(ctx, wal.AppendOptions{Compression: c, Sync: true}, ps...)
			default:
				p := next(false)
				written = append(written, p)
				pos, err = l.Append(ctx, p)
				if err == nil && rng.IntN(2) == 0 {
					err = l.Sync(ctx)
				}
			}
			if err != nil {
				return fmt.Errorf("append to %s (%v): %w", path, lc, err)
			}
			starts = append(starts, pos)
			first = append(first, at)
			if err := l.Flush(ctx); err != nil {
				return err
			}
		}
		return l.Sync(ctx)
	}
	fail := func(err error) (*biBase, error) {
		l.Close()
		return nil, err
	}
	if err := appendSome(lc.Capacity * int64(5+rng.IntN(4)) / 16); err != nil {
		return fail(err)
	}
	if !late && rng.IntN(2) == 0 {
		// Reopen: a new epoch starts.
		if err := l.Close(); err != nil {
			return nil, err
		}
		if l, err = wal.Open(path, o); err != nil {
			return nil, fmt.Errorf("reopen %s (%v): %w", path, lc, err)
		}
	}
	keepFrom := 0
	if rng.IntN(3) != 0 && len(starts) > 2 {
		// Truncate the front, then write on so that the ring wraps (or,
		// growing, a freed segment is reused).
		i := len(starts)/2 + rng.IntN(len(starts)-len(starts)/2)
		if err := l.TruncateFront(starts[i]); err != nil {
			return fail(fmt.Errorf("truncate %s (%v) at %d: %w", path, lc, starts[i], err))
		}
		keepFrom = first[i]
		// Within the space the log has left (the growing layout loses
		// up to a segment to where the checkpoint sits), with room for
		// the last record, its batch and their markers.
		room := lc.Capacity - int64(l.Written()-l.Checkpoint()) - lc.SegmentSize - 6*int64(maxSize+64)
		if err := appendSome(min(lc.Capacity*int64(8+rng.IntN(6))/16, room)); err != nil {
			return fail(err)
		}
	}
	b := &biBase{lc: lc, late: late, byPos: map[uint64]int{}, maxRec: l.MaxRecordSize()}
	if lc.Growing {
		b.segLen = lc.SegmentSize
	}
	// The chain of records, as the file holds it.
	pin, err := l.Pin(l.Checkpoint())
	if err != nil {
		return fail(err)
	}
	di := keepFrom
	batchStart := -1
	for pos, end := l.Checkpoint(), l.Written(); pos < end; {
		hb, err := l.Bytes(pos, wal.HeaderSize)
		if err != nil {
			pin.Release()
			return fail(err)
		}
		rec := biRec{pos: pos, length: int(binary.LittleEndian.Uint32(hb[4:])), typ: hb[20], flags: hb[21]}
		rec.batch = len(b.recs)
		if rec.isData() {
			if batchStart >= 0 {
				rec.batch = batchStart
			}
			if rec.flags&1 != 0 { // "more": members follow
				batchStart = rec.batch
			} else {
				batchStart = -1
			}
			if di >= len(written) {
				pin.Release()
				return fail(fmt.Errorf("%s (%v): more data records than appended", path, lc))
			}
			rec.data = written[di]
			di++
			b.byPos[pos] = len(b.recs)
			b.data++
		}
		n := wal.RecordSize(rec.length)
		rec.file = make([]int64, n)
		for i := range rec.file {
			rec.file[i] = l.FileOffset(pos + uint64(i))
		}
		b.recs = append(b.recs, rec)
		pos += uint64(n)
	}
	pin.Release()
	if di != len(written) {
		return fail(fmt.Errorf("%s (%v): %d data records in the chain, %d appended after the checkpoint", path, lc, di-keepFrom, len(written)-keepFrom))
	}
	// The log as a reader sees it must be what was appended.
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		return fail(err)
	}
	n := 0
	for pos, data := range rd.All() {
		if i, ok := b.byPos[pos]; !ok || !bytes.Equal(b.recs[i].data, data) {
			rd.Close()
			return fail(fmt.Errorf("%s (%v): record at %d reads back wrong before any damage", path, lc, pos))
		}
		n++
	}
	err = rd.Err()
	rd.Close()
	if err != nil || n != b.data {
		return fail(fmt.Errorf("%s (%v): read back %d of %d records: %v", path, lc, n, b.data, err))
	}
	if err := l.Close(); err != nil {
		return nil, err
	}
	if b.image, err = os.ReadFile(path); err != nil {
		return nil, err
	}
	b.classify()
	return b, nil
}

// classify sorts the bytes of the base image into classes.
func (b *biBase) classify() {
	n := len(b.image)
	b.class = make([]byte, n)
	b.recOf = make([]int32, n)
	for i := range b.recOf {
		b.recOf[i] = -1
	}
	seq := func(off int64) uint64 { return binary.LittleEndian.Uint64(b.image[off+16:]) }
	b.cur, b.spare = 0, biHeaderCopy
	if seq(biHeaderCopy) > seq(0) {
		b.cur, b.spare = biHeaderCopy, 0
	}
	fill := func(from, to int64, c byte) {
		for i := from; i < to && i < int64(n); i++ {
			b.class[i] = c
		}
	}
	fill(b.cur, b.cur+biHeaderCopy, biHdrCur)
	fill(b.spare, b.spare+biHeaderCopy, biHdrSpare)
	fill(2*biHeaderCopy, biSlotsEnd, biCtl)
	for off := int64(biSlotsOff); off+biSlotSize <= biSlotsEnd; off += biSlotSize {
		if binary.LittleEndian.Uint32(b.image[off:]) == 2 { // registered
			b.slots = append(b.slots, off)
		}
	}
	if b.segLen > 0 {
		for off := int64(biSlotsEnd); off+biSegUnit+b.segLen <= int64(n); off += biSegUnit + b.segLen {
			b.segs = append(b.segs, off)
			fill(off, off+biSegHdrLen, biSegHdr)
		}
	}
	for i, r := range b.recs {
		for j, off := range r.file {
			c := byte(biContent)
			if j >= wal.HeaderSize+r.length {
				c = biPad
			}
			b.class[off] = c
			b.recOf[off] = int32(i)
		}
	}
}

// bytesOfClass lists the offsets of the image's bytes in class c.
func (b *biBase) bytesOfClass(c ...byte) []int64 {
	var out []int64
	for i, x := range b.class {
		for _, y := range c {
			if x == y {
				out = append(out, int64(i))
			}
		}
	}
	return out
}

// Categories of damage, by what recovery owes the log's records.
const (
	biClean     = iota // no damage
	biElsewhere        // outside the records: every record kept, in every mode
	biBenign           // metadata changed without loss (the header copies swapped): the same
	biRecord           // inside records: see the suite's doc for each mode
	biMeta             // the file's metadata: an error naming the file, a report, or every record
)

// biDamage is a damaged copy of a base log.
type biDamage struct {
	what     string
	img      []byte
	category int
	// exact: the first damaged record is where recovery must stop, so an
	// error must name its file offset.
	exact bool
}

// biRun is the state of one run of the suite.
type biRun struct {
	c       *Config
	r       *Result
	rng     *rand.Rand
	dir     string
	path    string // where trials put the damaged log
	base    *biBase
	other   *biBase // an earlier log, for damage from another log
	kv      *biKV
	counts  map[string]int
	flips   int // bit flips made inside records so far
	bad     int // failures logged
	kvDir   string
	kvTrial string
}

var biModes = []wal.RecoveryMode{wal.RecoverDefault, wal.RecoverStrict, wal.RecoverPointInTime, wal.RecoverSalvage}

// biSchedule is the rotation of kinds of trials; "rest" alternates the
// key-value store and undamaged logs.
var biSchedule = []string{"flip", "flip", "flip", "elsewhere", "file", "flip", "elsewhere", "file", "rest", "file"}

// biSubKinds is how many variants of each kind the trials of that kind
// rotate through.
var biSubKinds = map[string]int{"clean": 1, "flip": 2, "elsewhere": 4, "file": 12}

// biTrialsPerBase is how many trials damage one base log.
const biTrialsPerBase = 20

func runBadinput(ctx context.Context, c *Config, dir string, trials int, r *Result) error {
	s := &biRun{c: c, r: r, rng: rand.New(rand.NewPCG(c.Seed, 0x626164696e707574)), dir: dir,
		path: filepath.Join(dir, "trial.wal"), counts: map[string]int{},
		kvDir: filepath.Join(dir, "kvbase"), kvTrial: filepath.Join(dir, "kvtrial")}
	defer s.cleanTrial()
	defer os.RemoveAll(s.kvTrial)
	for t := 0; t < trials && ctx.Err() == nil; t++ {
		if t%biTrialsPerBase == 0 || s.base == nil {
			lc := biShape(s.rng)
			if s.base != nil && s.rng.IntN(2) == 0 {
				lc = s.base.lc // the same shape again: regions of one fit the other
			}
			// Late and early logs alternate: the base and the other log
			// share no epoch.
			late := s.base != nil && !s.base.late
			b, err := biBuild(ctx, s.rng, dir, lc, late)
			if err != nil {
				return err
			}
			s.other, s.base = s.base, b
			if s.other == nil {
				if s.other, err = biBuild(ctx, s.rng, dir, lc, !late); err != nil {
					return err
				}
			}
		}
		kind := biSchedule[t%len(biSchedule)]
		if kind == "rest" {
			kind = "kv"
			if (t/len(biSchedule))%2 == 1 {
				kind = "clean"
			}
		}
		n := s.counts[kind]
		s.counts[kind]++
		if kind == "kv" {
			if err := s.kvTrialRun(ctx, n); err != nil {
				return err
			}
		} else {
			// Each kind of damage (each sub-kind) meets every mode in turn.
			m := (n + n/biSubKinds[kind]) % len(biModes)
			s.check(s.base, s.damage(kind, n), biModes[m])
		}
		c.progress("badinput", t+1, trials)
	}
	return nil
}

// failf records a failure (and logs the first few).
func (s *biRun) failf(format string, args ...any) {
	s.r.fail(format, args...)
	if s.bad < maxFailures {
		s.c.logf(format, args...)
	}
	s.bad++
}

// damage makes the n-th damaged copy of the current base of this kind.
func (s *biRun) damage(kind string, n int) *biDamage {
	b, rng := s.base, s.rng
	img := bytes.Clone(b.image)
	d := &biDamage{img: img}
	flip := func(off int64, bit int) { img[off] ^= 1 << (bit % 8) }
	anyRec := func() *biRec { return &b.recs[rng.IntN(len(b.recs))] }
	switch kind {
	case "clean":
		d.what, d.category = "no damage", biClean
	case "flip":
		// Every other flip walks through the 192 bits of a header, the
		// others spread over payloads.
		rec := anyRec()
		k := s.flips / 2
		var bit int
		if s.flips%2 == 0 {
			bit = k % (8 * wal.HeaderSize)
		} else {
			bit = 8*wal.HeaderSize + (k*37*8+k%8)%(8*rec.length)
		}
		s.flips++
		flip(rec.file[bit/8], bit)
		d.what = fmt.Sprintf("bit %d of the record at position %d (type %d, %d-byte payload, file offset %d)", bit, rec.pos, rec.typ, rec.length, rec.file[0])
		d.category, d.exact = biRecord, true
	case "elsewhere":
		classes := []byte{biUnused, biPad, biHdrSpare, biCtl}
		c := classes[n%biSubKinds["elsewhere"]]
		off := int64(-1)
		for range 4096 {
			if o := rng.Int64N(int64(len(img))); b.class[o] == c {
				off = o
				break
			}
		}
		if c == biCtl && len(b.slots) > 0 && n/4%2 == 0 {
			// A registered slot (the log's checkpoint): its state,
			// flags, position, name and name checksum.
			off = b.slots[rng.IntN(len(b.slots))] + []int64{0, 4, 8, 9, 10, 11, 12, 13, 14, 15, 32, 33, 34, 96}[rng.IntN(14)]
		}
		if off < 0 {
			for o := range b.class {
				if b.class[o] == biUnused || b.class[o] == biHdrSpare {
					off = int64(o)
					break
				}
			}
		}
		bit := rng.IntN(8)
		flip(off, bit)
		d.what = fmt.Sprintf("bit %d of file offset %d (%s)", bit, off, [...]string{"unused space", "", "padding", "", "spare ring header copy", "reserved page or consumer slots"}[b.class[off]])
		d.category = biElsewhere
	case "file":
		s.fileDamage(d, n)
	}
	if d.category == biRecord || d.category == biElsewhere {
		// What the damage touched decides, whatever was meant: a
		// segment header (a zeroed file tail in the growing layout
		// crosses them) makes the records of its segment unreachable,
		// which no mode can skip over.
		switch dmg, meta := b.damaged(d.img); {
		case meta:
			d.category, d.exact = biMeta, false
		case len(dmg) > 0:
			d.category = biRecord
		default:
			d.category, d.exact = biElsewhere, false
		}
	}
	return d
}

// fileDamage makes the n-th hand-made damaged file.
func (s *biRun) fileDamage(d *biDamage, n int) {
	b, o, rng := s.base, s.other, s.rng
	img := d.img
	recAt := func() (*biRec, int) { i := rng.IntN(len(b.recs)); return &b.recs[i], i }
	d.category = biRecord
	switch n % biSubKinds["file"] {
	case 0: // a flip in a record's header and one in another's payload
		r1, _ := recAt()
		r2, _ := recAt()
		h := rng.IntN(wal.HeaderSize)
		img[r1.file[h]] ^= 1 << rng.IntN(8)
		p := wal.HeaderSize + rng.IntN(r2.length)
		img[r2.file[p]] ^= 1 << rng.IntN(8)
		d.what = fmt.Sprintf("flips in the header of the record at %d and the payload of the record at %d", r1.pos, r2.pos)
		d.exact = true
	case 1: // a huge record length
		r, _ := recAt()
		lens := []uint32{1<<32 - 1, 1<<32 - 8, 1 << 31, 1<<31 - 1, uint32(b.maxRec) + 1, uint32(b.lc.Capacity), uint32(b.maxRec)}
		v := lens[(n/12)%len(lens)]
		var le [4]byte
		binary.LittleEndian.PutUint32(le[:], v)
		for i := range 4 {
			img[r.file[4+i]] = le[i]
		}
		d.what = fmt.Sprintf("length %d in the record at %d (file offset %d)", v, r.pos, r.file[0])
		d.exact = true
	case 2, 3: // zeroes or garbage: the log's tail, the file's tail, or a long run
		r, i := recAt()
		j := rng.IntN(len(r.file))
		// A run of records longer than the largest record, with intact
		// records after it (salvage must cover it with several skip
		// records), if the log has one from r on.
		end := i
		for end < len(b.recs) && b.recs[end].pos-r.pos <= uint64(b.maxRec)+wal.HeaderSize {
			end++
		}
		variant := (n / biSubKinds["file"]) % 3
		if variant == 2 && end >= len(b.recs)-1 {
			variant = 0
		}
		fillb := func(p []byte) {
			if n%12 == 2 {
				clear(p)
			} else {
				for k := range p {
					p[k] = byte(rng.Uint32())
				}
			}
		}
		what := [...]string{2: "zeroed", 3: "garbage"}[n%biSubKinds["file"]]
		switch variant {
		case 0:
			for _, rr := range b.recs[i:] {
				for k, off := range rr.file {
					if rr.pos > r.pos || k >= j {
						fillb(img[off : off+1])
					}
				}
			}
			d.what = fmt.Sprintf("%s log tail from byte %d of the record at %d (file offset %d)", what, j, r.pos, r.file[j])
		case 1:
			fillb(img[r.file[j]:])
			d.what = fmt.Sprintf("%s file tail from offset %d (byte %d of the record at %d)", what, r.file[j], j, r.pos)
		default:
			for _, rr := range b.recs[i : end+1] {
				for _, off := range rr.file {
					fillb(img[off : off+1])
				}
			}
			d.what = fmt.Sprintf("%s records from position %d (file offset %d) through the one at %d", what, r.pos, r.file[0], b.recs[end].pos)
		}
		d.exact = true
	case 4: // a region, or a segment, copied from another log
		if b.segLen > 0 && o.segLen == b.segLen && (n/12)%2 == 0 {
			k := rng.IntN(len(b.segs))
			from, to := b.segs[k]+biSegUnit, b.segs[k]+biSegUnit+b.segLen
			to = min(to, int64(len(o.image)))
			if from < to {
				copy(img[from:to], o.image[from:to])
			}
			d.what = fmt.Sprintf("segment %d (file offsets %d..%d) from another log (%v)", k, from, to, o.lc)
		} else {
			r, _ := recAt()
			from := r.file[0]
			to := min(from+int64(1+rng.IntN(16<<10)), int64(len(img)), int64(len(o.image)))
			for off := from; off < to; off++ {
				if b.class[off] == biContent || b.class[off] == biPad || b.class[off] == biUnused {
					img[off] = o.image[off]
				}
			}
			d.what = fmt.Sprintf("file offsets %d..%d from another log (%v)", from, to, o.lc)
		}
	case 5: // cut inside the ring header
		at := 1 + rng.IntN(2*biHeaderCopy-1)
		d.img = img[:at]
		d.what, d.category = fmt.Sprintf("file cut at offset %d, inside the ring header", at), biMeta
	case 6: // cut inside a record header
		r, _ := recAt()
		at := r.file[0] + 1 + rng.Int64N(wal.HeaderSize-1)
		d.img = img[:at]
		d.what, d.category = fmt.Sprintf("file cut at offset %d, inside the header of the record at %d", at, r.pos), biMeta
	case 7: // the two header copies swapped
		a := bytes.Clone(img[:biHeaderCopy])
		copy(img, img[biHeaderCopy:2*biHeaderCopy])
		copy(img[biHeaderCopy:], a)
		d.what, d.category = "ring header copies swapped", biBenign
	case 8: // the ring header of another log
		if (n/12)%2 == 0 {
			copy(img[:2*biHeaderCopy], o.image)
			d.what = fmt.Sprintf("both ring header copies from another log (%v)", o.lc)
		} else {
			copy(img[b.cur:b.cur+biHeaderCopy], o.image[o.cur:])
			d.what = fmt.Sprintf("the current ring header copy from another log (%v)", o.lc)
		}
		d.category = biMeta
	case 9: // a flip in the current ring header copy
		off := b.cur + rng.Int64N(biHeaderCopy)
		img[off] ^= 1 << rng.IntN(8)
		d.what, d.category = fmt.Sprintf("a flip at file offset %d, in the current ring header copy", off), biMeta
	case 10: // a flip in a segment header (growing), else in a record
		if len(b.segs) > 0 {
			off := b.segs[rng.IntN(len(b.segs))] + rng.Int64N(biSegHdrLen)
			img[off] ^= 1 << rng.IntN(8)
			d.what, d.category = fmt.Sprintf("a flip at file offset %d, in a segment header", off), biMeta
			break
		}
		r, _ := recAt()
		off := r.file[rng.IntN(len(r.file))]
		img[off] ^= 1 << rng.IntN(8)
		d.what, d.exact = fmt.Sprintf("a flip at file offset %d, in the record at %d", off, r.pos), true
	case 11: // a record's bytes moved to another record's place
		r1, _ := recAt()
		r2, _ := recAt()
		for k := 0; k < len(r1.file) && k < len(r2.file); k++ {
			img[r2.file[k]] = b.image[r1.file[k]]
		}
		d.what = fmt.Sprintf("the record at %d copied over the one at %d", r1.pos, r2.pos)
		d.exact = true
	}
}

// damaged lists the records of b whose bytes img changed (or lacks), in
// chain order, and whether img changed b's metadata (ring header in use,
// segment headers).
func (b *biBase) damaged(img []byte) ([]int, bool) {
	seen := map[int]bool{}
	meta := len(img) < len(b.image)
	for i, x := range b.image {
		if i < len(img) && img[i] == x {
			continue
		}
		switch b.class[i] {
		case biContent:
			seen[int(b.recOf[i])] = true
		case biHdrCur, biSegHdr:
			meta = true
		}
	}
	var out []int
	for i := range b.recs {
		if seen[i] {
			out = append(out, i)
		}
	}
	return out, meta
}

// biOutcome is what an open and a read of a damaged log gave.
type biOutcome struct {
	err      error // from Open
	rep      wal.Report
	got      []biGot
	readErr  error
	panicked any
	alloc    uint64
	reopened *biReopen // salvage: the log opened again in the default mode
}

// biReopen is a second open, in the default mode, of a salvaged log.
type biReopen struct {
	err     error
	rep     wal.Report
	got     []biGot
	readErr error
}

// biGot is a record a reader returned: its position and whether it is the
// record written there, byte for byte.
type biGot struct {
	pos  uint64
	ok   bool
	size int
}

func (s *biRun) cleanTrial() {
	os.Remove(s.path)
	os.Remove(s.path + ".live")
	if m, _ := filepath.Glob(s.path + ".salvage-*"); m != nil {
		for _, p := range m {
			os.Remove(p)
		}
	}
}

// openRead opens the damaged log at s.path in mode and reads every record.
func (s *biRun) openRead(b *biBase, img []byte, mode wal.RecoveryMode) (out biOutcome) {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	defer func() {
		if p := recover(); p != nil {
			out.panicked = p
		}
		runtime.ReadMemStats(&ms1)
		out.alloc = ms1.TotalAlloc - ms0.TotalAlloc
	}()
	if badinputBlind {
		return blindRead(b, img)
	}
	o, err := b.lc.options()
	if err != nil {
		out.err = err
		return out
	}
	o.Recovery = mode
	l, err := wal.Open(s.path, o)
	if err != nil {
		out.err = err
		return out
	}
	out.rep = l.Report()
	out.got, out.readErr = b.read(l)
	if err := l.Close(); err != nil && out.readErr == nil {
		out.readErr = err
	}
	if mode == wal.RecoverSalvage {
		// What salvage made of the log must open as it is.
		o.Recovery = wal.RecoverDefault
		l, err := wal.Open(s.path, o)
		out.reopened = &biReopen{err: err}
		if err == nil {
			out.reopened.rep = l.Report()
			out.reopened.got, out.reopened.readErr = b.read(l)
			l.Close()
		}
	}
	return out
}

// read reads every record of l from its checkpoint.
func (b *biBase) read(l *wal.Log) ([]biGot, error) {
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var got []biGot
	for pos, data := range rd.All() {
		i, ok := b.byPos[pos]
		got = append(got, biGot{pos: pos, ok: ok && bytes.Equal(b.recs[i].data, data), size: len(data)})
	}
	return got, rd.Err()
}

// blindRead is a reader that trusts the file (tests only): every data
// record's stored payload, straight from the image, no checksum, no
// recovery.
func blindRead(b *biBase, img []byte) (out biOutcome) {
	for _, r := range b.recs {
		if !r.isData() {
			continue
		}
		p := make([]byte, 0, r.length)
		for _, off := range r.file[wal.HeaderSize : wal.HeaderSize+r.length] {
			if off >= int64(len(img)) {
				break
			}
			p = append(p, img[off])
		}
		out.got = append(out.got, biGot{pos: r.pos, ok: bytes.Equal(p, r.data), size: len(p)})
	}
	return out
}

// check runs one trial: the damaged log opened in mode, read, and judged.
func (s *biRun) check(b *biBase, d *biDamage, mode wal.RecoveryMode) {
	r := s.r
	r.Trials++
	s.cleanTrial()
	defer s.cleanTrial()
	if err := os.WriteFile(s.path, d.img, 0o600); err != nil {
		s.failf("badinput: %v", err)
		r.Corrupt++
		return
	}
	out := s.openRead(b, d.img, mode)
	tag := fmt.Sprintf("badinput (%v, %v): %s", b.lc, mode, d.what)
	if out.panicked != nil {
		r.Corrupt++
		s.failf("%s: panic: %v", tag, out.panicked)
		return
	}
	if limit := uint64(64<<20 + 4*len(d.img)); out.alloc > limit {
		r.Corrupt++
		s.failf("%s: the open and the read allocated %d bytes (limit %d)", tag, out.alloc, limit)
	}
	// Every record returned is the one written there, in order.
	returned := map[uint64]bool{}
	var last uint64
	for i, g := range out.got {
		switch {
		case !g.ok:
			r.Corrupt++
			s.failf("%s: %d bytes returned at position %d are not the record written there; %v", tag, g.size, g.pos, out.rep)
		case i > 0 && g.pos <= last:
			r.Corrupt++
			s.failf("%s: the record at %d returned after the one at %d", tag, g.pos, last)
		default:
			returned[g.pos] = true
		}
		last = g.pos
	}
	reported := out.rep.Cut() || len(out.rep.Skipped) > 0 || out.readErr != nil
	// keep counts the records of keepIf as promised and the missing ones
	// as lost.
	keep := func(why string, keepIf func(i int, rec *biRec) bool) {
		missing, first := 0, -1
		for i := range b.recs {
			rec := &b.recs[i]
			if !rec.isData() || !keepIf(i, rec) {
				continue
			}
			r.Acked++
			if !returned[rec.pos] {
				r.Lost++
				missing++
				if first < 0 {
					first = i
				}
			}
		}
		if missing > 0 {
			s.failf("%s: %d records %s are missing, the first at position %d; open: %v; read: %v; %v",
				tag, missing, why, b.recs[first].pos, out.err, out.readErr, out.rep)
		}
	}
	all := func(int, *biRec) bool { return true }
	named := func(needOffset bool) bool {
		e := out.err.Error()
		return strings.Contains(e, s.path) && (!needOffset || strings.Contains(e, "offset"))
	}
	if out.err == nil && mode == wal.RecoverSalvage {
		if cp, err := os.ReadFile(out.rep.SalvageCopy); err != nil || !bytes.Equal(cp, d.img) {
			r.Corrupt++
			s.failf("%s: salvage copy %q (%v) is not the damaged input", tag, out.rep.SalvageCopy, err)
		}
	}
	switch d.category {
	case biClean, biElsewhere, biBenign:
		keep("of a log with no damage to its records", all)
		if out.err != nil {
			break
		}
		if d.category == biClean && (out.rep.Cut() || len(out.rep.Skipped) > 0) {
			r.Corrupt++
			s.failf("%s: recovery reports damage in an undamaged log: %v", tag, out.rep)
		}
		if out.readErr != nil {
			s.failf("%s: reading: %v", tag, out.readErr)
		}
	case biMeta:
		if out.err != nil {
			// Not every inconsistency of the metadata has one offset
			// (segments that do not fit the capacity): the file, at least.
			if !named(false) {
				r.Corrupt++
				s.failf("%s: the error does not name the file: %v", tag, out.err)
			}
			break
		}
		if !reported {
			// Opened without a word: it must hold everything.
			lost := r.Lost
			keep("of a log that opened without a report", all)
			if r.Lost > lost {
				r.Undetected++
			}
		}
	case biRecord:
		dmg, _ := b.damaged(d.img)
		f := dmg[0]
		isDamaged := map[int]bool{}
		for _, i := range dmg {
			isDamaged[i] = true
		}
		if out.err == nil && !reported {
			r.Undetected++
			s.failf("%s: the log opened and read without a word; %v", tag, out.rep)
		}
		switch mode {
		case wal.RecoverDefault, wal.RecoverStrict:
			if out.err != nil {
				want := fmt.Sprintf("file offset %d", b.recs[f].file[0])
				if !wal.IsCorruption(out.err) || !named(true) || (d.exact && !strings.Contains(out.err.Error(), want)) {
					r.Corrupt++
					s.failf("%s: the error is not a corruption naming the file and %q: %v", tag, want, out.err)
				}
				break
			}
			keep("(damage in synced data must fail the open)", all)
			s.failf("%s: opened despite damage in synced records; %v", tag, out.rep)
		case wal.RecoverPointInTime:
			cut := b.recs[b.recs[f].batch].pos
			keep(fmt.Sprintf("before the first damage (cut expected at %d)", cut), func(_ int, rec *biRec) bool { return rec.pos < cut })
			if out.err != nil {
				break
			}
			for _, g := range out.got {
				if g.ok && g.pos >= cut {
					r.Corrupt++
					s.failf("%s: the record at %d is past the first damage (%d) and was kept; %v", tag, g.pos, cut, out.rep)
					break
				}
			}
			if out.rep.Cut() && out.rep.CutAt != cut {
				s.failf("%s: cut at %d, the first damaged record (or its batch) is at %d; %v", tag, out.rep.CutAt, cut, out.rep)
			}
		case wal.RecoverSalvage:
			// Salvage covers damage with a skip record up to the next
			// intact record. With none after it, the log is cut before
			// the damage, and before its batch (a batch ends with its
			// last member).
			tail := len(b.recs)
			for tail > 0 && isDamaged[tail-1] {
				tail--
			}
			cutBatch := -1
			if tail < len(b.recs) {
				cutBatch = b.recs[tail].batch
			}
			keep("intact around the damage", func(i int, rec *biRec) bool { return !isDamaged[i] && rec.batch != cutBatch })
		}
	}
	if ro := out.reopened; ro != nil && out.err == nil {
		// The salvaged log opens again, as it is.
		kept := map[uint64]bool{}
		for _, g := range ro.got {
			if !g.ok {
				r.Corrupt++
				s.failf("%s: after salvage, a reopen returned %d bytes at %d that are not the record written there", tag, g.size, g.pos)
			}
			kept[g.pos] = true
		}
		gone := 0
		for _, g := range out.got {
			if g.ok && !kept[g.pos] {
				gone++
			}
		}
		if gone > 0 || ro.err != nil || ro.readErr != nil || ro.rep.Cut() {
			r.Lost += int64(gone)
			s.failf("%s: salvage kept %d records, %d of them are gone when the salvaged log is opened again: %v; read: %v; %v", tag, len(out.got), gone, ro.err, ro.readErr, ro.rep)
		}
	}
}

// biKV is a key-value store written once and damaged by many trials.
type biKV struct {
	backend pager.Backend
	files   map[string][]byte // the store's files (not the live file)
	keys    map[string][]byte // key -> value (nil: deleted)
	entries [][]int64         // file offsets (in the log) of each entry's bytes
	trials  int
}

const biKVSegment = 64 << 10

func (k *biKV) options() *logkv.Options {
	return &logkv.Options{Backend: k.backend, SegmentSize: biKVSegment, Capacity: 8 * biKVSegment, GCDisabled: true}
}

// biBuildKV writes a store: synced puts, batches, overwrites and deletes;
// closed with or without the index checkpoint.
func biBuildKV(rng *rand.Rand, dir string) (*biKV, error) {
	os.RemoveAll(dir)
	bs := backends()
	b, err := pager.ParseBackend(bs[rng.IntN(len(bs))])
	if err != nil {
		return nil, err
	}
	k := &biKV{backend: b, files: map[string][]byte{}, keys: map[string][]byte{}}
	o := k.options()
	o.NoIndexCheckpoint = rng.IntN(3) == 0
	db, err := logkv.Open(dir, o)
	if err != nil {
		return nil, fmt.Errorf("kv store %s: %w", dir, err)
	}
	run := rng.Uint64()
	var names []string
	for i := range 20 + rng.IntN(30) {
		key := fmt.Sprintf("k/%x/%03d", run&0xffff, i)
		val := payload(recID{run: run, k: i}, minPayload+rng.IntN(600))
		switch op := rng.IntN(10); {
		case op < 5 || len(names) == 0:
			err = db.Put([]byte(key), val, storage.Synced)
			k.keys[key] = val
			names = append(names, key)
		case op < 7:
			var bt storage.Batch
			for j := range 2 + rng.IntN(3) {
				bk := fmt.Sprintf("%s/b%d", key, j)
				bv := payload(recID{run: run, w: j + 1, k: i}, minPayload+rng.IntN(200))
				bt.Put([]byte(bk), bv)
				k.keys[bk] = bv
				names = append(names, bk)
			}
			err = db.Apply(&bt, storage.Synced)
		case op < 9:
			old := names[rng.IntN(len(names))]
			err = db.Put([]byte(old), val, storage.Synced)
			k.keys[old] = val
		default:
			old := names[rng.IntN(len(names))]
			err = db.Delete([]byte(old), storage.Synced)
			k.keys[old] = nil
		}
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("kv store %s: %w", dir, err)
		}
	}
	// Where each entry is in the log's file.
	l := db.Log()
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	for pos, p := range rd.All() {
		for off := 0; off+5 < len(p); {
			kl, n1 := binary.Uvarint(p[off+5:])
			vl, n2 := binary.Uvarint(p[off+5+n1:])
			if n1 <= 0 || n2 <= 0 {
				break
			}
			size := 5 + n1 + n2 + int(kl) + int(vl)
			at := pos + wal.HeaderSize + uint64(off)
			offs := make([]int64, size)
			for i := range offs {
				offs[i] = l.FileOffset(at + uint64(i))
			}
			k.entries = append(k.entries, offs)
			off = (off + size + 3) &^ 3
		}
	}
	err = rd.Err()
	rd.Close()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("kv store %s: %w", dir, err)
	}
	if len(k.entries) == 0 {
		return nil, fmt.Errorf("kv store %s: no entries found in its log", dir)
	}
	for _, name := range []string{logkv.LogName, logkv.IndexName} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && name == logkv.IndexName {
			continue
		}
		if err != nil {
			return nil, err
		}
		k.files[name] = data
	}
	return k, nil
}

// kvTrialRun damages a copy of the store (the n-th kv trial): a flip in
// an entry, which the log's checksum must catch (the store does not open:
// a corruption error naming the log file and the offset), or in the index
// checkpoint, which the store must set aside and replay the log instead,
// every key intact.
func (s *biRun) kvTrialRun(ctx context.Context, n int) error {
	if s.kv == nil || s.kv.trials >= 10 {
		kv, err := biBuildKV(s.rng, s.kvDir)
		if err != nil {
			return err
		}
		s.kv = kv
	}
	k, r, rng := s.kv, s.r, s.rng
	k.trials++
	r.Trials++
	os.RemoveAll(s.kvTrial)
	if err := os.MkdirAll(s.kvTrial, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{}
	for name, data := range k.files {
		files[name] = bytes.Clone(data)
	}
	index := files[logkv.IndexName] != nil && n%2 == 1
	var what string
	if index {
		b := files[logkv.IndexName]
		off := rng.IntN(len(b))
		b[off] ^= 1 << rng.IntN(8)
		what = fmt.Sprintf("a flip at offset %d of the index checkpoint", off)
	} else {
		e := k.entries[rng.IntN(len(k.entries))]
		j := rng.IntN(len(e))
		files[logkv.LogName][e[j]] ^= 1 << rng.IntN(8)
		what = fmt.Sprintf("a flip in byte %d of the entry at file offset %d", j, e[0])
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.kvTrial, name), data, 0o600); err != nil {
			return err
		}
	}
	logPath := filepath.Join(s.kvTrial, logkv.LogName)
	tag := fmt.Sprintf("badinput kv (%v): %s", k.backend, what)
	var (
		db       *logkv.DB
		err      error
		panicked any
		got      = map[string]error{}
		wrong    []string
		ms0, ms1 runtime.MemStats
	)
	runtime.ReadMemStats(&ms0)
	func() {
		defer func() { panicked = recover() }()
		if db, err = logkv.Open(s.kvTrial, k.options()); err != nil {
			return
		}
		for key, val := range k.keys {
			v, gerr := db.Get([]byte(key), nil)
			switch {
			case val == nil && errors.Is(gerr, storage.ErrNotFound):
			case val == nil && gerr == nil:
				wrong = append(wrong, fmt.Sprintf("deleted key %q is back", key))
			case gerr != nil:
				got[key] = gerr
			case !bytes.Equal(v, val):
				wrong = append(wrong, fmt.Sprintf("key %q: %d bytes that are not its value", key, len(v)))
			}
		}
	}()
	runtime.ReadMemStats(&ms1)
	if panicked != nil {
		r.Corrupt++
		s.failf("%s: panic: %v", tag, panicked)
		return nil
	}
	if db != nil {
		defer db.Close()
	}
	size := 0
	for _, data := range files {
		size += len(data)
	}
	if alloc, limit := ms1.TotalAlloc-ms0.TotalAlloc, uint64(64<<20+4*size); alloc > limit {
		r.Corrupt++
		s.failf("%s: the open and the reads allocated %d bytes (limit %d)", tag, alloc, limit)
	}
	r.Corrupt += int64(len(wrong))
	for _, w := range wrong {
		s.failf("%s: %s", tag, w)
	}
	live := 0
	for _, v := range k.keys {
		if v != nil {
			live++
		}
	}
	if err != nil {
		msg := err.Error()
		if index || !wal.IsCorruption(err) || !strings.Contains(msg, logPath) || !strings.Contains(msg, "file offset") {
			r.Corrupt++
			s.failf("%s: open: %v (want a corruption error naming %s and the file offset)", tag, err, logPath)
		}
		if index {
			r.Acked += int64(live)
			r.Lost += int64(live)
		}
		return nil
	}
	rep := db.Report()
	reported := rep.Log.Cut() || len(rep.Log.Skipped) > 0
	if index {
		if rep.IndexLoaded || rep.IndexError == nil {
			r.Undetected++
			s.failf("%s: the damaged index checkpoint was loaded", tag)
		} else if e := rep.IndexError.Error(); !strings.Contains(e, filepath.Join(s.kvTrial, logkv.IndexName)) || !strings.Contains(e, "offset") {
			r.Corrupt++
			s.failf("%s: the index error does not name the file and offset: %v", tag, rep.IndexError)
		}
	} else if !reported {
		r.Undetected++
		s.failf("%s: the store opened without a word; %+v", tag, rep)
	}
	r.Acked += int64(live)
	for key, gerr := range got {
		r.Lost++
		if errors.Is(gerr, storage.ErrNotFound) {
			s.failf("%s: key %q is missing; %+v", tag, key, rep)
		} else if msg := gerr.Error(); !strings.Contains(msg, logPath) || !strings.Contains(msg, "file offset") {
			r.Corrupt++
			s.failf("%s: get %q: the error does not name the file and offset: %v", tag, key, gerr)
		} else {
			s.failf("%s: get %q: %v", tag, key, gerr)
		}
	}
	return nil
}
