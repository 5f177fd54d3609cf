package ring

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
)

// These tests pin down what concurrent use, closing, several handles in
// one process, and the registration protocol between processes must do.

func TestHeadAfterClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, _ := create(t, b, testCap)
		produce(t, r, []byte("xyz"))
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if r.Head() != 3 || r.Synced() != 3 {
			t.Fatalf("after Close: head %d synced %d", r.Head(), r.Synced())
		}
		if _, err := r.TryReserve(1); !errors.Is(err, ErrClosed) {
			t.Fatalf("reserve after Close: %v", err)
		}
		if r.Consumers() != nil {
			t.Fatal("consumers listed after Close")
		}
	})
}

func TestCloseEndsWaits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		for i := 0; i < 30; i++ {
			path := filepath.Join(t.TempDir(), "ring")
			r, err := Create(path, &Options{Capacity: testCap, Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			c, _ := r.Consumer("c", nil)
			c2, _ := r.Consumer("full", nil)
			_ = c2
			produce(t, r, make([]byte, testCap))
			drain(t, c)
			waitErr := make(chan error, 1)
			reserveErr := make(chan error, 1)
			go func() { _, _, _ = c.Peek(); waitErr <- c.Wait(context.Background()) }()
			go func() { _, err := r.Reserve(context.Background(), 10); reserveErr <- err }()
			for r.dataWaiters.Load() == 0 || !r.spaceWaiting.Load() {
				runtime.Gosched()
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-waitErr; !errors.Is(err, ErrClosed) {
				t.Fatalf("wait ended by Close: %v", err)
			}
			if err := <-reserveErr; !errors.Is(err, ErrClosed) {
				t.Fatalf("reserve ended by Close: %v", err)
			}
			if _, _, err := c.Peek(); !errors.Is(err, ErrClosed) {
				t.Fatalf("peek after Close: %v", err)
			}
		}
	})
}

func TestCloseWithReservationOutstanding(t *testing.T) {
	r, _ := create(t, pager.Auto, testCap)
	if _, err := r.TryReserve(10); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, ErrReserved) {
		t.Fatalf("close with a reservation: %v", err)
	}
	r.Commit(10)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerFromTwoGoroutines(t *testing.T) {
	r, _ := create(t, pager.Auto, testCap)
	c, _ := r.Consumer("c", nil)
	go c.Wait(context.Background())
	for r.dataWaiters.Load() == 0 {
		runtime.Gosched()
	}
	if _, _, err := c.Peek(); !errors.Is(err, ErrConcurrentUse) {
		t.Fatalf("peek while another goroutine waits on the same consumer: %v", err)
	}
	produce(t, r, []byte("x"))
}

// TestCopyWriteVsSync: on Copy, a Sync running beside Write never puts
// older heap bytes over what Write put in the file.
func TestCopyWriteVsSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	const C = 4 << 20
	r, err := Create(path, &Options{Capacity: C, Backend: pager.Copy})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			r.mu.Lock()
			r.flushLocked() // Sync without the fdatasync that hides the window
			r.mu.Unlock()
		}
	})
	deadline := time.Now().Add(time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		produce(t, r, []byte{byte(n)}) // heap only: leaves write-back owed
		rec := bytes.Repeat([]byte{byte(n) | 1}, 1<<20+1000)
		pos, err := r.Write(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		if f := fileBytes(t, path, C, pos, len(rec)); !bytes.Equal(f, rec) {
			t.Fatalf("write %d at %d: the file holds other bytes", n, pos)
		}
	}
	close(stop)
	wg.Wait()
}

// TestCopySyncVsReserveFill: Sync never reads a reservation being filled
// (under -race this would be reported).
func TestCopySyncVsReserveFill(t *testing.T) {
	r, _ := create(t, pager.Copy, 1<<20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			r.SyncData()
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		b, err := r.TryReserve(3000)
		if err != nil {
			t.Fatal(err)
		}
		for j := range b {
			b[j] = byte(i)
		}
		r.Commit(3000)
	}
}

// needShared skips tests of read-only handles where the header region
// cannot be shared memory.
func needShared(t *testing.T) {
	t.Helper()
	if err := pager.Available(pager.Mmap); err != nil {
		t.Skipf("read-only handles need shared memory, which this build cannot map: %v", err)
	}
}

// openReader opens a second, read-only handle: what another process does.
func openReader(t *testing.T, path string) *Ring {
	t.Helper()
	needShared(t)
	ro, err := Open(path, &Options{ReadOnly: true, Backend: pager.Mmap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return ro
}

func TestReadOnlyPinHolds(t *testing.T) {
	needShared(t)
	r, path := create(t, pager.Mmap, testCap)
	ro := openReader(t, path)
	want := pattern(1, 1000)
	produce(t, r, want)
	p, err := ro.Pin(0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ro.Slice(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.TryWrite(make([]byte, testCap-999)); !errors.Is(err, ErrFull) {
		t.Fatalf("overwriting bytes pinned by another handle: %v", err)
	}
	if !bytes.Equal(s, want) {
		t.Fatal("pinned slice changed")
	}
	if infos := r.Consumers(); len(infos) != 0 {
		t.Fatalf("pins are listed as consumers: %+v", infos)
	}
	p.Move(500)
	if _, err := r.TryWrite(make([]byte, testCap-500)); err != nil {
		t.Fatalf("writing up to a moved pin: %v", err)
	}
	p.Release()
	if _, err := r.TryWrite(make([]byte, testCap)); err != nil {
		t.Fatalf("after the pin is released: %v", err)
	}
}

func TestTwoHandlesOneName(t *testing.T) {
	needShared(t)
	r, path := create(t, pager.Mmap, testCap)
	ro := openReader(t, path)
	c, err := ro.Consumer("c", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Consumer("c", nil); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("second handle attaching the same consumer: %v", err)
	}
	if err := r.RemoveConsumer("c"); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("removing a consumer attached through another handle: %v", err)
	}
	want := pattern(2, 30000)
	produce(t, r, want)
	got, _, _ := c.Peek()
	if _, err := r.TryWrite(make([]byte, 40000)); !errors.Is(err, ErrFull) {
		t.Fatalf("overwriting the other handle's consumer: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the other handle's Peek slice changed")
	}
	// Racing registrations of one name from two handles make one slot.
	c.Close()
	ro.RemoveConsumer("c")
	for i := 0; i < 300; i++ {
		var wg sync.WaitGroup
		var c1, c2 *Consumer
		wg.Go(func() { c1, _ = r.Consumer("dup", nil) })
		wg.Go(func() { c2, _ = ro.Consumer("dup", nil) })
		wg.Wait()
		n := 0
		for _, ci := range r.Consumers() {
			if ci.Name == "dup" {
				n++
			}
		}
		if n != 1 || (c1 == nil) == (c2 == nil) {
			t.Fatalf("iteration %d: %d registrations, handles %v %v", i, n, c1 != nil, c2 != nil)
		}
		for _, c := range []*Consumer{c1, c2} {
			if c != nil {
				c.Close()
			}
		}
		if err := r.RemoveConsumer("dup"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRegistrationRacesProducer plays the protocol between a producer and
// a registration in another process step by step: the registration has read
// a head and claimed a slot when the producer scans (missing it) and goes
// on writing; the registration must then start where the producer's
// writes leave the bytes intact.
func TestRegistrationRacesProducer(t *testing.T) {
	needShared(t)
	r, path := create(t, pager.Mmap, testCap)
	ro := openReader(t, path)
	produce(t, r, pattern(9, 1000))
	s, _ := ro.claimSlot()
	s.b[slotNameLen] = 1
	s.b[slotName] = 'x'
	ro.setConsumerOptions(s, nil)
	s.pos().Store(ro.Head()) // 1000
	if _, err := r.TryWrite(pattern(10, 40000)); err != nil {
		t.Fatal(err)
	}
	buf, err := r.TryReserve(30000) // scans: the slot is only claimed
	if err != nil {
		t.Fatal(err)
	}
	// The registration completes.
	s.state().Store(slotRegistered)
	ro.regGen.Add(1)
	ro.raiseToLimit(s)
	if pos := s.pos().Load(); pos < r.liveLimit.Load()-testCap {
		t.Fatalf("registered at %d, but the producer may write up to %d", pos, r.liveLimit.Load())
	}
	c := &Consumer{r: ro, name: "x", s: s}
	got, _, err := c.Peek()
	if err != nil {
		t.Fatal(err)
	}
	snapshot := bytes.Clone(got)
	for i := range buf {
		buf[i] = 0xEE
	}
	r.Commit(len(buf))
	if !bytes.Equal(got, snapshot) {
		t.Fatal("a consumer's Peek slice changed after registration")
	}
}

func TestReadOnlyConsumerOfCopyProducer(t *testing.T) {
	needShared(t)
	r, path := create(t, pager.Copy, testCap)
	for i := 0; i < 3; i++ {
		produce(t, r, make([]byte, testCap)) // heap only
	}
	if _, err := r.TryWrite([]byte("y")); err != nil { // publishes its limit
		t.Fatal(err)
	}
	ro := openReader(t, path)
	c, err := ro.Consumer("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Peek(); err != nil {
		t.Fatalf("fresh consumer: %v", err)
	}
	if _, err := r.TryWrite([]byte("z")); err != nil {
		t.Fatalf("producer after the registration: %v", err)
	}
}

func TestSetHeadVisibility(t *testing.T) {
	needShared(t)
	r, path := create(t, pager.Copy, testCap)
	ro := openReader(t, path)
	c, err := ro.Consumer("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(3, 1000)
	produce(t, r, want) // heap only
	if err := r.SetHead(500); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Peek()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[:len(got)]) {
		t.Fatalf("another handle sees %d bytes that differ from the committed ones", len(got))
	}
	// SetHead wakes waiting consumers of the producer's process.
	r2, _ := create(t, pager.Mmap, testCap)
	c2, _ := r2.Consumer("c", nil)
	done := make(chan error, 1)
	go func() { done <- c2.Wait(context.Background()) }()
	for r2.dataWaiters.Load() == 0 {
		runtime.Gosched()
	}
	if err := r2.SetHead(100); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked after SetHead")
	}
}

func TestHostileHead(t *testing.T) {
	r, path := create(t, pager.Auto, testCap)
	r.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	for seq := uint64(0); seq < 2; seq++ {
		h := header{seq: seq + 10, capacity: testCap, head: ^uint64(0) - 9, tail: ^uint64(0) - 9}
		f.WriteAt(h.encode(), headerOffset(seq))
	}
	f.Close()
	if _, err := Open(path, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a head near 2^64: %v", err)
	}
}

func TestCreateNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ring")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			r, err := Create(path, &Options{Capacity: testCap})
			if err == nil {
				r.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, os.ErrExist) {
			t.Fatalf("concurrent create: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent creates succeeded", ok)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.creating-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
