package main

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/ringlog/ringlog/pager"
)

// The pager workloads measure views over one data file on each pager
// backend. The systems are the backends: ringlog/remap (remap_file_pages),
// ringlog/mmap (one MAP_FIXED mapping per run) and ringlog/copy (heap
// memory filled with pread). The baseline is ringlog/copy, which is what a
// reader without mappings does.

var pagerSystems = []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy"}

func init() {
	for _, b := range []pager.Backend{pager.Remap, pager.Mmap, pager.Copy} {
		registerSystem(&system{
			name:      "ringlog/" + b.String(),
			available: func() error { return pager.Available(b) },
		})
	}
	registerWorkload(pagerSplice)
	registerWorkload(pagerReadCold)
	registerWorkload(pagerReadWarm)
}

// pagerBackend is the pager backend a ringlog/* system names.
func pagerBackend(system string) (pager.Backend, error) {
	name, ok := strings.CutPrefix(system, "ringlog/")
	if !ok {
		return 0, fmt.Errorf("%s is not a pager system", system)
	}
	return pager.ParseBackend(name)
}

// Splice geometry: the view and the file are both spliceSlots slots of
// spliceSlotPages pages.
const (
	spliceSlots     = 64
	spliceSlotPages = 16
)

func spliceSlotBytes() int      { return spliceSlotPages * pager.PageSize }
func spliceFileSize() int64     { return int64(spliceSlots * spliceSlotBytes()) }
func spliceOps(s Size) int      { return pick(s, 1000, 10_000, 10_000) }
func readFileSize(s Size) int64 { return pick[int64](s, 8<<20, 256<<20, 1<<30) }

// Splice operation k maps file slot spliceFileRun(k) at view slot
// spliceViewSlot(k). 13 and 7 are prime to the slot count, so the
// operations cycle through every slot and every file run.
func spliceFileRun(k int) int  { return k * 13 % spliceSlots }
func spliceViewSlot(k int) int { return k * 7 % spliceSlots }

// readWork is the work of one pass over a file of size bytes: one
// operation per page.
func readWork(size int64) work { return work{n: size / int64(pager.PageSize), bytes: size} }

func setupSpliceFile(e *env) error { return createPatternFile(e.dir, spliceFileSize()) }
func setupReadFile(e *env) error   { return createPatternFile(e.dir, readFileSize(e.size)) }

// pagerSplice measures splices: moving a run of file pages to another place
// in a live view with View.Map.
//
// The data file and the view are both 64 slots of 16 pages (4 MiB with 4 KiB
// pages). Untimed: open the file (its pages read once, so they are in the
// page cache), create the view and map the whole file at view offset 0.
// Timed: 10,000 operations (1,000 with the test size); operation k maps
// file slot (13k mod 64) at view slot (7k mod 64) with one Map call, each
// call timed on its own for p50/p99. With 64 slots the view never holds more
// than about 64 kernel mappings. Map does not touch the pages: on the mapped
// backends it changes mappings only (without MAP_POPULATE, so the pages
// fault in when first read, which is not timed), on ringlog/copy it preads
// the 16 pages into the view's heap memory.
//
// Verified after timing: the first and last 8 bytes of every slot are those
// of the file slot the last operation on it put there.
//
// n = operations, bytes = n * 16 pages: the bytes moved into the view.
var pagerSplice = &workload{
	name:     "pager-splice",
	doc:      "View.Map of 16-page file runs over slots of a live view; per-call latency",
	systems:  pagerSystems,
	baseline: "ringlog/copy",
	setup:    setupSpliceFile,
	run:      runSplice,
}

func runSplice(r *run) (_ work, err error) {
	backend, err := pagerBackend(r.system)
	if err != nil {
		return work{}, err
	}
	f, err := openPatternFile(r.dir, spliceFileSize())
	if err != nil {
		return work{}, err
	}
	defer f.Close()
	slot, size := spliceSlotBytes(), int(spliceFileSize())
	v, err := pager.New(f, size, &pager.Options{Backend: backend})
	if err != nil {
		return work{}, err
	}
	defer closeView(v, &err)
	if err := v.Map(0, 0, size); err != nil {
		return work{}, err
	}

	ops := spliceOps(r.size)
	r.expectOps(ops)
	r.startTimer()
	for k := range ops {
		viewOff, fileOff := spliceViewSlot(k)*slot, int64(spliceFileRun(k)*slot)
		t0 := time.Now()
		err := v.Map(viewOff, fileOff, slot)
		r.recordOp(time.Since(t0))
		if err != nil {
			return work{}, fmt.Errorf("splice %d: %w", k, err)
		}
	}
	r.stopTimer()

	// What each slot must show: the file slot of the last operation on it,
	// or its own from the initial identity mapping.
	want := make([]int, spliceSlots)
	for s := range want {
		want[s] = s
	}
	for k := range ops {
		want[spliceViewSlot(k)] = spliceFileRun(k)
	}
	var bad error
	if err := pager.Guard(func() { bad = checkSlots(v, want) }); err != nil {
		return work{}, fmt.Errorf("verifying: %w", err)
	}
	if bad != nil {
		return work{}, bad
	}
	return work{n: int64(ops), bytes: int64(ops) * int64(slot)}, nil
}

// checkSlots compares the first and last words of each view slot s with
// those of file slot want[s].
func checkSlots(v *pager.View, want []int) error {
	slot := spliceSlotBytes()
	for s, fs := range want {
		b, err := v.Bytes(s*slot, slot)
		if err != nil {
			return fmt.Errorf("verifying slot %d: %w", s, err)
		}
		base := int64(fs) * int64(slot)
		first, last := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[slot-8:])
		if first != patternWord(base) || last != patternWord(base+int64(slot)-8) {
			return fmt.Errorf("verification failed: view slot %d shows words %#x...%#x, want file slot %d (%#x...%#x)",
				s, first, last, fs, patternWord(base), patternWord(base+int64(slot)-8))
		}
	}
	return nil
}

// pagerReadCold measures reading a file through a fresh view: the cost of
// creating the view and of the first touch of every page (page faults on
// the mapped backends, pread into newly allocated heap memory on
// ringlog/copy).
//
// The file is 256 MiB with -quick, 1 GiB in the full run (8 MiB with the
// test size). Untimed: open it and read it once with 4 MiB preads, so the
// page cache is warm. Timed: pager.New, one Map of the whole file (on
// ringlog/copy, that is the pread into the view's heap buffer), Bytes, and
// one pass over every byte folding all 8-byte words with XOR (eight
// independent accumulators over 64-byte blocks), under pager.Guard. The
// view is closed after the timed region. No per-operation latency (p50/p99
// are 0). The JSON row splits the timed region into new_ms (pager.New),
// map_ms (Map; on ringlog/copy the pread, which is also the first touch of
// the newly allocated heap buffer) and read_ms (the pass; on the mapped
// backends it takes the page faults).
//
// Verified after timing, the same way on every system: the XOR equals the
// XOR of the known file content, and the first and last words of every page
// are those of the file page that belongs there (the XOR alone would not
// notice pages in the wrong order).
//
// n = pages read (ops/s is pages per second), bytes = file size.
var pagerReadCold = &workload{
	name:     "pager-read-cold",
	doc:      "create a view, map the whole file, read every byte once (page cache warm)",
	systems:  pagerSystems,
	baseline: "ringlog/copy",
	setup:    setupReadFile,
	run:      runReadCold,
}

func runReadCold(r *run) (_ work, err error) {
	backend, err := pagerBackend(r.system)
	if err != nil {
		return work{}, err
	}
	size := readFileSize(r.size)
	f, err := openPatternFile(r.dir, size)
	if err != nil {
		return work{}, err
	}
	defer f.Close()
	want := patternXOR(size)

	r.startTimer()
	t0 := time.Now()
	v, err := pager.New(f, int(size), &pager.Options{Backend: backend})
	if err != nil {
		return work{}, err
	}
	defer closeView(v, &err)
	t1 := time.Now()
	if err := v.Map(0, 0, int(size)); err != nil {
		return work{}, err
	}
	t2 := time.Now()
	b, err := v.Bytes(0, int(size))
	if err != nil {
		return work{}, err
	}
	got, err := guardedXOR(b)
	if err != nil {
		return work{}, err
	}
	t3 := time.Now()
	r.stopTimer()
	r.setExtra("new_ms", ms(t1.Sub(t0)))
	r.setExtra("map_ms", ms(t2.Sub(t1)))
	r.setExtra("read_ms", ms(t3.Sub(t2)))

	if err := verifyRead(b, got, want); err != nil {
		return work{}, err
	}
	return readWork(size), nil
}

// pagerReadWarm measures reading through a view whose pages are all
// faulted in already: the steady state of a long-lived mapping.
//
// Same file as pager-read-cold. Untimed: open and read the file (page cache
// warm), create the view, map the whole file and make one verified pass
// over it. Timed: a second pass over the same bytes, folding all 8-byte
// words with XOR as in pager-read-cold, under pager.Guard. No per-operation
// latency (p50/p99 are 0).
//
// Verified after timing as in pager-read-cold.
//
// n = pages read (ops/s is pages per second), bytes = file size.
var pagerReadWarm = &workload{
	name:     "pager-read-warm",
	doc:      "second pass over a view whose pages are all faulted in already",
	systems:  pagerSystems,
	baseline: "ringlog/copy",
	setup:    setupReadFile,
	run:      runReadWarm,
}

func runReadWarm(r *run) (_ work, err error) {
	backend, err := pagerBackend(r.system)
	if err != nil {
		return work{}, err
	}
	size := readFileSize(r.size)
	f, err := openPatternFile(r.dir, size)
	if err != nil {
		return work{}, err
	}
	defer f.Close()
	want := patternXOR(size)

	v, err := pager.New(f, int(size), &pager.Options{Backend: backend})
	if err != nil {
		return work{}, err
	}
	defer closeView(v, &err)
	if err := v.Map(0, 0, int(size)); err != nil {
		return work{}, err
	}
	b, err := v.Bytes(0, int(size))
	if err != nil {
		return work{}, err
	}
	got, err := guardedXOR(b)
	if err != nil {
		return work{}, err
	}
	if err := verifyRead(b, got, want); err != nil {
		return work{}, fmt.Errorf("first (untimed) pass: %w", err)
	}

	r.startTimer()
	got, err = guardedXOR(b)
	if err != nil {
		return work{}, err
	}
	r.stopTimer()

	if err := verifyRead(b, got, want); err != nil {
		return work{}, err
	}
	return readWork(size), nil
}

// guardedXOR is xorWords(b) with memory faults returned as errors.
func guardedXOR(b []byte) (x uint64, err error) {
	err = pager.Guard(func() { x = xorWords(b) })
	return x, err
}

// verifyRead checks a pass over b, the view of a data file from offset 0:
// got must be the XOR of the file's words, and every page must start and
// end with the words of the file page at the same offset.
func verifyRead(b []byte, got, want uint64) error {
	if got != want {
		return fmt.Errorf("verification failed: XOR of the %d bytes read is %#x, the file's is %#x", len(b), got, want)
	}
	var bad error
	err := pager.Guard(func() {
		ps := pager.PageSize
		for off := 0; off+ps <= len(b); off += ps {
			first, last := binary.LittleEndian.Uint64(b[off:]), binary.LittleEndian.Uint64(b[off+ps-8:])
			if first != patternWord(int64(off)) || last != patternWord(int64(off+ps-8)) {
				bad = fmt.Errorf("verification failed: the page at view offset %d does not hold file offset %d", off, off)
				return
			}
		}
	})
	if err != nil {
		return fmt.Errorf("verifying: %w", err)
	}
	return bad
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// closeView closes v, reporting its error through *err unless there is
// one already.
func closeView(v *pager.View, err *error) {
	if cerr := v.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
