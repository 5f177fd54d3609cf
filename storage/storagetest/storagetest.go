// Package storagetest is the conformance suite every storage.Engine runs
// from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, storagetest.Config{Name: "pebble"})
//	}
//
// Run opens the engine through the storage registry (storage.Open with
// Config.Name), so the engine's package must be imported by the test. Each
// subtest opens its own store in t.TempDir(). The subtests:
//
//   - CRUD, EmptyKeyAndValues, Sizes: the key and value rules of package
//     storage, Get's buffer, limits refused with ErrTooLarge before
//     anything is written, values up to MaxValueSize byte for byte, the
//     empty key alone, with large values and with many versions, through
//     space reclamation and reopens.
//   - Batch, BatchVisibility: order within a batch, refused batches, and
//     readers never seeing part of a batch.
//   - Iteration, IteratorView: order, both directions, seeks and steps,
//     bounds, storage.All and storage.Backward, and the view an iterator
//     keeps of the store as it was.
//   - Snapshots, Reopen, Stats, Closed.
//   - CrashAtomicity: a child process killed while it applies synced
//     batches; every acknowledged batch survives, none in part.
//   - Concurrency: writers, readers, scans and snapshots at once, values
//     checked against their keys (meant for -race too).
//   - Model: random operations compared with a map.
//   - ReclaimUnderReads (if Config.Reclaim is set): space reclamation
//     while readers and a writer run and a snapshot is held.
//
// Randomized subtests (the model test, the crash test, the concurrency
// tests) print their seed with t.Logf; setting RINGLOG_SEED to it replays
// the same operations.
//
// The crash subtest runs the test binary again as a child process (with
// -test.run naming the crash subtest and the variables STORAGETEST_CRASH_*
// set) that writes synced batches until the parent kills it with SIGKILL.
// In that child, Run does the child's work and exits, running no subtest;
// code a test runs before calling Run runs in the child too.
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ringlog/ringlog/storage"
)

// Config describes the engine under test.
type Config struct {
	// Name is the engine's registry name ("pebble", "ringlog"). Every
	// subtest, and the crash test's child process, opens the engine with
	// storage.Open(Name, dir, options).
	Name string
	// Opts are the engine options passed to storage.Open (nil: the
	// engine's defaults). The crash child runs the same test function, so
	// it builds the same Opts.
	Opts any
	// Options, if set, returns the engine options instead of Opts; it is
	// called for every open, in the parent and in the crash child, so each
	// open gets fresh options.
	Options func() any
	// Reclaim, if set, runs the engine's space reclamation (log cleaning,
	// compaction) once and returns when it is done. The subtest that
	// reclaims space under concurrent reads and writes runs only if it is
	// set; the model test also calls it now and then.
	Reclaim func(e storage.Engine) error
}

func (c Config) options() any {
	if c.Options != nil {
		return c.Options()
	}
	return c.Opts
}

// SeedEnv is the variable that fixes the seed of the randomized subtests.
const SeedEnv = "RINGLOG_SEED"

// Run runs the conformance subtests against the engine c describes.
func Run(t *testing.T, c Config) {
	if os.Getenv(envCrashChild) != "" {
		if os.Getenv(envCrashEngine) != c.Name {
			t.Skipf("storagetest: crash child of engine %q, not %q", os.Getenv(envCrashEngine), c.Name)
		}
		crashChild(c) // does not return
	}
	if c.Name == "" {
		t.Fatal("storagetest: Config.Name is empty")
	}
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, c) })
	t.Run("EmptyKeyAndValues", func(t *testing.T) { testEmpty(t, c) })
	t.Run("Sizes", func(t *testing.T) { testSizes(t, c) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, c) })
	t.Run("BatchVisibility", func(t *testing.T) { testBatchVisibility(t, c) })
	t.Run("Iteration", func(t *testing.T) { testIteration(t, c) })
	t.Run("IteratorView", func(t *testing.T) { testIteratorView(t, c) })
	t.Run("Snapshots", func(t *testing.T) { testSnapshots(t, c) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, c) })
	t.Run("Stats", func(t *testing.T) { testStats(t, c) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, c) })
	t.Run("CrashAtomicity", func(t *testing.T) { testCrash(t, c) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, c) })
	t.Run("Model", func(t *testing.T) { testModel(t, c) })
	t.Run("ReclaimUnderReads", func(t *testing.T) {
		if c.Reclaim == nil {
			t.Skip("Config.Reclaim not set")
		}
		testReclaim(t, c)
	})
}

// openAt opens the engine in dir; the test's cleanup closes it if the test
// did not.
func openAt(t *testing.T, c Config, dir string) storage.Engine {
	t.Helper()
	e, err := storage.Open(c.Name, dir, c.options())
	if err != nil {
		t.Fatalf("open %s engine in %s: %v", c.Name, dir, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// openFresh opens the engine in a new directory.
func openFresh(t *testing.T, c Config) (storage.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	return openAt(t, c, dir), dir
}

func mustClose(t *testing.T, e storage.Engine) {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// testSeed returns the seed of a randomized subtest: RINGLOG_SEED, or a
// new one. It logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv(SeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, s, err)
		}
		t.Logf("seed %d (from %s)", seed, SeedEnv)
		return seed
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (set %s=%d to replay)", seed, SeedEnv, seed)
	return seed
}

func mustPut(t *testing.T, e storage.Engine, key, value []byte, o *storage.WriteOptions) {
	t.Helper()
	if err := e.Put(key, value, o); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", trunc(key), len(value), err)
	}
}

func mustDelete(t *testing.T, e storage.Engine, key []byte, o *storage.WriteOptions) {
	t.Helper()
	if err := e.Delete(key, o); err != nil {
		t.Fatalf("Delete(%q): %v", trunc(key), err)
	}
}

func mustApply(t *testing.T, e storage.Engine, b *storage.Batch, o *storage.WriteOptions) {
	t.Helper()
	if err := e.Apply(b, o); err != nil {
		t.Fatalf("Apply(%d ops): %v", b.Len(), err)
	}
}

// wantGet checks that r holds want under key, and that Get returns a
// non-nil slice.
func wantGet(t *testing.T, r storage.Reader, key, want []byte) {
	t.Helper()
	got, err := r.Get(key, nil)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %d bytes %q", trunc(key), err, len(want), trunc(want))
	}
	if got == nil {
		t.Fatalf("Get(%q) returned a nil slice, want a non-nil one", trunc(key))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %q, want %d bytes %q", trunc(key), len(got), trunc(got), len(want), trunc(want))
	}
}

// wantNotFound checks that r does not hold key.
func wantNotFound(t *testing.T, r storage.Reader, key []byte) {
	t.Helper()
	got, err := r.Get(key, nil)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %d bytes %q, %v; want storage.ErrNotFound", trunc(key), len(got), trunc(got), err)
	}
}

// kv is a copied key/value pair.
type kv struct {
	k, v string
}

// scan reads r's pairs within o's bounds, forward, copying them.
func scan(t *testing.T, r storage.Reader, o *storage.IterOptions) []kv {
	t.Helper()
	return scanWith(t, r, o, storage.All)
}

// scanBackward reads r's pairs within o's bounds, backward, copying them.
func scanBackward(t *testing.T, r storage.Reader, o *storage.IterOptions) []kv {
	t.Helper()
	return scanWith(t, r, o, storage.Backward)
}

func scanWith(t *testing.T, r storage.Reader, o *storage.IterOptions, walk func(storage.Iterator) iter.Seq2[[]byte, []byte]) []kv {
	t.Helper()
	it, err := r.NewIter(o)
	if err != nil {
		t.Fatalf("NewIter: %v", err)
	}
	var out []kv
	for k, v := range walk(it) {
		out = append(out, kv{string(k), string(v)})
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterator error: %v", err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("iterator Close: %v", err)
	}
	return out
}

// model is the expected contents of a store.
type model map[string]string

func (m model) clone() model {
	c := make(model, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// sorted returns m's keys within [lo, hi) (nil: open), sorted.
func (m model) sorted(lo, hi []byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if lo != nil && k < string(lo) {
			continue
		}
		if hi != nil && k >= string(hi) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys) // string order is bytes.Compare order
	return keys
}

// pairs returns m's pairs within [lo, hi), sorted.
func (m model) pairs(lo, hi []byte) []kv {
	keys := m.sorted(lo, hi)
	out := make([]kv, len(keys))
	for i, k := range keys {
		out[i] = kv{k, m[k]}
	}
	return out
}

// diffPairs describes how got differs from want, or returns "".
func diffPairs(got, want []kv) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("%d pairs, want %d: missing %q (and %d more) after the common prefix", len(got), len(want), trunc([]byte(want[i].k)), len(want)-i-1)
		case i >= len(want):
			return fmt.Sprintf("%d pairs, want %d: unexpected %q (and %d more) after the common prefix", len(got), len(want), trunc([]byte(got[i].k)), len(got)-i-1)
		case got[i].k != want[i].k:
			return fmt.Sprintf("pair %d has key %q, want %q (%d pairs, want %d)", i, trunc([]byte(got[i].k)), trunc([]byte(want[i].k)), len(got), len(want))
		case got[i].v != want[i].v:
			return fmt.Sprintf("pair %d (key %q) has a value of %d bytes %q, want %d bytes %q", i, trunc([]byte(got[i].k)), len(got[i].v), trunc([]byte(got[i].v)), len(want[i].v), trunc([]byte(want[i].v)))
		}
	}
	return ""
}

// wantContents checks r against m: a forward and a backward scan of
// everything, and a Get of every key of m.
func wantContents(t *testing.T, r storage.Reader, m model) {
	t.Helper()
	want := m.pairs(nil, nil)
	if d := diffPairs(scan(t, r, nil), want); d != "" {
		t.Fatalf("forward scan: %s", d)
	}
	back := scanBackward(t, r, nil)
	slices.Reverse(back)
	if d := diffPairs(back, want); d != "" {
		t.Fatalf("backward scan (reversed): %s", d)
	}
	for _, p := range want {
		wantGet(t, r, []byte(p.k), []byte(p.v))
	}
}

// trunc shortens b for messages.
func trunc(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "..."...)
	}
	return b
}

// fill returns n pseudo-random bytes from seed.
func fill(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewPCG(seed, seed^0x5bd1e995)
	for i := 0; i < n; i += 8 {
		x := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// hashKey is FNV-1a of key.
func hashKey(key []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// selfVal is a value that describes itself: it names its key and version
// and its filler derives from both, so a reader can check that a value it
// sees is one written for that key.
func selfVal(key []byte, version uint64, fillLen int) []byte {
	v := fmt.Appendf(nil, "%x|%d|%d|", key, version, fillLen)
	return append(v, fill(hashKey(key)^version*0x9e3779b97f4a7c15, fillLen)...)
}

// parseSelfVal checks that v is a selfVal of key and returns its version.
func parseSelfVal(key, v []byte) (uint64, error) {
	head := fmt.Appendf(nil, "%x|", key)
	if !bytes.HasPrefix(v, head) {
		return 0, fmt.Errorf("value %q is not one of key %q", trunc(v), trunc(key))
	}
	rest := v[len(head):]
	i := bytes.IndexByte(rest, '|')
	if i < 0 {
		return 0, fmt.Errorf("value %q of key %q: no version", trunc(v), trunc(key))
	}
	version, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q of key %q: %v", trunc(v), trunc(key), err)
	}
	rest = rest[i+1:]
	i = bytes.IndexByte(rest, '|')
	if i < 0 {
		return 0, fmt.Errorf("value %q of key %q: no length", trunc(v), trunc(key))
	}
	n, err := strconv.Atoi(string(rest[:i]))
	if err != nil {
		return 0, fmt.Errorf("value %q of key %q: %v", trunc(v), trunc(key), err)
	}
	if !bytes.Equal(v, selfVal(key, version, n)) {
		return 0, fmt.Errorf("value of %d bytes of key %q, version %d: filler corrupt", len(v), trunc(key), version)
	}
	return version, nil
}

// noPanic runs f and reports a panic as a test error.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	f()
}
