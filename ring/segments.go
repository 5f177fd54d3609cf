package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"

	"github.com/ringlog/ringlog/internal/osfile"
)

// Layout picks how a ring's data area lives in its file.
type Layout uint8

// Layouts.
const (
	// Bounded: one preallocated data area of Capacity bytes, mapped twice
	// back to back; any span up to the capacity is one slice.
	Bounded Layout = iota
	// Growing: the file grows by segments as the retained span grows, and
	// segments behind the tail are reused. The view is a reserved range of
	// Capacity bytes (the most the ring may retain) divided into slots of
	// SegmentSize; each slot in use maps one segment of the file, and the
	// slot after the last maps the first slot's segment again, so any span
	// up to SegmentSize is one slice. Moving a segment from one slot to
	// another is a change of mappings, never a copy.
	Growing
)

// String returns "growing" or "bounded".
func (l Layout) String() string {
	if l == Growing {
		return "growing"
	}
	return "bounded"
}

// Growing layout constants.
const (
	segHeaderSize      = layoutAlign // each segment starts with a 64 KiB header unit
	segHeaderLen       = 32
	segMagic           = "RLSEGMT\x00"
	defaultSegmentSize = 64 << 20
	defaultGrowingCap  = 4 << 30
	maxSegmentSize     = 1 << 30
)

// Segment header (the first 32 bytes of a segment's header unit):
//
//	0   8  magic "RLSEGMT\x00"
//	8   4  format version (1)
//	12  4  segment index in the file
//	16  8  base: the position of the segment's first byte
//	24  4  zero
//	28  4  CRC-32C of bytes 0..27
func encodeSegHeader(index int, base uint64) []byte {
	b := make([]byte, segHeaderLen)
	copy(b, segMagic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], formatVersion)
	le.PutUint32(b[12:], uint32(index))
	le.PutUint64(b[16:], base)
	le.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

// decodeSegHeader returns the base a segment header claims, if it is a
// valid header of segment index.
func decodeSegHeader(b []byte, index int, segSize uint64) (uint64, bool) {
	le := binary.LittleEndian
	if len(b) < segHeaderLen || string(b[:8]) != segMagic || le.Uint32(b[8:]) != formatVersion ||
		le.Uint32(b[12:]) != uint32(index) || le.Uint32(b[28:]) != crc32.Checksum(b[:28], castagnoli) {
		return 0, false
	}
	base := le.Uint64(b[16:])
	if base%segSize != 0 || base > maxPosition {
		return 0, false
	}
	return base, true
}

// segments is the growing layout's state: which segment of the file each
// slot of the view shows, and which base each segment holds. Entries are
// atomics: the producer changes them under the ring's lock, readers of
// other goroutines look them up without it. segBase has room for every
// segment the ring can need (one per slot and one more), so it is never
// reallocated.
type segments struct {
	size    uint64         // S
	slots   int            // V / S
	slotSeg []atomic.Int32 // segment shown at each slot, -1 if none
	segBase []atomic.Uint64
	nseg    atomic.Int32 // segments in the file
	// mappedEnd: positions before it have their slots assigned for their
	// lap (the producer's fast path).
	mappedEnd atomic.Uint64
}

func newSegments(size, capacity uint64) *segments {
	s := &segments{size: size, slots: int(capacity / size)}
	s.slotSeg = make([]atomic.Int32, s.slots)
	for i := range s.slotSeg {
		s.slotSeg[i].Store(-1)
	}
	s.segBase = make([]atomic.Uint64, s.slots+2)
	return s
}

// baseOf is stored +1, so 0 means "holds nothing".
func (s *segments) base(j int) (uint64, bool) {
	b := s.segBase[j].Load()
	return b - 1, b != 0
}

func (r *Ring) slotOf(pos uint64) int { return int((pos % r.capacity) / r.seg.size) }

func (r *Ring) segHeaderOff(j int) int64 {
	return dataOff + int64(j)*(segHeaderSize+int64(r.seg.size))
}

func (r *Ring) segDataOff(j int) int64 { return r.segHeaderOff(j) + segHeaderSize }

// segmentAt is the segment holding position pos, or -1.
func (r *Ring) segmentAt(pos uint64) int {
	j := int(r.seg.slotSeg[r.slotOf(pos)].Load())
	if j < 0 {
		return -1
	}
	if b, ok := r.seg.base(j); !ok || b != pos-pos%r.seg.size {
		return -1
	}
	return j
}

// fileChunks calls fn for each piece of positions [pos, pos+n) that is
// contiguous in the file, with the piece's file offset, its offset within
// the n bytes, and its length. In the growing layout a position whose slot
// holds no segment for its lap is ErrRange.
func (r *Ring) fileChunks(pos uint64, n int, fn func(fileOff int64, off, m int) error) error {
	for off := 0; off < n; {
		p := pos + uint64(off)
		var at int64
		var m int
		if r.seg == nil {
			ph := r.phys(p)
			at, m = int64(dataOff+ph), min(n-off, int(r.capacity)-ph)
		} else {
			j := r.segmentAt(p)
			if j < 0 {
				return fmt.Errorf("ring: %s: position %d lies in no segment: %w", r.name, p, ErrRange)
			}
			in := int(p % r.seg.size)
			at, m = r.segDataOff(j)+int64(in), min(n-off, int(r.seg.size)-in)
		}
		if err := fn(at, off, m); err != nil {
			return err
		}
		off += m
	}
	return nil
}

// loadSegmentsLocked reads every segment header and shows, at each slot,
// the newest segment claiming it. Called at open, and by read-only handles
// when the producer has moved segments since.
func (r *Ring) loadSegmentsLocked() error {
	st, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("ring: %s: %w", r.name, err)
	}
	s := r.seg
	n := int((st.Size() - dataOff) / (segHeaderSize + int64(s.size)))
	if n > len(s.segBase) {
		return fmt.Errorf("ring: %s: %d segments in the file, at most %d fit its capacity: %w", r.name, n, len(s.segBase), ErrCorrupt)
	}
	want := make([]int32, s.slots)
	for k := range want {
		want[k] = -1
	}
	b := make([]byte, segHeaderLen)
	for j := 0; j < n; j++ {
		s.segBase[j].Store(0)
		if _, err := r.f.ReadAt(b, r.segHeaderOff(j)); err != nil {
			return fmt.Errorf("ring: %s: segment header at offset %d: %w", r.name, r.segHeaderOff(j), err)
		}
		base, ok := decodeSegHeader(b, j, s.size)
		if !ok {
			continue // never used, or torn before its first sync
		}
		s.segBase[j].Store(base + 1)
		k := r.slotOf(base)
		if cur := want[k]; cur < 0 {
			want[k] = int32(j)
		} else if cb, _ := s.base(int(cur)); cb < base {
			want[k] = int32(j)
		}
	}
	s.nseg.Store(int32(n))
	for k, j := range want {
		if err := r.showSegmentLocked(k, int(j)); err != nil {
			return err
		}
	}
	s.mappedEnd.Store(0)
	return nil
}

// showSegmentLocked makes slot k show segment j (-1: nothing), and the
// mirror slot after the last show slot 0's segment.
func (r *Ring) showSegmentLocked(k, j int) error {
	s := r.seg
	if int(s.slotSeg[k].Load()) == j {
		return nil
	}
	S := int(s.size)
	at := []int{k * S}
	if k == 0 {
		at = append(at, s.slots*S)
	}
	for _, v := range at {
		var err error
		if j < 0 {
			err = r.data.Unmap(v, S)
		} else {
			err = r.data.Map(v, r.segDataOff(j), S)
		}
		if err != nil {
			return fmt.Errorf("ring: %s: slot %d: %w", r.name, k, err)
		}
	}
	s.slotSeg[k].Store(int32(j))
	return nil
}

// ensureSegmentsLocked gives every slot that positions [from, to) touch a
// segment for their lap: the segment already there if it is free (reused
// in place), else another free one (moved into the slot by a change of
// mappings), else a new one at the end of the file. A segment is free when
// every position it holds is before tail.
func (r *Ring) ensureSegmentsLocked(from, to, tail uint64) error {
	s := r.seg
	S := s.size
	for base := from - from%S; base < to; base += S {
		k := r.slotOf(base)
		if j := int(s.slotSeg[k].Load()); j >= 0 {
			if b, ok := s.base(j); ok && b == base {
				continue
			}
		}
		j := r.freeSegmentLocked(k, tail)
		if j < 0 {
			var err error
			if j, err = r.growLocked(); err != nil {
				return err
			}
		}
		// The segment's header says which positions it holds; it reaches
		// the disk with the next sync, like the data written into it.
		if _, err := r.f.WriteAt(encodeSegHeader(j, base), r.segHeaderOff(j)); err != nil {
			return fmt.Errorf("ring: %s: segment header at offset %d: %w", r.name, r.segHeaderOff(j), err)
		}
		if ob, ok := s.base(j); ok {
			// Leave the slot it showed before (all its positions are
			// released), unless that is slot k itself.
			if ok2 := r.slotOf(ob); ok2 != k && int(s.slotSeg[ok2].Load()) == j {
				if err := r.showSegmentLocked(ok2, -1); err != nil {
					return err
				}
			}
		}
		s.segBase[j].Store(base + 1)
		if err := r.showSegmentLocked(k, j); err != nil {
			return err
		}
		r.segGen.Add(1)
	}
	s.mappedEnd.Store(max(s.mappedEnd.Load(), (to+S-1)/S*S))
	return nil
}

// freeSegmentLocked picks a segment whose positions are all before tail,
// preferring the one slot k shows. -1 if none.
func (r *Ring) freeSegmentLocked(k int, tail uint64) int {
	s := r.seg
	free := func(j int) bool {
		b, ok := s.base(j)
		return !ok || b+s.size <= tail
	}
	if j := int(s.slotSeg[k].Load()); j >= 0 && free(j) {
		return j
	}
	for j := 0; j < int(s.nseg.Load()); j++ {
		if free(j) {
			return j
		}
	}
	return -1
}

// growLocked adds a segment at the end of the file, written with zeroes
// so later overwrites need no extent conversion.
func (r *Ring) growLocked() (int, error) {
	s := r.seg
	j := int(s.nseg.Load())
	if j >= len(s.segBase) {
		return -1, fmt.Errorf("ring: %s: all %d segments in use: %w", r.name, j, ErrFull)
	}
	if err := r.checkSizeLocked("grow"); err != nil {
		return -1, err
	}
	off := r.segHeaderOff(j)
	n := segHeaderSize + int64(s.size)
	if err := osfile.Preallocate(r.f, off+n); err != nil {
		return -1, fmt.Errorf("ring: %s: growing by a segment: %w", r.name, err)
	}
	if err := osfile.WriteZeroes(r.f, off, n); err != nil {
		return -1, fmt.Errorf("ring: %s: growing by a segment: %w", r.name, err)
	}
	s.segBase[j].Store(0)
	s.nseg.Store(int32(j + 1))
	return j, nil
}

// syncSegments brings a read-only handle's mappings up to date with the
// producer's segments (growing layout).
func (r *Ring) syncSegments() error {
	if r.seg == nil || !r.readOnly {
		return nil
	}
	if g := r.segGen.Load(); g != r.seenSegGen.Load() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.mu.closed {
			return fmt.Errorf("ring: %s: %w", r.name, ErrClosed)
		}
		if err := r.loadSegmentsLocked(); err != nil {
			return err
		}
		r.seenSegGen.Store(g)
	}
	return nil
}
