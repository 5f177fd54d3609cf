package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringlog/ringlog/storage"
)

// errs collects the first errors of concurrent goroutines.
type errs struct {
	mu   sync.Mutex
	list []error
	bad  atomic.Bool
}

func (e *errs) add(err error) {
	e.bad.Store(true)
	e.mu.Lock()
	if len(e.list) < 10 {
		e.list = append(e.list, err)
	}
	e.mu.Unlock()
}

func (e *errs) failed() bool { return e.bad.Load() }

func (e *errs) report(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.list {
		t.Error(err)
	}
	if len(e.list) > 0 {
		t.FailNow()
	}
}

// prefixEnd returns the smallest key above every key with prefix p (p
// does not end in 0xff).
func prefixEnd(p string) []byte {
	b := []byte(p)
	b[len(b)-1]++
	return b
}

// checkRange iterates r over the keys with prefix p, forward or backward,
// and checks that keys are in order and that each value is a selfVal of
// its key. It returns the versions seen.
func checkRange(r storage.Reader, p string, backward bool) (map[string]uint64, error) {
	it, err := r.NewIter(&storage.IterOptions{LowerBound: []byte(p), UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	seen := map[string]uint64{}
	var prev []byte
	walk := storage.All(it)
	if backward {
		walk = storage.Backward(it)
	}
	for k, v := range walk {
		if !bytes.HasPrefix(k, []byte(p)) {
			return nil, fmt.Errorf("iterator over prefix %q returned key %q", p, k)
		}
		if prev != nil {
			c := bytes.Compare(prev, k)
			if (!backward && c >= 0) || (backward && c <= 0) {
				return nil, fmt.Errorf("iterator over prefix %q (backward %v): key %q after %q", p, backward, k, prev)
			}
		}
		prev = append(prev[:0], k...)
		ver, err := parseSelfVal(k, v)
		if err != nil {
			return nil, fmt.Errorf("iterator: %v", err)
		}
		seen[string(k)] = ver
	}
	return seen, it.Error()
}

// testConcurrency runs writers on distinct key ranges (puts, deletes,
// batches; each checks that it reads its own writes) beside readers doing
// Gets, scans in both directions and snapshot reads, which check every
// value they see against the key it is under, that the versions of a key
// they see never go back, and that the two keys each writer sets in one
// batch always agree.
func testConcurrency(t *testing.T, c Config) {
	e, _ := openFresh(t, c)
	seed := testSeed(t)
	const (
		writers  = 4
		readers  = 3
		keysPer  = 64
		writeOps = 800
	)
	key := func(w, i int) []byte { return fmt.Appendf(nil, "w%d/%03d", w, i) }
	pairKey := func(w int, ab string) []byte { return fmt.Appendf(nil, "p%d/%s", w, ab) }
	var fails errs
	finals := make([]map[string]uint64, writers) // each writer's final versions (0: absent)
	var wwg, rwg sync.WaitGroup
	var writing atomic.Int32
	writing.Store(writers)

	for w := range writers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			defer writing.Add(-1)
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			state := map[string]uint64{}
			ver := uint64(0)
			var b storage.Batch
			for op := 0; op < writeOps && !fails.failed(); op++ {
				i := rng.IntN(keysPer)
				k := key(w, i)
				var err error
				switch r := rng.IntN(10); {
				case r < 6:
					ver++
					o := storage.NoSync
					if rng.IntN(20) == 0 {
						o = storage.Synced
					}
					err = e.Put(k, selfVal(k, ver, rng.IntN(300)), o)
					state[string(k)] = ver
				case r < 7:
					err = e.Delete(k, nil)
					state[string(k)] = 0
				default:
					b.Reset()
					ver++
					for range 1 + rng.IntN(8) {
						k := key(w, rng.IntN(keysPer))
						if rng.IntN(4) == 0 {
							b.Delete(k)
							state[string(k)] = 0
						} else {
							b.Put(k, selfVal(k, ver, rng.IntN(100)))
							state[string(k)] = ver
						}
					}
					b.Put(pairKey(w, "a"), selfVal(pairKey(w, "a"), ver, 8))
					b.Put(pairKey(w, "b"), selfVal(pairKey(w, "b"), ver, 8))
					err = e.Apply(&b, nil)
				}
				if err != nil {
					fails.add(fmt.Errorf("writer %d op %d: %v", w, op, err))
					return
				}
				if rng.IntN(3) == 0 { // read your own write
					got, err := e.Get(k, nil)
					want := state[string(k)]
					switch {
					case want == 0 && !errors.Is(err, storage.ErrNotFound):
						fails.add(fmt.Errorf("writer %d: Get(%s) after deleting it = %q, %v; want ErrNotFound", w, k, trunc(got), err))
					case want != 0 && err != nil:
						fails.add(fmt.Errorf("writer %d: Get(%s) after writing version %d: %v", w, k, want, err))
					case want != 0:
						if v, err := parseSelfVal(k, got); err != nil || v != want {
							fails.add(fmt.Errorf("writer %d: Get(%s) after writing version %d: version %d, %v", w, k, want, v, err))
						}
					}
				}
			}
			finals[w] = state
		}()
	}

	var readOps atomic.Int64
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(100+r)))
			last := map[string]uint64{} // the newest version seen of each key
			seeVer := func(k string, v uint64, what string) {
				if v < last[k] {
					fails.add(fmt.Errorf("reader %d: %s saw version %d of %s after version %d", r, what, v, k, last[k]))
				}
				last[k] = v
			}
			for writing.Load() > 0 && !fails.failed() {
				readOps.Add(1)
				w := rng.IntN(writers)
				switch op := rng.IntN(10); {
				case op < 5:
					k := key(w, rng.IntN(keysPer))
					got, err := e.Get(k, nil)
					if errors.Is(err, storage.ErrNotFound) {
						continue
					}
					if err != nil {
						fails.add(fmt.Errorf("reader %d: Get(%s): %v", r, k, err))
						return
					}
					v, err := parseSelfVal(k, got)
					if err != nil {
						fails.add(fmt.Errorf("reader %d: Get: %v", r, err))
						return
					}
					seeVer(string(k), v, "Get")
				case op < 8:
					seen, err := checkRange(e, fmt.Sprintf("w%d/", w), op == 7)
					if err != nil {
						fails.add(fmt.Errorf("reader %d: %v", r, err))
						return
					}
					for k, v := range seen {
						seeVer(k, v, "a scan")
					}
					pairs, err := checkRange(e, fmt.Sprintf("p%d/", w), false)
					if err != nil {
						fails.add(fmt.Errorf("reader %d: %v", r, err))
						return
					}
					if len(pairs) == 1 || pairs[string(pairKey(w, "a"))] != pairs[string(pairKey(w, "b"))] {
						fails.add(fmt.Errorf("reader %d: iterator saw the pair keys of writer %d at versions %v: a batch seen in part", r, w, pairs))
						return
					}
				default:
					s, err := e.NewSnapshot()
					if err != nil {
						fails.add(fmt.Errorf("reader %d: NewSnapshot: %v", r, err))
						return
					}
					a, errA := s.Get(pairKey(w, "a"), nil)
					seen, err := checkRange(s, fmt.Sprintf("w%d/", w), false)
					b, errB := s.Get(pairKey(w, "b"), nil)
					s.Close()
					if err != nil {
						fails.add(fmt.Errorf("reader %d: snapshot: %v", r, err))
						return
					}
					for k, v := range seen {
						seeVer(k, v, "a snapshot scan")
					}
					if errors.Is(errA, storage.ErrNotFound) && errors.Is(errB, storage.ErrNotFound) {
						continue
					}
					if errA != nil || errB != nil {
						fails.add(fmt.Errorf("reader %d: snapshot saw pair keys %q (%v) and %q (%v)", r, trunc(a), errA, trunc(b), errB))
						return
					}
					va, errA := parseSelfVal(pairKey(w, "a"), a)
					vb, errB := parseSelfVal(pairKey(w, "b"), b)
					if errA != nil || errB != nil || va != vb {
						fails.add(fmt.Errorf("reader %d: snapshot saw pair keys at versions %d (%v) and %d (%v)", r, va, errA, vb, errB))
						return
					}
				}
			}
		}()
	}
	wwg.Wait()
	rwg.Wait()
	fails.report(t)
	if readOps.Load() < readers {
		t.Fatalf("readers did %d reads while the writers ran", readOps.Load())
	}
	t.Logf("%d writes, %d reads", writers*writeOps, readOps.Load())

	// The final state is every writer's last writes.
	m := model{}
	for _, state := range finals {
		for k, v := range state {
			if v != 0 {
				m[k] = string(selfVal([]byte(k), v, 0))
			}
		}
	}
	got := scan(t, e, &storage.IterOptions{LowerBound: []byte("w")})
	gotM := model{}
	for _, p := range got {
		ver, err := parseSelfVal([]byte(p.k), []byte(p.v))
		if err != nil {
			t.Fatal(err)
		}
		gotM[p.k] = string(selfVal([]byte(p.k), ver, 0))
	}
	if d := diffPairs(gotM.pairs(nil, nil), m.pairs(nil, nil)); d != "" {
		t.Fatalf("after the writers finished (values compared by version): %s", d)
	}
}

// testReclaim fills a store, overwrites and deletes most of it, then runs
// Reclaim repeatedly while readers check every value against the model
// and a writer keeps writing, and a snapshot taken before the overwrites
// must keep reading the old values.
func testReclaim(t *testing.T, c Config) {
	e, dir := openFresh(t, c)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 77))
	const n = 1500
	key := func(i int) []byte { return fmt.Appendf(nil, "g%05d", i) }
	m := model{}
	var b storage.Batch
	for i := range n {
		k := key(i)
		m[string(k)] = string(selfVal(k, 1, 100+rng.IntN(1000)))
		b.Put(k, []byte(m[string(k)]))
		if b.Len() == 100 {
			mustApply(t, e, &b, nil)
			b.Reset()
		}
	}
	mustApply(t, e, &b, nil)
	snap, err := e.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	old := m.clone()
	for ver := uint64(2); ver <= 4; ver++ {
		for i := range n {
			if rng.IntN(10) < 8 {
				k := key(i)
				m[string(k)] = string(selfVal(k, ver, 100+rng.IntN(1000)))
				mustPut(t, e, k, []byte(m[string(k)]), nil)
			}
		}
	}
	for i := range n {
		if rng.IntN(10) == 0 {
			delete(m, string(key(i)))
			mustDelete(t, e, key(i), nil)
		}
	}
	final := m.clone()

	var fails errs
	var stop atomic.Bool
	var wg sync.WaitGroup
	var readOps atomic.Int64
	hkey := func(i int) []byte { return fmt.Appendf(nil, "h%03d", i) }
	hstate := map[string]uint64{}
	wg.Add(1)
	go func() { // a writer on its own keys
		defer wg.Done()
		wrng := rand.New(rand.NewPCG(seed, 78))
		for ver := uint64(1); !stop.Load() && !fails.failed(); ver++ {
			k := hkey(wrng.IntN(100))
			if err := e.Put(k, selfVal(k, ver, wrng.IntN(2000)), nil); err != nil {
				fails.add(fmt.Errorf("writer: %v", err))
				return
			}
			hstate[string(k)] = ver
		}
	}()
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rrng := rand.New(rand.NewPCG(seed, uint64(80+r)))
			for !stop.Load() && !fails.failed() {
				readOps.Add(1)
				switch op := rrng.IntN(10); {
				case op < 6:
					i := rrng.IntN(n)
					k := key(i)
					got, err := e.Get(k, nil)
					want, ok := final[string(k)]
					if !ok {
						if !errors.Is(err, storage.ErrNotFound) {
							fails.add(fmt.Errorf("reader %d: Get(%s) of a deleted key = %d bytes, %v", r, k, len(got), err))
						}
					} else if err != nil || string(got) != want {
						fails.add(fmt.Errorf("reader %d: Get(%s) = %q, %v; want %q", r, k, trunc(got), err, trunc([]byte(want))))
					}
					if op == 0 { // and the old snapshot
						got, err := snap.Get(k, nil)
						if err != nil || string(got) != old[string(k)] {
							fails.add(fmt.Errorf("reader %d: snapshot Get(%s) = %q, %v; want %q", r, k, trunc(got), err, trunc([]byte(old[string(k)]))))
						}
					}
				case op < 9:
					lo := rrng.IntN(n)
					hi := lo + rrng.IntN(200)
					o := &storage.IterOptions{LowerBound: key(lo), UpperBound: key(hi)}
					var rd storage.Reader = e
					want := final
					if op == 8 {
						rd, want = snap, old
					}
					it, err := rd.NewIter(o)
					if err != nil {
						fails.add(err)
						return
					}
					var got []kv
					for k, v := range storage.All(it) {
						got = append(got, kv{string(k), string(v)})
					}
					if err := it.Error(); err != nil {
						fails.add(err)
					}
					it.Close()
					if d := diffPairs(got, want.pairs(o.LowerBound, o.UpperBound)); d != "" {
						fails.add(fmt.Errorf("scan of [%s, %s) during Reclaim (snapshot %v): %s", o.LowerBound, o.UpperBound, op == 8, d))
					}
				default:
					if _, err := checkRange(e, "h", rrng.IntN(2) == 0); err != nil {
						fails.add(err)
					}
				}
			}
		}()
	}
	runs := 0
	for runs < 4 || (readOps.Load() < 400 && runs < 100) {
		if fails.failed() {
			break
		}
		if err := c.Reclaim(e); err != nil {
			fails.add(fmt.Errorf("Reclaim run %d: %v", runs, err))
			break
		}
		runs++
	}
	stop.Store(true)
	wg.Wait()
	fails.report(t)
	t.Logf("%d Reclaim runs, %d reads beside them", runs, readOps.Load())

	for k, v := range hstate {
		final[k] = string(selfVal([]byte(k), v, 0))
	}
	checkFinal := func(r storage.Reader) {
		t.Helper()
		got := scan(t, r, nil)
		gotM := model{}
		for _, p := range got {
			if p.k[0] == 'h' {
				ver, err := parseSelfVal([]byte(p.k), []byte(p.v))
				if err != nil {
					t.Fatal(err)
				}
				gotM[p.k] = string(selfVal([]byte(p.k), ver, 0))
			} else {
				gotM[p.k] = p.v
			}
		}
		if d := diffPairs(gotM.pairs(nil, nil), final.pairs(nil, nil)); d != "" {
			t.Fatalf("after Reclaim: %s", d)
		}
	}
	checkFinal(e)
	wantContents(t, snap, old)
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Reclaim(e); err != nil {
		t.Fatalf("Reclaim: %v", err)
	}
	checkFinal(e)
	mustClose(t, e)
	e = openAt(t, c, dir)
	checkFinal(e)
}
