package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/storage"
)

// The kv workload code runs in the tests on memEngine, a small engine of
// the tests' own: a sorted in-memory map, written whole to a file in its
// directory by Sync and Close and read back by open, so that a store
// outlives its process as the workloads need (the parent builds the
// prepared store, a child opens a copy). It is registered as storage
// engine "test-mem"; the test systems test/kv-a and test/kv-b open it,
// test/kv-bad opens it with a fault injected (memOptions), and the
// workloads run on them under the names test-kv-*.

const memEngineName = "test-mem"

// memOptions inject faults into a memEngine.
type memOptions struct {
	// badValue: Get and iterators hand out a wrong value for the key with
	// this index (kvKey), -1 none.
	badValue int
	// dropKey: the key with this index is missing from iterators (Get
	// still finds it), -1 none.
	dropKey int
	// swapScan: iterators hand out the first two pairs in the wrong order.
	swapScan bool
	// maxKeys > 0: a put of a new key fails once the store holds this
	// many (a full store).
	maxKeys int
}

func init() {
	storage.Register(memEngineName, openMemEngine)
	for _, s := range []string{"test/kv-a", "test/kv-b", "test/kv-bad"} {
		registerSystem(&system{name: s, available: func() error { return nil }})
	}
	kvEngines["test/kv-a"] = kvEngine{name: memEngineName, opts: func() any { return nil }}
	kvEngines["test/kv-b"] = kvEngine{name: memEngineName, opts: func() any { return nil }}
	// The fault is chosen per test through the environment, so that the
	// children see it too.
	kvEngines["test/kv-bad"] = kvEngine{name: memEngineName, opts: func() any { return memFaultFromEnv() }}
	for _, w := range newKVWorkloads("test-kv-", []string{"test/kv-a", "test/kv-b"}, "test/kv-b") {
		registerWorkload(w)
	}
	for _, w := range newKVWorkloads("test-kvbad-", []string{"test/kv-bad"}, "") {
		registerWorkload(w)
	}
	for _, w := range newKVWorkloads("test-kvmix-", []string{"test/kv-a", "test/kv-bad"}, "test/kv-a") {
		registerWorkload(w)
	}
}

// memFaultEnv names the fault test/kv-bad injects: "value", "drop",
// "order" or "full".
const memFaultEnv = "RINGLOG_BENCH_TEST_KV_FAULT"

func memFaultFromEnv() *memOptions {
	o := &memOptions{badValue: -1, dropKey: -1}
	switch os.Getenv(memFaultEnv) {
	case "value":
		o.badValue = kvGetIndex(3, kvKeys(SizeTiny), kvGetSeed)
	case "drop":
		o.dropKey = 7
	case "order":
		o.swapScan = true
	case "full":
		o.maxKeys = kvKeys(SizeTiny) / 2
	}
	return o
}

type memEngine struct {
	mu     sync.Mutex
	path   string
	m      map[string][]byte
	o      memOptions
	closed bool
	puts   int64
}

func openMemEngine(dir string, opts any) (storage.Engine, error) {
	o := memOptions{badValue: -1, dropKey: -1}
	switch x := opts.(type) {
	case nil:
	case *memOptions:
		o = *x
	default:
		return nil, fmt.Errorf("memEngine: options of type %T: %w", opts, storage.ErrBadOption)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	e := &memEngine{path: filepath.Join(dir, "data"), m: map[string][]byte{}, o: o}
	f, err := os.Open(e.path)
	if errors.Is(err, os.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd := bufio.NewReader(f)
	for {
		kl, err := binary.ReadUvarint(rd)
		if err == io.EOF {
			return e, nil
		}
		if err != nil {
			return nil, err
		}
		vl, err := binary.ReadUvarint(rd)
		if err != nil {
			return nil, err
		}
		b := make([]byte, kl+vl)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, fmt.Errorf("memEngine: %w", storage.ErrCorrupt)
		}
		e.m[string(b[:kl])] = b[kl:]
	}
}

// lookup returns the value the engine hands out for key (fault included).
func (e *memEngine) lookup(key string, v []byte) []byte {
	if e.o.badValue >= 0 {
		var k [kvKeySize]byte
		kvKey(k[:], e.o.badValue)
		if key == string(k[:]) {
			v = bytes.Clone(v)
			v[0] ^= 1
		}
	}
	return v
}

func (e *memEngine) Get(key, buf []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, storage.ErrClosed
	}
	v, ok := e.m[string(key)]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return append(buf[:0], e.lookup(string(key), v)...), nil
}

func (e *memEngine) NewIter(o *storage.IterOptions) (storage.Iterator, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, storage.ErrClosed
	}
	var drop string
	if e.o.dropKey >= 0 {
		var k [kvKeySize]byte
		kvKey(k[:], e.o.dropKey)
		drop = string(k[:])
	}
	it := &memIter{pos: -1}
	for k, v := range e.m {
		if k == drop {
			continue
		}
		if o != nil && (o.LowerBound != nil && k < string(o.LowerBound) || o.UpperBound != nil && k >= string(o.UpperBound)) {
			continue
		}
		it.keys = append(it.keys, k)
		it.vals = append(it.vals, e.lookup(k, v))
	}
	idx := make([]int, len(it.keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(it.keys[a], it.keys[b]) })
	keys, vals := make([]string, len(idx)), make([][]byte, len(idx))
	for i, j := range idx {
		keys[i], vals[i] = it.keys[j], it.vals[j]
	}
	if e.o.swapScan && len(keys) > 1 {
		keys[0], keys[1] = keys[1], keys[0]
		vals[0], vals[1] = vals[1], vals[0]
	}
	it.keys, it.vals = keys, vals
	return it, nil
}

func (e *memEngine) Put(key, value []byte, o *storage.WriteOptions) error {
	if err := storage.CheckSizes(key, value); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return storage.ErrClosed
	}
	if _, ok := e.m[string(key)]; !ok && e.o.maxKeys > 0 && len(e.m) >= e.o.maxKeys {
		return errors.New("memEngine: store full")
	}
	e.m[string(key)] = append([]byte{}, value...)
	e.puts++
	if o != nil && o.Sync {
		return e.syncLocked()
	}
	return nil
}

func (e *memEngine) Delete(key []byte, o *storage.WriteOptions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return storage.ErrClosed
	}
	delete(e.m, string(key))
	if o != nil && o.Sync {
		return e.syncLocked()
	}
	return nil
}

func (e *memEngine) Apply(b *storage.Batch, o *storage.WriteOptions) error {
	if err := b.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return storage.ErrClosed
	}
	for op := range b.Ops() {
		switch op.Kind {
		case storage.KindPut:
			e.m[string(op.Key)] = append([]byte{}, op.Value...)
		case storage.KindDelete:
			delete(e.m, string(op.Key))
		}
	}
	if o != nil && o.Sync {
		return e.syncLocked()
	}
	return nil
}

func (e *memEngine) NewSnapshot() (storage.Snapshot, error) {
	return nil, errors.New("memEngine: no snapshots")
}

func (e *memEngine) Sync() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return storage.ErrClosed
	}
	return e.syncLocked()
}

// syncLocked writes the whole map to a new file, synced, renamed over the
// old one.
func (e *memEngine) syncLocked() error {
	tmp := e.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	var hdr []byte
	for k, v := range e.m {
		hdr = binary.AppendUvarint(hdr[:0], uint64(len(k)))
		hdr = binary.AppendUvarint(hdr, uint64(len(v)))
		w.Write(hdr)
		w.WriteString(k)
		w.Write(v)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := osfile.Fdatasync(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, e.path); err != nil {
		return err
	}
	return osfile.SyncDir(filepath.Dir(e.path))
}

func (e *memEngine) Stats() storage.Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := storage.Stats{Engine: memEngineName, Keys: int64(len(e.m)), DiskBytes: -1, IndexBytes: -1,
		Puts: e.puts, Deletes: -1, Gets: -1, Batches: -1, GCRuns: -1, GCBytesCopied: -1}
	for k, v := range e.m {
		s.LiveBytes += int64(len(k) + len(v))
	}
	return s
}

func (e *memEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return storage.ErrClosed
	}
	err := e.syncLocked()
	e.closed = true
	return err
}

// memIter walks a sorted copy of the pairs taken when it was made.
type memIter struct {
	keys []string
	vals [][]byte
	pos  int // -1 or len(keys): not valid
}

func (it *memIter) set(i int) bool {
	it.pos = i
	if i < 0 || i >= len(it.keys) {
		it.pos = -1
	}
	return it.Valid()
}

func (it *memIter) First() bool { return it.set(0) }
func (it *memIter) Last() bool  { return it.set(len(it.keys) - 1) }
func (it *memIter) SeekGE(key []byte) bool {
	i, _ := slices.BinarySearch(it.keys, string(key))
	return it.set(i)
}
func (it *memIter) SeekLT(key []byte) bool {
	i, _ := slices.BinarySearch(it.keys, string(key))
	return it.set(i - 1)
}
func (it *memIter) Next() bool {
	if !it.Valid() {
		return false
	}
	return it.set(it.pos + 1)
}
func (it *memIter) Prev() bool {
	if !it.Valid() {
		return false
	}
	return it.set(it.pos - 1)
}
func (it *memIter) Valid() bool   { return it.pos >= 0 }
func (it *memIter) Key() []byte   { return []byte(it.keys[it.pos]) }
func (it *memIter) Value() []byte { return it.vals[it.pos] }
func (it *memIter) Error() error  { return nil }
func (it *memIter) Close() error  { return nil }

// The generator: keys distinct, in random key order; values of the right
// size whose fold is what kvValueFold says, differing between versions
// and keys.
func TestKVGenerator(t *testing.T) {
	const n = 100_000
	seen := make(map[[kvKeySize]byte]bool, n)
	var k [kvKeySize]byte
	ascending := 0
	var prev [kvKeySize]byte
	for i := range n {
		kvKey(k[:], i)
		if seen[k] {
			t.Fatalf("key %d repeats an earlier key", i)
		}
		seen[k] = true
		if i > 0 && bytes.Compare(prev[:], k[:]) < 0 {
			ascending++
		}
		prev = k
		if got := kvKeyFold(i); got != spscFold(k[:]) {
			t.Fatalf("kvKeyFold(%d) = %#x, the key folds to %#x", i, got, spscFold(k[:]))
		}
	}
	// Random order: about half of the steps go up.
	if ascending < n*45/100 || ascending > n*55/100 {
		t.Errorf("%d of %d consecutive keys ascend: not a random order", ascending, n)
	}
	var v, w [kvValueSize]byte
	for _, c := range []struct{ i, ver int }{{0, 0}, {1, 0}, {0, 1}, {12345, 3}, {n - 1, 255}} {
		kvFillValue(v[:], c.i, c.ver)
		if got := spscFold(v[:]); got != kvValueFold(c.i, c.ver) {
			t.Errorf("value (%d, %d) folds to %#x, kvValueFold says %#x", c.i, c.ver, got, kvValueFold(c.i, c.ver))
		}
		kvFillValue(w[:], c.i, c.ver+1)
		if v == w || kvValueFold(c.i, c.ver) == kvValueFold(c.i, c.ver+1) {
			t.Errorf("versions %d and %d of key %d's value are alike", c.ver, c.ver+1, c.i)
		}
		kvFillValue(w[:], c.i+1, c.ver)
		if v == w {
			t.Errorf("keys %d and %d have the same value", c.i, c.i+1)
		}
	}
	// Incompressible: no 8-byte word repeats within a value.
	kvFillValue(v[:], 42, 0)
	words := map[uint64]bool{}
	for o := 0; o+8 <= kvValueSize; o += 4 {
		x := binary.LittleEndian.Uint64(v[o:])
		if words[x] {
			t.Errorf("the value repeats the word at offset %d", o)
		}
		words[x] = true
	}
}

// The overwrite order is a permutation of the keys for every pass and
// every size, and differs from pass to pass.
func TestKVPerm(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 64, 1000, 2000, 4096, 99991} {
		var orders [][]int
		for pass := 1; pass <= kvOverwritePasses; pass++ {
			p := newKVPerm(n, pass)
			seen := make([]bool, n)
			order := make([]int, n)
			for j := range n {
				i := p.at(j)
				if i < 0 || i >= n || seen[i] {
					t.Fatalf("n=%d pass %d: step %d visits %d again or out of range", n, pass, j, i)
				}
				seen[i] = true
				order[j] = i
			}
			orders = append(orders, order)
		}
		if n >= 1000 && (slices.Equal(orders[0], orders[1]) || slices.Equal(orders[1], orders[2])) {
			t.Errorf("n=%d: two passes visit the keys in the same order", n)
		}
	}
	// Large n: no overflow in a*j.
	p := newKVPerm(10_000_000, 2)
	if i := p.at(10_000_000 - 1); i < 0 || i >= 10_000_000 {
		t.Errorf("at(n-1) = %d", i)
	}
}

// The check notices a value missing, doubled, of the wrong size or
// content, a key out of order or with other content.
func TestKVCheck(t *testing.T) {
	const n = 500
	scan := func(mod func(i int, k, v []byte) ([]byte, []byte, int)) kvCheck {
		c := newKVCheck()
		for _, i := range kvSortedIndexes(n) {
			k := make([]byte, kvKeySize)
			v := make([]byte, kvValueSize)
			kvKey(k, i)
			kvFillValue(v, i, 0)
			times := 1
			if mod != nil {
				k, v, times = mod(i, k, v)
			}
			for range times {
				c.entry(k, v)
			}
		}
		return c
	}
	want := kvWantAll(n, 0)
	good := scan(nil)
	if err := good.verify("scan", want, true); err != nil {
		t.Fatal(err)
	}
	const victim = 17
	for name, mod := range map[string]func(i int, k, v []byte) ([]byte, []byte, int){
		"missing": func(i int, k, v []byte) ([]byte, []byte, int) { return k, v, b2i(i != victim) },
		"doubled": func(i int, k, v []byte) ([]byte, []byte, int) { return k, v, 1 + b2i(i == victim) },
		"short": func(i int, k, v []byte) ([]byte, []byte, int) {
			if i == victim {
				v = v[:kvValueSize-1]
			}
			return k, v, 1
		},
		"value": func(i int, k, v []byte) ([]byte, []byte, int) {
			if i == victim {
				kvFillValue(v, i, 1)
			}
			return k, v, 1
		},
		"key": func(i int, k, v []byte) ([]byte, []byte, int) {
			if i == victim {
				k[kvKeySize-1] ^= 0x80
			}
			return k, v, 1
		},
	} {
		c := scan(mod)
		if err := c.verify("scan", want, true); err == nil || !strings.Contains(err.Error(), "verification failed") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Out of order: the same pairs, two swapped.
	idx := kvSortedIndexes(n)
	idx[3], idx[4] = idx[4], idx[3]
	c := newKVCheck()
	for _, i := range idx {
		k := make([]byte, kvKeySize)
		v := make([]byte, kvValueSize)
		kvKey(k, i)
		kvFillValue(v, i, 0)
		c.entry(k, v)
	}
	if err := c.verify("scan", want, true); err == nil || !strings.Contains(err.Error(), "does not come after") {
		t.Errorf("swapped pair: %v", err)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// kvSortedIndexes returns 0..n-1 in the order of their keys.
func kvSortedIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		var ka, kb [kvKeySize]byte
		kvKey(ka[:], a)
		kvKey(kb[:], b)
		return bytes.Compare(ka[:], kb[:])
	})
	return idx
}

// A store copy keeps file contents and holes, and takes no more disk
// than the original.
func TestCopyStore(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "small"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A sparse file: 64 KiB of data, a 4 MiB hole, 64 KiB of data, a
	// hole to the end.
	f, err := os.Create(filepath.Join(src, "sub", "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64<<10)
	fillPattern(data, 0)
	for _, off := range []int64{0, 4 << 20} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	const size = 16 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dst := filepath.Join(t.TempDir(), "dst")
	if err := copyStore(src, dst); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"small", "sub/sparse"} {
		a, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the copy differs", name)
		}
	}
	ds, err := storeDiskBytes(src)
	if err != nil {
		t.Fatal(err)
	}
	dd, err := storeDiskBytes(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk bytes: original %d, copy %d", ds, dd)
	if dd > ds+64<<10 || dd >= size/2 {
		t.Errorf("the copy takes %d bytes on disk, the original %d (of a %d-byte sparse file)", dd, ds, size)
	}
}

// Every kv workload runs on the test engine, in-process: the work it
// reports, its extras, the store it leaves.
func TestKVWorkloadsDirect(t *testing.T) {
	dir := diskTempDir(t)
	n := kvKeys(SizeTiny)
	for _, w := range newKVWorkloads("direct-kv-", []string{"test/kv-a"}, "") {
		t.Run(w.name, func(t *testing.T) {
			if w.setup != nil {
				if err := w.setup(&env{dir: dir, size: SizeTiny}); err != nil {
					t.Fatal(err)
				}
			}
			r := &run{env: env{dir: dir, size: SizeTiny}, system: "test/kv-a"}
			wk, err := w.run(r)
			if err != nil {
				t.Fatal(err)
			}
			if r.timing || r.elapsed <= 0 {
				t.Fatalf("timer running %v, elapsed %v", r.timing, r.elapsed)
			}
			want := map[string]work{
				"direct-kv-put-nosync":   {int64(n), int64(n) * kvEntrySize},
				"direct-kv-put-sync-8w":  {int64(kvSyncKeys(SizeTiny)), int64(kvSyncKeys(SizeTiny)) * kvEntrySize},
				"direct-kv-get-random":   {int64(kvGets(SizeTiny)), int64(kvGets(SizeTiny)) * kvEntrySize},
				"direct-kv-scan":         {int64(n), int64(n) * kvEntrySize},
				"direct-kv-reopen":       {1, int64(n) * kvEntrySize},
				"direct-kv-overwrite-gc": {int64(3 * n), int64(3*n) * kvEntrySize},
			}[w.name]
			if wk != want {
				t.Errorf("work %+v, want %+v", wk, want)
			}
			switch w.name {
			case "direct-kv-put-sync-8w":
				if len(r.lat) != kvSyncKeys(SizeTiny) {
					t.Errorf("%d latencies, want one per put", len(r.lat))
				}
			case "direct-kv-reopen":
				if r.extra["open_ms"] <= 0 {
					t.Errorf("open_ms = %v", r.extra["open_ms"])
				}
			case "direct-kv-overwrite-gc":
				// The test engine's file holds the live pairs and
				// their lengths: a little over 1.
				if a := r.extra["space_amp"]; a < 1 || a > 1.5 {
					t.Errorf("space_amp = %v, want a little over 1", a)
				}
			}
		})
	}
	// The runs removed their directories; the prepared store is left
	// (the bench removes the data directory at the end).
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{fmt.Sprintf("kv-store-%d.test-kv-a", n)}; !slices.Equal(names, want) {
		t.Errorf("data directory holds %v, want %v", names, want)
	}
	// The prepared store holds keys 0..n-1, version 0.
	db, err := storage.Open(memEngineName, kvStorePath(dir, n, "test/kv-a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := kvVerifyScan(db, "prepared store", n, 0); err != nil {
		t.Fatal(err)
	}
}

// The kv workloads run through the harness on two systems: child
// processes, the table, the JSON rows with their extras.
func TestEndToEndKVTestEngine(t *testing.T) {
	base := diskTempDir(t)
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "2", "-dir", base, "-json", jsonPath, "-workloads", "^test-kv-")
	if status != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	t.Logf("\n%s", stdout)
	rows := readRows(t, jsonPath)
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 6 workloads × 2 systems", len(rows))
	}
	for _, r := range rows {
		name := r["workload"].(string)
		if v, _ := r["ops_per_sec"].(float64); v <= 0 {
			t.Errorf("%s %s: ops_per_sec = %v", name, r["system"], r["ops_per_sec"])
		}
		check := func(field string, ok func(float64) bool) {
			if v, present := r[field].(float64); !present || !ok(v) {
				t.Errorf("%s %s: %s = %v", name, r["system"], field, r[field])
			}
		}
		switch name {
		case "test-kv-put-sync-8w":
			check("p99_us", func(v float64) bool { return v > 0 })
		case "test-kv-reopen":
			check("open_ms", func(v float64) bool { return v > 0 })
			check("n", func(v float64) bool { return v == 1 })
		case "test-kv-overwrite-gc":
			check("space_amp", func(v float64) bool { return v >= 1 })
		}
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("data directory left behind in %s: %v", base, ents)
	}
}

// The kv-* workloads run on the real engines at the test size.
func TestEndToEndKV(t *testing.T) {
	endToEnd(t, diskTempDir(t), "kv-")
}

// A store that hands out a wrong value, misses a key or scans out of order
// fails the workloads that read it, loudly.
func TestKVWorkloadsFailOnBadData(t *testing.T) {
	for _, c := range []struct {
		fault    string
		failing  []string // workloads that must fail
		messages []string
	}{
		{"value", []string{"get-random", "scan", "put-nosync", "overwrite-gc"}, []string{"XOR of the first and last words"}},
		{"drop", []string{"get-random", "scan", "put-nosync", "put-sync-8w", "overwrite-gc"}, []string{"values read, want"}},
		{"order", []string{"get-random", "scan", "put-nosync", "put-sync-8w", "overwrite-gc"}, []string{"does not come after the key before it"}},
	} {
		t.Run(c.fault, func(t *testing.T) {
			t.Setenv(memFaultEnv, c.fault)
			status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "1", "-dir", diskTempDir(t), "-workloads", "^test-kvbad-")
			if status == 0 {
				t.Fatalf("status 0 with a faulty engine\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
			for _, w := range c.failing {
				if !strings.Contains(stderr, "FAILED test-kvbad-"+w+" on test/kv-bad") {
					t.Errorf("test-kvbad-%s did not fail:\n%s", w, stderr)
				}
			}
			for _, m := range c.messages {
				if !strings.Contains(stderr, "verification failed") || !strings.Contains(stderr, m) {
					t.Errorf("stderr lacks %q:\n%s", m, stderr)
				}
			}
		})
	}
}

// A system whose prepared store cannot be built fails alone: the other
// systems of the workload still run.
func TestKVSetupFailsOneSystem(t *testing.T) {
	t.Setenv(memFaultEnv, "full")
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "1", "-dir", diskTempDir(t), "-json", jsonPath, "-workloads", "^test-kvmix-(scan|reopen)$")
	if status == 0 {
		t.Fatalf("status 0 with a store that cannot be built\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	for _, w := range []string{"scan", "reopen"} {
		if want := "FAILED test-kvmix-" + w + " on test/kv-bad, repeat 1 of 1: exit status 1: no prepared store: setup failed building the test/kv-bad store"; !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	rows := readRows(t, jsonPath)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want test/kv-a's 2: %v", len(rows), rows)
	}
	for _, r := range rows {
		if r["system"] != "test/kv-a" {
			t.Errorf("unexpected row %v", r)
		}
	}
}

func TestKVRegistry(t *testing.T) {
	for _, name := range []string{"kv-put-nosync", "kv-put-sync-8w", "kv-get-random", "kv-scan", "kv-reopen", "kv-overwrite-gc"} {
		w := lookupWorkload(name)
		if w == nil {
			t.Fatalf("%s not registered", name)
		}
		if want := []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy", "pebble"}; !slices.Equal(w.systems, want) {
			t.Errorf("%s: systems %v, want %v", name, w.systems, want)
		}
		if w.baselineSystem() != "pebble" {
			t.Errorf("%s: baseline %s, want pebble", name, w.baselineSystem())
		}
		if !w.durable {
			t.Errorf("%s is not durable", name)
		}
		for _, s := range w.systems {
			e, err := kvEngineOf(s)
			if err != nil {
				t.Fatal(err)
			}
			want := "ringlog"
			if s == "pebble" {
				want = "pebble"
			}
			if e.name != want {
				t.Errorf("%s opens engine %q, want %q", s, e.name, want)
			}
		}
	}
}
