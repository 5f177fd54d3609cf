package ring

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringlog/ringlog/internal/atomicmem"
	"github.com/ringlog/ringlog/internal/futex"
	"github.com/ringlog/ringlog/internal/notify"
	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
)

// maxCapacity bounds the data area: the view maps it twice, and positions
// must stay far from overflowing.
const maxCapacity = 1 << 40

// maxPosition bounds positions read from a file, so arithmetic on them
// never wraps.
const maxPosition = 1 << 62

// Errors. Each is returned wrapped with the file (and offset where there is
// one); test with errors.Is.
var (
	ErrFull          = errors.New("ring: not enough free space")
	ErrTooLarge      = errors.New("ring: reservation larger than the capacity")
	ErrReserved      = errors.New("ring: a reservation is already outstanding")
	ErrNotReserved   = errors.New("ring: no reservation outstanding")
	ErrOverrun       = errors.New("ring: consumer detached: the producer overwrote bytes it had not released")
	ErrCorrupt       = errors.New("ring: corrupt ring file")
	ErrLocked        = errors.New("ring: another producer has the ring open")
	ErrReadOnly      = errors.New("ring: ring opened read-only")
	ErrClosed        = errors.New("ring: ring is closed")
	ErrRange         = errors.New("ring: position outside the retained range")
	ErrNoSlots       = errors.New("ring: no free consumer slot")
	ErrConsumerBusy  = errors.New("ring: consumer is attached elsewhere")
	ErrNoConsumer    = errors.New("ring: no such consumer")
	ErrSyncFailed    = errors.New("ring: an earlier sync failed")
	ErrUnsupported   = errors.New("ring: not supported with this backend")
	ErrConcurrentUse = errors.New("ring: handle used from two goroutines at once")
	errBadOptionsCap = errors.New("ring: capacity must be a positive multiple of 64 KiB")
	errBadOptionsSeg = errors.New("ring: segment size must be a multiple of 64 KiB, at most 1 GiB, dividing the capacity at least twice")
)

// Options configure Create and Open. The zero value opens an existing ring
// for producing, on the Auto backend.
type Options struct {
	// Capacity is the size of the data area in bytes, a positive multiple
	// of 64 KiB (Create only; Open reads it from the file).
	Capacity int64
	// Backend picks the pager backend for the data area.
	Backend pager.Backend
	// ReadOnly opens the ring to consume it from another process: the data
	// area is mapped read-only and no producer lock is taken. Consumers
	// and pins still write their own slots, so the file should be
	// writable. One that is not (a read-only mount, its mode) is read as
	// the disk holds it: up to the header's head, with consumers and pins
	// private to the handle (Consumer.Sync fails with pager.ErrReadOnly).
	ReadOnly bool
	// HeadUnknown says the layer above finds where the data really ends
	// (the header's head is only what the last Sync recorded) and calls
	// SetHead before producing. Consumer positions past the header's head
	// are then checked against the head SetHead sets, not cut back at
	// open. The wal opens its ring this way.
	HeadUnknown bool
	// Perm is the mode of a created file; 0 means 0600.
	Perm os.FileMode
	// UserData is stored in the header on Create (at most 1 KiB); the
	// layer above keeps its own small durable state there.
	UserData []byte
	// Layout picks the bounded or the growing layout (Create only). In the
	// growing layout Capacity is the most the ring may retain (default
	// 4 GiB; it is reserved address space, and the page table of the view
	// costs 8 bytes of memory per 4 KiB of it) and SegmentSize (default
	// 64 MiB, a multiple of 64 KiB) the unit the file grows by and the
	// longest span one slice can hold.
	Layout      Layout
	SegmentSize int64
	// Logger, if set, receives what Open repaired or fell back from (see
	// OpenInfo): Warn for an invalid header copy or a repaired consumer
	// slot, Info for a backend fallback. nil logs nothing.
	Logger *slog.Logger

	fileReadOnly bool // Open could open the file for reading only
}

// Producer states (Ring.prod). A producer call claims the state, so Close
// can wait for calls in progress and refuse while a reservation is out.
const (
	prodIdle     int32 = 0
	prodBusy     int32 = 1 // inside Reserve, Write, SetHead, Rewrite
	prodReserved int32 = 2 // a reservation is outstanding
	prodClosed   int32 = 3
)

// Ring is a durable byte ring over one file. See the package doc.
type Ring struct {
	f        *os.File
	name     string
	capacity uint64
	mask     uint64 // capacity-1 when the capacity is a power of two
	readOnly bool
	token    uint64 // this handle: pid<<32 | random, owner of its slots
	ctl      *pager.View
	ctlMem   []byte
	data     *pager.View
	mem      []byte
	mirror   bool      // data on the Copy backend: wrapped bytes are copied by hand
	span     uint64    // the longest span one slice holds: C, or the segment size
	seg      *segments // growing layout, nil for bounded
	info     OpenInfo
	// hdrHead is the head the header recorded (read-only handles: at open,
	// and again when the producer they followed closed); seenWriter is
	// that producer's token.
	hdrHead, seenWriter atomic.Uint64

	// Words in the shared live page.
	liveHead, liveSynced, regGen, liveLimit, liveWriter, regLock, segGen *atomic.Uint64
	dataSeq, liveWaiters                                                 *atomic.Uint32 // cross-process wakeups (futex)
	deadWriter                                                           uint64         // a writer token found dead at open
	seenSegGen                                                           atomic.Uint64

	// headp and syncedp point at the committed and synced positions: Go
	// heap words for the producer (and after Close), the live words for a
	// read-only handle. The producer copies them to the live words, which
	// are in a file of their own (path + ".live"): a store to a shared
	// page of the ring file would make every fdatasync write that page
	// too (measured here: syncs about 3x slower).
	headp, syncedp atomic.Pointer[atomic.Uint64]
	_              [64]byte // keep the head, written on every commit, on a line of its own
	head           atomic.Uint64
	_              [56]byte
	synced         atomic.Uint64
	liveFile       *os.File
	live           *pager.View
	liveMem        []byte

	prod     atomic.Int32
	resLen   int    // length of the outstanding reservation
	pinSeq   uint64 // names slot pins (under mu)
	_        [64]byte
	released atomic.Uint64 // bumped by releases: an edge the race detector sees
	_        [56]byte
	limit    atomic.Uint64 // cached: head may grow to this without a rescan
	seenGen  atomic.Uint64 // registration generation the cached limit saw
	closed   atomic.Bool

	dataWaiters  atomic.Int32 // consumers of this process waiting for data
	spaceWaiting atomic.Bool  // the producer waits for space
	dataReady    notify.Notifier
	spaceReady   notify.Notifier

	mu struct {
		sync.Mutex
		hdr       header
		closed    bool
		syncErr   error
		dirtyFrom uint64 // Copy: first committed byte not yet written back
		pins      map[*Pin]struct{}
		attached  map[*Consumer]struct{}
	}
}

// OpenInfo says what Open found.
type OpenInfo struct {
	Backend     pager.Backend // backend of the data area
	HeaderCopy  int64         // offset of the header copy in use
	HeaderError error         // why the other copy was not used, if it was invalid
	Reset       []string      // consumer slots repaired on open, and why
}

// Create makes a new ring file at path and opens it for producing. The data
// area is written with zeroes (not only allocated), so later overwrites
// plus fdatasync need no extent conversion. The file is built under a
// temporary name and linked into place only if nothing exists at path, so
// a crash never leaves a half-made ring there and Create never replaces an
// existing file.
func Create(path string, opts *Options) (*Ring, error) {
	o := optionsOf(opts)
	var segUnits uint32
	if o.Layout == Growing {
		if o.Capacity == 0 {
			o.Capacity = defaultGrowingCap
		}
		if o.SegmentSize == 0 {
			o.SegmentSize = min(defaultSegmentSize, o.Capacity/2)
		}
		S := o.SegmentSize
		if S <= 0 || S%layoutAlign != 0 || S > maxSegmentSize || o.Capacity%S != 0 || o.Capacity/S < 2 {
			return nil, fmt.Errorf("ring: create %s: segments of %d bytes for a capacity of %d: %w", path, S, o.Capacity, errBadOptionsSeg)
		}
		segUnits = uint32(S / layoutAlign)
	}
	if o.Capacity <= 0 || o.Capacity%layoutAlign != 0 || o.Capacity > maxCapacity {
		return nil, fmt.Errorf("ring: create %s: capacity %d: %w", path, o.Capacity, errBadOptionsCap)
	}
	if len(o.UserData) > maxUserData {
		return nil, fmt.Errorf("ring: create %s: %d bytes of user data, at most %d", path, len(o.UserData), maxUserData)
	}
	if o.ReadOnly {
		return nil, fmt.Errorf("ring: create %s: %w", path, ErrReadOnly)
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, os.ErrExist)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".creating-*")
	if err != nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	fail := func(err error) (*Ring, error) {
		f.Close()
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	size := int64(dataOff) + o.Capacity
	if segUnits != 0 {
		size = dataOff // segments are added as they are needed
	}
	if err := osfile.Preallocate(f, size); err != nil {
		return fail(err)
	}
	if err := osfile.WriteZeroes(f, 0, size); err != nil {
		return fail(err)
	}
	for seq := uint64(0); seq < 2; seq++ {
		h := header{seq: seq, capacity: uint64(o.Capacity), segUnits: segUnits, userData: o.UserData}
		if _, err := f.WriteAt(h.encode(), headerOffset(seq)); err != nil {
			return fail(err)
		}
	}
	if err := osfile.Fdatasync(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	// A hard link fails if path exists: unlike rename, it never replaces
	// a ring someone else created (and may have open) meanwhile.
	if err := os.Link(tmp, path); err != nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	if err := os.Remove(tmp); err != nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	if err := osfile.SyncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	return Open(path, opts)
}

func optionsOf(opts *Options) Options {
	if opts == nil {
		return Options{}
	}
	return *opts
}

func headerOffset(seq uint64) int64 {
	if seq%2 == 0 {
		return headerA
	}
	return headerB
}

// Open opens an existing ring. Without ReadOnly it takes the producer lock:
// a second producer, in this process or another, gets ErrLocked.
func Open(path string, opts *Options) (*Ring, error) {
	o := optionsOf(opts)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil && o.ReadOnly && (errors.Is(err, syscall.EROFS) || errors.Is(err, os.ErrPermission)) {
		f, err = os.OpenFile(path, os.O_RDONLY, 0)
		o.fileReadOnly = true
	}
	if err != nil {
		return nil, fmt.Errorf("ring: open %s: %w", path, err)
	}
	r, err := open(f, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func newToken() uint64 {
	var b [4]byte
	rand.Read(b[:])
	nonce := binary.LittleEndian.Uint32(b[:]) | 1 // never 0
	return uint64(os.Getpid())<<32 | uint64(nonce)
}

// tokenPID is the process a token belongs to.
func tokenPID(t uint64) int { return int(t >> 32) }

func open(f *os.File, o Options) (*Ring, error) {
	name := f.Name()
	if !o.ReadOnly {
		if err := osfile.TryLock(f); err != nil {
			if errors.Is(err, osfile.ErrLocked) {
				return nil, fmt.Errorf("ring: open %s: %w", name, ErrLocked)
			}
			return nil, fmt.Errorf("ring: open %s: %w", name, err)
		}
	}
	h, info, err := readHeader(f)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ring: open %s: %w", name, err)
	}
	end := int64(dataOff) + int64(h.capacity)
	if h.segUnits != 0 {
		end = dataOff
	}
	if st.Size() < end {
		return nil, fmt.Errorf("ring: open %s: the file has %d bytes but its data area ends at offset %d: %w", name, st.Size(), end, ErrCorrupt)
	}
	r := &Ring{f: f, name: name, capacity: h.capacity, readOnly: o.ReadOnly, info: info, token: newToken(), span: h.capacity}
	r.hdrHead.Store(h.head)
	if h.segUnits != 0 {
		r.seg = newSegments(uint64(h.segUnits)*layoutAlign, h.capacity)
		r.span = r.seg.size
	}
	r.mu.hdr = *h
	r.mu.pins = map[*Pin]struct{}{}
	r.mu.attached = map[*Consumer]struct{}{}
	if h.capacity&(h.capacity-1) == 0 {
		r.mask = h.capacity - 1
	}
	if err := r.mapViews(o); err != nil {
		r.closeViews()
		return nil, err
	}
	r.bindLive()
	defer r.logOpen(o.Logger)
	if o.ReadOnly {
		r.headp.Store(r.liveHead)
		r.syncedp.Store(r.liveSynced)
		// A writer token whose process is gone (a crash, or a power loss
		// that left the live page as it was) is not followed: its live
		// head may point past data that never reached the disk.
		if w := r.liveWriter.Load(); w != 0 && !osfile.ProcessAlive(tokenPID(w)) {
			r.deadWriter = w
		} else if w != 0 {
			r.seenWriter.Store(w)
		}
		return r, nil
	}
	r.headp.Store(&r.head)
	r.syncedp.Store(&r.synced)
	r.head.Store(h.head)
	r.synced.Store(h.head)
	r.liveHead.Store(h.head)
	r.liveSynced.Store(h.head)
	r.liveLimit.Store(0)
	// A waiter that died waiting left the count up: start from zero (a
	// live waiter counts itself again within its wait timeout, and its
	// decrement never goes below zero).
	r.liveWaiters.Store(0)
	r.mu.dirtyFrom = h.head
	r.repairSlots(o.HeadUnknown)
	r.liveWriter.Store(r.token)
	return r, nil
}

// readHeader reads both header copies and picks the newer valid one.
func readHeader(f *os.File) (*header, OpenInfo, error) {
	var hs [2]*header
	var errs [2]error
	for i, off := range []int64{headerA, headerB} {
		b := make([]byte, headerCopySize)
		if _, err := f.ReadAt(b, off); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			errs[i] = fmt.Errorf("header copy at offset %d: %w", off, err)
			continue
		}
		if hs[i], errs[i] = decodeHeader(b); errs[i] != nil {
			errs[i] = fmt.Errorf("header copy at offset %d: %w", off, errs[i])
		}
	}
	var info OpenInfo
	switch {
	case hs[0] == nil && hs[1] == nil:
		return nil, info, fmt.Errorf("ring: open %s: both header copies are invalid: %v; %v: %w", f.Name(), errs[0], errs[1], ErrCorrupt)
	case hs[0] != nil && hs[1] != nil && hs[0].capacity != hs[1].capacity:
		return nil, info, fmt.Errorf("ring: open %s: header copies disagree on the capacity (%d at offset %d, %d at offset %d): %w",
			f.Name(), hs[0].capacity, headerA, hs[1].capacity, headerB, ErrCorrupt)
	}
	pick := 0
	if hs[0] == nil || (hs[1] != nil && hs[1].seq > hs[0].seq) {
		pick = 1
	}
	info.HeaderCopy = []int64{headerA, headerB}[pick]
	info.HeaderError = errs[1-pick]
	return hs[pick], info, nil
}

// mapViews maps the header region and the data area (twice).
func (r *Ring) mapViews(o Options) error {
	var err error
	// The control region must be shared memory so other processes see the
	// live words and slots: mapped whenever the platform can.
	ctlBackend := pager.Mmap
	if o.fileReadOnly {
		// What this handle writes there can reach neither the file nor
		// another process: private memory, and no live words (zero: no
		// producer, so the head is the header's).
		if r.ctl, err = pager.New(r.f, dataOff, &pager.Options{Backend: pager.Copy, ReadOnly: true}); err != nil {
			return fmt.Errorf("ring: open %s: %w", r.name, err)
		}
		if err := r.ctl.Map(0, 0, dataOff); err != nil {
			return fmt.Errorf("ring: open %s: %w", r.name, err)
		}
		r.ctlMem, _ = r.ctl.Bytes(0, dataOff)
		r.liveMem = make([]byte, max(liveFileSize, pager.PageSize))
		return r.mapData(o)
	}
	if err := pager.Available(pager.Mmap); err != nil {
		if o.ReadOnly {
			return fmt.Errorf("ring: open %s: consuming from another process needs the header region in shared memory, which this platform or build cannot map (%v): %w", r.name, err, ErrUnsupported)
		}
		ctlBackend = pager.Copy
		logCopyControl(o.Logger, r.name, err)
	}
	if r.ctl, err = pager.New(r.f, dataOff, &pager.Options{Backend: ctlBackend}); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	if err := r.ctl.Map(0, 0, dataOff); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	r.ctlMem, _ = r.ctl.Bytes(0, dataOff)
	// The live words: a small file beside the ring, shared by every
	// process that opens it, never synced.
	liveSize := max(liveFileSize, pager.PageSize)
	if r.liveFile, err = os.OpenFile(r.name+liveSuffix, os.O_RDWR|os.O_CREATE, o.livePerm()); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	if st, err := r.liveFile.Stat(); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	} else if st.Size() < int64(liveSize) {
		if err := r.liveFile.Truncate(int64(liveSize)); err != nil {
			return fmt.Errorf("ring: open %s: %w", r.name, err)
		}
	}
	if r.live, err = pager.New(r.liveFile, liveSize, &pager.Options{Backend: ctlBackend}); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	if err := r.live.Map(0, 0, liveSize); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	r.liveMem, _ = r.live.Bytes(0, liveSize)
	return r.mapData(o)
}

// mapData maps the data area (twice, bounded) or its segments (growing).
func (r *Ring) mapData(o Options) error {
	C := int(r.capacity)
	var err error
	view := C + int(r.span)
	if r.data, err = pager.New(r.f, view, &pager.Options{Backend: o.Backend, ReadOnly: o.ReadOnly, Logger: o.Logger}); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	r.mirror = r.data.Backend() == pager.Copy
	r.info.Backend = r.data.Backend()
	if r.seg == nil {
		for _, at := range []int{0, C} {
			if err := r.data.Map(at, dataOff, C); err != nil {
				return fmt.Errorf("ring: open %s: %w", r.name, err)
			}
		}
		r.mem, _ = r.data.Bytes(0, view)
		return nil
	}
	// Growing: the slots show the segments their headers name; slots
	// without one stay unmapped (PROT_NONE) until the producer needs them.
	r.mem = r.data.Memory()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.loadSegmentsLocked(); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	return nil
}

func (r *Ring) bindLive() {
	u64 := func(off int) *atomic.Uint64 { return atomicmem.Uint64(r.liveMem, off) }
	r.liveHead, r.liveSynced, r.regGen = u64(liveHead), u64(liveSynced), u64(liveRegGen)
	r.liveLimit, r.liveWriter, r.regLock = u64(liveLimit), u64(liveWriter), u64(liveRegLock)
	r.segGen = u64(liveSegGen)
	r.dataSeq = atomicmem.Uint32(r.liveMem, liveDataSeq)
	r.liveWaiters = atomicmem.Uint32(r.liveMem, liveWaiters)
}

func (r *Ring) closeViews() {
	if r.data != nil {
		r.data.Close()
	}
	if r.ctl != nil {
		r.ctl.Close()
	}
	if r.live != nil {
		r.live.Close()
	}
	if r.liveFile != nil {
		r.liveFile.Close()
	}
}

// livePerm is the mode of the live file: that of the ring.
func (o Options) livePerm() os.FileMode {
	if o.Perm != 0 {
		return o.Perm
	}
	return 0o600
}

// Capacity is C, the size of the data area in bytes.
func (r *Ring) Capacity() int64 { return int64(r.capacity) }

// Name is the ring's file name.
func (r *Ring) Name() string { return r.name }

// Info reports what Open found and chose.
func (r *Ring) Info() OpenInfo { return r.info }

// Head is the committed position: bytes before it are visible to consumers.
// On a read-only ring it is the producer's latest commit while a producer
// has the ring open, and the head the header recorded otherwise.
func (r *Ring) Head() uint64 {
	if r.readOnly {
		w := r.liveWriter.Load()
		if w != 0 && w != r.deadWriter {
			if r.seenWriter.Load() != w {
				r.seenWriter.Store(w)
			}
			return r.headp.Load().Load()
		}
		if r.seenWriter.Load() != 0 && r.seenWriter.Swap(0) != 0 {
			// The producer this handle followed closed: its header now
			// says where it ended (a pread, once per producer).
			if h, _, err := readHeader(r.f); err == nil {
				r.hdrHead.Store(h.head)
			}
		}
		return r.hdrHead.Load()
	}
	return r.headp.Load().Load()
}

// Synced is the position up to which committed bytes are durable.
func (r *Ring) Synced() uint64 { return r.syncedp.Load().Load() }

// Tail is the oldest position still retained: the slowest consumer that
// is not lossy, or the oldest pin. Bytes before it may be overwritten.
func (r *Ring) Tail() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return r.Head()
	}
	return r.tailLocked(r.Head())
}

// ReloadHeader reads the header again (a read-only handle: the producer in
// another process may have written a newer one since Open), so UserData
// and, with no producer live, Head see its latest state.
func (r *Ring) ReloadHeader() error {
	h, _, err := readHeader(r.f)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.seq >= r.mu.hdr.seq {
		r.mu.hdr = *h
		if r.readOnly {
			r.hdrHead.Store(h.head)
		}
	}
	return nil
}

// UserData returns the user data stored in the header.
func (r *Ring) UserData() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.mu.hdr.userData...)
}

// SetUserData replaces the user data; it becomes durable with the next
// Sync (or Close).
func (r *Ring) SetUserData(b []byte) error {
	if len(b) > maxUserData {
		return fmt.Errorf("ring: %s: %d bytes of user data, at most %d", r.name, len(b), maxUserData)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.hdr.userData = append([]byte(nil), b...)
	return nil
}

// phys maps a position to its offset in the first copy of the data area.
func (r *Ring) phys(pos uint64) int {
	if r.mask != 0 {
		return int(pos & r.mask)
	}
	return int(pos % r.capacity)
}

// FileOffset is the offset in the file of the byte at position pos, or -1
// if (growing layout) no segment holds it.
func (r *Ring) FileOffset(pos uint64) int64 {
	off := int64(-1)
	r.fileChunks(pos, 1, func(at int64, _, _ int) error { off = at; return nil })
	return off
}

// Span is the longest run of bytes one slice can hold: the capacity in the
// bounded layout, the segment size in the growing one.
func (r *Ring) Span() int { return int(r.span) }

// Layout reports the ring's layout.
func (r *Ring) Layout() Layout {
	if r.seg != nil {
		return Growing
	}
	return Bounded
}

// SyncData makes every committed byte the ring retains (from Tail to Head)
// durable with one fdatasync, without
// recording the head in the header. It is for layers that find the end of
// their data themselves on recovery (the wal does, by checksums); Sync also
// records it.
func (r *Ring) SyncData() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.syncDataLocked()
	return err
}

func (r *Ring) syncDataLocked() (uint64, error) {
	if r.mu.closed {
		return 0, fmt.Errorf("ring: sync %s: %w", r.name, ErrClosed)
	}
	if r.readOnly {
		return 0, fmt.Errorf("ring: sync %s: %w", r.name, ErrReadOnly)
	}
	if r.mu.syncErr != nil {
		return 0, r.mu.syncErr
	}
	head := r.head.Load()
	if err := r.flushLocked(); err != nil {
		return 0, r.failLocked(err)
	}
	if err := r.ctl.WriteBack(slotsOff, dataOff-slotsOff); err != nil {
		return 0, r.failLocked(err)
	}
	if err := r.checkSizeLocked("sync"); err != nil {
		return 0, r.failLocked(err)
	}
	if err := r.data.Sync(); err != nil {
		return 0, r.failLocked(err)
	}
	r.synced.Store(head)
	r.liveSynced.Store(head)
	r.wakeOthers()
	r.wakeLocal()
	return head, nil
}

// checkSizeLocked fails if the file is shorter than the ring's layout:
// another process truncated it, so bytes a sync made durable are gone and
// a sync now would promise what the file does not hold. A write after the
// truncation extends the file again (over a hole), so the size tells only
// until a write reaches the old end; syncs and the growth of the growing
// layout check it (an fstat each).
func (r *Ring) checkSizeLocked(what string) error {
	st, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("ring: %s %s: %w", what, r.name, err)
	}
	want := int64(dataOff) + int64(r.capacity)
	if r.seg != nil {
		want = r.segHeaderOff(int(r.seg.nseg.Load()))
	}
	if st.Size() < want {
		return fmt.Errorf("ring: %s %s: the file has %d bytes but its layout ends at offset %d (truncated by another process?): %w", what, r.name, st.Size(), want, pager.ErrTruncated)
	}
	return nil
}

func (r *Ring) failLocked(err error) error {
	if r.mu.syncErr == nil {
		r.mu.syncErr = fmt.Errorf("ring: sync %s: %w (%w)", r.name, ErrSyncFailed, err)
	}
	return r.mu.syncErr
}

// Fail marks the ring failed, for a layer above that saw a write or sync
// fail on its own: every later sync returns ErrSyncFailed and Close writes
// no header, so nothing unwritten is ever recorded as durable.
func (r *Ring) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLocked(err)
}

// Sync makes every committed byte the ring retains durable (bytes no
// consumer or pin holds may be overwritten at any moment, and are not
// promised), then records the head, the tail
// and the user data in the next header copy and syncs again (two
// fdatasyncs: the header must never describe data that is not on disk).
// After a failed sync the ring refuses further syncs: the kernel may have
// dropped the unwritten pages, so durability can no longer be promised.
func (r *Ring) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	head, err := r.syncDataLocked()
	if err != nil {
		return err
	}
	return r.writeHeaderLocked(head)
}

func (r *Ring) writeHeaderLocked(head uint64) error {
	h := r.mu.hdr
	h.seq++
	h.head = head
	h.tail = min(r.tailLocked(head), head)
	if _, err := r.f.WriteAt(h.encode(), headerOffset(h.seq)); err != nil {
		return r.failLocked(fmt.Errorf("writing the header at offset %d: %w", headerOffset(h.seq), err))
	}
	if err := osfile.Fdatasync(r.f); err != nil {
		return r.failLocked(err)
	}
	r.mu.hdr = h
	return nil
}

// Close syncs (for a producer), ends waiting calls (Reserve, Write and
// consumers' Wait return ErrClosed), detaches this handle's consumers and
// pins, unmaps everything and closes the file. It fails with ErrReserved
// while a reservation is outstanding: commit or cancel it first. Slices
// from the ring must not be used afterwards; other calls must not run
// concurrently with Close except the waiting ones it ends.
func (r *Ring) Close() error {
	if r.prod.Load() == prodReserved {
		return fmt.Errorf("ring: close %s: %w: commit or cancel it first", r.name, ErrReserved)
	}
	var err error
	if !r.readOnly {
		r.mu.Lock()
		failed, closed := r.mu.syncErr != nil, r.mu.closed
		r.mu.Unlock()
		if closed {
			return fmt.Errorf("ring: close %s: %w", r.name, ErrClosed)
		}
		if !failed {
			err = r.Sync()
		} else {
			r.mu.Lock()
			err = r.mu.syncErr
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return fmt.Errorf("ring: close %s: %w", r.name, ErrClosed)
	}
	r.mu.closed = true
	r.closed.Store(true)
	r.mu.Unlock()
	futex.Wake(r.dataSeq) // waiters of this handle sleeping on the futex
	r.dataReady.Broadcast()
	r.spaceReady.Broadcast()
	// Wait for producer calls in progress (waiting ones see closed and
	// return), then for this handle's consumers and slot pins.
	for !r.prod.CompareAndSwap(prodIdle, prodClosed) {
		r.dataReady.Broadcast()
		r.spaceReady.Broadcast()
		time.Sleep(20 * time.Microsecond)
	}
	// The gates are drained without the lock: a call in progress may
	// need it to finish.
	r.mu.Lock()
	var gates []*gate
	for c := range r.mu.attached {
		gates = append(gates, &c.gate)
	}
	for p := range r.mu.pins {
		if p.slot != nil {
			gates = append(gates, &p.gate)
		}
	}
	r.mu.Unlock()
	for _, g := range gates {
		g.closeGate(r)
	}
	r.mu.Lock()
	for c := range r.mu.attached {
		c.detachLocked()
	}
	for p := range r.mu.pins {
		if p.slot != nil {
			p.slot.clear()
			r.regGen.Add(1)
		}
	}
	// Later calls of Head and Synced read these heap words, never the
	// unmapped page.
	r.head.Store(r.Head())
	r.synced.Store(r.Synced())
	r.headp.Store(&r.head)
	r.syncedp.Store(&r.synced)
	r.hdrHead.Store(r.head.Load())
	if !r.readOnly {
		r.liveWriter.CompareAndSwap(r.token, 0)
	}
	// Detaching changed slots: on a heap (Copy) header region they reach
	// the file only this way.
	if e := r.ctl.WriteBack(slotsOff, dataOff-slotsOff); err == nil && !r.readOnly {
		err = e
	}
	r.mu.Unlock()
	closers := []interface{ Close() error }{r.data, r.ctl}
	if r.live != nil { // not on a file opened read-only
		closers = append(closers, r.live, r.liveFile)
	}
	for _, c := range append(closers, r.f) {
		if e := c.Close(); err == nil {
			err = e
		}
	}
	return err
}
