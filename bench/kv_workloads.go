package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
)

// The kv-* workloads measure ordered key-value stores through the
// storage.Engine interface, each store opened with storage.Open:
//
//   - ringlog/remap, ringlog/mmap, ringlog/copy: the "ringlog" engine
//     (package storage/logkv) with logkv.Options{Backend: the pager
//     backend}, every other option its default (the cleaner reclaims space
//     by itself);
//   - pebble, the baseline: the "pebble" engine (package storage/pebblekv)
//     with nil options, the settings its users run Pebble with: 256 MiB
//     block cache, 64 MiB memtable, 10-bit bloom filters on every level,
//     and Pebble's default block compression (Snappy).
//
// They are durable: both engines sync in the background (ringlog's sync
// interval, Pebble's flushes and compactions) and on close, which a data
// directory on tmpfs would make free.
//
// Data: key i (0 <= i < N) is 16 bytes, kvKeyHi(i) then i, both
// big-endian. kvKeyHi is a seeded bijective hash, so the keys are distinct
// and writing keys 0, 1, 2, ... writes them in random key order (the same
// for every system). Version v of the value of key i is 100 bytes of
// pseudo-random words derived from (i, v) (see kvFillValue): incompressible,
// so Pebble's block compression gains nothing a user's random values would
// not give it. A store of N keys holds version 0 of every value, unless a
// workload says otherwise.
//
// Verification, the same for every system: a reader counts the values it
// is handed and folds the first and last 8 bytes of each (little-endian
// words, as the wal-* workloads read records) into a running XOR; a scan
// also folds every key's two words and checks that each key is greater
// than the one before. Counts and XORs must equal what the generator gives
// for the keys read, computed without the store; a value of another size
// fails too. Checksums are the engines' own business.
//
// Prepared stores: the workloads that read or overwrite a store of N keys
// (kv-get-random, kv-scan, kv-reopen, kv-overwrite-gc) start from a store
// built once per bench run by the parent's setup, one per system, with the
// options the system runs with (a ringlog store takes some of its geometry
// from the backend it is created on: the copy backend's default log is
// smaller): keys 0..N-1 put in that order without sync, version 0, then
// closed. Each run copies it (untimed; holes kept, every file
// synced) into a directory of its own and opens the copy, so no run sees
// what another did to its store. The copy leaves the store's files in the
// page cache.

// Sizes of keys and values.
const (
	kvKeySize   = 16
	kvValueSize = 100
	kvEntrySize = kvKeySize + kvValueSize
)

// kvKeys is N, the keys of a store: 1M with -quick (so Pebble's 64 MiB
// memtable flushes), 10M in the full run (2,000 with the test size).
func kvKeys(s Size) int { return pick(s, 2000, 1_000_000, 10_000_000) }

// kvSyncKeys is the number of puts of kv-put-sync-8w, far fewer than N:
// a synced put waits for an fdatasync (about half a millisecond on the
// disks the bench was written on), shared by at most 8 writers, so 1M of
// them would take minutes per run; 20,000 take a few seconds, and the
// per-put latency it reports needs no more. 100,000 in the full run (400
// with the test size), as wal-sync-8w.
func kvSyncKeys(s Size) int { return pick(s, 400, 20_000, 100_000) }

// kvGets is the number of Gets of kv-get-random: N/4 (250,000 with
// -quick), enough for a steady rate, few enough to leave the -quick time
// to the workloads that need a whole pass over the keys.
func kvGets(s Size) int { return kvKeys(s) / 4 }

// kvReopenGets is the number of Gets kv-reopen serves after opening.
func kvReopenGets(s Size) int { return pick(s, 1000, 10_000, 10_000) }

// kvOverwritePasses is the number of times kv-overwrite-gc overwrites
// every key.
const kvOverwritePasses = 3

// kvSyncWriters is the number of writers of kv-put-sync-8w.
const kvSyncWriters = 8

// Seeds: of the keys, of the values, of the sequences of random Gets, of
// the overwrite passes' orders.
const (
	kvKeySeed     = 0x6b762d62656e6368 // "kv-bench"
	kvValueSeed   = 0x3c6ef372fe94f82b
	kvGetSeed     = 0x510e527fade682d1
	kvReopenSeed  = 0x9b05688c2b3e6c1f
	kvPermSeed    = 0x1f83d9abfb41bd6b
	kvWordStep    = 0x9e3779b97f4a7c15
	kvWordMul     = 0xd6e8feb86659fd93 // odd
	kvMix1        = 0xbf58476d1ce4e5b9
	kvMix2        = 0x94d049bb133111eb
	kvVersionBits = 8 // versions 0..255
)

// mix64 is splitmix64's finalizer: a bijection of uint64 that scatters its
// input's bits.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * kvMix1
	z = (z ^ z>>27) * kvMix2
	return z ^ z>>31
}

// kvKeyHi is the first word of key i.
func kvKeyHi(i int) uint64 { return mix64(uint64(i) ^ kvKeySeed) }

// kvKey writes key i into k (16 bytes).
func kvKey(k []byte, i int) {
	binary.BigEndian.PutUint64(k, kvKeyHi(i))
	binary.BigEndian.PutUint64(k[8:], uint64(i))
}

// kvValueState seeds the words of version v of key i's value: distinct for
// distinct (i, v).
func kvValueState(i, v int) uint64 {
	return mix64(uint64(i)<<kvVersionBits | uint64(v) ^ kvValueSeed)
}

// kvWord is word k of the value seeded by s.
func kvWord(s uint64, k int) uint64 { return (s + uint64(k)*kvWordStep) * kvWordMul }

// kvFillValue writes version v of key i's value into b (100 bytes): words
// 0..11 at bytes 0..95 and word 12 at bytes 92..99 (over the top half of
// word 11), all little-endian. Its first 8 bytes are word 0, its last 8
// bytes word 12.
func kvFillValue(b []byte, i, v int) {
	s := kvValueState(i, v)
	for k := range 12 {
		binary.LittleEndian.PutUint64(b[8*k:], kvWord(s, k))
	}
	binary.LittleEndian.PutUint64(b[kvValueSize-8:], kvWord(s, 12))
}

// kvValueFold is what the check folds for version v of key i's value: the
// XOR of its first and last words.
func kvValueFold(i, v int) uint64 {
	s := kvValueState(i, v)
	return kvWord(s, 0) ^ kvWord(s, 12)
}

// kvKeyFold is what the check folds for key i: the XOR of its two words
// read little-endian.
func kvKeyFold(i int) uint64 {
	var k [kvKeySize]byte
	kvKey(k[:], i)
	return spscFold(k[:])
}

// kvGetIndex is the key of Get number j of a sequence of random Gets over
// n keys: uniform, with repeats, the same for every system.
func kvGetIndex(j, n int, seed uint64) int { return int(mix64(uint64(j)^seed) % uint64(n)) }

// kvPerm is the order of an overwrite pass: j -> (a*j + b) mod n, a
// bijection of [0, n) since a is prime to n. Consecutive j visit keys
// scattered over the key space (kvKeyHi hashes the index), in an order
// that differs from pass to pass.
type kvPerm struct{ a, b, n uint64 }

func newKVPerm(n, pass int) kvPerm {
	un := uint64(n)
	a := max(mix64(uint64(pass)^kvPermSeed)%un, 1)
	for gcd(a, un) != 1 {
		a++
	}
	return kvPerm{a: a, b: mix64(uint64(pass)+kvPermSeed) % un, n: un}
}

// at is the key visited j-th. a*j < n² fits in 64 bits for n < 2^32.
func (p kvPerm) at(j int) int { return int((p.a*uint64(j) + p.b) % p.n) }

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// kvCheck is what a reader saw. The zero value is an empty check; call
// reset before use so that the markers of a problem are unset.
type kvCheck struct {
	n      int    // values
	vx     uint64 // XOR of every value's first and last words
	kx     uint64 // scans: XOR of every key's two words
	badAt  int    // the first value of the wrong size, -1: none
	badLen int
	// unorderedAt is the first key (scans) not greater than the one
	// before, -1: none; unordered is that key.
	unorderedAt int
	unordered   []byte
	prev        []byte
}

func newKVCheck() kvCheck { return kvCheck{badAt: -1, unorderedAt: -1} }

// value folds a value handed to the reader.
func (c *kvCheck) value(v []byte) {
	if len(v) != kvValueSize && c.badAt < 0 {
		c.badAt, c.badLen = c.n, len(v)
	}
	if len(v) >= 8 {
		c.vx ^= spscFold(v)
	}
	c.n++
}

// entry folds the next pair of a scan: its key and its value.
func (c *kvCheck) entry(k, v []byte) {
	if c.n > 0 && bytes.Compare(c.prev, k) >= 0 && c.unorderedAt < 0 {
		c.unorderedAt, c.unordered = c.n, bytes.Clone(k)
	}
	c.prev = append(c.prev[:0], k...)
	if len(k) >= 8 {
		c.kx ^= spscFold(k)
	}
	c.value(v)
}

// kvWant is what a check must find.
type kvWant struct {
	n      int
	vx, kx uint64
}

// kvWantAll is what a scan of a store of keys 0..n-1 holding version v of
// every value finds.
func kvWantAll(n, v int) kvWant {
	w := kvWant{n: n}
	for i := range n {
		w.vx ^= kvValueFold(i, v)
		w.kx ^= kvKeyFold(i)
	}
	return w
}

// kvWantGets is what count Gets (keys kvGetIndex(j, n, seed), j <
// count) of a store holding version 0 find; kx is not checked.
func kvWantGets(count, n int, seed uint64) kvWant {
	w := kvWant{n: count}
	for j := range count {
		w.vx ^= kvValueFold(kvGetIndex(j, n, seed), 0)
	}
	return w
}

// verify compares the check with want; scan says whether the reader was
// a scan (keys folded and ordered).
func (c *kvCheck) verify(what string, want kvWant, scan bool) error {
	switch {
	case c.badAt >= 0:
		return fmt.Errorf("verification failed: %s: value %d has %d bytes, want %d", what, c.badAt, c.badLen, kvValueSize)
	case scan && c.unorderedAt >= 0:
		return fmt.Errorf("verification failed: %s: key %d (%x) does not come after the key before it", what, c.unorderedAt, c.unordered)
	case c.n != want.n:
		return fmt.Errorf("verification failed: %s: %d values read, want %d", what, c.n, want.n)
	case c.vx != want.vx:
		return fmt.Errorf("verification failed: %s: XOR of the first and last words of %d values is %#x, want %#x", what, c.n, c.vx, want.vx)
	case scan && c.kx != want.kx:
		return fmt.Errorf("verification failed: %s: XOR of the words of %d keys is %#x, want %#x", what, c.n, c.kx, want.kx)
	}
	return nil
}

// kvScan reads every pair of db in order with one iterator into c.
func kvScan(db storage.Reader, c *kvCheck) error {
	it, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		c.entry(it.Key(), it.Value())
	}
	if err := it.Error(); err != nil {
		it.Close()
		return fmt.Errorf("scan after %d pairs: %w", c.n, err)
	}
	return it.Close()
}

// kvVerifyScan scans db and checks that it holds keys 0..n-1 with version
// v of their values.
func kvVerifyScan(db storage.Reader, what string, n, v int) error {
	c := newKVCheck()
	if err := kvScan(db, &c); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return c.verify(what, kvWantAll(n, v), true)
}

// kvEngine is how a system of the kv-* workloads opens its stores.
type kvEngine struct {
	name string     // the engine: storage.Open's first argument
	opts func() any // its options for storage.Open
}

// kvEngines maps the systems of the kv-* workloads to their engines. The
// bench's tests add engines of their own.
var kvEngines = map[string]kvEngine{}

func kvEngineOf(system string) (kvEngine, error) {
	e, ok := kvEngines[system]
	if !ok {
		return kvEngine{}, fmt.Errorf("system %s has no key-value engine", system)
	}
	return e, nil
}

// kvLogCapacity is the ringlog systems' log capacity: logkv's default on
// the mapped backends.
const kvLogCapacity = 256 * logkv.DefaultSegmentSize

func init() {
	for _, b := range []pager.Backend{pager.Remap, pager.Mmap, pager.Copy} {
		// The same log capacity on every backend: the copy backend's
		// default (544 MiB, to keep its heap view small) is too small for
		// the full run's 10M keys.
		kvEngines["ringlog/"+b.String()] = kvEngine{name: "ringlog", opts: func() any {
			return &logkv.Options{Backend: b, Capacity: kvLogCapacity}
		}}
	}
	kvEngines["pebble"] = kvEngine{name: "pebble", opts: func() any { return nil }}
	for _, w := range newKVWorkloads("kv-", walSystems, "pebble") {
		registerWorkload(w)
	}
}

// newKVWorkloads defines the kv-* workloads under names starting with
// prefix, on systems (each in kvEngines), the ratio against baseline.
func newKVWorkloads(prefix string, systems []string, baseline string) []*workload {
	setup := func(e *env) error {
		ss := e.systems
		if ss == nil {
			ss = systems
		}
		return setupKVStores(e.dir, kvKeys(e.size), ss)
	}
	return []*workload{
		{
			name: prefix + "put-nosync", doc: "put 1M (full: 10M) 16 B keys / 100 B values in random key order, no sync",
			systems: systems, baseline: baseline, durable: true, run: runKVPutNoSync,
		},
		{
			name: prefix + "put-sync-8w", doc: "8 goroutines put 20k (full: 100k) keys, each put synced; p50/p99",
			systems: systems, baseline: baseline, durable: true, run: runKVPutSync8w,
		},
		{
			name: prefix + "get-random", doc: "250k (full: 2.5M) random Gets of existing keys of a store of 1M (full: 10M) keys",
			systems: systems, baseline: baseline, durable: true, setup: setup, run: runKVGetRandom,
		},
		{
			name: prefix + "scan", doc: "full ordered scan of a store of 1M (full: 10M) keys",
			systems: systems, baseline: baseline, durable: true, setup: setup, run: runKVScan,
		},
		{
			name: prefix + "reopen", doc: "open a closed store of 1M (full: 10M) keys and serve 10,000 random Gets; 1/time (open_ms in JSON)",
			systems: systems, baseline: baseline, durable: true, setup: setup, run: runKVReopen,
		},
		{
			name: prefix + "overwrite-gc", doc: "overwrite every key of a 1M (full: 10M) store 3 times, space reclaimed as it goes (space_amp in JSON)",
			systems: systems, baseline: baseline, durable: true, setup: setup, run: runKVOverwriteGC,
		},
	}
}

// kvStorePath is the prepared store of n keys of system in dir.
func kvStorePath(dir string, n int, system string) string {
	return filepath.Join(dir, fmt.Sprintf("kv-store-%d.%s", n, strings.ReplaceAll(system, "/", "-")))
}

// setupKVStores builds the prepared store of n keys of every one of
// systems in dir, unless it is there already. A system whose store cannot
// be built fails alone: the error is kept beside the store's path
// (kvStoreError) for its runs to report, and the other systems still run.
// A system whose engine is not registered is left out: its runs fail on
// their own, saying so.
func setupKVStores(dir string, n int, systems []string) error {
	for _, s := range systems {
		e, err := kvEngineOf(s)
		if err != nil {
			return err
		}
		if !slices.Contains(storage.Engines(), e.name) {
			continue
		}
		path := kvStorePath(dir, n, s)
		if _, err := os.Stat(kvStoreError(path)); err == nil {
			continue // failed already, for another workload
		}
		if err := createKVStore(path, e, n); err != nil {
			msg := fmt.Sprintf("building the %s store of %d keys: %v", s, n, err)
			if werr := os.WriteFile(kvStoreError(path), []byte(msg), 0o644); werr != nil {
				return errors.New(msg)
			}
		}
	}
	return nil
}

// kvStoreError is the file in which setup leaves why it could not build
// the prepared store at path.
func kvStoreError(path string) string { return path + ".error" }

// createKVStore builds a store of keys 0..n-1 at path with e: each put in
// index order (random key order), version 0, without sync, then the store
// closed (synced). It is built under a temporary name and renamed into
// place, so a store under path is always complete; an existing one is
// kept.
func createKVStore(path string, e kvEngine, n int) (err error) {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	db, err := storage.Open(e.name, tmp, e.opts())
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	var k [kvKeySize]byte
	var v [kvValueSize]byte
	for i := range n {
		kvKey(k[:], i)
		kvFillValue(v[:], i, 0)
		if err := db.Put(k[:], v[:], storage.NoSync); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	closed = true
	if err := db.Close(); err != nil {
		return err
	}
	if err := osfile.SyncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return osfile.SyncDir(filepath.Dir(path))
}

// copyStore copies the store directory src to dst (which must not exist):
// every directory and regular file, holes kept, each file synced, then
// the directories.
func copyStore(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			dirs = append(dirs, to)
			return os.Mkdir(to, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, to)
		}
		return fmt.Errorf("copying %s: not a regular file or a directory", path)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := osfile.SyncDir(dirs[i]); err != nil {
			return err
		}
	}
	return osfile.SyncDir(filepath.Dir(dst))
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	defer out.Close()
	if err := copyFileData(out, in, st.Size()); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := osfile.Fdatasync(out); err != nil {
		return err
	}
	return out.Close()
}

// storeDiskBytes is the disk space of the regular files under dir (see
// diskBytes: st_blocks × 512 on Linux, holes not counted, space
// allocated past a file's end counted).
func storeDiskBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by the engine meanwhile
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += diskBytes(fi)
		return nil
	})
	return total, err
}

// kvRun is the store of one run: in a directory of its own under the data
// directory, removed by cleanup.
type kvRun struct {
	engine kvEngine
	dir    string // the run's directory
	store  string // the store's directory in it
	db     storage.Engine
}

// newKVRun makes the run's directory; with prepared set it copies the
// prepared store of n keys there. The store is not opened.
func newKVRun(r *run, prefix string, n int, prepared bool) (*kvRun, error) {
	e, err := kvEngineOf(r.system)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(storage.Engines(), e.name) {
		return nil, fmt.Errorf("storage engine %q is not registered: its package is not linked into the bench", e.name)
	}
	dir, err := os.MkdirTemp(r.dir, prefix)
	if err != nil {
		return nil, err
	}
	k := &kvRun{engine: e, dir: dir, store: filepath.Join(dir, "store")}
	if prepared {
		src := kvStorePath(r.dir, n, r.system)
		if msg, err := os.ReadFile(kvStoreError(src)); err == nil {
			k.cleanup()
			return nil, fmt.Errorf("no prepared store: setup failed %s", msg)
		}
		if _, err := os.Stat(src); err != nil {
			k.cleanup()
			return nil, fmt.Errorf("the prepared store (setup should have built it): %w", err)
		}
		if err := copyStore(src, k.store); err != nil {
			k.cleanup()
			return nil, fmt.Errorf("copying the prepared store: %w", err)
		}
	}
	return k, nil
}

func (k *kvRun) open() error {
	db, err := storage.Open(k.engine.name, k.store, k.engine.opts())
	if err != nil {
		return err
	}
	k.db = db
	return nil
}

// close closes the store if it is open, reporting its error through *err
// unless there is one already.
func (k *kvRun) close(err *error) {
	if k.db == nil {
		return
	}
	cerr := k.db.Close()
	k.db = nil
	if cerr != nil && *err == nil {
		*err = fmt.Errorf("closing the store: %w", cerr)
	}
}

func (k *kvRun) cleanup() { os.RemoveAll(k.dir) }

// kvPutNoSync measures unsynced puts into a new store.
//
// Untimed: open an empty store in a directory of the run's own under the
// data directory. Timed: put keys 0..N-1 (N = 1M with -quick, 10M in the
// full run, 2,000 with the test size) in that order, which is random key
// order, each value version 0, without sync (storage.NoSync). The key and
// value buffers are reused from one put to the next, as a caller's would
// be. Untimed after: a scan verifies the store (keys 0..N-1 in order,
// version 0 of every value), then the store is closed (its final sync is
// not timed).
//
// n = puts, bytes = n × 116 (key and value bytes). No per-operation
// latency: an unsynced put returns once the write is in memory.
func runKVPutNoSync(r *run) (_ work, err error) {
	n := kvKeys(r.size)
	k, err := newKVRun(r, "kv-put-", n, false)
	if err != nil {
		return work{}, err
	}
	defer k.cleanup()
	if err := k.open(); err != nil {
		return work{}, err
	}
	defer k.close(&err)
	var key [kvKeySize]byte
	var val [kvValueSize]byte

	r.startTimer()
	for i := range n {
		kvKey(key[:], i)
		kvFillValue(val[:], i, 0)
		if err := k.db.Put(key[:], val[:], storage.NoSync); err != nil {
			return work{}, fmt.Errorf("put %d: %w", i, err)
		}
	}
	r.stopTimer()

	if err := kvVerifyScan(k.db, "scan after the puts", n, 0); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * kvEntrySize}, nil
}

// kvPutSync8w measures synced puts from 8 goroutines: group commit.
//
// Untimed: open an empty store as for kv-put-nosync. Timed: from starting
// 8 writers until the last returns; writer w puts keys w×n/8 ..
// (w+1)×n/8-1 in that order (random key order), version 0, each with
// WriteOptions{Sync: true}, which returns once the put is durable. n =
// 20,000 with -quick, 100,000 in the full run (400 with the test size):
// see kvSyncKeys for why fewer than N. Each put's latency is recorded for
// p50/p99. Untimed after: a scan verifies the store holds keys 0..n-1
// with version 0 of their values; then it is closed.
//
// n = puts, bytes = n × 116.
func runKVPutSync8w(r *run) (_ work, err error) {
	n := kvSyncKeys(r.size)
	per := n / kvSyncWriters
	n = per * kvSyncWriters
	k, err := newKVRun(r, "kv-sync-", n, false)
	if err != nil {
		return work{}, err
	}
	defer k.cleanup()
	if err := k.open(); err != nil {
		return work{}, err
	}
	defer k.close(&err)
	lat := make([][]time.Duration, kvSyncWriters)
	for w := range lat {
		lat[w] = make([]time.Duration, 0, per)
	}
	errs := make([]error, kvSyncWriters)
	db := k.db

	r.startTimer()
	var wg sync.WaitGroup
	for w := range kvSyncWriters {
		wg.Go(func() {
			var key [kvKeySize]byte
			var val [kvValueSize]byte
			for i := w * per; i < (w+1)*per; i++ {
				kvKey(key[:], i)
				kvFillValue(val[:], i, 0)
				t0 := time.Now()
				err := db.Put(key[:], val[:], storage.Synced)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					errs[w] = fmt.Errorf("writer %d, put %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	r.stopTimer()
	if err := errors.Join(errs...); err != nil {
		return work{}, err
	}
	recordLatencies(r, lat)

	if err := kvVerifyScan(k.db, "scan after the puts", n, 0); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * kvEntrySize}, nil
}

// openPrepared copies the prepared store of n keys into a directory of the
// run's own and opens it.
func openPrepared(r *run, prefix string, n int) (*kvRun, error) {
	k, err := newKVRun(r, prefix, n, true)
	if err != nil {
		return nil, err
	}
	if err := k.open(); err != nil {
		k.cleanup()
		return nil, err
	}
	return k, nil
}

// kvGetRandom measures point reads of existing keys.
//
// Untimed: copy the prepared store of N keys (see above) and open the
// copy; one verified scan of the whole store, which warms what the engine
// caches or maps (Pebble's block cache holds the whole store with -quick;
// ringlog's log mapping is faulted in). Timed: G = N/4 Gets (250,000 with
// -quick, 2.5M in the full run) of keys kvGetIndex(j) for j = 0..G-1,
// uniform over the N keys with repeats, the same sequence on every system, into one reused
// buffer; each value folded into the check. A key not found fails the
// run. Verified after timing: G values whose words fold to what version 0
// of the values of those keys gives.
//
// n = Gets, bytes = n × 116.
func runKVGetRandom(r *run) (_ work, err error) {
	n := kvKeys(r.size)
	k, err := openPrepared(r, "kv-get-", n)
	if err != nil {
		return work{}, err
	}
	defer k.cleanup()
	defer k.close(&err)
	if err := kvVerifyScan(k.db, "warm-up scan", n, 0); err != nil {
		return work{}, err
	}
	gets := kvGets(r.size)
	c := newKVCheck()
	buf := make([]byte, 0, kvValueSize)

	r.startTimer()
	if err := kvRandomGets(k.db, &c, gets, n, kvGetSeed, buf); err != nil {
		return work{}, err
	}
	r.stopTimer()

	if err := c.verify("random gets", kvWantGets(gets, n, kvGetSeed), false); err != nil {
		return work{}, err
	}
	return work{n: int64(gets), bytes: int64(gets) * kvEntrySize}, nil
}

// kvScan measures a full ordered scan.
//
// Untimed: copy the prepared store of N keys and open the copy; one
// verified scan, as the timed one (warms caches and mappings). Timed: one
// iterator over the whole store (NewIter(nil), First, Next until the end,
// Close), each pair folded into the check: keys in increasing order, N
// pairs whose keys and values fold to what keys 0..N-1 with version 0 of
// their values give (verified after timing).
//
// n = pairs, bytes = n × 116.
func runKVScan(r *run) (_ work, err error) {
	n := kvKeys(r.size)
	k, err := openPrepared(r, "kv-scan-", n)
	if err != nil {
		return work{}, err
	}
	defer k.cleanup()
	defer k.close(&err)
	if err := kvVerifyScan(k.db, "warm-up scan", n, 0); err != nil {
		return work{}, err
	}
	c := newKVCheck()
	c.prev = make([]byte, 0, kvKeySize)

	r.startTimer()
	err = kvScan(k.db, &c)
	r.stopTimer()
	if err != nil {
		return work{}, err
	}

	if err := c.verify("timed scan", kvWantAll(n, 0), true); err != nil {
		return work{}, err
	}
	return work{n: int64(n), bytes: int64(n) * kvEntrySize}, nil
}

// kvReopen measures opening a store and serving reads right away: the
// restart path.
//
// Untimed: copy the prepared store of N keys, closed (its files in the
// page cache: the copy wrote them). Timed: storage.Open of the copy
// (ringlog: the log's recovery, which rebuilds the index; Pebble: its
// manifest and WAL replay), then 10,000 Gets of random existing keys
// (kvGetIndex with a seed of its own), verified as in kv-get-random. The
// store is closed after timing.
//
// n = 1 (ops/s is 1 / the time of open and Gets), bytes = N × 116 (the
// store's live bytes). The JSON row adds open_ms, the time of storage.Open
// alone.
func runKVReopen(r *run) (_ work, err error) {
	n := kvKeys(r.size)
	k, err := newKVRun(r, "kv-reopen-", n, true)
	if err != nil {
		return work{}, err
	}
	defer k.cleanup()
	defer k.close(&err)
	gets := kvReopenGets(r.size)
	c := newKVCheck()
	buf := make([]byte, 0, kvValueSize)

	r.startTimer()
	t0 := time.Now()
	if err := k.open(); err != nil {
		return work{}, err
	}
	openTime := time.Since(t0)
	if err := kvRandomGets(k.db, &c, gets, n, kvReopenSeed, buf); err != nil {
		return work{}, err
	}
	r.stopTimer()
	r.setExtra("open_ms", float64(openTime)/float64(time.Millisecond))

	if err := c.verify("gets after open", kvWantGets(gets, n, kvReopenSeed), false); err != nil {
		return work{}, err
	}
	return work{n: 1, bytes: int64(n) * kvEntrySize}, nil
}

// kvOverwriteGC measures overwrites while the engine reclaims the space
// of the values they replace, and the space the store takes after.
//
// Untimed: copy the prepared store of N keys (version 0) and open the
// copy. Timed: 3 passes, pass p (1..3) putting version p of every key's
// value without sync, in an order of its own (kvPerm: a permutation of the
// keys, different from pass to pass). Reclamation is the engine's own,
// in the background: ringlog's cleaner, Pebble's compactions. Untimed
// after: Sync, then the store's size on disk (st_blocks × 512 of every
// regular file under its directory; see storeDiskBytes); a scan verifies
// that the store holds keys 0..N-1 with version 3 of their values; the
// store is closed.
//
// n = puts (3N), bytes = n × 116. The JSON row adds space_amp: the bytes
// on disk after the Sync over the live bytes, N × 116; and gc_runs: the
// reclamation runs counted by the engine from open to then
// (Stats.GCRuns: ringlog's cleaner passes, Pebble's compactions).
func runKVOverwriteGC(r *run) (_ work, err error) {
	n := kvKeys(r.size)
	k, err := openPrepared(r, "kv-overwrite-", n)
	if err != nil {
		return work{}, err
	}
	defer k.cleanup()
	defer k.close(&err)
	before := k.db.Stats()
	var key [kvKeySize]byte
	var val [kvValueSize]byte
	perms := make([]kvPerm, kvOverwritePasses)
	for p := range perms {
		perms[p] = newKVPerm(n, p+1)
	}

	r.startTimer()
	for p, perm := range perms {
		for j := range n {
			i := perm.at(j)
			kvKey(key[:], i)
			kvFillValue(val[:], i, p+1)
			if err := k.db.Put(key[:], val[:], storage.NoSync); err != nil {
				return work{}, fmt.Errorf("pass %d, put %d (key %d): %w", p+1, j, i, err)
			}
		}
	}
	r.stopTimer()

	if err := k.db.Sync(); err != nil {
		return work{}, err
	}
	disk, err := storeDiskBytes(k.store)
	if err != nil {
		return work{}, err
	}
	r.setExtra("space_amp", float64(disk)/float64(int64(n)*kvEntrySize))
	if after := k.db.Stats(); after.GCRuns >= 0 && before.GCRuns >= 0 {
		r.setExtra("gc_runs", float64(after.GCRuns-before.GCRuns))
	}
	if err := kvVerifyScan(k.db, "scan after the overwrites", n, kvOverwritePasses); err != nil {
		return work{}, err
	}
	puts := kvOverwritePasses * n
	return work{n: int64(puts), bytes: int64(puts) * kvEntrySize}, nil
}

// kvRandomGets does gets Gets of the keys kvGetIndex picks with seed from
// a store of n keys, each value into c.
func kvRandomGets(db storage.Engine, c *kvCheck, gets, n int, seed uint64, buf []byte) error {
	var key [kvKeySize]byte
	for j := range gets {
		i := kvGetIndex(j, n, seed)
		kvKey(key[:], i)
		v, err := db.Get(key[:], buf)
		if err != nil {
			return fmt.Errorf("get %d (key %d): %w", j, i, err)
		}
		c.value(v)
		buf = v
	}
	return nil
}
