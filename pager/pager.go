package pager

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ringlog/ringlog/internal/invariants"
	"github.com/ringlog/ringlog/internal/osfile"
)

// Alignment is the on-disk alignment of everything laid out for mapping:
// 64 KiB, the largest page size of the common kernels. Layouts aligned to it
// can be mapped on every platform ringlog supports.
const Alignment = 64 << 10

// PageSize is the mapping granularity of this machine, os.Getpagesize().
var PageSize = os.Getpagesize()

// Errors. Each is returned wrapped with the file and offset concerned; test
// with errors.Is.
var (
	ErrUnaligned     = errors.New("pager: offset or length not a multiple of the page size")
	ErrOutOfRange    = errors.New("pager: range outside the view")
	ErrBeyondEOF     = errors.New("pager: file range beyond the end of the file")
	ErrNotMapped     = errors.New("pager: range not mapped")
	ErrMappingBudget = errors.New("pager: mapping budget exhausted")
	ErrPoisoned      = errors.New("pager: range holds pages lost after a failed mapping call")
	ErrTruncated     = errors.New("pager: file is shorter than its mapping")
	ErrFault         = errors.New("pager: memory fault")
	ErrReadOnly      = errors.New("pager: view is read-only")
	ErrClosed        = errors.New("pager: view is closed")
	ErrUnsupported   = errors.New("pager: backend not supported here")
	ErrSyncFailed    = errors.New("pager: an earlier sync failed")
)

// Backend selects how a view puts file pages in memory. See the package doc.
type Backend uint8

// Backends.
const (
	Auto Backend = iota
	Remap
	Mmap
	Copy
)

var backendNames = [...]string{Auto: "auto", Remap: "remap", Mmap: "mmap", Copy: "copy"}

// String returns the backend's name as the Backend option spells it.
func (b Backend) String() string {
	if int(b) < len(backendNames) {
		return backendNames[b]
	}
	return fmt.Sprintf("Backend(%d)", uint8(b))
}

// ParseBackend returns the backend named s ("auto", "remap", "mmap",
// "copy").
func ParseBackend(s string) (Backend, error) {
	for i, n := range backendNames {
		if n == s {
			return Backend(i), nil
		}
	}
	return 0, fmt.Errorf("pager: unknown backend %q (want auto, remap, mmap or copy)", s)
}

// Options configure a view. The zero value is a writable view on the Auto
// backend.
type Options struct {
	// Backend picks the backend; Auto probes for the first that works.
	Backend Backend
	// ReadOnly maps pages readable only. It is required when the file was
	// opened read-only, and rules out Remap.
	ReadOnly bool
	// Populate faults pages in when they are mapped (MAP_POPULATE) instead
	// of on first touch.
	Populate bool
	// Logger, if set, receives an Info record when Auto falls back from
	// the backend it prefers (Remap, or Mmap for a read-only view), with
	// the reason. nil logs nothing.
	Logger *slog.Logger
}

// Page-table values other than file page numbers.
const (
	unmapped = -1 // PROT_NONE reservation (or, on Copy, not loaded)
	lost     = -2 // not provably ours after a failed call: never touched again
)

// ops is what a backend does; the View does the bookkeeping around it. All
// methods run with the view's lock held and, for mapping changes, update the
// page table themselves as each step succeeds.
type ops interface {
	mem() []byte
	mapPages(v *View, vp, fp, n int) error
	unmapPages(v *View, vp, n int) error
	writeBack(v *View, vp, n int) error
	reload(v *View, vp, n int) error
	release(v *View) error
}

// View is one reserved range of virtual memory over one file. See the
// package documentation.
type View struct {
	file     *os.File
	name     string
	size     int
	pageSize int
	backend  Backend
	readOnly bool
	populate bool
	ops      ops
	mem      []byte
	base     uintptr // address of mem when it lies outside the Go heap; 0 on Copy

	knownSize atomic.Int64 // the file's size at the last fstat

	mu struct {
		sync.RWMutex
		table   []int64 // file page at each view page, or unmapped / lost
		vmas    int     // kernel mappings this view holds (0 on Copy)
		closed  bool
		syncErr error
	}
}

// New creates a view of size bytes over f with nothing mapped yet. size
// must be a positive multiple of PageSize. The view does not take
// ownership of f: close the view before the file.
func New(f *os.File, size int, opts *Options) (*View, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Backend == Auto {
		o.Backend = DefaultBackend(o.ReadOnly)
		logFallback(o.Logger, f.Name(), o.ReadOnly, o.Backend)
	} else if o.Backend == Remap || o.Backend == Mmap {
		if err := Available(o.Backend); err != nil {
			return nil, fmt.Errorf("pager: view of %s: %w", f.Name(), err)
		}
	}
	return newView(f, size, o)
}

// newView creates a view on an explicit backend without consulting the
// probe (which itself creates views).
func newView(f *os.File, size int, o Options) (*View, error) {
	ps := PageSize
	if size <= 0 || size%ps != 0 {
		return nil, fmt.Errorf("pager: view of %s: size %d: %w", f.Name(), size, ErrUnaligned)
	}
	if err := checkAccess(f, o.ReadOnly); err != nil {
		return nil, err
	}
	if o.Backend == Remap && o.ReadOnly {
		return nil, fmt.Errorf("pager: view of %s: remap needs a writable file (remap_file_pages rejects read-only mappings): %w", f.Name(), ErrUnsupported)
	}
	v := &View{
		file:     f,
		name:     f.Name(),
		size:     size,
		pageSize: ps,
		backend:  o.Backend,
		readOnly: o.ReadOnly,
		populate: o.Populate,
	}
	v.mu.table = make([]int64, size/ps)
	for i := range v.mu.table {
		v.mu.table[i] = unmapped
	}
	var err error
	switch o.Backend {
	case Copy:
		v.ops = newCopyOps(size)
	case Mmap:
		v.ops, err = newMmapOps(v)
	case Remap:
		v.ops, err = newRemapOps(v)
	default:
		err = fmt.Errorf("pager: view of %s: backend %v: %w", f.Name(), o.Backend, ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	v.mem = v.ops.mem()
	return v, nil
}

// Backend reports the backend the view runs on (never Auto).
func (v *View) Backend() Backend { return v.backend }

// Size is the length of the view in bytes.
func (v *View) Size() int { return v.size }

// File is the file the view maps.
func (v *View) File() *os.File { return v.file }

// ReadOnly reports whether the view maps pages readable only.
func (v *View) ReadOnly() bool { return v.readOnly }

// Mappings is the number of kernel mappings (VMAs) the view holds now; 0 on
// the Copy backend.
func (v *View) Mappings() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.mu.vmas
}

// Run is a maximal range of view pages mapping consecutive file pages.
type Run struct {
	ViewOff int   // byte offset in the view
	FileOff int64 // byte offset in the file
	Len     int   // bytes
}

// Runs lists what is mapped where, in view order. Unmapped ranges are left
// out.
func (v *View) Runs() []Run {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var runs []Run
	t := v.mu.table
	for i := 0; i < len(t); {
		j := i + 1
		if t[i] >= 0 {
			for j < len(t) && t[j] == t[j-1]+1 {
				j++
			}
			runs = append(runs, Run{ViewOff: i * v.pageSize, FileOff: t[i] * int64(v.pageSize), Len: (j - i) * v.pageSize})
		}
		i = j
	}
	return runs
}

// FileOffset reports the file offset shown at view offset off, and false if
// that page is not mapped.
func (v *View) FileOffset(off int) (int64, bool) {
	if off < 0 || off >= v.size {
		return 0, false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	fp := v.mu.table[off/v.pageSize]
	if fp < 0 {
		return 0, false
	}
	return fp*int64(v.pageSize) + int64(off%v.pageSize), true
}

// Map puts the n bytes of the file at fileOff at view offset viewOff,
// replacing whatever was mapped there. All three must be multiples of
// PageSize, the view range must lie inside the view and the file range
// inside the file (preallocate first) as last seen: the file's size is read
// again only when the range goes past it, and by Check. Pages already mapped elsewhere in
// the view stay mapped there too.
func (v *View) Map(viewOff int, fileOff int64, n int) error {
	if err := v.checkRange("map", viewOff, n); err != nil {
		return err
	}
	if fileOff < 0 || fileOff%int64(v.pageSize) != 0 {
		return fmt.Errorf("pager: map %s: file offset %d: %w", v.name, fileOff, ErrUnaligned)
	}
	if n == 0 {
		return nil
	}
	// The size seen last is enough for ranges inside it (an fstat costs as
	// much as the splice itself); a file that shrinks later is caught by
	// Check or faults under the guard either way.
	if end := fileOff + int64(n); end > v.knownSize.Load() {
		fsize, err := v.fileSize()
		if err != nil {
			return err
		}
		if end > fsize {
			return fmt.Errorf("pager: map %s: file range [%d, %d) but the file has %d bytes: %w",
				v.name, fileOff, end, fsize, ErrBeyondEOF)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	vp, fp, np := viewOff/v.pageSize, int(fileOff/int64(v.pageSize)), n/v.pageSize
	if err := v.usableLocked("map", vp, np); err != nil {
		return err
	}
	return v.changeLocked("map", vp, np, int64(fp), func() error { return v.ops.mapPages(v, vp, fp, np) })
}

// Unmap returns n bytes of the view at viewOff to PROT_NONE (on Copy: marks
// them not loaded). Slices over them must no longer be used.
func (v *View) Unmap(viewOff, n int) error {
	if err := v.checkRange("unmap", viewOff, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	vp, np := viewOff/v.pageSize, n/v.pageSize
	if err := v.usableLocked("unmap", vp, np); err != nil {
		return err
	}
	return v.changeLocked("unmap", vp, np, unmapped, func() error { return v.ops.unmapPages(v, vp, np) })
}

// changeLocked runs a mapping change over view pages [vp, vp+n) that will
// set them to file pages fp, fp+1, ... (or to unmapped when fp is
// unmapped), within the process-wide mapping budget. The change may stop
// part way (a failed call); the count is taken again from what is there
// afterwards.
func (v *View) changeLocked(what string, vp, n int, fp int64, do func() error) error {
	if v.backend == Copy {
		return do()
	}
	lo, hi := max(vp-1, 0), min(vp+n+1, len(v.mu.table))
	before := vmaCount(v.mu.table[lo:hi], nil)
	planned := vmaCount(v.mu.table[lo:hi], func(i int) int64 {
		if i+lo < vp || i+lo >= vp+n {
			return v.mu.table[i+lo]
		}
		if fp < 0 {
			return fp
		}
		return fp + int64(i+lo-vp)
	})
	reserved := max(planned-before, 0)
	if err := budget.take(reserved); err != nil {
		return fmt.Errorf("pager: %s %s: view offset %d: %d more mappings would pass this process's limit of %d (vm.max_map_count %d); merge or unmap first: %w",
			what, v.name, vp*v.pageSize, planned-before, budget.limit(), maxMapCount(), ErrMappingBudget)
	}
	err := do()
	actual := vmaCount(v.mu.table[lo:hi], nil) - before
	v.mu.vmas += actual
	budget.adjust(actual - reserved)
	if invariants.Enabled {
		if cerr := v.checkKernelLocked(); cerr != nil {
			panic(cerr)
		}
	}
	return err
}

// checkRange validates a view range's alignment and bounds.
func (v *View) checkRange(what string, off, n int) error {
	if off < 0 || n < 0 || off%v.pageSize != 0 || n%v.pageSize != 0 {
		return fmt.Errorf("pager: %s %s: view offset %d length %d: %w", what, v.name, off, n, ErrUnaligned)
	}
	if off+n > v.size {
		return fmt.Errorf("pager: %s %s: view range [%d, %d) in a view of %d bytes: %w", what, v.name, off, off+n, v.size, ErrOutOfRange)
	}
	return nil
}

// usableLocked refuses operations on a closed view or over lost pages.
func (v *View) usableLocked(what string, vp, n int) error {
	if v.mu.closed {
		return fmt.Errorf("pager: %s %s: %w", what, v.name, ErrClosed)
	}
	for i, fp := range v.mu.table[vp : vp+n] {
		if fp == lost {
			return fmt.Errorf("pager: %s %s: view offset %d: %w", what, v.name, (vp+i)*v.pageSize, ErrPoisoned)
		}
	}
	return nil
}

// fileSize stats the file and remembers the size.
func (v *View) fileSize() (int64, error) {
	st, err := v.file.Stat()
	if err != nil {
		return 0, fmt.Errorf("pager: stat %s: %w", v.name, err)
	}
	v.knownSize.Store(st.Size())
	return st.Size(), nil
}

// mappedLocked checks that every page of [off, off+n) is mapped.
func (v *View) mappedLocked(what string, off, n int) error {
	if v.mu.closed {
		return fmt.Errorf("pager: %s %s: %w", what, v.name, ErrClosed)
	}
	if off < 0 || n < 0 || off+n > v.size {
		return fmt.Errorf("pager: %s %s: view range [%d, %d) in a view of %d bytes: %w", what, v.name, off, off+n, v.size, ErrOutOfRange)
	}
	if n == 0 {
		return nil
	}
	first, last := off/v.pageSize, (off+n-1)/v.pageSize
	for p := first; p <= last; p++ {
		if v.mu.table[p] < 0 {
			return fmt.Errorf("pager: %s %s: view offset %d: %w", what, v.name, p*v.pageSize, ErrNotMapped)
		}
	}
	return nil
}

// Bytes returns the n bytes of the view at off as a slice of the view
// itself (no copy). Every page under it must be mapped. The slice is valid
// until those pages are unmapped or re-spliced or the view is closed; see
// "Lifetimes of slices" in the package doc. On a read-only view the slice
// must not be written.
func (v *View) Bytes(off, n int) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.mappedLocked("bytes", off, n); err != nil {
		return nil, err
	}
	return v.mem[off : off+n : off+n], nil
}

// Memory returns the whole view as one slice without checking what is
// mapped, for layers that track their own mappings (a ring whose slots come
// and go). Touching a page that is not mapped faults: on the mapped
// backends it is PROT_NONE, so a stray access is caught at once rather than
// reading stale bytes. The same lifetime as Bytes applies, page by page.
func (v *View) Memory() []byte { return v.mem }

// ReadAt copies view bytes at off into p. It runs under the fault guard: a
// page that cannot be read (the file shrank under the mapping, an I/O
// error) gives a *FaultError instead of killing the process.
func (v *View) ReadAt(p []byte, off int64) (int, error) {
	return v.access("read", p, off, false)
}

// WriteAt stores p into the view at off, under the fault guard. On mapped
// backends the bytes are in the page cache at once; on Copy they reach the
// file on WriteBack.
func (v *View) WriteAt(p []byte, off int64) (int, error) {
	return v.access("write", p, off, true)
}

func (v *View) access(what string, p []byte, off int64, write bool) (int, error) {
	if write && v.readOnly {
		return 0, fmt.Errorf("pager: %s %s: %w", what, v.name, ErrReadOnly)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if off < 0 || off > int64(v.size) {
		return 0, fmt.Errorf("pager: %s %s: view offset %d: %w", what, v.name, off, ErrOutOfRange)
	}
	if err := v.mappedLocked(what, int(off), len(p)); err != nil {
		return 0, err
	}
	err := guard(func() {
		if write {
			copy(v.mem[off:], p)
		} else {
			copy(p, v.mem[off:])
		}
	}, v.faultLocked)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteBack makes the view's bytes in [off, off+n) the file's: on Copy it
// pwrites every mapped page in the range to its file page, in view order
// (so of two aliases of one file page the later wins); on the mapped
// backends the view is the page cache and there is nothing to do. It does
// not sync: call Sync for durability.
func (v *View) WriteBack(off, n int) error {
	return v.transfer("write back", off, n, v.ops.writeBack)
}

// Reload makes the file's bytes the view's in [off, off+n): on Copy it
// preads every mapped page again (picking up writes made to the file by
// other means); on the mapped backends it does nothing.
func (v *View) Reload(off, n int) error {
	return v.transfer("reload", off, n, v.ops.reload)
}

func (v *View) transfer(what string, off, n int, do func(v *View, vp, n int) error) error {
	if err := v.checkRange(what, off, n); err != nil {
		return err
	}
	if what == "write back" && v.readOnly {
		return fmt.Errorf("pager: %s %s: %w", what, v.name, ErrReadOnly)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.mu.closed {
		return fmt.Errorf("pager: %s %s: %w", what, v.name, ErrClosed)
	}
	return do(v, off/v.pageSize, n/v.pageSize)
}

// Sync flushes the file's dirty pages to stable storage with fdatasync (on
// Copy, only what WriteBack has written). A failed sync is sticky: Linux may
// mark the unwritten pages clean, so every later Sync of this view reports
// the first failure rather than claiming durability it cannot know.
func (v *View) Sync() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mu.closed {
		return fmt.Errorf("pager: sync %s: %w", v.name, ErrClosed)
	}
	if v.mu.syncErr != nil {
		return v.mu.syncErr
	}
	if err := fdatasync(v.file); err != nil {
		v.mu.syncErr = fmt.Errorf("pager: sync %s: %w (%w)", v.name, ErrSyncFailed, err)
		return v.mu.syncErr
	}
	return nil
}

// fdatasync is a variable so that tests can make syncs fail.
var fdatasync = osfile.Fdatasync

// Check verifies that the file still covers every mapped page. A file that
// shrank under its mapping faults on access; Check finds it first and
// returns ErrTruncated naming the file and sizes.
func (v *View) Check() error {
	fsize, err := v.fileSize()
	if err != nil {
		return err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	var need int64
	for _, fp := range v.mu.table {
		need = max(need, (fp+1)*int64(v.pageSize))
	}
	if fsize < need {
		return fmt.Errorf("pager: %s has %d bytes but %d are mapped (offset %d onward is gone): %w", v.name, fsize, need, fsize, ErrTruncated)
	}
	return nil
}

// Close unmaps everything and releases the reservation. Slices from Bytes
// must not be used afterwards. Close does not close the file.
func (v *View) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mu.closed {
		return fmt.Errorf("pager: close %s: %w", v.name, ErrClosed)
	}
	v.mu.closed = true
	err := v.ops.release(v)
	budget.adjust(-v.mu.vmas)
	v.mu.vmas = 0
	v.mem = nil
	return err
}

// setLocked records that view pages [vp, vp+n) now show file pages fp,
// fp+1, ... or, if fp is negative, that they are all fp (unmapped or lost).
func (v *View) setLocked(vp, n int, fp int64) {
	t := v.mu.table[vp : vp+n]
	for i := range t {
		if fp < 0 {
			t[i] = fp
		} else {
			t[i] = fp + int64(i)
		}
	}
}
