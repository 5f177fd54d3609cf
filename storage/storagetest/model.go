package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ringlog/ringlog/storage"
)

// modelOps is the number of random operations of the model test.
const modelOps = 3000

// walkIter opens an iterator over r within [lo, hi) and checks a random
// walk of it (seeks, First, Last, steps both ways) against m.
func walkIter(t *testing.T, r storage.Reader, m model, lo, hi []byte, probes [][]byte, rng *rand.Rand, steps int) {
	t.Helper()
	var keys []string
	inverted := lo != nil && hi != nil && bytes.Compare(lo, hi) > 0
	if !inverted {
		keys = m.sorted(lo, hi)
	}
	it, err := r.NewIter(&storage.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		if inverted {
			return
		}
		t.Fatalf("NewIter: %v", err)
	}
	defer func() {
		if err := it.Close(); err != nil {
			t.Fatalf("iterator Close: %v", err)
		}
	}()
	at := iterAt(t, it, keys, m, fmt.Sprintf("iterator over [%q, %q)", lo, hi))
	idx, valid := -1, false
	var ops []string
	for range steps {
		var op string
		switch r := rng.IntN(10); {
		case valid && r < 3:
			op, idx = "Next", idx+1
			valid = at(fmt.Sprint(ops, op), it.Next(), idx)
		case valid && r < 5:
			op, idx = "Prev", idx-1
			valid = at(fmt.Sprint(ops, op), it.Prev(), idx)
		case r < 6:
			op, idx = "First", 0
			valid = at(fmt.Sprint(ops, op), it.First(), idx)
		case r < 7:
			op, idx = "Last", len(keys)-1
			valid = at(fmt.Sprint(ops, op), it.Last(), idx)
		case r < 9:
			p := probes[rng.IntN(len(probes))]
			op = fmt.Sprintf("SeekGE(%q)", trunc(p))
			idx, _ = slices.BinarySearch(keys, string(p))
			valid = at(fmt.Sprint(ops, op), it.SeekGE(p), idx)
		default:
			p := probes[rng.IntN(len(probes))]
			op = fmt.Sprintf("SeekLT(%q)", trunc(p))
			idx, _ = slices.BinarySearch(keys, string(p))
			idx--
			valid = at(fmt.Sprint(ops, op), it.SeekLT(p), idx)
		}
		ops = append(ops, op)
		if len(ops) > 6 {
			ops = ops[1:]
		}
	}
}

// testModel applies random operations to the engine and to a map, and
// compares every read with the map: Gets, iterator walks with random
// bounds in both directions, scans, snapshots read later, reopens, syncs
// and (if set) Reclaim runs.
func testModel(t *testing.T, c Config) {
	e, dir := openFresh(t, c)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 99))

	ks := map[string]bool{}
	for _, k := range iterKeys {
		ks[k] = true
	}
	for len(ks) < 120 {
		ks[randKey(rng, 5)] = true
	}
	keys := make([]string, 0, len(ks))
	for k := range ks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	probes := probesFor(keys, rng, 40)
	randKeyB := func() []byte { return []byte(keys[rng.IntN(len(keys))]) }
	randVal := func() []byte {
		switch r := rng.IntN(100); {
		case r < 5:
			return nil
		case r < 10:
			return []byte{}
		case r < 80:
			return fill(rng.Uint64(), 1+rng.IntN(64))
		case r < 97:
			return fill(rng.Uint64(), 65+rng.IntN(2000))
		default:
			return fill(rng.Uint64(), 4<<10+rng.IntN(40<<10))
		}
	}
	randBounds := func() (lo, hi []byte) {
		if rng.IntN(3) > 0 {
			lo = probes[rng.IntN(len(probes))]
		}
		if rng.IntN(3) > 0 {
			hi = probes[rng.IntN(len(probes))]
		}
		if lo != nil && hi != nil && bytes.Compare(lo, hi) > 0 && rng.IntN(8) > 0 {
			lo, hi = hi, lo
		}
		return lo, hi
	}
	writeOpts := func() *storage.WriteOptions {
		switch rng.IntN(30) {
		case 0:
			return storage.Synced
		case 1:
			return nil
		}
		return storage.NoSync
	}

	m := model{}
	type snap struct {
		s  storage.Snapshot
		m  model
		at int
	}
	var snaps []snap
	closeSnaps := func() {
		t.Helper()
		for _, s := range snaps {
			wantContents(t, s.s, s.m)
			if err := s.s.Close(); err != nil {
				t.Fatalf("snapshot Close: %v", err)
			}
		}
		snaps = nil
	}

	var i int
	var what string
	defer func() {
		if t.Failed() {
			t.Logf("model test failed at operation %d (%s); seed %d (%s=%d replays it)", i, what, seed, SeedEnv, seed)
		}
		for _, s := range snaps {
			s.s.Close()
		}
	}()
	for i = 0; i < modelOps; i++ {
		switch r := rng.IntN(1000); {
		case r < 300:
			k, v := randKeyB(), randVal()
			what = fmt.Sprintf("Put(%q, %d bytes)", trunc(k), len(v))
			mustPut(t, e, k, v, writeOpts())
			m[string(k)] = string(v)
		case r < 400:
			k := randKeyB()
			what = fmt.Sprintf("Delete(%q)", trunc(k))
			mustDelete(t, e, k, writeOpts())
			delete(m, string(k))
		case r < 480:
			var b storage.Batch
			for range 1 + rng.IntN(20) {
				k := randKeyB()
				if rng.IntN(3) == 0 {
					b.Delete(k)
					delete(m, string(k))
				} else {
					v := randVal()
					b.Put(k, v)
					m[string(k)] = string(v)
				}
			}
			what = fmt.Sprintf("Apply(%d ops)", b.Len())
			mustApply(t, e, &b, writeOpts())
		case r < 495:
			var b storage.Batch
			n := 1 + rng.IntN(10)
			bad := rng.IntN(n + 1)
			for j := range n + 1 {
				if j == bad {
					if rng.IntN(10) == 0 {
						b.Put(randKeyB(), make([]byte, storage.MaxValueSize+1))
					} else {
						b.Put(make([]byte, storage.MaxKeySize+1), randVal())
					}
					continue
				}
				if rng.IntN(3) == 0 {
					b.Delete(randKeyB())
				} else {
					b.Put(randKeyB(), randVal())
				}
			}
			what = fmt.Sprintf("Apply(%d ops, op %d oversized)", b.Len(), bad)
			if err := e.Apply(&b, writeOpts()); !errors.Is(err, storage.ErrTooLarge) {
				t.Fatalf("Apply of a batch with an oversized op = %v, want ErrTooLarge", err)
			}
		case r < 680:
			k := probes[rng.IntN(len(probes))]
			what = fmt.Sprintf("Get(%q)", trunc(k))
			if v, ok := m[string(k)]; ok {
				wantGet(t, e, k, []byte(v))
			} else {
				wantNotFound(t, e, k)
			}
		case r < 800:
			lo, hi := randBounds()
			what = fmt.Sprintf("iterate [%q, %q)", trunc(lo), trunc(hi))
			walkIter(t, e, m, lo, hi, probes, rng, 5+rng.IntN(30))
		case r < 820:
			lo, hi := randBounds()
			what = fmt.Sprintf("scan [%q, %q)", trunc(lo), trunc(hi))
			if lo != nil && hi != nil && bytes.Compare(lo, hi) > 0 {
				break
			}
			o := &storage.IterOptions{LowerBound: lo, UpperBound: hi}
			got := scan(t, e, o)
			if rng.IntN(2) == 0 {
				got = scanBackward(t, e, o)
				slices.Reverse(got)
			}
			if d := diffPairs(got, m.pairs(lo, hi)); d != "" {
				t.Fatalf("scan of [%q, %q): %s", lo, hi, d)
			}
		case r < 850:
			what = "NewSnapshot"
			if len(snaps) >= 4 {
				break
			}
			s, err := e.NewSnapshot()
			if err != nil {
				t.Fatalf("NewSnapshot: %v", err)
			}
			snaps = append(snaps, snap{s, m.clone(), i})
		case r < 900:
			if len(snaps) == 0 {
				break
			}
			j := rng.IntN(len(snaps))
			s := snaps[j]
			what = fmt.Sprintf("read the snapshot of operation %d", s.at)
			for range 5 {
				k := probes[rng.IntN(len(probes))]
				if v, ok := s.m[string(k)]; ok {
					wantGet(t, s.s, k, []byte(v))
				} else {
					wantNotFound(t, s.s, k)
				}
			}
			lo, hi := randBounds()
			walkIter(t, s.s, s.m, lo, hi, probes, rng, 20)
			if rng.IntN(3) == 0 {
				wantContents(t, s.s, s.m)
				if err := s.s.Close(); err != nil {
					t.Fatalf("snapshot Close: %v", err)
				}
				snaps = slices.Delete(snaps, j, j+1)
			}
		case r < 905:
			what = "reopen"
			closeSnaps()
			mustClose(t, e)
			e = openAt(t, c, dir)
			wantContents(t, e, m)
		case r < 915:
			if c.Reclaim == nil {
				break
			}
			what = "Reclaim"
			if err := c.Reclaim(e); err != nil {
				t.Fatalf("Reclaim: %v", err)
			}
		case r < 925:
			what = "Sync"
			if err := e.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		default:
			what = "compare everything"
			wantContents(t, e, m)
		}
	}
	what = "final compare"
	wantContents(t, e, m)
	closeSnaps()
	mustClose(t, e)
	e = openAt(t, c, dir)
	wantContents(t, e, m)
	t.Logf("%d operations, %d keys at the end", modelOps, len(m))
}
