package logkv

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLiveSetAddBulk: marking entries live in bulk (an index checkpoint
// load) gives the same bitmaps and byte counts as one at a time.
func TestLiveSetAddBulk(t *testing.T) {
	const segSize = 1 << 16
	rng := rand.New(rand.NewPCG(1, 2))
	one := liveSet{segSize: segSize}
	bulk := liveSet{segSize: segSize}
	var poss []uint64
	seen := map[uint64]bool{}
	for len(poss) < 5000 {
		p := (7*segSize + uint64(rng.IntN(20*segSize))) &^ (entryAlign - 1)
		if seen[p] {
			continue
		}
		seen[p] = true
		n := uint32(8 + rng.IntN(100))
		one.add(p, n)
		bulk.at(p).bytes += int64(n)
		poss = append(poss, p)
	}
	bulk.addBulk(poss)
	if one.base != bulk.base || len(one.segs) != len(bulk.segs) {
		t.Fatalf("stretches: base %d/%d, count %d/%d", one.base, bulk.base, len(one.segs), len(bulk.segs))
	}
	for i := range one.segs {
		if one.segs[i].bytes != bulk.segs[i].bytes || !slices.Equal(one.segs[i].bits, bulk.segs[i].bits) {
			t.Fatalf("stretch %d differs", i)
		}
	}
	for _, p := range poss {
		if !bulk.live(p) || bulk.live(p+entryAlign) != seen[p+entryAlign] {
			t.Fatalf("position %d", p)
		}
	}
}
