//go:build linux && !ringlog_portable

package pager

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// failure describes what a failed mapping call leaves behind.
type failure int

const (
	leavesHole    failure = iota // the kernel unmapped the range, then failed
	leavesIntact                 // the kernel failed before touching anything
	leavesForeign                // a hole that someone else mapped meanwhile
)

func (f failure) String() string { return [...]string{"hole", "intact", "foreign"}[f] }

// injectFailure makes the next call that maps file pages (mmap of the file
// or remap_file_pages) fail as f says. It returns the address of a foreign
// mapping, if it made one, and restores the hooks on cleanup.
func injectFailure(t *testing.T, f failure) *unsafe.Pointer {
	var foreign unsafe.Pointer
	fired := false
	act := func(addr unsafe.Pointer, n uintptr) error {
		fired = true
		if f == leavesIntact {
			return unix.EINVAL
		}
		if err := unix.MunmapPtr(addr, n); err != nil {
			t.Errorf("injecting a hole: %v", err)
		}
		if f == leavesForeign {
			p, err := unix.MmapPtr(-1, 0, addr, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE)
			if err != nil || p != addr {
				t.Errorf("injecting a foreign mapping: %v", err)
			}
			*(*uint64)(p) = 0xF0F0
			foreign = p
		}
		return unix.ENOMEM
	}
	realMmap, realRemap := sysMmap, sysRemap
	sysMmap = func(fd int, off int64, addr unsafe.Pointer, n uintptr, prot, flags int) (unsafe.Pointer, error) {
		if !fired && flags&unix.MAP_SHARED != 0 {
			return nil, act(addr, n)
		}
		return realMmap(fd, off, addr, n, prot, flags)
	}
	sysRemap = func(addr unsafe.Pointer, size int, pgoff int, nonblock bool) error {
		if !fired {
			return act(addr, uintptr(size))
		}
		return realRemap(addr, size, pgoff, nonblock)
	}
	t.Cleanup(func() { sysMmap, sysRemap = realMmap, realRemap })
	return &foreign
}

func TestFailedMappingCall(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		if b == Copy {
			t.Skip("copy makes no mapping calls")
		}
		for _, f := range []failure{leavesHole, leavesIntact, leavesForeign} {
			for _, wasMapped := range []bool{true, false} {
				name := f.String() + "/over-unmapped"
				if wasMapped {
					name = f.String() + "/over-mapped"
				}
				t.Run(name, func(t *testing.T) { testFailedMappingCall(t, b, f, wasMapped) })
			}
		}
	})
}

func testFailedMappingCall(t *testing.T, b Backend, f failure, wasMapped bool) {
	base := MappingsInUse()
	file := makeFile(t, 8)
	v, err := New(file, 8*PageSize, &Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	mustMap(t, v, 0, 0, 8)
	if !wasMapped {
		if err := v.Unmap(2*PageSize, 3*PageSize); err != nil {
			t.Fatal(err)
		}
	}
	before := v.Runs()
	foreign := injectFailure(t, f)
	err = v.Map(2*PageSize, int64(5*PageSize), 3*PageSize)
	if err == nil || !strings.Contains(err.Error(), file.Name()) || !strings.Contains(err.Error(), "view offset "+strconv.Itoa(2*PageSize)) {
		t.Fatalf("failed call returned %v", err)
	}
	switch f {
	case leavesHole:
		// Re-reserved: the pages are PROT_NONE and usable again.
		for p := 2; p < 5; p++ {
			if _, ok := v.FileOffset(p * PageSize); ok {
				t.Fatalf("view page %d still counted as mapped after a hole", p)
			}
		}
		checkKernel(t, v)
		mustMap(t, v, 2, 5, 3)
		expectPages(t, v, 2, 5, 3)
	case leavesIntact:
		if after := v.Runs(); !equalRuns(before, after) {
			t.Fatalf("intact failure changed the table: %v -> %v", before, after)
		}
		checkKernel(t, v)
		if wasMapped {
			expectPages(t, v, 0, 0, 8)
		}
		// Nothing was lost: the range maps again.
		mustMap(t, v, 2, 5, 3)
		expectPages(t, v, 2, 5, 3)
	case leavesForeign:
		if err := v.Map(2*PageSize, 0, PageSize); !errors.Is(err, ErrPoisoned) {
			t.Fatalf("mapping over a foreign page: %v", err)
		}
		if err := v.Unmap(0, 8*PageSize); !errors.Is(err, ErrPoisoned) {
			t.Fatalf("unmapping over a foreign page: %v", err)
		}
		if _, err := v.Bytes(2*PageSize, 1); !errors.Is(err, ErrNotMapped) {
			t.Fatalf("bytes of a foreign page: %v", err)
		}
		// The rest of the view still works.
		mustMap(t, v, 6, 0, 2)
		expectPages(t, v, 6, 0, 2)
		expectPages(t, v, 0, 0, 2)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if got := MappingsInUse(); got != base {
		t.Fatalf("%d mappings in use after Close, want %d", got, base)
	}
	if p := *foreign; p != nil {
		// Close must have left the foreign mapping alone.
		if got := *(*uint64)(p); got != 0xF0F0 {
			t.Fatalf("foreign mapping reads %#x after Close", got)
		}
		unix.MunmapPtr(p, uintptr(3*PageSize))
	}
}

func equalRuns(a, b []Run) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestKernelCountsMatch checks the model of merged mappings against the
// kernel on fragmenting and merging patterns.
func TestKernelCountsMatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b Backend) {
		if b == Copy {
			t.Skip("copy holds no kernel mappings")
		}
		f := makeFile(t, 16)
		v := openView(t, f, 32, b)
		steps := []struct{ vp, fp, n int }{
			{0, 0, 16}, {16, 0, 16}, // the file twice: 2 mappings
			{4, 9, 2},   // split the first copy
			{6, 6, 1},   // still in order after the split: merges right
			{4, 4, 2},   // back to identity: merges
			{31, 15, 1}, // same page again: no change
			{15, 0, 2},  // crosses the seam
			{15, 15, 1}, // restore the seam
			{16, 0, 1},
		}
		for _, s := range steps {
			mustMap(t, v, s.vp, s.fp, s.n)
			checkKernel(t, v)
		}
		if err := v.Unmap(8*PageSize, 16*PageSize); err != nil {
			t.Fatal(err)
		}
		checkKernel(t, v)
		if got := v.Mappings(); got != 3 {
			t.Fatalf("%d mappings, want 3 (file, hole, file)", got)
		}
	})
}
