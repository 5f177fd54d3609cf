//go:build linux

package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
)

// crashKV: the crash suite over the key-value store. The child's writers
// put new keys (synced), apply synced batches of new keys, and overwrite
// or delete keys they wrote before; the store's segments are small so its
// cleaner copies and frees them while the writers run. Before each write
// the child prints its intent ("P key size", size 0 for a delete), after
// it returns the acknowledgement ("K key"). After a kill, each key must be
// in the state of its last acknowledged write or of one of the writes
// announced after it (any of those may have reached the log); a batch's
// keys are there all or none; the store holds no key nobody wrote.
//
// Keys: "t/<run>/<writer>/<k>" with "/b<n>" appended for the members of a
// batch of n keys; values: payload(run, writer, k) of the size written.

// kvOp is one write of a key, in the order the writer made them.
type kvOp struct {
	size  int // 0: delete
	acked bool
}

// kvKeyState is what the parent knows of a key.
type kvKeyState struct {
	id    recID
	batch int // members of the key's batch (0: not in a batch)
	ops   []kvOp
}

// allowed lists the sizes the key may have now (0: absent).
func (s *kvKeyState) allowed() []int {
	last := -1
	for i, op := range s.ops {
		if op.acked {
			last = i
		}
	}
	var out []int
	if last < 0 {
		out = append(out, 0)
		last = 0
	}
	for _, op := range s.ops[last:] {
		out = append(out, op.size)
	}
	return out
}

// promised says whether the key's state is pinned down by an
// acknowledgement with nothing announced after it.
func (s *kvKeyState) promised() bool {
	return len(s.ops) > 0 && s.ops[len(s.ops)-1].acked
}

func kvOptions(lc logConfig) (*logkv.Options, error) {
	b, err := pager.ParseBackend(lc.Backend)
	if err != nil {
		return nil, err
	}
	return &logkv.Options{Backend: b, SegmentSize: lc.SegmentSize, Capacity: lc.Capacity}, nil
}

func crashKVSeries(ctx context.Context, c *Config, dir string, rng *rand.Rand, kills int, r *Result) error {
	bs := backends()
	lc := logConfig{Backend: bs[rng.IntN(len(bs))], Growing: true, SegmentSize: 1 << 18, Capacity: 64 << 18, Policy: "always"}
	store := filepath.Join(dir, "crash-kv")
	os.RemoveAll(store)
	defer os.RemoveAll(store)
	keys := map[string]*kvKeyState{}
	for range kills {
		job := crashJob{Path: store, Log: lc, Run: rng.Uint64(), Seed: rng.Uint64(), Writers: 1 + rng.IntN(4)}
		lines, err := runAndKill(ctx, "crash-kv", &job, rng)
		if err != nil {
			return fmt.Errorf("store (%v): %w", lc, err)
		}
		acks, err := applyKVLines(keys, lines)
		if err != nil {
			return err
		}
		r.Acked += int64(acks)
		checkKV(c, store, lc, keys, r)
		r.Trials++
	}
	return nil
}

// applyKVLines adds what a writer printed (intents and acknowledgements)
// to keys and returns the number of acknowledgements.
func applyKVLines(keys map[string]*kvKeyState, lines []string) (int, error) {
	acks := 0
	for _, ln := range lines {
		f := strings.Fields(ln)
		switch {
		case len(f) == 3 && f[0] == "P":
			size, _ := strconv.Atoi(f[2])
			s := keys[f[1]]
			if s == nil {
				id, batch, ok := parseKVKey(f[1])
				if !ok {
					return acks, fmt.Errorf("writer printed a bad key %q", f[1])
				}
				s = &kvKeyState{id: id, batch: batch}
				keys[f[1]] = s
			}
			s.ops = append(s.ops, kvOp{size: size})
		case len(f) == 2 && f[0] == "K":
			s := keys[f[1]]
			if s == nil || len(s.ops) == 0 {
				return acks, fmt.Errorf("writer acknowledged %q before announcing it", f[1])
			}
			s.ops[len(s.ops)-1].acked = true
			acks++
		}
	}
	return acks, nil
}

// parseKVKey reads the id and batch size of a key the child wrote.
func parseKVKey(key string) (recID, int, bool) {
	f := strings.Split(key, "/")
	if len(f) < 4 || len(f) > 5 || f[0] != "t" {
		return recID{}, 0, false
	}
	run, err1 := strconv.ParseUint(f[1], 16, 64)
	w, err2 := strconv.Atoi(f[2])
	k, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return recID{}, 0, false
	}
	batch := 0
	if len(f) == 5 {
		n, err := strconv.Atoi(strings.TrimPrefix(f[4], "b"))
		if err != nil || !strings.HasPrefix(f[4], "b") {
			return recID{}, 0, false
		}
		batch = n
	}
	return recID{run, w, k}, batch, true
}

func kvKey(id recID, batch int) string {
	k := fmt.Sprintf("t/%016x/%02d/%08d", id.run, id.w, id.k)
	if batch > 0 {
		k += fmt.Sprintf("/b%d", batch)
	}
	return k
}

// checkKV reopens the store and checks every key against what the parent
// knows; each key's state found becomes its only allowed state for the
// next checks.
func checkKV(c *Config, store string, lc logConfig, keys map[string]*kvKeyState, r *Result) {
	o, _ := kvOptions(lc)
	db, err := logkv.Open(store, o)
	if err != nil {
		for _, s := range keys {
			if s.promised() && s.ops[len(s.ops)-1].size > 0 {
				r.Lost++
			}
		}
		r.fail("crash (store %v): reopen: %v", lc, err)
		c.logf("crash (store %v): reopen: %v", lc, err)
		return
	}
	defer db.Close()
	type batchKey struct {
		run   uint64
		w, k0 int
	}
	batches := map[batchKey][2]int{} // (found, members)
	var buf []byte
	for key, s := range keys {
		v, err := db.Get([]byte(key), buf[:0])
		size := 0
		switch {
		case err == nil:
			buf = v
			size = len(v)
			if id, ok := parsePayload(v); !ok || id != s.id {
				r.Corrupt++
				r.fail("crash (store %v): key %s has a value that was never written to it (%d bytes)", lc, key, len(v))
				continue
			}
		case errors.Is(err, storage.ErrNotFound):
		default:
			r.Corrupt++
			r.fail("crash (store %v): get %s: %v", lc, key, err)
			continue
		}
		ok := false
		for _, a := range s.allowed() {
			ok = ok || a == size
		}
		if !ok {
			if size == 0 {
				r.Lost++
				r.fail("crash (store %v): acknowledged key %s is missing", lc, key)
			} else {
				r.Corrupt++
				r.fail("crash (store %v): key %s has a %d-byte value, allowed %v", lc, key, size, s.allowed())
			}
		}
		if s.batch > 0 {
			// The child numbers a batch's members k0 .. k0+n-1, k0 a
			// multiple of 8 and n < 8.
			bk := batchKey{s.id.run, s.id.w, s.id.k &^ 7}
			b := batches[bk]
			b[1] = s.batch
			if size > 0 {
				b[0]++
			}
			batches[bk] = b
		}
		s.ops = []kvOp{{size: size, acked: true}}
	}
	for bk, b := range batches {
		if b[0] != 0 && b[0] != b[1] {
			r.Corrupt++
			r.fail("crash (store %v): batch of run %x writer %d at %d: %d of %d keys found", lc, bk.run, bk.w, bk.k0, b[0], b[1])
		}
	}
	// No key nobody wrote.
	it, err := db.NewIter(nil)
	if err != nil {
		r.fail("crash (store %v): iterator: %v", lc, err)
		r.Corrupt++
		return
	}
	for k, v := range storage.All(it) {
		s := keys[string(k)]
		if s == nil {
			r.Corrupt++
			r.fail("crash (store %v): key %q was never written", lc, k)
			continue
		}
		if id, ok := parsePayload(v); !ok || id != s.id {
			r.Corrupt++
			r.fail("crash (store %v): iterating, key %s has a value never written to it", lc, k)
		}
	}
	if err := it.Close(); err != nil {
		r.Corrupt++
		r.fail("crash (store %v): iterating: %v", lc, err)
	}
}

// crashKVChild is the child of crashKVSeries: it writes until killed.
func crashKVChild(j *crashJob) error {
	o, err := kvOptions(j.Log)
	if err != nil {
		return err
	}
	db, err := logkv.Open(j.Path, o)
	if err != nil {
		return err
	}
	return writeKV(context.Background(), db, j, newAckPrinter().print)
}

// writeKV writes to db from j.Writers writers until ctx ends or a write
// fails, printing each write's intent before it and its acknowledgement
// after it (see crashKV).
func writeKV(ctx context.Context, db *logkv.DB, j *crashJob, print func(lines ...string)) error {
	errc := make(chan error, j.Writers)
	var wg sync.WaitGroup
	for w := range j.Writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(j.Seed, uint64(w)))
			var mine []recID // single keys this writer wrote (overwrite/delete targets)
			put := func(id recID, size int) error {
				key := kvKey(id, 0)
				print(fmt.Sprintf("P %s %d", key, size))
				var err error
				if size == 0 {
					err = db.Delete([]byte(key), storage.Synced)
				} else {
					err = db.Put([]byte(key), payload(id, size), storage.Synced)
				}
				if err != nil {
					return err
				}
				print("K " + key)
				return nil
			}
			for k := 0; ctx.Err() == nil; {
				var err error
				switch op := rng.IntN(10); {
				case op < 4 || len(mine) == 0:
					id := recID{j.Run, w, k}
					err = put(id, minPayload+rng.IntN(2048))
					mine = append(mine, id)
					k++
				case op < 6:
					// A batch of new keys, numbered from a multiple of 8.
					k = (k + 7) &^ 7
					n := 2 + rng.IntN(5)
					var b storage.Batch
					var keys []string
					for i := range n {
						id := recID{j.Run, w, k + i}
						key := kvKey(id, n)
						keys = append(keys, key)
						size := minPayload + rng.IntN(1024)
						b.Put([]byte(key), payload(id, size))
						print(fmt.Sprintf("P %s %d", key, size))
					}
					if err = db.Apply(&b, storage.Synced); err == nil {
						for i := range keys {
							keys[i] = "K " + keys[i]
						}
						print(keys...)
					}
					k += 8
				case op < 8:
					id := mine[rng.IntN(len(mine))]
					err = put(id, minPayload+rng.IntN(2048)) // overwrite
				default:
					i := rng.IntN(len(mine))
					err = put(mine[i], 0)
					mine[i] = mine[len(mine)-1]
					mine = mine[:len(mine)-1]
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	return waitWriters(ctx, &wg, errc)
}
