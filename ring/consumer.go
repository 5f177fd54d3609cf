package ring

import (
	"context"
	"fmt"
	"os"
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

// ConsumerOptions configure a consumer's registration.
type ConsumerOptions struct {
	// Lossy consumers never hold the producer back: one that lags more
	// than MaxLag bytes (or is about to be overwritten) is detached, and
	// its next call returns ErrOverrun. The bytes of slices it still holds
	// may change under it; a Release that returns nil certifies that the
	// bytes it releases were intact when they were read.
	Lossy bool
	// MaxLag bounds a lossy consumer's lag; 0 or more than the capacity
	// means the capacity.
	MaxLag int64
}

// ConsumerInfo describes a registered consumer.
type ConsumerInfo struct {
	Name     string
	Position uint64 // acknowledged position
	Lag      uint64 // committed bytes not yet released
	Lossy    bool
	Detached bool // overrun; Reattach to resume
	PID      int  // process attached to it, 0 if none
}

// Consumer reads a ring from its own durable position. A Consumer is for
// one goroutine at a time.
type Consumer struct {
	r      *Ring
	name   string
	s      slotRef
	closed bool
}

// Consumer registers a consumer under name, or attaches to the existing
// registration of that name, which keeps its position. A new consumer
// starts at the head. A consumer retains every byte from its position on:
// the producer waits (or gets ErrFull) rather than overwrite them, unless
// the consumer is lossy. Only one handle per name may be attached at a
// time, across processes. Registrations are durable with the next Sync.
func (r *Ring) Consumer(name string, opts *ConsumerOptions) (*Consumer, error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("ring: consumer of %s: %v", r.name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return nil, fmt.Errorf("ring: consumer %q of %s: %w", name, r.name, ErrClosed)
	}
	if _, ok := r.mu.attached[name]; ok {
		return nil, fmt.Errorf("ring: consumer %q of %s: attached in this process: %w", name, r.name, ErrConsumerBusy)
	}
	unlock := r.lockRegistration()
	defer unlock()
	me := uint32(os.Getpid())
	s, found := r.findSlot(name)
	if found {
		if pid := s.pid().Load(); pid != 0 && pid != me && osfile.ProcessAlive(int(pid)) {
			return nil, fmt.Errorf("ring: consumer %q of %s: attached by process %d: %w", name, r.name, pid, ErrConsumerBusy)
		}
		if opts != nil {
			if lossy := s.flags().Load()&flagLossy != 0; lossy != opts.Lossy {
				return nil, fmt.Errorf("ring: consumer %q of %s: registered with Lossy=%v; remove it to change that", name, r.name, lossy)
			}
			r.setConsumerOptions(s, opts)
			r.regGen.Add(1)
		}
		s.pid().Store(me)
	} else {
		var ok bool
		if s, ok = r.claimSlot(); !ok {
			return nil, fmt.Errorf("ring: consumer %q of %s: all %d slots in use: %w", name, r.name, maxSlots, ErrNoSlots)
		}
		s.b[slotNameLen] = byte(len(name))
		copy(s.b[slotName:], name)
		atomicmem.Uint32(s.b, slotNameCRC).Store(slotNameSum(s.b))
		r.setConsumerOptions(s, opts)
		s.pos().Store(r.Head())
		s.pid().Store(me)
		s.state().Store(slotRegistered)
		r.regGen.Add(1)
	}
	c := &Consumer{r: r, name: name, s: s}
	r.mu.attached[name] = c
	return c, nil
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

// lockRegistration serialises registrations across processes with a word
// in the shared page holding the registering process's pid; a lock left by
// a dead process is taken over.
func (r *Ring) lockRegistration() func() {
	w := atomicmem.Uint32(r.ctlMem, livePage+liveRegLock)
	me := uint32(os.Getpid())
	for spin := 0; ; spin++ {
		if w.CompareAndSwap(0, me) {
			break
		}
		if holder := w.Load(); holder != 0 && (holder == me || !osfile.ProcessAlive(int(holder))) {
			if w.CompareAndSwap(holder, me) {
				break
			}
		}
		time.Sleep(time.Duration(min(spin+1, 100)) * 10 * time.Microsecond)
	}
	return func() { w.CompareAndSwap(me, 0) }
}

// repairSlots runs when a producer opens the ring: registrations cut short
// by a crash are freed, damaged ones cleared, attachments of dead processes
// dropped, and positions brought inside [head - capacity, head].
func (r *Ring) repairSlots() {
	head := r.headp.Load()
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
		if pid := s.pid().Load(); pid != 0 && !osfile.ProcessAlive(int(pid)) {
			s.pid().Store(0)
		}
		pos := s.pos().Load()
		switch {
		case pos > head:
			r.info.Reset = append(r.info.Reset, fmt.Sprintf("consumer %q: position %d past the durable head %d, moved back to it", s.name(), pos, head))
			s.pos().Store(head)
		case head-pos > r.capacity && s.flags().Load()&flagDetached == 0:
			r.info.Reset = append(r.info.Reset, fmt.Sprintf("consumer %q: position %d more than the capacity behind head %d, detached", s.name(), pos, head))
			s.flags().Or(flagDetached)
		}
	}
}

// Consumers lists the registered consumers.
func (r *Ring) Consumers() []ConsumerInfo {
	head := r.Head()
	var out []ConsumerInfo
	for i := 0; i < maxSlots; i++ {
		s := r.slot(i)
		if s.state().Load() != slotRegistered {
			continue
		}
		fl, pos := s.flags().Load(), s.pos().Load()
		info := ConsumerInfo{Name: s.name(), Position: pos, Lossy: fl&flagLossy != 0, Detached: fl&flagDetached != 0, PID: int(s.pid().Load())}
		if head > pos {
			info.Lag = head - pos
		}
		out = append(out, info)
	}
	return out
}

// RemoveConsumer deletes a registration that no process is attached to,
// releasing what it retained.
func (r *Ring) RemoveConsumer(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.mu.attached[name]; ok {
		return fmt.Errorf("ring: remove consumer %q of %s: attached in this process: %w", name, r.name, ErrConsumerBusy)
	}
	unlock := r.lockRegistration()
	defer unlock()
	s, ok := r.findSlot(name)
	if !ok {
		return fmt.Errorf("ring: remove consumer %q of %s: %w", name, r.name, ErrNoConsumer)
	}
	if pid := s.pid().Load(); pid != 0 && osfile.ProcessAlive(int(pid)) && pid != uint32(os.Getpid()) {
		return fmt.Errorf("ring: remove consumer %q of %s: attached by process %d: %w", name, r.name, pid, ErrConsumerBusy)
	}
	s.clear()
	r.regGen.Add(1)
	r.wakeProducer()
	return nil
}

// Name is the consumer's registered name.
func (c *Consumer) Name() string { return c.name }

// Position is the consumer's acknowledged position: everything before it
// has been released.
func (c *Consumer) Position() uint64 { return c.s.pos().Load() }

func (c *Consumer) check(what string) error {
	if c.closed {
		return fmt.Errorf("ring: consumer %q of %s: %s: %w", c.name, c.r.name, what, ErrClosed)
	}
	if c.s.flags().Load()&flagDetached != 0 {
		return fmt.Errorf("ring: consumer %q of %s: %s at position %d: %w", c.name, c.r.name, what, c.s.pos().Load(), ErrOverrun)
	}
	return nil
}

// Peek returns the committed bytes the consumer has not released, as one
// slice of the mapping starting at the returned position (at most the
// capacity, also when they wrap). It does not wait: the slice is empty if
// there is nothing new (see Wait). The slice stays valid, and its bytes
// unchanged, until the consumer releases past them or is closed, because
// the producer never overwrites what a retaining consumer has not
// released; for lossy consumers see ConsumerOptions.
func (c *Consumer) Peek() ([]byte, uint64, error) {
	if err := c.check("peek"); err != nil {
		return nil, 0, err
	}
	pos := c.s.pos().Load()
	head := c.r.Head()
	if head < pos {
		return nil, pos, nil
	}
	n := head - pos
	if n > c.r.capacity {
		return nil, pos, fmt.Errorf("ring: consumer %q of %s: position %d is %d bytes behind head %d: %w", c.name, c.r.name, pos, n, head, ErrOverrun)
	}
	p := c.r.phys(pos)
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
	if err := c.check("release"); err != nil {
		return err
	}
	pos := c.s.pos().Load()
	if head := c.r.Head(); n < 0 || uint64(n) > head-pos {
		return fmt.Errorf("ring: consumer %q of %s: release %d bytes at position %d with head %d: %w", c.name, c.r.name, n, pos, head, ErrRange)
	}
	c.s.pos().Store(pos + uint64(n))
	// The position lives outside the Go heap on mapped backends; this
	// heap atomic gives the race detector the edge between the reads
	// released here and the producer's later overwrite.
	c.r.released.Add(1)
	c.r.wakeProducer()
	// The producer marks a lossy consumer detached before overwriting its
	// bytes, so seeing no mark after the store means none were overwritten
	// before they were read.
	return c.check("release")
}

// Wait blocks until there are committed bytes past the consumer's
// position, or ctx ends. In another process than the producer's it polls
// with backoff.
func (c *Consumer) Wait(ctx context.Context) error {
	r := c.r
	backoff := 20 * time.Microsecond
	for {
		if err := c.check("wait"); err != nil {
			return err
		}
		if r.Head() > c.s.pos().Load() {
			return nil
		}
		r.dataWait.Add(1)
		c.s.waiting().Store(1)
		ch := r.dataReady.wait()
		if r.Head() > c.s.pos().Load() {
			c.s.waiting().Store(0)
			r.dataWait.Add(^uint32(0))
			return nil
		}
		var poll <-chan time.Time
		var t *time.Timer
		if r.readOnly {
			t = time.NewTimer(backoff)
			poll = t.C
			backoff = min(2*backoff, 5*time.Millisecond)
		}
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-ch:
		case <-poll:
		}
		if t != nil {
			t.Stop()
		}
		c.s.waiting().Store(0)
		r.dataWait.Add(^uint32(0))
		if err != nil {
			return fmt.Errorf("ring: consumer %q of %s: wait: %w", c.name, r.name, err)
		}
		r.mu.Lock()
		closed := r.mu.closed
		r.mu.Unlock()
		if closed {
			return fmt.Errorf("ring: consumer %q of %s: wait: %w", c.name, r.name, ErrClosed)
		}
	}
}

// Sync makes the consumer's position durable.
func (c *Consumer) Sync() error {
	if c.closed {
		return fmt.Errorf("ring: consumer %q of %s: sync: %w", c.name, c.r.name, ErrClosed)
	}
	if err := c.r.ctl.WriteBack(slotsOff, dataOff-slotsOff); err != nil {
		return fmt.Errorf("ring: consumer %q: %w", c.name, err)
	}
	if err := osfile.Fdatasync(c.r.f); err != nil {
		return fmt.Errorf("ring: consumer %q: %w", c.name, err)
	}
	return nil
}

// Reattach resumes a detached consumer at the current head and reports how
// many bytes it skipped.
func (c *Consumer) Reattach() (uint64, error) {
	if c.closed {
		return 0, fmt.Errorf("ring: consumer %q of %s: reattach: %w", c.name, c.r.name, ErrClosed)
	}
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	head := c.r.Head()
	pos := c.s.pos().Load()
	c.s.pos().Store(head)
	c.s.flags().And(^uint32(flagDetached))
	c.r.regGen.Add(1)
	return head - pos, nil
}

// Close detaches the handle; the registration and its position stay (see
// RemoveConsumer). Slices from Peek must no longer be used.
func (c *Consumer) Close() error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.closed {
		return fmt.Errorf("ring: consumer %q of %s: close: %w", c.name, c.r.name, ErrClosed)
	}
	c.detachLocked()
	return nil
}

func (c *Consumer) detachLocked() {
	c.closed = true
	c.s.pid().CompareAndSwap(uint32(os.Getpid()), 0)
	delete(c.r.mu.attached, c.name)
}
