package ring

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ringlog/ringlog/internal/atomicmem"
	"github.com/ringlog/ringlog/internal/osfile"
)

// slotRef is one consumer slot in the shared header region.
type slotRef struct {
	b []byte
}

func (r *Ring) slot(i int) slotRef {
	off := slotsOff + i*slotSize
	return slotRef{b: r.ctlMem[off : off+slotSize : off+slotSize]}
}

func (s slotRef) state() *atomic.Uint32   { return atomicmem.Uint32(s.b, slotState) }
func (s slotRef) flags() *atomic.Uint32   { return atomicmem.Uint32(s.b, slotFlags) }
func (s slotRef) pos() *atomic.Uint64     { return atomicmem.Uint64(s.b, slotPos) }
func (s slotRef) maxLag() *atomic.Uint64  { return atomicmem.Uint64(s.b, slotMaxLag) }
func (s slotRef) waiting() *atomic.Uint32 { return atomicmem.Uint32(s.b, slotWaiting) }
func (s slotRef) pid() *atomic.Uint32     { return atomicmem.Uint32(s.b, slotPID) }
func (s slotRef) owner() *atomic.Uint64   { return atomicmem.Uint64(s.b, slotOwner) }

func (s slotRef) name() string {
	n := min(int(s.b[slotNameLen]), maxNameLen)
	return string(s.b[slotName : slotName+n])
}

// valid reports whether a registered slot's name survived intact.
func (s slotRef) valid() bool {
	n := int(s.b[slotNameLen])
	if n == 0 || n > maxNameLen || validName(s.name()) != nil {
		return false
	}
	return atomicmem.Uint32(s.b, slotNameCRC).Load() == slotNameSum(s.b)
}

func (s slotRef) clear() {
	for i := slotFlags; i < slotSize; i++ {
		s.b[i] = 0
	}
	s.state().Store(slotFree)
}

// ownedElsewhere reports whether a handle other than token, in a live
// process, is attached to the slot.
func (s slotRef) ownedElsewhere(token uint64) (uint64, bool) {
	o := s.owner().Load()
	return o, o != 0 && o != token && osfile.ProcessAlive(tokenPID(o))
}

// ConsumerOptions configure a consumer's registration.
type ConsumerOptions struct {
	// Lossy consumers never hold the producer back: one that lags more
	// than MaxLag bytes (or is about to be overwritten) is detached, and
	// its next call returns ErrOverrun. The bytes of slices it still holds
	// may change under it; a Release that returns nil certifies that the
	// bytes it releases were intact when they were read. Fixed at
	// registration.
	Lossy bool
	// MaxLag bounds a lossy consumer's lag; 0 or more than the capacity
	// means the capacity.
	MaxLag int64
	// ProducerOwned marks a consumer only the producer ever attaches
	// (the wal's checkpoint): the producer lock makes any other attachment
	// stale, so the producer takes it over.
	ProducerOwned bool
	// At, with ProducerOwned, puts the consumer at this position (at most
	// the head), registered or taken over, and drops what its slot says
	// of lossiness and detachment: the producer keeps where its own
	// consumer stands in checksummed state of its own (the wal: the
	// checkpoint in the header), while a slot's position and flags carry
	// no checksum, so damage there must not decide what the ring retains.
	At *uint64
	// FromTail starts a new registration at the oldest byte the ring
	// still retains instead of at the head.
	FromTail bool
}

// ConsumerInfo describes a registered consumer.
type ConsumerInfo struct {
	Name     string // the name it was registered under
	Position uint64 // acknowledged position
	Lag      uint64 // committed bytes not yet released
	Lossy    bool   // registered lossy (ConsumerOptions.Lossy)
	Detached bool   // overrun; Reattach to resume
	PID      int    // process attached to it, 0 if none
}

// Consumer states: a call claims the consumer, so Close can wait for it.
const (
	gateIdle   int32 = 0
	gateBusy   int32 = 1
	gateClosed int32 = 2
)

// gate serialises the calls on a handle with Close.
type gate struct{ state atomic.Int32 }

func (g *gate) enter(r *Ring, what string, who fmt.Stringer) error {
	if g.state.CompareAndSwap(gateIdle, gateBusy) {
		if r.closed.Load() {
			g.state.Store(gateIdle)
			return fmt.Errorf("ring: %s of %s: %s: %w", who, r.name, what, ErrClosed)
		}
		return nil
	}
	if g.state.Load() == gateClosed {
		return fmt.Errorf("ring: %s of %s: %s: %w", who, r.name, what, ErrClosed)
	}
	return fmt.Errorf("ring: %s of %s: %s: %w", who, r.name, what, ErrConcurrentUse)
}

func (g *gate) leave() { g.state.Store(gateIdle) }

// closeGate waits for a call in progress (waiting calls are woken, see
// closed) and closes the gate.
func (g *gate) closeGate(r *Ring) {
	for !g.state.CompareAndSwap(gateIdle, gateClosed) {
		if g.state.Load() == gateClosed {
			return
		}
		r.dataReady.Broadcast()
		time.Sleep(20 * time.Microsecond)
	}
}

// Consumer reads a ring from its own durable position. A Consumer is for
// one goroutine at a time (a second call at once gets ErrConcurrentUse).
type Consumer struct {
	gate
	r    *Ring
	name string
	s    slotRef
}

// Consumer registers a consumer under name, or attaches to the existing
// registration of that name, which keeps its position. A new consumer
// starts at the head. A consumer retains every byte from its position on:
// the producer waits (or gets ErrFull) rather than overwrite them, unless
// the consumer is lossy. One handle at a time may be attached to a name,
// across handles and processes. Registrations are durable with the next
// Sync.
func (r *Ring) Consumer(name string, opts *ConsumerOptions) (*Consumer, error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("ring: consumer of %s: %v", r.name, err)
	}
	if name[0] == '$' && len(name) > 5 && name[:5] == "$pin-" {
		return nil, fmt.Errorf("ring: consumer %q of %s: names starting with $pin- are reserved", name, r.name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return nil, fmt.Errorf("ring: consumer %q of %s: %w", name, r.name, ErrClosed)
	}
	unlock := r.lockRegistration()
	defer unlock()
	if opts != nil && opts.ProducerOwned && r.readOnly {
		return nil, fmt.Errorf("ring: consumer %q of %s: owned by the producer: %w", name, r.name, ErrReadOnly)
	}
	takeOver := opts != nil && opts.ProducerOwned
	if takeOver && opts.At != nil && *opts.At > r.Head() {
		return nil, fmt.Errorf("ring: consumer %q of %s: position %d past the head %d: %w", name, r.name, *opts.At, r.Head(), ErrRange)
	}
	s, found := r.findSlot(name)
	if found {
		if o, busy := s.ownedElsewhere(r.token); !takeOver && (busy || o == r.token) {
			return nil, fmt.Errorf("ring: consumer %q of %s: attached by process %d: %w", name, r.name, tokenPID(o), ErrConsumerBusy)
		}
		if takeOver && opts.At != nil {
			s.flags().Store(0)
			s.pos().Store(*opts.At)
		}
		if opts != nil {
			if lossy := s.flags().Load()&flagLossy != 0; lossy != opts.Lossy {
				return nil, fmt.Errorf("ring: consumer %q of %s: registered with Lossy=%v; remove it to change that", name, r.name, lossy)
			}
			r.setConsumerOptions(s, opts)
			r.regGen.Add(1)
		}
		s.owner().Store(r.token)
		s.pid().Store(uint32(os.Getpid()))
		r.regGen.Add(1) // the producer learns a handle is attached
	} else {
		var err error
		start := r.Head()
		if opts != nil && opts.FromTail {
			start = r.retainedFromLocked(start)
		}
		if takeOver && opts.At != nil {
			start = *opts.At
		}
		if s, err = r.registerLocked(name, start, opts); err != nil {
			return nil, err
		}
	}
	c := &Consumer{r: r, name: name, s: s}
	r.mu.attached[c] = struct{}{}
	return c, nil
}

// registerLocked fills a free slot for name at position pos. The producer
// (maybe in another process) may be about to write up to the limit it
// published: a registration that started before the limit was published
// moves up to limit - C, the oldest position that write leaves intact.
func (r *Ring) registerLocked(name string, pos uint64, opts *ConsumerOptions) (slotRef, error) {
	s, ok := r.claimSlot()
	if !ok {
		return slotRef{}, fmt.Errorf("ring: consumer %q of %s: all %d slots in use: %w", name, r.name, maxSlots, ErrNoSlots)
	}
	s.b[slotNameLen] = byte(len(name))
	copy(s.b[slotName:], name)
	atomicmem.Uint32(s.b, slotNameCRC).Store(slotNameSum(s.b))
	r.setConsumerOptions(s, opts)
	s.pos().Store(pos)
	s.owner().Store(r.token)
	s.pid().Store(uint32(os.Getpid()))
	s.state().Store(slotRegistered)
	r.regGen.Add(1)
	r.raiseToLimit(s)
	return s, nil
}

// retainedFromLocked is the oldest position still retained by a consumer
// (or pin) of any process, at most head.
func (r *Ring) retainedFromLocked(head uint64) uint64 {
	tail := head
	for p := range r.mu.pins {
		if p.slot == nil {
			tail = min(tail, p.pos.Load())
		}
	}
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() == slotRegistered && s.flags().Load()&(flagLossy|flagDetached) == 0 {
			tail = min(tail, s.pos().Load())
		}
	}
	return tail
}

// raiseToLimit moves a slot that just started retaining up to the oldest
// position the producer's published limit leaves intact.
func (r *Ring) raiseToLimit(s slotRef) {
	if l := r.liveLimit.Load(); l > r.capacity && s.pos().Load() < l-r.capacity {
		s.pos().Store(l - r.capacity)
	}
}

func (r *Ring) setConsumerOptions(s slotRef, opts *ConsumerOptions) {
	var o ConsumerOptions
	if opts != nil {
		o = *opts
	}
	lag := uint64(o.MaxLag)
	if o.MaxLag <= 0 || lag > r.capacity {
		lag = r.capacity
	}
	s.maxLag().Store(lag)
	if o.Lossy {
		s.flags().Or(flagLossy)
	}
}

func (r *Ring) findSlot(name string) (slotRef, bool) {
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() == slotRegistered && s.name() == name {
			return s, true
		}
	}
	return slotRef{}, false
}

func (r *Ring) claimSlot() (slotRef, bool) {
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().CompareAndSwap(slotFree, slotClaimed) {
			return s, true
		}
	}
	return slotRef{}, false
}

// lockRegistration serialises registrations across handles and processes
// with a word in the shared page holding the registering handle's token; a
// lock left by a dead process is taken over.
func (r *Ring) lockRegistration() func() {
	w := r.regLock
	for spin := 0; ; spin++ {
		if w.CompareAndSwap(0, r.token) {
			break
		}
		if holder := w.Load(); holder != 0 && !osfile.ProcessAlive(tokenPID(holder)) {
			if w.CompareAndSwap(holder, r.token) {
				break
			}
		}
		time.Sleep(time.Duration(min(spin+1, 100)) * 10 * time.Microsecond)
	}
	return func() { w.CompareAndSwap(r.token, 0) }
}

// repairSlots runs when a producer opens the ring: registrations cut short
// by a crash are freed, damaged ones cleared, attachments of dead processes
// dropped, and (unless the layer above will set the head) positions brought
// inside [head - capacity, head].
func (r *Ring) repairSlots(headUnknown bool) {
	unlock := r.lockRegistration()
	defer unlock()
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		switch s.state().Load() {
		case slotFree:
			continue
		case slotRegistered:
			if !s.valid() {
				r.info.Reset = append(r.info.Reset, fmt.Sprintf("slot %d (file offset %d): damaged registration cleared", i, slotsOff+i*slotSize))
				s.clear()
				continue
			}
		default:
			r.info.Reset = append(r.info.Reset, fmt.Sprintf("slot %d (file offset %d): unfinished or unknown registration state %d cleared", i, slotsOff+i*slotSize, s.state().Load()))
			s.clear()
			continue
		}
		if o := s.owner().Load(); o != 0 && !osfile.ProcessAlive(tokenPID(o)) {
			s.owner().Store(0)
			s.pid().Store(0)
		}
		if isPinName(s.name()) && s.owner().Load() == 0 {
			s.clear() // a pin of a process that is gone
		}
	}
	if !headUnknown {
		r.clampSlotsLocked(r.head.Load(), true)
	}
}

// clampSlotsLocked brings registered positions inside [head - capacity,
// head]: past the head they move back to it; too far behind they are
// detached.
func (r *Ring) clampSlotsLocked(head uint64, report bool) {
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() != slotRegistered {
			continue
		}
		pos := s.pos().Load()
		switch {
		case pos > head:
			if report {
				r.info.Reset = append(r.info.Reset, fmt.Sprintf("consumer %q: position %d past the durable head %d, moved back to it", s.name(), pos, head))
			}
			s.pos().Store(head)
		case head-pos > r.capacity && s.flags().Load()&flagDetached == 0:
			if report {
				r.info.Reset = append(r.info.Reset, fmt.Sprintf("consumer %q: position %d more than the capacity behind head %d, detached", s.name(), pos, head))
			}
			s.flags().Or(flagDetached)
		}
	}
}

// Consumers lists the registered consumers.
func (r *Ring) Consumers() []ConsumerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return nil
	}
	head := r.Head()
	var out []ConsumerInfo
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() != slotRegistered || isPinName(s.name()) {
			continue
		}
		fl, pos := s.flags().Load(), s.pos().Load()
		info := ConsumerInfo{Name: s.name(), Position: pos, Lossy: fl&flagLossy != 0, Detached: fl&flagDetached != 0}
		if s.owner().Load() != 0 {
			info.PID = int(s.pid().Load())
		}
		if head > pos {
			info.Lag = head - pos
		}
		out = append(out, info)
	}
	return out
}

// RemoveConsumer deletes a registration no handle is attached to,
// releasing what it retained.
func (r *Ring) RemoveConsumer(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return fmt.Errorf("ring: remove consumer %q of %s: %w", name, r.name, ErrClosed)
	}
	unlock := r.lockRegistration()
	defer unlock()
	s, ok := r.findSlot(name)
	if !ok || isPinName(name) {
		return fmt.Errorf("ring: remove consumer %q of %s: %w", name, r.name, ErrNoConsumer)
	}
	if o := s.owner().Load(); o != 0 && (o == r.token || osfile.ProcessAlive(tokenPID(o))) {
		return fmt.Errorf("ring: remove consumer %q of %s: attached by process %d: %w", name, r.name, tokenPID(o), ErrConsumerBusy)
	}
	r.released.Add(1) // before the slot stops retaining: see Release
	s.clear()
	r.regGen.Add(1)
	r.wakeProducer()
	return nil
}

// Detached reports whether the consumer was overrun (lossy) and must
// Reattach. It is one load: cheap enough to ask before every read.
func (c *Consumer) Detached() bool { return c.s.flags().Load()&flagDetached != 0 }

// Name is the consumer's registered name.
func (c *Consumer) Name() string { return c.name }

// Position is the consumer's acknowledged position: everything before it
// has been released.
func (c *Consumer) Position() uint64 {
	if err := c.enter(c.r, "position", c); err != nil {
		return 0
	}
	defer c.leave()
	return c.s.pos().Load()
}

func (c *Consumer) who() string { return c.String() }

// String names the consumer in messages.
func (c *Consumer) String() string { return "consumer " + strconv.Quote(c.name) }

func (c *Consumer) checkOverrun(what string) error {
	if c.s.flags().Load()&flagDetached != 0 {
		return fmt.Errorf("ring: %s of %s: %s at position %d: %w", c.who(), c.r.name, what, c.s.pos().Load(), ErrOverrun)
	}
	return nil
}

// Peek returns the committed bytes the consumer has not released, as one
// slice of the mapping starting at the returned position (at most the
// capacity, also when they wrap; in the growing layout at least a segment's
// worth, up to the end of the view's mirror: release and Peek again for
// the rest). It does not wait: the slice is empty if there is nothing new
// (see Wait). The slice stays valid, and its bytes
// unchanged, until the consumer releases past them or is closed, because
// the producer never overwrites what a retaining consumer has not
// released; for lossy consumers see ConsumerOptions, for truncation see
// Ring.SetHead.
func (c *Consumer) Peek() ([]byte, uint64, error) {
	if err := c.enter(c.r, "peek", c); err != nil {
		return nil, 0, err
	}
	defer c.leave()
	if err := c.checkOverrun("peek"); err != nil {
		return nil, 0, err
	}
	if err := c.r.syncSegments(); err != nil {
		return nil, 0, err
	}
	pos := c.s.pos().Load()
	head := c.r.Head()
	if head <= pos {
		return nil, pos, nil
	}
	n := head - pos
	if n > c.r.capacity {
		return nil, pos, fmt.Errorf("ring: %s of %s: position %d is %d bytes behind head %d: %w", c.who(), c.r.name, pos, n, head, ErrOverrun)
	}
	p := c.r.phys(pos)
	// The view is contiguous up to the end of its mirror: in the growing
	// layout that may be short of the head (release, then Peek again).
	n = min(n, c.r.capacity+c.r.span-uint64(p))
	if err := c.r.refresh(p, int(n)); err != nil {
		return nil, pos, err
	}
	return c.r.mem[p : p+int(n) : p+int(n)], pos, nil
}

// Release acknowledges the next n unread bytes: the producer may reuse
// their space, and slices over them must no longer be used. The position
// is durable after the next Sync of the ring or of the consumer. For a
// lossy consumer, ErrOverrun means the producer overwrote bytes the
// consumer had not released: what it read may be damaged.
func (c *Consumer) Release(n int) error {
	if err := c.enter(c.r, "release", c); err != nil {
		return err
	}
	defer c.leave()
	if err := c.checkOverrun("release"); err != nil {
		return err
	}
	pos := c.s.pos().Load()
	if head := c.r.Head(); n < 0 || head < pos || uint64(n) > head-pos {
		return fmt.Errorf("ring: %s of %s: release %d bytes at position %d with head %d: %w", c.who(), c.r.name, n, pos, head, ErrRange)
	}
	// The position lives outside the Go heap on mapped backends; this
	// heap atomic gives the race detector the edge between the reads
	// released here and the producer's later overwrite. It comes before
	// the store: a producer that sees the new position then loads it
	// (tailLocked), so its load follows this add.
	c.r.released.Add(1)
	c.s.pos().Store(pos + uint64(n))
	c.r.wakeProducer()
	// The producer marks a lossy consumer detached before overwriting its
	// bytes, so seeing no mark after the store means none were overwritten
	// before they were read.
	return c.checkOverrun("release")
}

// Wait blocks until there are committed bytes past the consumer's
// position, or ctx ends, or the ring is closed. In another process than
// the producer's it sleeps on a futex the producer wakes (see WaitHead).
func (c *Consumer) Wait(ctx context.Context) error {
	if err := c.enter(c.r, "wait", c); err != nil {
		return err
	}
	defer c.leave()
	if err := c.checkOverrun("wait"); err != nil {
		return err
	}
	c.s.waiting().Store(1)
	err := c.r.WaitHead(ctx, c.s.pos().Load(), false)
	c.s.waiting().Store(0)
	if err != nil {
		return fmt.Errorf("ring: %s: %w", c.who(), err)
	}
	return c.checkOverrun("wait")
}

// Sync makes the consumer's position durable.
func (c *Consumer) Sync() error {
	if err := c.enter(c.r, "sync", c); err != nil {
		return err
	}
	defer c.leave()
	if err := c.r.ctl.WriteBack(slotsOff, dataOff-slotsOff); err != nil {
		return fmt.Errorf("ring: %s: %w", c.who(), err)
	}
	if err := osfile.Fdatasync(c.r.f); err != nil {
		return fmt.Errorf("ring: %s: %w", c.who(), err)
	}
	return nil
}

// Reattach resumes a detached consumer at the current head and reports how
// many bytes it skipped.
func (c *Consumer) Reattach() (uint64, error) {
	if err := c.enter(c.r, "reattach", c); err != nil {
		return 0, err
	}
	defer c.leave()
	pos := c.s.pos().Load()
	c.s.pos().Store(c.r.Head())
	c.s.flags().And(^uint32(flagDetached))
	c.r.regGen.Add(1)
	c.r.raiseToLimit(c.s)
	return c.s.pos().Load() - pos, nil
}

// Close detaches the handle; the registration and its position stay (see
// RemoveConsumer). Slices from Peek must no longer be used.
func (c *Consumer) Close() error {
	if err := c.enter(c.r, "close", c); err != nil {
		return err
	}
	c.r.mu.Lock()
	c.detachLocked()
	c.r.mu.Unlock()
	c.state.Store(gateClosed)
	return nil
}

func (c *Consumer) detachLocked() {
	c.s.owner().CompareAndSwap(c.r.token, 0)
	delete(c.r.mu.attached, c)
}

// Pin keeps the bytes from pos onward from being overwritten until the pin
// is released. pos must lie in [Tail, Head]. On a ring opened read-only
// (another process than the producer's) the pin lives in a consumer slot
// of its own, so the producer sees it.
func (r *Ring) Pin(pos uint64) (*Pin, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return nil, fmt.Errorf("ring: pin %s: %w", r.name, ErrClosed)
	}
	head := r.Head()
	p := &Pin{r: r}
	p.pos.Store(pos)
	if !r.readOnly {
		if tail := r.tailLocked(head); pos < tail || pos > head {
			return nil, fmt.Errorf("ring: pin %s: position %d outside [%d, %d]: %w", r.name, pos, tail, head, ErrRange)
		}
		r.mu.pins[p] = struct{}{}
		return p, nil
	}
	if pos > head {
		return nil, fmt.Errorf("ring: pin %s: position %d past the head %d: %w", r.name, pos, head, ErrRange)
	}
	unlock := r.lockRegistration()
	defer unlock()
	r.pinSeq++
	s, err := r.registerLocked(pinName(r.token, r.pinSeq), pos, nil)
	if err != nil {
		return nil, err
	}
	if s.pos().Load() != pos {
		// The producer may already be overwriting pos.
		s.clear()
		r.regGen.Add(1)
		return nil, fmt.Errorf("ring: pin %s: position %d is being overwritten: %w", r.name, pos, ErrRange)
	}
	p.slot = &s
	r.mu.pins[p] = struct{}{}
	return p, nil
}

func pinName(token uint64, seq uint64) string {
	return "$pin-" + strconv.FormatUint(token, 16) + "-" + strconv.FormatUint(seq, 10)
}

func isPinName(name string) bool { return len(name) > 5 && name[:5] == "$pin-" }

// Pin holds a position of a ring. See Ring.Pin. A Pin is for one goroutine
// at a time; moving it takes no lock.
type Pin struct {
	gate
	r    *Ring
	pos  atomic.Uint64
	slot *slotRef // read-only rings: the slot the pin lives in
}

// Position is where the pin holds the ring.
func (p *Pin) Position() uint64 { return p.pos.Load() }

// String names the pin in messages.
func (p *Pin) String() string { return fmt.Sprintf("pin at %d", p.pos.Load()) }

// Move moves the pin forward to pos (never backward); bytes before it may
// then be overwritten.
func (p *Pin) Move(pos uint64) {
	if pos <= p.pos.Load() {
		return
	}
	if p.slot != nil {
		if p.enter(p.r, "move", p) != nil {
			return
		}
		if raceEnabled {
			p.r.released.Add(1) // the edge the race detector needs; see Consumer.Release
		}
		p.slot.pos().Store(pos)
		p.leave()
	}
	p.pos.Store(pos)
	p.r.wakeProducer()
}

// Release drops the pin. Slices read under it must no longer be used.
func (p *Pin) Release() {
	p.r.released.Add(1) // before the pin stops retaining: see Consumer.Release
	if p.slot != nil {
		if p.enter(p.r, "release", p) != nil {
			return
		}
		p.slot.clear()
		p.r.regGen.Add(1)
		p.state.Store(gateClosed)
	}
	p.r.mu.Lock()
	delete(p.r.mu.pins, p)
	p.r.mu.Unlock()
	p.r.wakeProducer()
}
