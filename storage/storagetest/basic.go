package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/ringlog/ringlog/storage"
)

func testCRUD(t *testing.T, c Config) {
	e, _ := openFresh(t, c)
	k1, k2 := []byte("key1"), []byte("key2")
	wantNotFound(t, e, k1)

	// Put copies its arguments.
	v := []byte("value-one")
	k := bytes.Clone(k1)
	mustPut(t, e, k, v, nil)
	v[0], k[0] = 'X', 'X'
	wantGet(t, e, k1, []byte("value-one"))
	wantNotFound(t, e, k)

	// Get appends to buf[:0]: with room it uses buf's memory.
	buf := make([]byte, 5, 64)
	copy(buf, "junk!")
	got, err := e.Get(k1, buf)
	if err != nil || string(got) != "value-one" {
		t.Fatalf("Get(key1, buf) = %q, %v; want %q", got, err, "value-one")
	}
	if &got[0] != &buf[:1][0] {
		t.Fatalf("Get(key1, buf with room) did not append to buf[:0]")
	}
	got2, err := e.Get(k1, make([]byte, 1, 2))
	if err != nil || string(got2) != "value-one" {
		t.Fatalf("Get(key1, small buf) = %q, %v; want %q", got2, err, "value-one")
	}
	// The result is the caller's: changing it does not change the store.
	clear(got)
	clear(got2)
	wantGet(t, e, k1, []byte("value-one"))

	// Overwrite, with each kind of WriteOptions.
	mustPut(t, e, k1, []byte("value-two"), storage.Synced)
	wantGet(t, e, k1, []byte("value-two"))
	mustPut(t, e, k1, []byte("value-2b"), storage.NoSync)
	wantGet(t, e, k1, []byte("value-2b"))
	mustPut(t, e, k2, []byte("v2"), &storage.WriteOptions{})
	wantGet(t, e, k2, []byte("v2"))

	// Keys that are prefixes of each other are distinct keys.
	m := model{"key1": "value-2b", "key2": "v2"}
	for i, k := range []string{"a", "a\x00", "ab", "a\xff", "b", "\xff"} {
		v := fmt.Sprintf("prefix-%d", i)
		mustPut(t, e, []byte(k), []byte(v), nil)
		m[k] = v
	}
	for k, v := range m {
		wantGet(t, e, []byte(k), []byte(v))
	}

	// Delete; deleting an absent key is not an error.
	mustDelete(t, e, k1, nil)
	delete(m, "key1")
	wantNotFound(t, e, k1)
	wantGet(t, e, k2, []byte("v2"))
	mustDelete(t, e, k1, storage.Synced)
	mustDelete(t, e, []byte("never-written"), nil)
	wantNotFound(t, e, []byte("never-written"))
	mustDelete(t, e, []byte("a"), nil)
	delete(m, "a")
	wantNotFound(t, e, []byte("a"))
	wantGet(t, e, []byte("a\x00"), []byte(m["a\x00"]))

	// Put after delete.
	mustPut(t, e, k1, []byte("value-three"), nil)
	m["key1"] = "value-three"
	wantGet(t, e, k1, []byte("value-three"))
	wantContents(t, e, m)
}

func testEmpty(t *testing.T, c Config) {
	e, dir := openFresh(t, c)
	wantNotFound(t, e, nil)
	wantNotFound(t, e, []byte{})

	// The empty key is a key, and sorts first.
	mustPut(t, e, []byte("\x00"), []byte("zero-byte"), nil)
	mustPut(t, e, []byte{}, []byte("empty-key"), nil)
	wantGet(t, e, []byte{}, []byte("empty-key"))
	wantGet(t, e, nil, []byte("empty-key"))
	wantNotFound(t, e, []byte("\x00\x00"))
	m := model{"": "empty-key", "\x00": "zero-byte"}
	wantContents(t, e, m)
	it, err := e.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() || len(it.Key()) != 0 || string(it.Value()) != "empty-key" {
		t.Fatalf("First: at %q = %q, want the empty key", it.Key(), it.Value())
	}
	if !it.SeekGE(nil) || len(it.Key()) != 0 {
		t.Fatalf("SeekGE(nil): at %q, want the empty key", it.Key())
	}
	if !it.SeekLT([]byte("\x00")) || len(it.Key()) != 0 {
		t.Fatalf("SeekLT(\\x00): at %q, want the empty key", it.Key())
	}
	if it.SeekLT([]byte{}) {
		t.Fatalf("SeekLT(empty key) found %q, want nothing", it.Key())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	// An empty (non-nil) lower bound includes the empty key; an empty
	// upper bound excludes everything.
	if d := diffPairs(scan(t, e, &storage.IterOptions{LowerBound: []byte{}}), m.pairs(nil, nil)); d != "" {
		t.Fatalf("scan from the empty lower bound: %s", d)
	}
	if got := scan(t, e, &storage.IterOptions{UpperBound: []byte{}}); len(got) != 0 {
		t.Fatalf("scan below the empty upper bound found %d pairs, want 0", len(got))
	}
	if d := diffPairs(scan(t, e, &storage.IterOptions{UpperBound: []byte("\x00")}), m.pairs(nil, []byte("\x00"))); d != "" {
		t.Fatalf("scan below \\x00: %s", d)
	}

	// A nil value and an empty one are the same value: Get returns an
	// empty non-nil slice, and the key exists.
	mustPut(t, e, []byte("nil-value"), nil, nil)
	mustPut(t, e, []byte("empty-value"), []byte{}, nil)
	wantGet(t, e, []byte("nil-value"), []byte{})
	wantGet(t, e, []byte("empty-value"), []byte{})
	got, err := e.Get([]byte("nil-value"), make([]byte, 3))
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Get(nil-value, buf of 3) = %q (nil: %v), %v; want empty", got, got == nil, err)
	}
	m["nil-value"], m["empty-value"] = "", ""
	// Overwrites between empty and non-empty values.
	mustPut(t, e, []byte("was-full"), []byte("full"), nil)
	mustPut(t, e, []byte("was-full"), nil, nil)
	wantGet(t, e, []byte("was-full"), []byte{})
	mustPut(t, e, []byte("was-empty"), nil, nil)
	mustPut(t, e, []byte("was-empty"), []byte("now-full"), nil)
	wantGet(t, e, []byte("was-empty"), []byte("now-full"))
	m["was-full"], m["was-empty"] = "", "now-full"
	// In a batch.
	var b storage.Batch
	b.Put([]byte("batch-nil"), nil)
	b.Put([]byte("batch-empty"), []byte{})
	b.Put(nil, []byte("empty-key-2"))
	mustApply(t, e, &b, nil)
	m["batch-nil"], m["batch-empty"], m[""] = "", "", "empty-key-2"
	wantGet(t, e, []byte("batch-nil"), []byte{})
	wantContents(t, e, m)

	// Empty values are seen by iterators as present, with an empty value.
	it, err = e.NewIter(&storage.IterOptions{LowerBound: []byte("nil-value"), UpperBound: []byte("nil-value\x00")})
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() || string(it.Key()) != "nil-value" || len(it.Value()) != 0 {
		t.Fatalf("iterator at nil-value: valid %v key %q value %q", it.Valid(), it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}

	// They survive a reopen.
	mustClose(t, e)
	e = openAt(t, c, dir)
	wantContents(t, e, m)
	wantGet(t, e, []byte("nil-value"), []byte{})

	// The empty key can be deleted like any other.
	mustDelete(t, e, nil, nil)
	delete(m, "")
	wantNotFound(t, e, []byte{})
	wantContents(t, e, m)
	mustClose(t, e)

	// The empty key where storage layouts meet edge cases (a block or
	// file holding only the empty key, a large value under it, many
	// versions of it kept by a snapshot, only its deletion), through space
	// reclamation and a reopen.
	big := fill(9, 64<<10)
	for _, sc := range []struct {
		name  string
		write func(e storage.Engine) model
	}{
		{"alone", func(e storage.Engine) model {
			mustPut(t, e, nil, []byte("x"), nil)
			return model{"": "x"}
		}},
		{"alone with an empty value", func(e storage.Engine) model {
			mustPut(t, e, nil, nil, nil)
			return model{"": ""}
		}},
		{"alone with a large value", func(e storage.Engine) model {
			mustPut(t, e, nil, big, nil)
			return model{"": string(big)}
		}},
		{"a large value, then other keys", func(e storage.Engine) model {
			mustPut(t, e, nil, big, nil)
			mustPut(t, e, []byte("\x00"), []byte("y"), nil)
			mustPut(t, e, []byte("a"), big, nil)
			return model{"": string(big), "\x00": "y", "a": string(big)}
		}},
		{"deleted", func(e storage.Engine) model {
			mustPut(t, e, nil, []byte("x"), nil)
			mustPut(t, e, []byte("a"), []byte("y"), nil)
			mustDelete(t, e, nil, nil)
			mustDelete(t, e, []byte("a"), nil)
			return model{}
		}},
		{"never written, deleted", func(e storage.Engine) model {
			mustDelete(t, e, nil, storage.Synced)
			return model{}
		}},
	} {
		dir := t.TempDir()
		e := openAt(t, c, dir)
		m := sc.write(e)
		reclaim := func() {
			t.Helper()
			if c.Reclaim != nil {
				if err := c.Reclaim(e); err != nil {
					t.Fatalf("%s: Reclaim: %v", sc.name, err)
				}
			}
		}
		reclaim()
		wantContents(t, e, m)
		mustClose(t, e)
		e = openAt(t, c, dir)
		wantContents(t, e, m)
		reclaim()
		wantContents(t, e, m)
		mustClose(t, e)
	}

	// Many versions of the empty key, kept by a snapshot.
	e = openAt(t, c, t.TempDir())
	var snap storage.Snapshot
	for i := range 500 {
		mustPut(t, e, nil, fmt.Appendf(nil, "version-%d", i), nil)
		if i == 10 {
			var err error
			if snap, err = e.NewSnapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustPut(t, e, []byte("a"), []byte("y"), nil)
	if c.Reclaim != nil {
		if err := c.Reclaim(e); err != nil {
			t.Fatalf("Reclaim: %v", err)
		}
	}
	wantContents(t, e, model{"": "version-499", "a": "y"})
	wantContents(t, snap, model{"": "version-10"})
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
}

func testSizes(t *testing.T, c Config) {
	e, dir := openFresh(t, c)
	m := model{}

	// Keys.
	maxKey := fill(1, storage.MaxKeySize)
	bigKey := fill(1, storage.MaxKeySize+1) // maxKey is its prefix
	mustPut(t, e, maxKey, []byte("max-key"), nil)
	m[string(maxKey)] = "max-key"
	wantGet(t, e, maxKey, []byte("max-key"))
	if err := e.Put(bigKey, []byte("x"), storage.Synced); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Put(key of MaxKeySize+1 bytes) = %v, want ErrTooLarge", err)
	}
	if err := e.Delete(bigKey, nil); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Delete(key of MaxKeySize+1 bytes) = %v, want ErrTooLarge", err)
	}
	wantNotFound(t, e, bigKey)
	wantGet(t, e, maxKey, []byte("max-key"))

	// Values of the sizes that matter, up to the limit, byte for byte.
	for i, n := range []int{0, 1, 4 << 10, 1 << 20, storage.MaxValueSize} {
		key := fmt.Appendf(nil, "value-%08d", n)
		val := fill(uint64(100+i), n)
		mustPut(t, e, key, val, storage.Synced)
		got, err := e.Get(key, nil)
		if err != nil {
			t.Fatalf("Get(value of %d bytes): %v", n, err)
		}
		wantSame(t, fmt.Sprintf("value of %d bytes", n), got, val)
		m[string(key)] = string(val)
	}
	tooBig := make([]byte, storage.MaxValueSize+1)
	if err := e.Put([]byte("too-big"), tooBig, nil); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Put(value of MaxValueSize+1 bytes) = %v, want ErrTooLarge", err)
	}
	wantNotFound(t, e, []byte("too-big"))
	// A refused overwrite leaves the old value.
	key1 := fmt.Appendf(nil, "value-%08d", 1)
	if err := e.Put(key1, tooBig, storage.Synced); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Put(existing key, value of MaxValueSize+1 bytes) = %v, want ErrTooLarge", err)
	}
	wantGet(t, e, key1, []byte(m[string(key1)]))

	// Iterators see the same bytes; so does a reopened store.
	check := func(e storage.Engine) {
		t.Helper()
		got := scan(t, e, nil)
		want := m.pairs(nil, nil)
		if len(got) != len(want) {
			t.Fatalf("scan found %d pairs, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].k != want[i].k {
				t.Fatalf("pair %d: key of %d bytes %q, want %d bytes %q", i, len(got[i].k), trunc([]byte(got[i].k)), len(want[i].k), trunc([]byte(want[i].k)))
			}
			wantSame(t, fmt.Sprintf("scanned value of key %q", trunc([]byte(got[i].k))), []byte(got[i].v), []byte(want[i].v))
		}
	}
	check(e)
	mustClose(t, e)
	e = openAt(t, c, dir)
	check(e)
	wantGet(t, e, maxKey, []byte("max-key"))
}

// wantSame compares two large byte slices, reporting the first difference.
func wantSame(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			t.Fatalf("%s: %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
		}
	}
	t.Fatalf("%s: %d bytes, want %d (the shorter is a prefix of the longer)", what, len(got), len(want))
}

func testBatch(t *testing.T, c Config) {
	e, _ := openFresh(t, c)
	for _, k := range []string{"a", "b", "c"} {
		mustPut(t, e, []byte(k), []byte("old-"+k), nil)
	}
	var b storage.Batch
	b.Put([]byte("d"), []byte("4"))
	b.Delete([]byte("b"))
	b.Put([]byte("a"), []byte("10"))
	b.Put([]byte("e"), []byte("5"))
	b.Delete([]byte("e")) // the later op on a key wins
	b.Put([]byte("c"), []byte("x"))
	b.Put([]byte("c"), []byte("y"))
	b.Delete([]byte("f"))
	b.Put([]byte("f"), []byte("z"))
	b.Delete([]byte("absent"))
	if b.Len() != 10 || b.Err() != nil {
		t.Fatalf("batch: Len %d Err %v, want 10 and nil", b.Len(), b.Err())
	}
	mustApply(t, e, &b, storage.Synced)
	m := model{"a": "10", "c": "y", "d": "4", "f": "z"}
	wantContents(t, e, m)

	// A reset batch applies only what was added since.
	mustPut(t, e, []byte("b"), []byte("back"), nil)
	m["b"] = "back"
	b.Reset()
	b.Put([]byte("g"), []byte("7"))
	mustApply(t, e, &b, nil)
	m["g"] = "7"
	wantContents(t, e, m)
	// The batch is the caller's after Apply: changing it changes nothing.
	b.Reset()
	b.Put([]byte("g"), []byte("not-applied"))
	wantGet(t, e, []byte("g"), []byte("7"))

	var empty storage.Batch
	mustApply(t, e, &empty, storage.Synced)
	mustApply(t, e, &empty, nil)
	wantContents(t, e, m)

	// A batch with an oversized operation is refused whole.
	var bad storage.Batch
	bad.Put([]byte("new-1"), []byte("v"))
	bad.Delete([]byte("a"))
	bad.Put(make([]byte, storage.MaxKeySize+1), []byte("v"))
	bad.Put([]byte("new-2"), []byte("v"))
	if !errors.Is(bad.Err(), storage.ErrTooLarge) {
		t.Fatalf("batch with an oversized key: Err() = %v, want ErrTooLarge", bad.Err())
	}
	if err := e.Apply(&bad, storage.Synced); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Apply(batch with an oversized key) = %v, want ErrTooLarge", err)
	}
	wantContents(t, e, m)
	var bad2 storage.Batch
	bad2.Delete([]byte("c"))
	bad2.Put([]byte("d"), []byte("changed"))
	bad2.Put([]byte("big"), make([]byte, storage.MaxValueSize+1))
	if err := e.Apply(&bad2, nil); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Apply(batch with an oversized value) = %v, want ErrTooLarge", err)
	}
	wantContents(t, e, m)

	// A large batch with many repeated keys: applied in order.
	rng := rand.New(rand.NewPCG(7, 7))
	b.Reset()
	for i := range 3000 {
		k := fmt.Sprintf("big-%03d", rng.IntN(400))
		if rng.IntN(4) == 0 {
			b.Delete([]byte(k))
			delete(m, k)
			continue
		}
		v := selfVal([]byte(k), uint64(i), rng.IntN(300))
		b.Put([]byte(k), v)
		m[k] = string(v)
	}
	mustApply(t, e, &b, nil)
	wantContents(t, e, m)
}

// testBatchVisibility checks that readers never see part of a batch: one
// goroutine applies batches that set every key of a group to the batch's
// number and move a marker key, while iterators and snapshots check that
// they see one batch's state.
func testBatchVisibility(t *testing.T, c Config) {
	e, _ := openFresh(t, c)
	const nkeys, rounds = 8, 1000
	key := func(i int) []byte { return fmt.Appendf(nil, "vis/k%d", i) }
	marker := func(n int) []byte { return fmt.Appendf(nil, "vis/m%06d", n) }
	apply := func(n int) error {
		var b storage.Batch
		for i := range nkeys {
			b.Put(key(i), fmt.Appendf(nil, "%d", n))
		}
		if n > 0 {
			b.Delete(marker(n - 1))
		}
		b.Put(marker(n), nil)
		return e.Apply(&b, nil)
	}
	if err := apply(0); err != nil {
		t.Fatal(err)
	}
	bounds := &storage.IterOptions{LowerBound: []byte("vis/"), UpperBound: []byte("vis0")}

	// check returns an error if r does not show exactly one batch's state.
	check := func(r storage.Reader) error {
		it, err := r.NewIter(bounds)
		if err != nil {
			return err
		}
		defer it.Close()
		var vals []string
		var markers []string
		for k, v := range storage.All(it) {
			if bytes.HasPrefix(k, []byte("vis/m")) {
				markers = append(markers, string(k[len("vis/m"):]))
			} else {
				vals = append(vals, string(v))
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
		if len(vals) != nkeys || len(markers) != 1 {
			return fmt.Errorf("iterator saw %d keys and markers %q, want %d keys and one marker", len(vals), markers, nkeys)
		}
		for _, v := range vals {
			if v != vals[0] {
				return fmt.Errorf("iterator saw keys of different batches: %q", vals)
			}
		}
		n, err := strconv.Atoi(vals[0])
		if err != nil {
			return fmt.Errorf("iterator saw value %q: %v", vals[0], err)
		}
		if want := fmt.Sprintf("%06d", n); markers[0] != want {
			return fmt.Errorf("iterator saw keys of batch %s but the marker of batch %s", vals[0], markers[0])
		}
		return nil
	}
	checkSnap := func() error {
		s, err := e.NewSnapshot()
		if err != nil {
			return err
		}
		defer s.Close()
		var first []byte
		for i := range nkeys {
			v, err := s.Get(key(i), nil)
			if err != nil {
				return fmt.Errorf("snapshot Get(%s): %v", key(i), err)
			}
			if i == 0 {
				first = v
			} else if !bytes.Equal(v, first) {
				return fmt.Errorf("snapshot saw %s = %s but %s = %s", key(0), first, key(i), v)
			}
		}
		return check(s)
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for n := 1; n <= rounds; n++ {
			if werr = apply(n); werr != nil {
				return
			}
		}
	}()
	checks := 0
	var rerr error
loop:
	for {
		select {
		case <-done:
			break loop
		default:
		}
		if checks%4 == 3 {
			rerr = checkSnap()
		} else {
			rerr = check(e)
		}
		if rerr != nil {
			break
		}
		checks++
	}
	wg.Wait()
	if werr != nil {
		t.Fatalf("Apply: %v", werr)
	}
	if rerr != nil {
		t.Fatalf("after %d consistent reads: %v", checks, rerr)
	}
	if err := check(e); err != nil {
		t.Fatal(err)
	}
	wantGet(t, e, key(0), fmt.Appendf(nil, "%d", rounds))
	t.Logf("%d reads while %d batches were applied", checks, rounds)
}

// iterKeys are keys whose order tests bytes.Compare: prefixes, zero bytes
// and bytes of 0x80 and above.
var iterKeys = []string{
	"", "\x00", "\x00\x00", "\x00\x01", "\x01", "a", "a\x00", "a\x00\x00", "a\x01", "aa", "ab",
	"abc", "b", "ba", "z", "\x7f", "\x80", "\x80\x00", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
}

// randKey returns a short key over a small alphabet, so that keys share
// prefixes and cover the byte range's edges.
func randKey(rng *rand.Rand, maxLen int) string {
	const alphabet = "\x00\x01ab\x7f\x80\xfe\xff"
	b := make([]byte, rng.IntN(maxLen+1))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// probesFor returns seek keys and bounds for keys: the keys, and keys
// just around them.
func probesFor(keys []string, rng *rand.Rand, extra int) [][]byte {
	var ps [][]byte
	for _, k := range keys {
		ps = append(ps, []byte(k), []byte(k+"\x00"))
		if k != "" {
			ps = append(ps, []byte(k[:len(k)-1]))
			if last := k[len(k)-1]; last != 0xff {
				ps = append(ps, append([]byte(k[:len(k)-1]), last+1))
			}
		}
	}
	for range extra {
		ps = append(ps, []byte(randKey(rng, 5)))
	}
	ps = append(ps, []byte("\xff\xff\xff\xff"), []byte{})
	return ps
}

// iterAt returns a function that checks that it, moved by op which
// returned ok, is at keys[idx] with m's value, or past an end if idx is out
// of keys; it returns whether idx is within keys.
func iterAt(t *testing.T, it storage.Iterator, keys []string, m model, desc string) func(op string, ok bool, idx int) bool {
	return func(op string, ok bool, idx int) bool {
		t.Helper()
		if idx < 0 || idx >= len(keys) {
			if ok || it.Valid() {
				t.Fatalf("%s: %s: at %q (returned %v), want past the end", desc, op, trunc(it.Key()), ok)
			}
			if err := it.Error(); err != nil {
				t.Fatalf("%s: %s: error %v", desc, op, err)
			}
			return false
		}
		if !ok || !it.Valid() {
			t.Fatalf("%s: %s: returned %v, Valid %v, want at %q (error %v)", desc, op, ok, it.Valid(), trunc([]byte(keys[idx])), it.Error())
		}
		if string(it.Key()) != keys[idx] {
			t.Fatalf("%s: %s: at %q, want %q", desc, op, trunc(it.Key()), trunc([]byte(keys[idx])))
		}
		if string(it.Value()) != m[keys[idx]] {
			t.Fatalf("%s: %s: at %q: value %q, want %q", desc, op, trunc(it.Key()), trunc(it.Value()), trunc([]byte(m[keys[idx]])))
		}
		return true
	}
}

// checkIter checks an iterator over r within [lo, hi) against m: every
// positioning call, each followed by a few random steps, and full scans in
// both directions.
func checkIter(t *testing.T, r storage.Reader, m model, lo, hi []byte, probes [][]byte, rng *rand.Rand) {
	t.Helper()
	o := &storage.IterOptions{LowerBound: lo, UpperBound: hi}
	if lo != nil && hi != nil && bytes.Compare(lo, hi) > 0 {
		// An inverted range: no pairs, or an error from NewIter.
		it, err := r.NewIter(o)
		if err != nil {
			return
		}
		if it.First() || it.Last() || it.SeekGE(lo) || it.SeekLT(hi) {
			t.Fatalf("iterator over [%q, %q) found %q, want nothing", lo, hi, it.Key())
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := m.pairs(lo, hi)
	if d := diffPairs(scan(t, r, o), want); d != "" {
		t.Fatalf("All over [%q, %q): %s", lo, hi, d)
	}
	back := scanBackward(t, r, o)
	slices.Reverse(back)
	if d := diffPairs(back, want); d != "" {
		t.Fatalf("Backward over [%q, %q) (reversed): %s", lo, hi, d)
	}

	keys := m.sorted(lo, hi)
	it, err := r.NewIter(o)
	if err != nil {
		t.Fatalf("NewIter: %v", err)
	}
	defer it.Close()
	at := iterAt(t, it, keys, m, fmt.Sprintf("iterator over [%q, %q)", lo, hi))
	walk := func(op string, idx int) {
		t.Helper()
		for range rng.IntN(4) {
			if idx < 0 || idx >= len(keys) {
				return
			}
			if rng.IntN(2) == 0 {
				idx++
				op += ".Next"
				at(op, it.Next(), idx)
			} else {
				idx--
				op += ".Prev"
				at(op, it.Prev(), idx)
			}
		}
	}
	// Forward and backward by steps.
	at("First", it.First(), 0)
	for i := 1; i <= len(keys); i++ {
		at(fmt.Sprintf("First+%d Next", i), it.Next(), i)
	}
	at("Last", it.Last(), len(keys)-1)
	for i := len(keys) - 2; i >= -1; i-- {
		at(fmt.Sprintf("Last-%d Prev", len(keys)-1-i), it.Prev(), i)
	}
	for _, p := range probes {
		idx, _ := slices.BinarySearch(keys, string(p))
		op := fmt.Sprintf("SeekGE(%q)", trunc(p))
		at(op, it.SeekGE(p), idx)
		walk(op, idx)
		op = fmt.Sprintf("SeekLT(%q)", trunc(p))
		at(op, it.SeekLT(p), idx-1)
		walk(op, idx-1)
	}
	// First and Last again after wandering.
	at("First", it.First(), 0)
	at("Last", it.Last(), len(keys)-1)
	if err := it.Error(); err != nil {
		t.Fatalf("iterator error: %v", err)
	}
}

func testIteration(t *testing.T, c Config) {
	e, _ := openFresh(t, c)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))

	// Empty store.
	it, err := e.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if it.First() || it.Last() || it.SeekGE(nil) || it.SeekLT([]byte("\xff")) || it.Valid() {
		t.Fatalf("iterator over an empty store found %q", it.Key())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}

	m := model{}
	for _, k := range iterKeys {
		m[k] = string(selfVal([]byte(k), 1, rng.IntN(40)))
	}
	for range 150 {
		k := randKey(rng, 6)
		m[k] = string(selfVal([]byte(k), 2, rng.IntN(40)))
	}
	var b storage.Batch
	i := 0
	for k, v := range m { // half one by one, half in batches
		if i%2 == 0 {
			mustPut(t, e, []byte(k), []byte(v), nil)
		} else {
			b.Put([]byte(k), []byte(v))
		}
		i++
	}
	mustApply(t, e, &b, nil)
	wantContents(t, e, m)

	keys := m.sorted(nil, nil)
	probes := probesFor(keys, rng, 30)
	type bound struct{ lo, hi []byte }
	bs := []bound{
		{nil, nil},
		{[]byte(keys[10]), nil},
		{nil, []byte(keys[20])},
		{[]byte(keys[5]), []byte(keys[40])},
		{[]byte(keys[5] + "\x00"), []byte(keys[40] + "\x00")}, // bounds between keys
		{[]byte(keys[7]), []byte(keys[7])},                    // equal bounds: empty
		{[]byte(keys[7]), []byte(keys[7] + "\x00")},           // exactly one key
		{[]byte(keys[30]), []byte(keys[3])},                   // inverted: empty
		{[]byte{}, nil},                                       // includes the empty key
		{nil, []byte{}},                                       // empty
		{[]byte("\xff\xff\xff\xff"), nil},                     // above every key
		{nil, []byte(keys[0])},                                // below every key
		{[]byte(keys[len(keys)-1]), nil},                      // the last key only
	}
	for range 10 {
		lo, hi := probes[rng.IntN(len(probes))], probes[rng.IntN(len(probes))]
		if bytes.Compare(lo, hi) > 0 {
			lo, hi = hi, lo
		}
		bs = append(bs, bound{lo, hi})
	}
	for _, bd := range bs {
		checkIter(t, e, m, bd.lo, bd.hi, probes, rng)
	}
	if len(m.sorted(bs[6].lo, bs[6].hi)) != 1 || len(m.sorted(bs[5].lo, bs[5].hi)) != 0 {
		t.Fatal("storagetest: bad bounds in the test itself")
	}
}

// testIteratorView checks that an iterator sees the store as it was when
// it was created.
func testIteratorView(t *testing.T, c Config) {
	e, _ := openFresh(t, c)
	m := model{}
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		m[k] = "old-" + k
		mustPut(t, e, []byte(k), []byte(m[k]), nil)
	}
	old := m.clone()
	all, err := e.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := []byte("k05"), []byte("k15")
	bounded, err := e.NewIter(&storage.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	mid, err := e.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !mid.SeekGE([]byte("k07")) || string(mid.Key()) != "k07" {
		t.Fatalf("SeekGE(k07) at %q", mid.Key())
	}

	// Writes after the iterators were made.
	mustPut(t, e, []byte("k05"), []byte("new"), nil)
	mustPut(t, e, []byte("k08"), []byte("new"), storage.Synced)
	mustDelete(t, e, []byte("k09"), nil)
	mustDelete(t, e, []byte("k10"), nil)
	mustPut(t, e, []byte("k10a"), []byte("new"), nil)
	mustPut(t, e, []byte("k99"), []byte("new"), nil)
	var b storage.Batch
	b.Delete([]byte("k00"))
	b.Put([]byte("k21"), []byte("new"))
	b.Put([]byte("k12"), []byte("new"))
	mustApply(t, e, &b, nil)
	for _, k := range []string{"k05", "k08", "k10a", "k99", "k21", "k12"} {
		m[k] = "new"
	}
	for _, k := range []string{"k09", "k10", "k00"} {
		delete(m, k)
	}

	// The iterator positioned before the writes moves on in the old view.
	for _, want := range []string{"k08", "k09", "k10", "k11", "k12"} {
		if !mid.Next() || string(mid.Key()) != want || string(mid.Value()) != old[want] {
			t.Fatalf("iterator made before the writes: Next at %q = %q, want %q = %q", mid.Key(), mid.Value(), want, old[want])
		}
	}
	if !mid.Prev() || string(mid.Key()) != "k11" {
		t.Fatalf("iterator made before the writes: Prev at %q, want k11", mid.Key())
	}
	if err := mid.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(it storage.Iterator, lo, hi []byte) {
		t.Helper()
		var got []kv
		for k, v := range storage.All(it) {
			got = append(got, kv{string(k), string(v)})
		}
		if d := diffPairs(got, old.pairs(lo, hi)); d != "" {
			t.Fatalf("iterator made before the writes, over [%q, %q): %s", lo, hi, d)
		}
		got = got[:0]
		for k, v := range storage.Backward(it) {
			got = append(got, kv{string(k), string(v)})
		}
		slices.Reverse(got)
		if d := diffPairs(got, old.pairs(lo, hi)); d != "" {
			t.Fatalf("iterator made before the writes, over [%q, %q), backward: %s", lo, hi, d)
		}
		if !it.SeekGE([]byte("k10")) || string(it.Key()) != "k10" || string(it.Value()) != old["k10"] {
			t.Fatalf("iterator made before the writes: SeekGE(k10) at %q = %q, want the deleted k10", it.Key(), it.Value())
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	check(all, nil, nil)
	check(bounded, lo, hi)
	wantContents(t, e, m)

	// Space reclamation does not take what an open iterator reads.
	if c.Reclaim != nil {
		before := m.clone()
		it, err := e.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			for i := range 20 {
				k := fmt.Sprintf("k%02d", i)
				if i%5 == 0 {
					mustDelete(t, e, []byte(k), nil)
					delete(m, k)
				} else {
					m[k] = fmt.Sprintf("round-%d", round)
					mustPut(t, e, []byte(k), []byte(m[k]), nil)
				}
			}
			if err := c.Reclaim(e); err != nil {
				t.Fatalf("Reclaim: %v", err)
			}
		}
		var got []kv
		for k, v := range storage.All(it) {
			got = append(got, kv{string(k), string(v)})
		}
		if d := diffPairs(got, before.pairs(nil, nil)); d != "" {
			t.Fatalf("iterator made before overwrites and Reclaim: %s", d)
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		wantContents(t, e, m)
	}
}

func testSnapshots(t *testing.T, c Config) {
	e, _ := openFresh(t, c)

	empty, err := e.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	m := model{}
	for i := range 50 {
		k := fmt.Sprintf("s%03d", i)
		m[k] = string(selfVal([]byte(k), 1, i*3))
		mustPut(t, e, []byte(k), []byte(m[k]), nil)
	}
	s1, err := e.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	m1 := m.clone()

	for i := range 50 {
		k := fmt.Sprintf("s%03d", i)
		switch i % 5 {
		case 0, 1:
			m[k] = string(selfVal([]byte(k), 2, i))
			mustPut(t, e, []byte(k), []byte(m[k]), nil)
		case 2:
			delete(m, k)
			mustDelete(t, e, []byte(k), nil)
		}
	}
	for i := range 10 {
		k := fmt.Sprintf("s%03d+", i*5)
		m[k] = "added"
		mustPut(t, e, []byte(k), []byte("added"), nil)
	}
	s2, err := e.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := m.clone()

	// Delete everything s1 saw, in one batch, and write more.
	var b storage.Batch
	for k := range m1 {
		b.Delete([]byte(k))
		delete(m, k)
	}
	for i := range 20 {
		k := fmt.Sprintf("t%03d", i)
		b.Put([]byte(k), []byte("later"))
		m[k] = "later"
	}
	mustApply(t, e, &b, storage.Synced)
	if c.Reclaim != nil {
		for range 2 {
			if err := c.Reclaim(e); err != nil {
				t.Fatalf("Reclaim: %v", err)
			}
		}
	}

	wantContents(t, e, m)
	wantContents(t, s1, m1)
	wantContents(t, s2, m2)
	wantContents(t, empty, model{})
	wantNotFound(t, s1, []byte("s000+"))
	wantNotFound(t, s2, []byte("s002"))
	wantNotFound(t, empty, []byte("s000"))
	wantNotFound(t, e, []byte("s001"))
	// Get on a snapshot appends to buf[:0] and returns the caller's slice.
	buf := make([]byte, 0, 1024)
	got, err := s1.Get([]byte("s010"), buf)
	if err != nil || string(got) != m1["s010"] || &got[0] != &buf[:1][0] {
		t.Fatalf("snapshot Get(s010, buf) = %q, %v; want %q in buf", trunc(got), err, trunc([]byte(m1["s010"])))
	}
	clear(got)
	wantGet(t, s1, []byte("s010"), []byte(m1["s010"]))

	rng := rand.New(rand.NewPCG(3, 3))
	probes := probesFor(m2.sorted(nil, nil), rng, 10)
	checkIter(t, s1, m1, []byte("s010"), []byte("s030"), probes, rng)
	checkIter(t, s2, m2, []byte("s005"), []byte("s045+"), probes, rng)
	checkIter(t, s2, m2, nil, nil, probes, rng)

	// An iterator of a snapshot made, then writes, then read.
	it, err := s2.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, e, []byte("s001"), []byte("even-later"), nil)
	var all []kv
	for k, v := range storage.All(it) {
		all = append(all, kv{string(k), string(v)})
	}
	if d := diffPairs(all, m2.pairs(nil, nil)); d != "" {
		t.Fatalf("snapshot iterator: %s", d)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}

	if err := s1.Close(); err != nil {
		t.Fatalf("snapshot Close: %v", err)
	}
	noPanic(t, "Get on a closed snapshot", func() {
		if _, err := s1.Get([]byte("s010"), nil); err == nil {
			t.Errorf("Get on a closed snapshot succeeded")
		}
	})
	noPanic(t, "NewIter on a closed snapshot", func() {
		if it, err := s1.NewIter(nil); err == nil {
			it.Close()
			t.Errorf("NewIter on a closed snapshot succeeded")
		}
	})
	// The other snapshots are unaffected.
	wantContents(t, s2, m2)
	for _, s := range []storage.Snapshot{s2, empty} {
		if err := s.Close(); err != nil {
			t.Fatalf("snapshot Close: %v", err)
		}
	}
	m["s001"] = "even-later"
	wantContents(t, e, m)
}

func testReopen(t *testing.T, c Config) {
	e, dir := openFresh(t, c)
	mustClose(t, e)
	e = openAt(t, c, dir)
	wantContents(t, e, model{})

	m := model{}
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range 100 {
		k := fmt.Sprintf("r%03d", i)
		m[k] = string(selfVal([]byte(k), 1, rng.IntN(500)))
		mustPut(t, e, []byte(k), []byte(m[k]), nil)
	}
	for i := 0; i < 100; i += 3 {
		k := fmt.Sprintf("r%03d", i)
		m[k] = string(selfVal([]byte(k), 2, rng.IntN(500)))
		mustPut(t, e, []byte(k), []byte(m[k]), nil)
	}
	for i := 1; i < 100; i += 5 {
		k := fmt.Sprintf("r%03d", i)
		delete(m, k)
		mustDelete(t, e, []byte(k), nil)
	}
	var b storage.Batch
	b.Delete([]byte("r002"))
	b.Put([]byte("r100"), []byte("batched"))
	b.Put([]byte("r003"), nil)
	mustApply(t, e, &b, nil)
	delete(m, "r002")
	m["r100"], m["r003"] = "batched", ""

	mustClose(t, e)
	e = openAt(t, c, dir)
	wantContents(t, e, m)

	// Synced writes, then Sync after unsynced ones.
	for i := range 10 {
		k := fmt.Sprintf("synced%02d", i)
		m[k] = "s"
		mustPut(t, e, []byte(k), []byte("s"), storage.Synced)
	}
	mustDelete(t, e, []byte("r000"), storage.Synced)
	delete(m, "r000")
	b.Reset()
	b.Put([]byte("synced-batch"), []byte("sb"))
	b.Delete([]byte("r004"))
	mustApply(t, e, &b, storage.Synced)
	m["synced-batch"] = "sb"
	delete(m, "r004")
	mustPut(t, e, []byte("then-sync"), []byte("ts"), nil)
	m["then-sync"] = "ts"
	if err := e.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	mustClose(t, e)
	e = openAt(t, c, dir)
	wantContents(t, e, m)

	// A third generation.
	mustDelete(t, e, []byte("synced00"), nil)
	delete(m, "synced00")
	mustPut(t, e, []byte("third"), []byte("3"), nil)
	m["third"] = "3"
	mustClose(t, e)
	e = openAt(t, c, dir)
	wantContents(t, e, m)
}

func testStats(t *testing.T, c Config) {
	e, _ := openFresh(t, c)
	mustPut(t, e, []byte("a"), []byte("1"), nil)
	mustPut(t, e, []byte("b"), []byte("2"), nil)
	mustPut(t, e, []byte("c"), []byte("3"), nil)
	mustDelete(t, e, []byte("b"), nil)
	wantGet(t, e, []byte("a"), []byte("1"))
	wantNotFound(t, e, []byte("b"))
	var b storage.Batch
	b.Put([]byte("d"), []byte("4"))
	mustApply(t, e, &b, nil)
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	if s.Engine == "" {
		t.Errorf("Stats().Engine is empty")
	}
	for _, f := range []struct {
		name      string
		got, want int64
	}{
		{"Puts", s.Puts, 3}, {"Deletes", s.Deletes, 1}, {"Gets", s.Gets, 2}, {"Batches", s.Batches, 1}, {"Keys", s.Keys, 3},
	} {
		if f.got != f.want && f.got != -1 {
			t.Errorf("Stats().%s = %d, want %d (or -1: unknown)", f.name, f.got, f.want)
		}
	}
	if s.DiskBytes == 0 || s.DiskBytes < -1 {
		t.Errorf("Stats().DiskBytes = %d after synced writes, want > 0 (or -1)", s.DiskBytes)
	}
	if s.LiveBytes == 0 || s.LiveBytes < -1 {
		t.Errorf("Stats().LiveBytes = %d with 3 live keys, want > 0 (or -1)", s.LiveBytes)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"IndexBytes", s.IndexBytes}, {"GCRuns", s.GCRuns}, {"GCBytesCopied", s.GCBytesCopied}} {
		if f.v < -1 {
			t.Errorf("Stats().%s = %d, want >= -1", f.name, f.v)
		}
	}
}

func testClosed(t *testing.T, c Config) {
	e, dir := openFresh(t, c)
	mustPut(t, e, []byte("k"), []byte("v"), storage.Synced)
	mustClose(t, e)
	wantClosed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error wrapping storage.ErrClosed", what, err)
		}
	}
	noPanic(t, "second Close", func() { wantClosed("Close", e.Close()) })
	noPanic(t, "Get", func() {
		_, err := e.Get([]byte("k"), nil)
		wantClosed("Get", err)
	})
	noPanic(t, "Put", func() { wantClosed("Put", e.Put([]byte("k"), []byte("v2"), nil)) })
	noPanic(t, "synced Put", func() { wantClosed("synced Put", e.Put([]byte("k"), []byte("v2"), storage.Synced)) })
	noPanic(t, "Delete", func() { wantClosed("Delete", e.Delete([]byte("k"), nil)) })
	noPanic(t, "Apply", func() {
		var b storage.Batch
		b.Put([]byte("k2"), []byte("v"))
		wantClosed("Apply", e.Apply(&b, storage.Synced))
	})
	noPanic(t, "NewIter", func() {
		it, err := e.NewIter(nil)
		wantClosed("NewIter", err)
		if err == nil && it != nil {
			it.Close()
		}
	})
	noPanic(t, "NewSnapshot", func() {
		s, err := e.NewSnapshot()
		wantClosed("NewSnapshot", err)
		if err == nil && s != nil {
			s.Close()
		}
	})
	noPanic(t, "Sync", func() { wantClosed("Sync", e.Sync()) })
	noPanic(t, "Stats", func() { _ = e.Stats() })
	if t.Failed() {
		return
	}
	// Nothing was written after Close.
	e = openAt(t, c, dir)
	wantContents(t, e, model{"k": "v"})
}
