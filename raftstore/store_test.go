package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ringlog/ringlog/pager"
)

// backends are the pager backends available here.
func backends(t testing.TB) []pager.Backend {
	var bs []pager.Backend
	for _, b := range []pager.Backend{pager.Remap, pager.Mmap, pager.Copy} {
		if pager.Available(b) == nil {
			bs = append(bs, b)
		}
	}
	if len(bs) == 0 {
		t.Fatal("no pager backend available")
	}
	return bs
}

// testOptions are small stores: 1 MiB segments, 8 MiB at most.
func testOptions(b pager.Backend) *Options {
	return &Options{Backend: b, SegmentSize: 1 << 20, Capacity: 8 << 20}
}

func openStore(t *testing.T, dir string, o *Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entry is the entry of index i of term term, with data and extensions
// that say which.
func entry(i, term uint64) *raft.Log {
	l := &raft.Log{
		Index: i,
		Term:  term,
		Type:  raft.LogType(i % 6),
		Data:  fmt.Appendf(nil, "data of %d in term %d %s", i, term, strings.Repeat("x", int(i%50))),
	}
	if i%3 == 0 {
		l.Extensions = fmt.Appendf(nil, "ext %d", i)
	}
	if i%2 == 0 {
		l.AppendedAt = time.Unix(1_700_000_000+int64(i), int64(i*7919%1_000_000_000))
	}
	return l
}

func entries(lo, hi, term uint64) []*raft.Log {
	var ls []*raft.Log
	for i := lo; i <= hi; i++ {
		ls = append(ls, entry(i, term))
	}
	return ls
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) && a.AppendedAt.Equal(b.AppendedAt)
}

// checkRange checks that s holds exactly the entries lo..hi, each of the
// term termOf gives, and nothing around them.
func checkRange(t *testing.T, s *Store, lo, hi uint64, termOf func(i uint64) uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first != lo || last != hi {
		t.Fatalf("FirstIndex, LastIndex = %d, %d, want %d, %d", first, last, lo, hi)
	}
	var l raft.Log
	if lo == 0 {
		for _, i := range []uint64{0, 1, 2} {
			if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
				t.Fatalf("GetLog(%d) of an empty store: %v", i, err)
			}
		}
		return
	}
	for i := lo; i <= hi; i++ {
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if want := entry(i, termOf(i)); !sameLog(&l, want) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, l, *want)
		}
	}
	for _, i := range []uint64{lo - 1, hi + 1, hi + 1000} {
		if i == 0 {
			continue
		}
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) outside [%d, %d]: %v", i, lo, hi, err)
		}
	}
}

func term1(uint64) uint64 { return 1 }

// The LogStore contract on every backend, with a reopen after each step:
// empty store, StoreLog and StoreLogs, GetLog of present and missing
// entries, DeleteRange of a prefix, a suffix (in the middle of a batch)
// and then re-appended entries of a new term, DeleteRange of everything,
// and entries after that starting at another index.
func TestLogStore(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, testOptions(b))
			defer func() { s.Close() }()
			reopen := func() {
				t.Helper()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openStore(t, dir, testOptions(b))
			}
			checkRange(t, s, 0, 0, term1)
			reopen()
			checkRange(t, s, 0, 0, term1)

			if err := s.StoreLog(entry(1, 1)); err != nil {
				t.Fatal(err)
			}
			checkRange(t, s, 1, 1, term1)
			if err := s.StoreLogs(entries(2, 100, 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.StoreLogs(entries(101, 164, 1)); err != nil {
				t.Fatal(err)
			}
			checkRange(t, s, 1, 164, term1)
			reopen()
			checkRange(t, s, 1, 164, term1)

			// A prefix, as raft compacts after a snapshot.
			if err := s.DeleteRange(1, 40); err != nil {
				t.Fatal(err)
			}
			checkRange(t, s, 41, 164, term1)
			reopen()
			checkRange(t, s, 41, 164, term1)

			// A suffix starting inside the batch of 101..164, then the
			// same indices again in term 2.
			if err := s.DeleteRange(120, 164); err != nil {
				t.Fatal(err)
			}
			checkRange(t, s, 41, 119, term1)
			reopen()
			checkRange(t, s, 41, 119, term1)
			if err := s.StoreLogs(entries(120, 150, 2)); err != nil {
				t.Fatal(err)
			}
			term := func(i uint64) uint64 {
				if i >= 120 {
					return 2
				}
				return 1
			}
			checkRange(t, s, 41, 150, term)
			reopen()
			checkRange(t, s, 41, 150, term)

			// Ranges outside the log, and empty ones, are no-ops; the
			// middle is refused.
			for _, r := range [][2]uint64{{1, 40}, {151, 200}, {60, 50}} {
				if err := s.DeleteRange(r[0], r[1]); err != nil {
					t.Fatalf("DeleteRange(%d, %d): %v", r[0], r[1], err)
				}
			}
			if err := s.DeleteRange(50, 60); !errors.Is(err, ErrMidRange) {
				t.Fatalf("DeleteRange(50, 60) inside [41, 150]: %v", err)
			}
			// Gaps and overlaps are refused.
			for _, ls := range [][]*raft.Log{entries(152, 153, 2), entries(150, 151, 2), {entry(151, 2), entry(153, 2)}} {
				if err := s.StoreLogs(ls); !errors.Is(err, ErrNotNext) {
					t.Fatalf("StoreLogs of %d..%d after 150: %v", ls[0].Index, ls[len(ls)-1].Index, err)
				}
			}
			checkRange(t, s, 41, 150, term)

			// A prefix deletion that crosses into the re-appended
			// entries.
			if err := s.DeleteRange(30, 125); err != nil {
				t.Fatal(err)
			}
			checkRange(t, s, 126, 150, term)
			reopen()
			checkRange(t, s, 126, 150, term)

			// Everything, then a new start far on (raft after
			// restoring a snapshot).
			if err := s.DeleteRange(126, 150); err != nil {
				t.Fatal(err)
			}
			checkRange(t, s, 0, 0, term1)
			reopen()
			checkRange(t, s, 0, 0, term1)
			if err := s.StoreLogs(entries(1000, 1010, 3)); err != nil {
				t.Fatal(err)
			}
			term3 := func(uint64) uint64 { return 3 }
			checkRange(t, s, 1000, 1010, term3)
			reopen()
			checkRange(t, s, 1000, 1010, term3)
			// An index below the old ones after deleting everything.
			if err := s.DeleteRange(0, 5000); err != nil {
				t.Fatal(err)
			}
			if err := s.StoreLogs(entries(5, 9, 4)); err != nil {
				t.Fatal(err)
			}
			reopen()
			checkRange(t, s, 5, 9, func(uint64) uint64 { return 4 })
		})
	}
}

// Entries that fill many segments, deleted as raft compacts, keep the
// file from growing: TruncateFront frees the segments behind the first
// entry. The dense index survives many prefix deletions.
func TestPrefixDeletesFreeSpace(t *testing.T) {
	dir := t.TempDir()
	o := &Options{SegmentSize: 256 << 10, Capacity: 4 << 20}
	s := openStore(t, dir, o)
	defer func() { s.Close() }()
	data := bytes.Repeat([]byte{7}, 1000)
	var next uint64 = 1
	for round := range 200 {
		batch := make([]*raft.Log, 64)
		for k := range batch {
			batch[k] = &raft.Log{Index: next, Term: 1, Data: data}
			next++
		}
		if err := s.StoreLogs(batch); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// Keep the last 100 entries, as raft keeps TrailingLogs.
		if last := next - 1; last > 100 {
			first, _ := s.FirstIndex()
			if err := s.DeleteRange(first, last-100); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 200 × 64 entries of ~1 KiB, 13 MiB in all, through a log that
	// holds 4 MiB at most.
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != next-100 || last != next-1 {
		t.Fatalf("FirstIndex, LastIndex = %d, %d, want %d, %d", first, last, next-100, next-1)
	}
	st, err := os.Stat(filepath.Join(dir, LogName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 4<<20 {
		t.Fatalf("log file of %d bytes", st.Size())
	}
	if sb := s.Stats().LogBytes; sb > 512<<10 {
		t.Errorf("the log holds %d bytes for 100 entries", sb)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, o)
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := s.GetLog(i, &l); err != nil || l.Index != i || !bytes.Equal(l.Data, data) {
			t.Fatalf("GetLog(%d) after reopen: %v, %d", i, err, l.Index)
		}
	}
}

// The stable store: missing keys, values, uint64s, overwrites, durable
// across reopen; a value that is not a uint64.
func TestStableStore(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(pager.Auto))
	defer func() { s.Close() }()
	if v, err := s.Get([]byte("missing")); err != nil || v != nil {
		t.Fatalf("Get of a missing key = %q, %v; want nil, nil", v, err)
	}
	if v, err := s.GetUint64([]byte("missing")); err != nil || v != 0 {
		t.Fatalf("GetUint64 of a missing key = %d, %v; want 0, nil", v, err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 8); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-2" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 8 {
			t.Fatalf("GetUint64 = %d, %v", v, err)
		}
		if v, err := s.Get([]byte("empty")); err != nil || len(v) != 0 {
			t.Fatalf("Get of an empty value = %q, %v", v, err)
		}
		if _, err := s.GetUint64([]byte("LastVoteCand")); err == nil {
			t.Fatal("GetUint64 of a 6-byte value: no error")
		}
	}
	check()
	// The value returned is a copy.
	v, _ := s.Get([]byte("LastVoteCand"))
	v[0] = 'X'
	check()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, testOptions(pager.Auto))
	check()
	if _, err := os.Stat(filepath.Join(dir, StableName+".tmp")); err == nil {
		t.Error("the temporary stable file is left")
	}
}

// A damaged stable file is refused with its name and the offset.
func TestStableDamaged(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(pager.Auto))
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, StableName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		b   []byte
		off string
	}{
		"flipped": {flip(good, len(good)-1), "offset 8"},
		"short":   {good[:len(good)-2], "offset 12"},
		"header":  {good[:5], "offset 0"},
		"magic":   {flip(good, 0), "offset 0"},
	} {
		if err := os.WriteFile(path, c.b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, nil)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.off) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x40
	return c
}

// Closed stores refuse calls.
func TestClosed(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions(pager.Auto))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	for name, err := range map[string]error{
		"GetLog":      s.GetLog(1, &l),
		"StoreLog":    s.StoreLog(entry(1, 1)),
		"DeleteRange": s.DeleteRange(1, 2),
		"Set":         s.Set([]byte("k"), nil),
		"Close":       s.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

// A new store has its first segment when Open returns (written and
// synced there, not under the first StoreLogs), and holds no entry.
func TestCreateFirstSegment(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions(pager.Auto))
	defer s.Close()
	st, err := os.Stat(filepath.Join(dir, LogName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 1<<20 {
		t.Fatalf("a new store's log has %d bytes, less than its 1 MiB segment", st.Size())
	}
	checkRange(t, s, 0, 0, term1)
	if m := s.Stats().Log; m.Syncs == 0 {
		t.Fatalf("no sync at creation: %+v", m)
	}
}
