package pager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var allBackends = []Backend{Remap, Mmap, Copy}

// forEachBackend runs fn as a subtest per backend, skipping (with the
// reason) backends this machine or build does not have.
func forEachBackend(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, b := range allBackends {
		t.Run(b.String(), func(t *testing.T) {
			if err := Available(b); err != nil {
				t.Skipf("backend %v unavailable here: %v", b, err)
			}
			fn(t, b)
		})
	}
}

// word is the content of the 8-byte word at file offset off in test files.
func word(off int64) uint64 { return uint64(off)*0x9E3779B97F4A7C15 ^ 0xA5A5_5A5A_0F0F_F0F0 }

// makeFile creates a file of n pages holding word(off) at every offset.
func makeFile(t testing.TB, pages int) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "data"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	buf := make([]byte, pages*PageSize)
	for off := 0; off < len(buf); off += 8 {
		binary.LittleEndian.PutUint64(buf[off:], word(int64(off)))
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

func openView(t testing.TB, f *os.File, pages int, b Backend) *View {
	t.Helper()
	v, err := New(f, pages*PageSize, &Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func mustMap(t testing.TB, v *View, vp, fp, n int) {
	t.Helper()
	if err := v.Map(vp*PageSize, int64(fp*PageSize), n*PageSize); err != nil {
		t.Fatal(err)
	}
}

// expectPages checks that view pages [vp, vp+n) show the original content
// of file pages [fp, fp+n).
func expectPages(t testing.TB, v *View, vp, fp, n int) {
	t.Helper()
	b, err := v.Bytes(vp*PageSize, n*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 8 {
		fileOff := int64(fp*PageSize + i)
		if got, want := binary.LittleEndian.Uint64(b[i:]), word(fileOff); got != want {
			t.Fatalf("view offset %d: got %#x, want file offset %d's %#x", vp*PageSize+i, got, fileOff, want)
		}
	}
}

func TestMapIdentityAndOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		f := makeFile(t, 8)
		v := openView(t, f, 8, b)
		if v.Backend() != b {
			t.Fatalf("Backend() = %v, want %v", v.Backend(), b)
		}
		mustMap(t, v, 0, 0, 8)
		expectPages(t, v, 0, 0, 8)
		// Reverse the pages one by one over the live mapping.
		for i := 0; i < 8; i++ {
			mustMap(t, v, i, 7-i, 1)
		}
		for i := 0; i < 8; i++ {
			expectPages(t, v, i, 7-i, 1)
		}
		if got := len(v.Runs()); got != 8 {
			t.Fatalf("reversed view has %d runs, want 8", got)
		}
		// Put them back: the runs merge into one.
		mustMap(t, v, 0, 0, 8)
		if runs := v.Runs(); len(runs) != 1 || runs[0] != (Run{0, 0, 8 * PageSize}) {
			t.Fatalf("runs after restoring = %v", runs)
		}
		if b != Copy && v.Mappings() != 1 {
			t.Fatalf("Mappings() = %d after merging, want 1", v.Mappings())
		}
	})
}

func TestAliasing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		if b == Copy {
			t.Skip("copy keeps one heap copy per view page: no aliasing (TestCopyContract covers its rules)")
		}
		f := makeFile(t, 4)
		v := openView(t, f, 8, b)
		mustMap(t, v, 0, 0, 4)
		mustMap(t, v, 4, 0, 4) // the file twice, back to back
		expectPages(t, v, 4, 0, 4)
		// A store that crosses the seam lands once in the file and shows
		// at both places.
		msg := []byte("wraps across the end of the file")
		at := 4*PageSize - 10
		if _, err := v.WriteAt(msg, int64(at)); err != nil {
			t.Fatal(err)
		}
		whole, _ := v.Bytes(0, 8*PageSize)
		if !bytes.Equal(whole[at:at+len(msg)], msg) {
			t.Fatal("store not readable where it was made")
		}
		if !bytes.Equal(whole[4*PageSize-10:4*PageSize], msg[:10]) || !bytes.Equal(whole[0:len(msg)-10], msg[10:]) {
			t.Fatal("the wrapped part is not visible at the start of the first copy")
		}
		if !bytes.Equal(whole[8*PageSize-10:], msg[:10]) {
			t.Fatal("the head is not visible at the end of the second copy")
		}
		got := make([]byte, len(msg)-10)
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, msg[10:]) {
			t.Fatalf("file shows %q, %v", got, err)
		}
	})
}

func TestCopyContract(t *testing.T) {
	if err := Available(Copy); err != nil {
		t.Fatal(err)
	}
	f := makeFile(t, 4)
	v := openView(t, f, 8, Copy)
	mustMap(t, v, 0, 2, 1)
	mustMap(t, v, 5, 2, 1) // alias of file page 2
	if _, err := v.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	// Nothing reaches the file or the alias before WriteBack.
	got := make([]byte, 5)
	f.ReadAt(got, int64(2*PageSize))
	if bytes.Equal(got, []byte("hello")) {
		t.Fatal("copy backend wrote to the file before WriteBack")
	}
	expectPages(t, v, 5, 2, 1)
	if err := v.WriteBack(0, PageSize); err != nil {
		t.Fatal(err)
	}
	f.ReadAt(got, int64(2*PageSize))
	if !bytes.Equal(got, []byte("hello")) {
		t.Fatalf("file shows %q after WriteBack", got)
	}
	// The alias catches up on Reload.
	if err := v.Reload(5*PageSize, PageSize); err != nil {
		t.Fatal(err)
	}
	alias, _ := v.Bytes(5*PageSize, 5)
	if !bytes.Equal(alias, []byte("hello")) {
		t.Fatalf("alias shows %q after Reload", alias)
	}
	// WriteBack over a range with two aliases: the later page wins.
	v.WriteAt([]byte("first"), 0)
	v.WriteAt([]byte("later"), int64(5*PageSize))
	if err := v.WriteBack(0, 8*PageSize); err != nil {
		t.Fatal(err)
	}
	f.ReadAt(got, int64(2*PageSize))
	if string(got) != "later" {
		t.Fatalf("file shows %q, want the later alias", got)
	}
	if v.Mappings() != 0 {
		t.Fatalf("copy view reports %d kernel mappings", v.Mappings())
	}
}

func TestCoherence(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		f := makeFile(t, 4)
		v := openView(t, f, 4, b)
		mustMap(t, v, 0, 0, 4)
		// pwrite to the file, read through the view.
		if _, err := f.WriteAt([]byte("from pwrite"), 100); err != nil {
			t.Fatal(err)
		}
		if b == Copy {
			if err := v.Reload(0, PageSize); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := v.Bytes(100, 11)
		if string(got) != "from pwrite" {
			t.Fatalf("view shows %q after pwrite", got)
		}
		// Store through the view, pread the file.
		if _, err := v.WriteAt([]byte("from view"), int64(PageSize+7)); err != nil {
			t.Fatal(err)
		}
		if err := v.WriteBack(PageSize, PageSize); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 9)
		if _, err := f.ReadAt(buf, int64(PageSize+7)); err != nil || string(buf) != "from view" {
			t.Fatalf("pread shows %q, %v", buf, err)
		}
		if err := v.Sync(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		f := makeFile(t, 4)
		v := openView(t, f, 8, b)
		ps := PageSize
		cases := []struct {
			name string
			err  error
			want error
			off  string // offset the message must name
		}{
			{"unaligned view offset", v.Map(1, 0, ps), ErrUnaligned, "view offset 1"},
			{"unaligned file offset", v.Map(0, 3, ps), ErrUnaligned, "file offset 3"},
			{"unaligned length", v.Map(0, 0, ps+1), ErrUnaligned, "length"},
			{"negative view offset", v.Map(-ps, 0, ps), ErrUnaligned, "view offset -"},
			{"past the view", v.Map(7*ps, 0, 2*ps), ErrOutOfRange, "[" + strconv.Itoa(7*ps)},
			{"past the file", v.Map(0, int64(3*ps), 2*ps), ErrBeyondEOF, "file range [" + strconv.Itoa(3*ps)},
			{"unmap unaligned", v.Unmap(ps/2, ps), ErrUnaligned, "view offset"},
			{"bytes of unmapped", bytesErr(v, ps, 10), ErrNotMapped, "view offset " + strconv.Itoa(ps)},
			{"bytes past the view", bytesErr(v, 8*ps-1, 2), ErrOutOfRange, "view range"},
			{"read unmapped", readErr(v, 0, 1), ErrNotMapped, "view offset 0"},
		}
		for _, c := range cases {
			if !errors.Is(c.err, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
				continue
			}
			if msg := c.err.Error(); !strings.Contains(msg, f.Name()) || !strings.Contains(msg, c.off) {
				t.Errorf("%s: %q does not name the file and %q", c.name, msg, c.off)
			}
		}
		if _, err := New(f, ps+1, &Options{Backend: b}); !errors.Is(err, ErrUnaligned) {
			t.Errorf("New with an unaligned size: %v", err)
		}
		// A refused call changes nothing.
		if runs := v.Runs(); len(runs) != 0 {
			t.Fatalf("refused calls left runs %v", runs)
		}
	})
}

func bytesErr(v *View, off, n int) error { _, err := v.Bytes(off, n); return err }
func readErr(v *View, off, n int) error  { _, err := v.ReadAt(make([]byte, n), int64(off)); return err }

func TestClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		base := MappingsInUse()
		f := makeFile(t, 4)
		v, err := New(f, 8*PageSize, &Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		mustMap(t, v, 0, 0, 2)
		mustMap(t, v, 4, 1, 3)
		if b != Copy && MappingsInUse() <= base {
			t.Fatalf("mappings in use %d, not above %d with a live view", MappingsInUse(), base)
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if got := MappingsInUse(); got != base {
			t.Fatalf("mappings in use %d after Close, want %d", got, base)
		}
		for name, err := range map[string]error{
			"close": v.Close(), "map": v.Map(0, 0, PageSize), "unmap": v.Unmap(0, PageSize),
			"bytes": bytesErr(v, 0, 1), "sync": v.Sync(), "write back": v.WriteBack(0, PageSize),
		} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", name, err)
			}
		}
	})
}

func TestReadOnly(t *testing.T) {
	path := makeFile(t, 4).Name()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := New(f, 4*PageSize, nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("writable view of a read-only file: %v, want ErrReadOnly", err)
	}
	if _, err := New(f, 4*PageSize, &Options{Backend: Remap, ReadOnly: true}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("read-only remap view: %v, want ErrUnsupported", err)
	}
	v, err := New(f, 4*PageSize, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Backend() == Remap || v.Backend() != DefaultBackend(true) {
		t.Fatalf("auto picked %v for a read-only view, DefaultBackend(true) = %v", v.Backend(), DefaultBackend(true))
	}
	mustMap(t, v, 0, 0, 4)
	expectPages(t, v, 0, 0, 4)
	if _, err := v.WriteAt([]byte{1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("WriteAt on a read-only view: %v", err)
	}
	if err := v.WriteBack(0, PageSize); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("WriteBack on a read-only view: %v", err)
	}
}

func TestAutoChoice(t *testing.T) {
	want := Copy
	for _, b := range []Backend{Remap, Mmap} {
		if Available(b) == nil {
			want = b
			break
		}
	}
	if got := DefaultBackend(false); got != want {
		t.Fatalf("DefaultBackend(false) = %v, want the first available, %v", got, want)
	}
	if DefaultBackend(true) == Remap {
		t.Fatal("DefaultBackend(true) = remap")
	}
	v := openView(t, makeFile(t, 1), 1, Auto)
	if v.Backend() != want {
		t.Fatalf("auto view runs on %v, want %v", v.Backend(), want)
	}
	for _, b := range allBackends {
		t.Logf("%v: %v", b, Available(b))
	}
	if _, err := ParseBackend("nope"); err == nil {
		t.Fatal("ParseBackend accepted nope")
	}
	for _, b := range append(allBackends, Auto) {
		if got, err := ParseBackend(b.String()); err != nil || got != b {
			t.Fatalf("ParseBackend(%q) = %v, %v", b.String(), got, err)
		}
	}
}

func TestSyncFailureIsSticky(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		v := openView(t, makeFile(t, 1), 1, b)
		boom := errors.New("injected EIO")
		fdatasync = func(*os.File) error { return boom }
		err := v.Sync()
		fdatasync = realFdatasync
		if !errors.Is(err, ErrSyncFailed) || !errors.Is(err, boom) {
			t.Fatalf("failed sync returned %v", err)
		}
		if err2 := v.Sync(); !errors.Is(err2, ErrSyncFailed) {
			t.Fatalf("sync after a failed sync returned %v: the failure must stick", err2)
		}
	})
}

var realFdatasync = fdatasync

// sink keeps the compiler from dropping test reads.
var sink byte

func TestTruncatedUnderView(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		f := makeFile(t, 8)
		v := openView(t, f, 8, b)
		mustMap(t, v, 0, 4, 4) // view page 0 shows file page 4
		mustMap(t, v, 4, 0, 4)
		whole, _ := v.Bytes(0, 8*PageSize)
		if err := f.Truncate(int64(2 * PageSize)); err != nil {
			t.Fatal(err)
		}
		if err := v.Check(); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), f.Name()) {
			t.Fatalf("Check after truncation: %v", err)
		}
		if b == Copy {
			// The heap copy stays readable; going back to the file fails.
			if err := v.Reload(0, PageSize); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "offset "+strconv.Itoa(4*PageSize)) {
				t.Fatalf("Reload after truncation: %v", err)
			}
			return
		}
		_, err := v.ReadAt(make([]byte, 16), int64(PageSize+8))
		var fe *FaultError
		if !errors.As(err, &fe) || !errors.Is(err, ErrFault) {
			t.Fatalf("ReadAt past the new end: %v, want a FaultError", err)
		}
		if fe.File != f.Name() || fe.Offset != int64(5*PageSize+8) || fe.ViewOffset != PageSize+8 {
			t.Fatalf("fault names %q offset %d view offset %d", fe.File, fe.Offset, fe.ViewOffset)
		}
		// The user's own code, under Guard.
		err = Guard(func() { sink = whole[2*PageSize] })
		if !errors.As(err, &fe) || fe.Offset != int64(6*PageSize) {
			t.Fatalf("Guard: %v", err)
		}
		// Pages still backed by the file read fine.
		if err := Guard(func() { sink = whole[4*PageSize+1] }); err != nil {
			t.Fatalf("reading a page inside the file: %v", err)
		}
		if err := v.Map(0, 0, 4*PageSize); !errors.Is(err, ErrBeyondEOF) {
			t.Fatalf("mapping past the new end: %v", err)
		}
	})
}

func TestGuardPassesOtherPanics(t *testing.T) {
	defer func() {
		if r := recover(); r != "not a fault" {
			t.Fatalf("recovered %v", r)
		}
	}()
	Guard(func() { panic("not a fault") })
	t.Fatal("Guard swallowed a panic")
}

func TestMappingBudget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		if b == Copy {
			t.Skip("copy holds no kernel mappings")
		}
		f := makeFile(t, 64)
		v := openView(t, f, 64, b)
		mustMap(t, v, 0, 0, 64)
		old := SetMappingLimit(MappingsInUse() + 4)
		defer SetMappingLimit(old)
		// Each page mapped out of order in the middle of the identity run
		// splits it: +2 mappings each time.
		mustMap(t, v, 10, 40, 1)
		mustMap(t, v, 20, 41, 1)
		before := v.Runs()
		err := v.Map(30*PageSize, int64(42*PageSize), PageSize)
		if !errors.Is(err, ErrMappingBudget) || !strings.Contains(err.Error(), f.Name()) {
			t.Fatalf("fragmenting past the limit: %v", err)
		}
		if after := v.Runs(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("a refused map changed the view: %v -> %v", before, after)
		}
		// Changes that merge are allowed at the limit.
		mustMap(t, v, 10, 10, 1)
		mustMap(t, v, 30, 42, 1)
		mustMap(t, v, 0, 0, 64)
		if v.Mappings() != 1 {
			t.Fatalf("%d mappings after merging back", v.Mappings())
		}
		checkKernel(t, v)
	})
}

// checkKernel compares the view's page table with the kernel's mappings
// where the platform shows them.
func checkKernel(t testing.TB, v *View) {
	t.Helper()
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.checkKernelLocked(); err != nil {
		t.Fatal(err)
	}
}

func testSeed(t testing.TB) uint64 {
	seed := rand.Uint64()
	if s := os.Getenv("RINGLOG_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("RINGLOG_SEED: %v", err)
		}
	}
	t.Logf("seed %d (rerun with RINGLOG_SEED=%d)", seed, seed)
	return seed
}

// TestCrossCheck runs the same random splices, unmaps and stores on a
// mapped view and on a Copy view of the same file and compares them byte
// for byte, and the mapped view's page table with the kernel's mappings.
func TestCrossCheck(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		if b == Copy {
			t.Skip("copy is the reference")
		}
		seed := testSeed(t)
		rng := rand.New(rand.NewPCG(seed, 0))
		const filePages, viewPages = 32, 48
		f := makeFile(t, filePages)
		mv := openView(t, f, viewPages, b)
		cv := openView(t, f, viewPages, Copy)
		ops := 2000
		if testing.Short() {
			ops = 300
		}
		for op := 0; op < ops; op++ {
			switch k := rng.IntN(10); {
			case k < 6:
				n := 1 + rng.IntN(8)
				vp, fp := rng.IntN(viewPages-n+1), rng.IntN(filePages-n+1)
				mustMap(t, mv, vp, fp, n)
				mustMap(t, cv, vp, fp, n)
			case k < 7:
				n := 1 + rng.IntN(8)
				vp := rng.IntN(viewPages - n + 1)
				if err := mv.Unmap(vp*PageSize, n*PageSize); err != nil {
					t.Fatal(err)
				}
				if err := cv.Unmap(vp*PageSize, n*PageSize); err != nil {
					t.Fatal(err)
				}
			default:
				runs := mv.Runs()
				if len(runs) == 0 {
					continue
				}
				r := runs[rng.IntN(len(runs))]
				n := 1 + rng.IntN(min(r.Len, 300))
				off := r.ViewOff + rng.IntN(r.Len-n+1)
				data := make([]byte, n)
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				if _, err := mv.WriteAt(data, int64(off)); err != nil {
					t.Fatal(err)
				}
				// Copy: store, write that range back, reload every alias.
				if _, err := cv.WriteAt(data, int64(off)); err != nil {
					t.Fatal(err)
				}
				first, last := off/PageSize*PageSize, (off+n+PageSize-1)/PageSize*PageSize
				if err := cv.WriteBack(first, last-first); err != nil {
					t.Fatal(err)
				}
				if err := cv.Reload(0, viewPages*PageSize); err != nil {
					t.Fatal(err)
				}
			}
			compareViews(t, op, mv, cv)
			checkKernel(t, mv)
		}
	})
}

func compareViews(t *testing.T, op int, mv, cv *View) {
	t.Helper()
	mr, cr := mv.Runs(), cv.Runs()
	if fmt.Sprint(mr) != fmt.Sprint(cr) {
		t.Fatalf("op %d: runs differ: %v vs copy %v", op, mr, cr)
	}
	for _, r := range mr {
		a, _ := mv.Bytes(r.ViewOff, r.Len)
		c, _ := cv.Bytes(r.ViewOff, r.Len)
		if !bytes.Equal(a, c) {
			t.Fatalf("op %d: bytes differ in run %v", op, r)
		}
	}
}

// TestGCWithSlicesHeld keeps thousands of slices into views alive across
// collections: the collector must neither trip over pointers into mapped
// memory nor move or free what they show.
func TestGCWithSlicesHeld(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		f := makeFile(t, 64)
		v := openView(t, f, 128, b)
		mustMap(t, v, 0, 0, 64)
		mustMap(t, v, 64, 0, 64)
		type held struct {
			b   []byte
			off int64
		}
		rng := rand.New(rand.NewPCG(1, 2))
		var hs []*held
		for i := 0; i < 20000; i++ {
			off := rng.IntN(128*PageSize/8-4) * 8
			s, err := v.Bytes(off, 32)
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, &held{b: s, off: int64(off % (64 * PageSize))})
			if i%2000 == 0 {
				_ = make([]byte, 1<<20) // garbage
				runtime.GC()
			}
		}
		runtime.GC()
		for _, h := range hs {
			if got := binary.LittleEndian.Uint64(h.b); got != word(h.off) {
				t.Fatalf("slice at file offset %d reads %#x after GC", h.off, got)
			}
		}
	})
}

// TestConcurrentUse runs readers, a splicer and a writer-back at once; with
// -race on the Copy backend the detector sees the view's memory too.
func TestConcurrentUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		f := makeFile(t, 32)
		v := openView(t, f, 64, b)
		mustMap(t, v, 0, 0, 32) // readers' half, never re-spliced
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for r := 0; r < 3; r++ {
			wg.Go(func() {
				buf := make([]byte, 64)
				for i := 0; i < 2000; i++ {
					off := (i * 977 * 8) % (32*PageSize - 64)
					if _, err := v.ReadAt(buf, int64(off)); err != nil {
						errs <- err
						return
					}
					if got := binary.LittleEndian.Uint64(buf); got != word(int64(off)) {
						errs <- fmt.Errorf("read %#x at %d", got, off)
						return
					}
				}
			})
		}
		wg.Go(func() { // splicer on the other half
			for i := 0; i < 500; i++ {
				if err := v.Map(32*PageSize+(i%16)*PageSize, int64((i%32)*PageSize), PageSize); err != nil {
					errs <- err
					return
				}
				if i%50 == 0 {
					if err := v.Unmap(32*PageSize, 16*PageSize); err != nil {
						errs <- err
						return
					}
				}
			}
		})
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				if err := v.WriteBack(0, 32*PageSize); err != nil {
					errs <- err
					return
				}
				_ = v.Runs()
				_ = v.Mappings()
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		checkKernel(t, v)
	})
}

func TestPopulate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		f := makeFile(t, 16)
		v, err := New(f, 16*PageSize, &Options{Backend: b, Populate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		mustMap(t, v, 0, 0, 16)
		mustMap(t, v, 0, 8, 8) // over mapped pages: remap with populate
		expectPages(t, v, 0, 8, 8)
		expectPages(t, v, 8, 8, 8)
	})
}
