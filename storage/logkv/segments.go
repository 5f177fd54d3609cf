package logkv

// liveSet keeps, per segment-sized stretch of log positions, the bytes of
// live entries and a bitmap of where they start (entries start at
// multiples of entryAlign, one bit each): the cleaner learns which entries
// of a segment are live without searching the index, and copies only
// those. A stretch's bitmap is allocated when its first entry goes live
// and dropped when the cleaner frees it.
type liveSet struct {
	segSize uint64
	base    uint64 // the first stretch kept (segment number)
	segs    []segLive
}

type segLive struct {
	bytes int64
	bits  []uint64
}

func (s *liveSet) at(pos uint64) *segLive {
	n := pos / s.segSize
	if len(s.segs) == 0 {
		s.base = n
	}
	if n < s.base {
		// Older than every stretch kept: grow at the front (rare: an
		// index checkpoint loaded out of position order).
		grow := int(s.base - n)
		s.segs = append(make([]segLive, grow, grow+len(s.segs)), s.segs...)
		s.base = n
	}
	i := int(n - s.base)
	for i >= len(s.segs) {
		s.segs = append(s.segs, segLive{})
	}
	return &s.segs[i]
}

func (s *liveSet) add(pos uint64, n uint32) {
	g := s.at(pos)
	if g.bits == nil {
		g.bits = make([]uint64, (s.segSize/entryAlign+63)/64)
	}
	b := pos % s.segSize / entryAlign
	g.bits[b/64] |= 1 << (b % 64)
	g.bytes += int64(n)
}

func (s *liveSet) remove(pos uint64, n uint32) {
	g := s.at(pos)
	b := pos % s.segSize / entryAlign
	if g.bits != nil {
		g.bits[b/64] &^= 1 << (b % 64)
	}
	g.bytes -= int64(n)
}

// live reports whether an entry starting at pos is live.
func (s *liveSet) live(pos uint64) bool {
	n := pos / s.segSize
	if n < s.base || int(n-s.base) >= len(s.segs) {
		return false
	}
	g := &s.segs[n-s.base]
	if g.bits == nil {
		return false
	}
	b := pos % s.segSize / entryAlign
	return g.bits[b/64]&(1<<(b%64)) != 0
}

// bytesOf is the live bytes of the stretch holding pos.
func (s *liveSet) bytesOf(pos uint64) int64 {
	n := pos / s.segSize
	if n < s.base || int(n-s.base) >= len(s.segs) {
		return 0
	}
	return s.segs[n-s.base].bytes
}

// dropBefore forgets the stretches wholly before pos.
func (s *liveSet) dropBefore(pos uint64) {
	n := pos / s.segSize
	for len(s.segs) > 0 && s.base < n {
		s.segs[0] = segLive{}
		s.segs = s.segs[1:]
		s.base++
	}
}

func (s *liveSet) reset() { s.segs, s.base = nil, 0 }

// addBulk marks live the entries starting at poss whose bytes the caller
// already counted (at(pos).bytes): loading an index checkpoint, which
// comes in key order, so that setting each bit as it comes would touch the
// bitmaps at random (a cache and TLB miss per key; a third of a 3M-key
// load's time). The positions are bucketed by segment first (4 bytes per
// entry, for the call) and each segment's bits set while its bitmap is
// in cache.
func (s *liveSet) addBulk(poss []uint64) {
	if len(poss) == 0 {
		return
	}
	starts := make([]int, len(s.segs)+1)
	for _, p := range poss {
		starts[p/s.segSize-s.base+1]++
	}
	for i := 1; i < len(starts); i++ {
		starts[i] += starts[i-1]
	}
	next := append([]int(nil), starts[:len(s.segs)]...)
	bits := make([]uint32, len(poss))
	for _, p := range poss {
		i := p/s.segSize - s.base
		bits[next[i]] = uint32(p % s.segSize / entryAlign)
		next[i]++
	}
	for i := range s.segs {
		g := &s.segs[i]
		bs := bits[starts[i]:starts[i+1]]
		if len(bs) > 0 && g.bits == nil {
			g.bits = make([]uint64, (s.segSize/entryAlign+63)/64)
		}
		for _, b := range bs {
			g.bits[b/64] |= 1 << (b % 64)
		}
	}
}
