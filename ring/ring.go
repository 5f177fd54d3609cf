package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringlog/ringlog/internal/atomicmem"
	"github.com/ringlog/ringlog/internal/invariants"
	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
)

// maxCapacity bounds the data area: the view maps it twice, and positions
// must stay far from overflowing.
const maxCapacity = 1 << 40

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
	errBadOptionsCap = errors.New("ring: capacity must be a positive multiple of 64 KiB")
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
	// still write their own slots, so the file must be writable.
	ReadOnly bool
	// Perm is the mode of a created file; 0 means 0600.
	Perm os.FileMode
	// UserData is stored in the header on Create (at most 1 KiB); the
	// layer above keeps its own small durable state there.
	UserData []byte
}

// Ring is a durable byte ring over one file. See the package doc.
type Ring struct {
	f        *os.File
	name     string
	capacity uint64
	readOnly bool
	ctl      *pager.View // header region: header copies, live page, slots
	ctlMem   []byte
	data     *pager.View // the data area, mapped twice
	mem      []byte
	mirror   bool // data on the Copy backend: wrapped bytes are copied by hand
	info     OpenInfo

	// Live words in the shared page.
	liveHead, liveSynced, regGen *atomic.Uint64
	dataSeq, dataWait            *atomic.Uint32
	spaceSeq, spaceWait          *atomic.Uint32

	// headp is the committed position: the live word itself on mapped
	// backends, a word on the Go heap on Copy (where other processes see
	// the head only once the bytes are written back).
	headp    *atomic.Uint64
	head     atomic.Uint64
	mask     uint64        // capacity-1 when the capacity is a power of two
	reserved atomic.Int32  // producer state: -1 idle, 1 reservation or write under way
	resLen   int           // length of the outstanding reservation (producer's own)
	released atomic.Uint64 // bumped by Release: a happens-before edge the race detector sees
	limit    atomic.Uint64 // cached: head may grow to this without a rescan
	seenGen  atomic.Uint64 // registration generation the cached limit saw
	closed   atomic.Bool   // mirrors mu.closed for the producer's fast path

	dataReady  notifier // in-process consumers waiting for data
	spaceReady notifier // the producer waiting for space

	mu struct {
		sync.Mutex
		hdr       header
		closed    bool
		syncErr   error
		dirtyFrom uint64 // Copy backend: first committed byte not yet written back
		pins      map[*Pin]struct{}
		attached  map[string]*Consumer
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
// plus fdatasync need no extent conversion; the file is built under a
// temporary name and renamed into place, so a crash never leaves a
// half-made ring at path.
func Create(path string, opts *Options) (*Ring, error) {
	o := optionsOf(opts)
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
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, os.ErrExist)
	}
	tmp := path + ".creating"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	fail := func(err error) (*Ring, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	size := int64(dataOff) + o.Capacity
	if err := osfile.Preallocate(f, size); err != nil {
		return fail(err)
	}
	if err := osfile.WriteZeroes(f, 0, size); err != nil {
		return fail(err)
	}
	for seq := uint64(0); seq < 2; seq++ {
		h := header{seq: seq, capacity: uint64(o.Capacity), userData: o.UserData}
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
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
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
	if end := int64(dataOff) + int64(h.capacity); st.Size() < end {
		return nil, fmt.Errorf("ring: open %s: the file has %d bytes but its data area ends at offset %d: %w", name, st.Size(), end, ErrCorrupt)
	}
	r := &Ring{f: f, name: name, capacity: h.capacity, readOnly: o.ReadOnly, info: info}
	r.mu.hdr = *h
	r.mu.pins = map[*Pin]struct{}{}
	r.mu.attached = map[string]*Consumer{}
	r.reserved.Store(-1)
	if h.capacity&(h.capacity-1) == 0 {
		r.mask = h.capacity - 1
	}
	if err := r.mapViews(o); err != nil {
		r.closeViews()
		return nil, err
	}
	r.bindLive()
	r.headp = r.liveHead
	if r.mirror && !o.ReadOnly {
		r.headp = &r.head
	}
	if !o.ReadOnly {
		r.headp.Store(h.head)
		r.liveHead.Store(h.head)
		r.liveSynced.Store(h.head)
		r.mu.dirtyFrom = h.head
		r.repairSlots()
	}
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
	C := int(r.capacity)
	var err error
	// The control region must be shared memory so other processes see the
	// live words and slots: mapped whenever the platform can.
	ctlBackend := pager.Mmap
	if err := pager.Available(pager.Mmap); err != nil {
		if o.ReadOnly {
			return fmt.Errorf("ring: open %s: consuming from another process needs the header region in shared memory, which this platform or build cannot map (%v): %w", r.name, err, ErrUnsupported)
		}
		ctlBackend = pager.Copy
	}
	if r.ctl, err = pager.New(r.f, dataOff, &pager.Options{Backend: ctlBackend}); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	if err := r.ctl.Map(0, 0, dataOff); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	r.ctlMem, _ = r.ctl.Bytes(0, dataOff)
	if r.data, err = pager.New(r.f, 2*C, &pager.Options{Backend: o.Backend, ReadOnly: o.ReadOnly}); err != nil {
		return fmt.Errorf("ring: open %s: %w", r.name, err)
	}
	for _, at := range []int{0, C} {
		if err := r.data.Map(at, dataOff, C); err != nil {
			return fmt.Errorf("ring: open %s: %w", r.name, err)
		}
	}
	r.mem, _ = r.data.Bytes(0, 2*C)
	r.mirror = r.data.Backend() == pager.Copy
	r.info.Backend = r.data.Backend()
	return nil
}

func (r *Ring) bindLive() {
	u64 := func(off int) *atomic.Uint64 { return atomicmem.Uint64(r.ctlMem, livePage+off) }
	u32 := func(off int) *atomic.Uint32 { return atomicmem.Uint32(r.ctlMem, livePage+off) }
	r.liveHead, r.liveSynced, r.regGen = u64(liveHead), u64(liveSynced), u64(liveRegGen)
	r.dataSeq, r.dataWait = u32(liveDataSeq), u32(liveDataWait)
	r.spaceSeq, r.spaceWait = u32(liveSpaceSeq), u32(liveSpaceWait)
}

func (r *Ring) closeViews() {
	if r.data != nil {
		r.data.Close()
	}
	if r.ctl != nil {
		r.ctl.Close()
	}
}

// Capacity is C, the size of the data area in bytes.
func (r *Ring) Capacity() int64 { return int64(r.capacity) }

// Name is the ring's file name.
func (r *Ring) Name() string { return r.name }

// Info reports what Open found and chose.
func (r *Ring) Info() OpenInfo { return r.info }

// Head is the committed position: bytes before it are visible to consumers.
// On a read-only ring it is the producer's latest commit.
func (r *Ring) Head() uint64 { return r.headp.Load() }

// Synced is the position up to which committed bytes are durable.
func (r *Ring) Synced() uint64 { return r.liveSynced.Load() }

// Tail is the oldest position still retained: the slowest consumer that
// is not lossy, or the oldest pin. Bytes before it may be overwritten.
func (r *Ring) Tail() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tailLocked(r.Head())
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

// Reserve waits until n bytes are free at the head and returns them as one
// slice of the mapping (also when they wrap past the end of the data area).
// Fill it and call Commit, or Cancel. Until then nothing is appended:
// consumers never see reserved bytes, and a ctx that ends while Reserve
// waits leaves the ring as it was. Reservations are for one producer at a
// time: another Reserve or Write before Commit or Cancel gets ErrReserved.
//
// n may be up to the capacity; larger is ErrTooLarge.
func (r *Ring) Reserve(ctx context.Context, n int) ([]byte, error) {
	if ctx == nil {
		panic("ring: Reserve with a nil context")
	}
	return r.reserve(ctx, n)
}

// TryReserve is Reserve without waiting: ErrFull if n bytes are not free.
func (r *Ring) TryReserve(n int) ([]byte, error) { return r.reserve(nil, n) }

func (r *Ring) reserve(ctx context.Context, n int) ([]byte, error) {
	if err := r.beginProduce("reserve", n); err != nil {
		return nil, err
	}
	if err := r.waitSpace(ctx, n); err != nil {
		r.reserved.Store(-1)
		return nil, err
	}
	r.resLen = n
	p := r.phys(r.headp.Load())
	return r.mem[p : p+n : p+n], nil
}

// beginProduce claims the producer's turn for n bytes.
func (r *Ring) beginProduce(what string, n int) error {
	if r.readOnly {
		return fmt.Errorf("ring: %s %s: %w", what, r.name, ErrReadOnly)
	}
	if n < 0 || uint64(n) > r.capacity {
		return fmt.Errorf("ring: %s %s: %d bytes in a ring of %d: %w", what, r.name, n, r.capacity, ErrTooLarge)
	}
	if !r.reserved.CompareAndSwap(-1, 1) {
		return fmt.Errorf("ring: %s %s: %w", what, r.name, ErrReserved)
	}
	if r.closed.Load() {
		r.reserved.Store(-1)
		return fmt.Errorf("ring: %s %s: %w", what, r.name, ErrClosed)
	}
	return nil
}

// Commit appends the first n bytes of the outstanding reservation (n at
// most what was reserved; the rest is dropped) and makes them visible to
// consumers. They are durable after the next Sync or SyncData.
func (r *Ring) Commit(n int) error {
	if r.reserved.Load() < 0 {
		return fmt.Errorf("ring: commit %s: %w", r.name, ErrNotReserved)
	}
	if n < 0 || n > r.resLen {
		return fmt.Errorf("ring: commit %s: %d bytes of a %d-byte reservation: %w", r.name, n, r.resLen, ErrTooLarge)
	}
	head := r.headp.Load()
	if r.mirror {
		r.mirrorRange(r.phys(head), n)
	}
	r.publish(head + uint64(n))
	r.reserved.Store(-1)
	return nil
}

// Cancel drops the outstanding reservation: nothing is appended.
func (r *Ring) Cancel() error {
	if r.reserved.Swap(-1) < 0 {
		return fmt.Errorf("ring: cancel %s: %w", r.name, ErrNotReserved)
	}
	r.resLen = 0
	return nil
}

// Write appends p with pwrite (at most two calls, split at the end of the
// data area): the staged path for durable files, see the package doc. It
// waits for space like Reserve and returns the position of p's first byte.
func (r *Ring) Write(ctx context.Context, p []byte) (uint64, error) {
	if ctx == nil {
		panic("ring: Write with a nil context")
	}
	return r.write(ctx, p)
}

// TryWrite is Write without waiting: ErrFull if len(p) bytes are not free.
func (r *Ring) TryWrite(p []byte) (uint64, error) { return r.write(nil, p) }

func (r *Ring) write(ctx context.Context, p []byte) (uint64, error) {
	n := len(p)
	if err := r.beginProduce("write", n); err != nil {
		return 0, err
	}
	defer r.reserved.Store(-1)
	if err := r.waitSpace(ctx, n); err != nil {
		return 0, err
	}
	head := r.headp.Load()
	at := r.phys(head)
	first := min(n, int(r.capacity)-at)
	if _, err := r.f.WriteAt(p[:first], int64(dataOff+at)); err != nil {
		return 0, fmt.Errorf("ring: write %s: %d bytes at offset %d: %w", r.name, first, dataOff+at, err)
	}
	if first < n {
		if _, err := r.f.WriteAt(p[first:], dataOff); err != nil {
			return 0, fmt.Errorf("ring: write %s: %d bytes at offset %d: %w", r.name, n-first, dataOff, err)
		}
	}
	if r.mirror {
		// The heap view does not see pwrites: put the bytes there too
		// (both copies), already in the file so not dirty.
		copy(r.mem[at:], p)
		r.mirrorRange(at, n)
	}
	r.publish(head + uint64(n))
	if r.mirror {
		r.mu.Lock()
		if r.mu.dirtyFrom == head {
			// Nothing older waits for write-back: other processes may
			// see these bytes now.
			r.mu.dirtyFrom = head + uint64(n)
			r.liveHead.Store(head + uint64(n))
		}
		r.mu.Unlock()
	}
	return head, nil
}

// mirrorRange copies the n bytes written at first-copy offset p (possibly
// running into the second copy) so that both copies of the data area hold
// them: the Copy backend has no aliasing.
func (r *Ring) mirrorRange(p, n int) {
	C := int(r.capacity)
	if end := min(p+n, C); end > p {
		copy(r.mem[C+p:C+end], r.mem[p:end])
	}
	if p+n > C {
		copy(r.mem[0:p+n-C], r.mem[C:p+n])
	}
}

// publish makes bytes up to head visible and wakes waiting consumers. On
// Copy the committed bytes are in this process's heap only: other
// processes see the new head when flushLocked has written them back.
func (r *Ring) publish(head uint64) {
	r.headp.Store(head)
	if r.dataWait.Load() > 0 && r.dataReady.broadcast() {
		r.dataSeq.Add(1)
	}
}

// waitSpace waits until n bytes after the head are free (not at all if
// ctx is nil), detaching lossy consumers that would be overrun. The limit
// is cached and recomputed when the head would pass it or a registration
// changed (in any process).
func (r *Ring) waitSpace(ctx context.Context, n int) error {
	backoff := 50 * time.Microsecond
	for {
		end := r.headp.Load() + uint64(n)
		if end <= r.limit.Load() && r.regGen.Load() == r.seenGen.Load() {
			if invariants.Enabled {
				r.checkLimit(end)
			}
			return nil
		}
		limit, err := r.rescan(end)
		if err != nil || end <= limit {
			return err
		}
		if ctx == nil {
			return fmt.Errorf("ring: %s: %d bytes wanted, %d free: %w", r.name, n, limit-min(limit, r.headp.Load()), ErrFull)
		}
		// Say we wait, then look once more: a release that came between
		// the scan and now has either been seen by this look or will wake
		// us. Releases by other processes are seen by polling with backoff.
		r.spaceWait.Store(1)
		ch := r.spaceReady.wait()
		if limit, err = r.rescan(end); err != nil || end <= limit {
			r.spaceWait.Store(0)
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			err = fmt.Errorf("ring: %s: waiting for %d bytes: %w", r.name, n, ctx.Err())
		case <-ch:
		case <-t.C:
			backoff = min(2*backoff, 10*time.Millisecond)
		}
		t.Stop()
		r.spaceWait.Store(0)
		if err != nil {
			return err
		}
	}
}

// rescan recomputes the limit the head may grow to for a write ending at
// end, detaching lossy laggards, and caches it. When end does not fit, on
// Copy it writes committed bytes back first: consumers in other processes
// can only release what they can see.
func (r *Ring) rescan(end uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return 0, fmt.Errorf("ring: %s: %w", r.name, ErrClosed)
	}
	gen := r.regGen.Load()
	tail := r.tailLocked(r.headp.Load())
	limit := min(tail+r.capacity, r.detachLaggardsLocked(end))
	r.limit.Store(limit)
	r.seenGen.Store(gen)
	if end > limit {
		if err := r.flushLocked(); err != nil {
			return 0, err
		}
	}
	return limit, nil
}

// checkLimit verifies the cached limit against a fresh look at every
// consumer and pin (invariant builds): a stale cache would let the producer
// overwrite retained bytes.
func (r *Ring) checkLimit(end uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tail := r.tailLocked(r.headp.Load()); end > tail+r.capacity {
		panic(fmt.Sprintf("ring: %s: producer may write up to %d, but position %d is retained (capacity %d)", r.name, end, tail, r.capacity))
	}
}

// tailLocked is the oldest retained position: the minimum of head, the
// pins, and the positions of attached-or-not consumers that retain.
func (r *Ring) tailLocked(head uint64) uint64 {
	r.released.Load() // pairs with Release: see released
	tail := head
	for p := range r.mu.pins {
		tail = min(tail, p.pos.Load())
	}
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() != slotRegistered {
			continue
		}
		if s.flags().Load()&(flagLossy|flagDetached) != 0 {
			continue
		}
		tail = min(tail, s.pos().Load())
	}
	return tail
}

// detachLaggardsLocked marks lossy consumers that writing up to end would
// overrun, or leave lagging more than their limit, as detached, before a
// byte of theirs is overwritten. It returns how far the head may go before
// the remaining lossy consumers need another look.
func (r *Ring) detachLaggardsLocked(end uint64) uint64 {
	next := uint64(math.MaxUint64)
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() != slotRegistered {
			continue
		}
		fl := s.flags().Load()
		if fl&flagLossy == 0 || fl&flagDetached != 0 {
			continue
		}
		deadline := s.pos().Load() + min(s.maxLag().Load(), r.capacity)
		if end > deadline {
			s.flags().Or(flagDetached)
			continue
		}
		next = min(next, deadline)
	}
	return next
}

// Slice returns the n bytes at pos as one slice of the mapping. The range
// must lie between Tail and Head; the caller must hold it (a Pin, or a
// consumer whose position is at or before pos) for as long as it uses the
// slice, since released bytes may be overwritten.
func (r *Ring) Slice(pos uint64, n int) ([]byte, error) {
	head := r.Head()
	if n < 0 || uint64(n) > r.capacity || pos > head || head-pos < uint64(n) || head-pos > r.capacity {
		return nil, fmt.Errorf("ring: %s: %d bytes at position %d, head %d, capacity %d: %w", r.name, n, pos, head, r.capacity, ErrRange)
	}
	p := r.phys(pos)
	if err := r.refresh(p, n); err != nil {
		return nil, err
	}
	return r.mem[p : p+n : p+n], nil
}

// Raw returns the n bytes at position pos as one slice, whatever they
// hold: committed or not, retained or not. It is for recovery, which reads
// past the head recorded in the header to find where the data really ends.
// Bytes outside [Tail, Head] may change at any time.
func (r *Ring) Raw(pos uint64, n int) ([]byte, error) {
	if n < 0 || uint64(n) > r.capacity {
		return nil, fmt.Errorf("ring: %s: %d bytes at position %d, capacity %d: %w", r.name, n, pos, r.capacity, ErrRange)
	}
	p := r.phys(pos)
	if r.mirror && r.readOnly {
		if err := r.refresh(p, n); err != nil {
			return nil, err
		}
	}
	return r.mem[p : p+n : p+n], nil
}

// FileOffset is the offset in the file of the byte at position pos.
func (r *Ring) FileOffset(pos uint64) int64 { return int64(dataOff + r.phys(pos)) }

// Rewrite writes the bytes of positions [from, to) back to the file as they
// are. After a failed write or sync the kernel may have marked pages clean
// that never reached the disk; a page cache that shows bytes the disk does
// not have is made dirty again this way, so the next SyncData writes them.
// [from, to) must lie in [Tail, Head].
func (r *Ring) Rewrite(from, to uint64) error {
	if r.readOnly {
		return fmt.Errorf("ring: rewrite %s: %w", r.name, ErrReadOnly)
	}
	head := r.headp.Load()
	if from > to || to > head || to-from > r.capacity {
		return fmt.Errorf("ring: rewrite %s: positions [%d, %d) with head %d: %w", r.name, from, to, head, ErrRange)
	}
	for from < to {
		p := r.phys(from)
		n := min(int(to-from), int(r.capacity)-p)
		if _, err := r.f.WriteAt(r.mem[p:p+n], int64(dataOff+p)); err != nil {
			return fmt.Errorf("ring: rewrite %s: %d bytes at offset %d: %w", r.name, n, dataOff+p, err)
		}
		from += uint64(n)
	}
	return nil
}

// Overwrite writes p at position pos, which must lie inside [Tail, Head]
// with p: it replaces committed bytes (salvage rewrites damaged records
// this way). The bytes reach the file at once; sync to make them durable.
func (r *Ring) Overwrite(pos uint64, p []byte) error {
	if r.readOnly {
		return fmt.Errorf("ring: overwrite %s: %w", r.name, ErrReadOnly)
	}
	head := r.headp.Load()
	if pos > head || uint64(len(p)) > head-pos {
		return fmt.Errorf("ring: overwrite %s: %d bytes at position %d with head %d: %w", r.name, len(p), pos, head, ErrRange)
	}
	at := r.phys(pos)
	copy(r.mem[at:], p) // into the view (both copies on Copy, below)
	if r.mirror {
		r.mirrorRange(at, len(p))
	}
	return r.Rewrite(pos, pos+uint64(len(p)))
}

// SetHead moves the committed position to pos: forward over bytes already
// in the data area (recovery found them there; they are taken as they are),
// or back (a truncation: consumers past pos move back to it). It fails with
// ErrRange if the retained span would exceed the capacity, or, moving back,
// while any pin holds bytes before the head. Producer only, with no reservation outstanding.
func (r *Ring) SetHead(pos uint64) error {
	if err := r.beginProduce("set head", 0); err != nil {
		return err
	}
	defer r.reserved.Store(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	head := r.headp.Load()
	if pos < head {
		// A pin holds every byte from its position to the head: dropping
		// any of them would change bytes a reader may hold.
		for p := range r.mu.pins {
			if pp := p.pos.Load(); pp < head {
				return fmt.Errorf("ring: set head of %s back to %d: a reader holds position %d: %w", r.name, pos, pp, ErrRange)
			}
		}
	}
	if pos > head {
		if tail := r.tailLocked(head); pos-tail > r.capacity {
			return fmt.Errorf("ring: set head of %s to %d: %d bytes from the tail %d, capacity %d: %w", r.name, pos, pos-tail, tail, r.capacity, ErrRange)
		}
	}
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() == slotRegistered && s.pos().Load() > pos {
			s.pos().Store(pos)
		}
	}
	r.headp.Store(pos)
	r.liveHead.Store(pos)
	if r.mirror {
		// Committed bytes not yet written back stay owed up to pos; bytes
		// found past a clean head were read from the file, so are clean.
		if r.mu.dirtyFrom >= head {
			r.mu.dirtyFrom = pos
		} else {
			r.mu.dirtyFrom = min(r.mu.dirtyFrom, pos)
		}
	}
	r.limit.Store(0)
	return nil
}

// refresh rereads from the file, on a read-only Copy view, the pages under
// view bytes [p, p+n) (the producer being another process, its commits
// reach this heap copy only through the file). Both copies of a page map
// the same file page, so reading each view page from its file page is all
// it takes.
func (r *Ring) refresh(p, n int) error {
	if !r.mirror || !r.readOnly || n == 0 {
		return nil
	}
	ps := pager.PageSize
	lo, hi := p/ps*ps, min((p+n+ps-1)/ps*ps, 2*int(r.capacity))
	if err := r.data.Reload(lo, hi-lo); err != nil {
		return fmt.Errorf("ring: %s: %w", r.name, err)
	}
	return nil
}

// Pin keeps the bytes from pos onward from being overwritten until the
// pin is released. pos must not be before Tail.
func (r *Ring) Pin(pos uint64) (*Pin, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return nil, fmt.Errorf("ring: pin %s: %w", r.name, ErrClosed)
	}
	head := r.Head()
	if tail := r.tailLocked(head); pos < tail || pos > head {
		return nil, fmt.Errorf("ring: pin %s: position %d outside [%d, %d]: %w", r.name, pos, tail, head, ErrRange)
	}
	p := &Pin{r: r}
	p.pos.Store(pos)
	r.mu.pins[p] = struct{}{}
	return p, nil
}

// Pin holds a position of a ring. See Ring.Pin. A Pin is for one
// goroutine at a time; moving it takes no lock.
type Pin struct {
	r   *Ring
	pos atomic.Uint64
}

// Position is where the pin holds the ring.
func (p *Pin) Position() uint64 { return p.pos.Load() }

// Move moves the pin forward to pos (never backward); bytes before it may
// then be overwritten.
func (p *Pin) Move(pos uint64) {
	if pos > p.pos.Load() {
		p.pos.Store(pos)
		p.r.released.Add(1)
		p.r.wakeProducer()
	}
}

// Release drops the pin. Slices read under it must no longer be used.
func (p *Pin) Release() {
	p.r.mu.Lock()
	delete(p.r.mu.pins, p)
	p.r.mu.Unlock()
	p.r.released.Add(1)
	p.r.wakeProducer()
}

func (r *Ring) wakeProducer() {
	if r.spaceWait.Load() != 0 {
		r.spaceSeq.Add(1)
		r.spaceReady.broadcast()
	}
}

// flushLocked writes committed bytes that exist only in the heap view (Copy
// backend) to the file.
func (r *Ring) flushLocked() error {
	head := r.headp.Load()
	if !r.mirror || r.mu.dirtyFrom >= head {
		return nil
	}
	from := r.mu.dirtyFrom
	ps := pager.PageSize
	C := int(r.capacity)
	p, n := r.phys(from), int(head-from)
	lo, hi := p/ps*ps, min((p+n+ps-1)/ps*ps, 2*C)
	if hi <= C {
		if err := r.data.WriteBack(lo, hi-lo); err != nil {
			return err
		}
	} else {
		if err := r.data.WriteBack(lo, C-lo); err != nil {
			return err
		}
		if err := r.data.WriteBack(0, hi-C); err != nil {
			return err
		}
	}
	r.mu.dirtyFrom = head
	r.liveHead.Store(head)
	return nil
}

// SyncData makes every committed byte durable with one fdatasync, without
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
	head := r.headp.Load()
	if err := r.flushLocked(); err != nil {
		return 0, r.failSyncLocked(err)
	}
	if err := r.ctl.WriteBack(livePage, dataOff-livePage); err != nil {
		return 0, r.failSyncLocked(err)
	}
	if err := r.data.Sync(); err != nil {
		return 0, r.failSyncLocked(err)
	}
	r.liveSynced.Store(head)
	return head, nil
}

func (r *Ring) failSyncLocked(err error) error {
	r.mu.syncErr = fmt.Errorf("ring: sync %s: %w (%w)", r.name, ErrSyncFailed, err)
	return r.mu.syncErr
}

// Sync makes every committed byte durable, then records the head, the tail
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
		return r.failSyncLocked(fmt.Errorf("writing the header at offset %d: %w", headerOffset(h.seq), err))
	}
	if err := osfile.Fdatasync(r.f); err != nil {
		return r.failSyncLocked(err)
	}
	r.mu.hdr = h
	return nil
}

// Close syncs (for a producer), detaches this process's consumers, unmaps
// everything and closes the file. Slices from the ring must not be used
// afterwards.
func (r *Ring) Close() error {
	var err error
	if !r.readOnly {
		err = r.Sync()
		if errors.Is(err, ErrClosed) {
			return err
		}
	}
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return fmt.Errorf("ring: close %s: %w", r.name, ErrClosed)
	}
	r.mu.closed = true
	r.closed.Store(true)
	for _, c := range r.mu.attached {
		c.detachLocked()
	}
	r.mu.Unlock()
	r.dataReady.broadcast()
	r.spaceReady.broadcast()
	if e := r.data.Close(); err == nil {
		err = e
	}
	if e := r.ctl.Close(); err == nil {
		err = e
	}
	if e := r.f.Close(); err == nil {
		err = e
	}
	return err
}

// notifier wakes every goroutine waiting on it. broadcast costs one
// atomic load when nobody has armed it since the last wake.
type notifier struct {
	armed atomic.Bool
	mu    sync.Mutex
	ch    chan struct{}
}

// wait arms the notifier and returns the channel the next broadcast
// closes. The caller checks its condition again after wait, so a broadcast
// that came just before is not missed.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	n.armed.Store(true)
	return n.ch
}

// broadcast wakes the waiters, reporting whether there were any.
func (n *notifier) broadcast() bool {
	if !n.armed.Load() {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.armed.Store(false)
	if n.ch == nil {
		return false
	}
	close(n.ch)
	n.ch = nil
	return true
}
