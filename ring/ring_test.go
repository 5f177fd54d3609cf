package ring

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringlog/ringlog/internal/testkit"
	"github.com/ringlog/ringlog/pager"
)

var (
	backends       = testkit.Backends
	forEachBackend = testkit.ForEachBackend
)

const testCap = 64 << 10

func create(t testing.TB, b pager.Backend, capacity int64) (*Ring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring")
	r, err := Create(path, &Options{Capacity: capacity, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

// produce appends p through Reserve/Commit.
func produce(t testing.TB, r *Ring, p []byte) {
	t.Helper()
	buf, err := r.TryReserve(len(p))
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, p)
	if err := r.Commit(len(p)); err != nil {
		t.Fatal(err)
	}
}

func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + i>>8)
	}
	return b
}

// fileBytes reads the data area bytes of positions [pos, pos+n) from the
// file with pread, independently of any mapping.
func fileBytes(t testing.TB, path string, capacity, pos uint64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make([]byte, n)
	for i := 0; i < n; {
		p := (pos + uint64(i)) % capacity
		k := min(n-i, int(capacity-p))
		if _, err := f.ReadAt(out[i:i+k], int64(dataOff)+int64(p)); err != nil {
			t.Fatal(err)
		}
		i += k
	}
	return out
}

// TestWrapAtEveryOffset puts a wrapping record at every start offset
// within a page of the end of the data area, through both producer paths,
// and checks the consumer's one slice and the file.
func TestWrapAtEveryOffset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, path := create(t, b, testCap)
		c, err := r.Consumer("check", nil)
		if err != nil {
			t.Fatal(err)
		}
		ps := pager.PageSize
		const n = 300
		step := 1
		if testing.Short() {
			step = 61
		}
		for start := testCap - ps; start < testCap+ps-n; start += step {
			// Move the head to start (mod C) with filler.
			head := r.Head()
			filler := (uint64(start) + testCap - head%testCap) % testCap
			for filler > 0 {
				k := min(filler, testCap/2)
				produce(t, r, make([]byte, k))
				drain(t, c)
				filler -= k
			}
			rec := pattern(start, n)
			pos := r.Head()
			if start%2 == 0 {
				produce(t, r, rec)
			} else if _, err := r.Write(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			got, at, err := c.Peek()
			if err != nil || at != pos || !bytes.Equal(got, rec) {
				t.Fatalf("start %d: peek at %d got %d bytes (%v), want the %d-byte record at %d", start, at, len(got), err, n, pos)
			}
			flush(t, r)
			if f := fileBytes(t, path, testCap, pos, n); !bytes.Equal(f, rec) {
				t.Fatalf("start %d: the file holds other bytes than the record", start)
			}
			if err := c.Release(n); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func drain(t testing.TB, c *Consumer) {
	t.Helper()
	b, _, err := c.Peek()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Release(len(b)); err != nil {
		t.Fatal(err)
	}
}

func TestReserveWholeCapacity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, _ := create(t, b, testCap)
		produce(t, r, pattern(1, 1000)) // so the whole-ring reservation wraps
		if _, err := r.TryReserve(testCap + 1); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), r.Name()) {
			t.Fatalf("reserving C+1: %v", err)
		}
		c, _ := r.Consumer("c", nil)
		whole := pattern(2, testCap)
		buf, err := r.TryReserve(testCap)
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) != testCap {
			t.Fatalf("reservation of C has %d bytes", len(buf))
		}
		copy(buf, whole)
		if err := r.Commit(testCap); err != nil {
			t.Fatal(err)
		}
		got, _, err := c.Peek()
		if err != nil || !bytes.Equal(got, whole) {
			t.Fatalf("peek of a full ring: %d bytes, %v", len(got), err)
		}
		// Full: nothing more fits until the consumer releases.
		if _, err := r.TryReserve(1); !errors.Is(err, ErrFull) {
			t.Fatalf("reserve in a full ring: %v", err)
		}
		if err := c.Release(1); err != nil {
			t.Fatal(err)
		}
		if _, err := r.TryReserve(1); err != nil {
			t.Fatalf("reserve after a release: %v", err)
		}
		r.Cancel()
	})
}

func TestCancelledReservation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, _ := create(t, b, testCap)
		c, _ := r.Consumer("c", nil)
		produce(t, r, pattern(3, testCap-100))
		// Waiting for space that never comes: the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		head := r.Head()
		if _, err := r.Reserve(ctx, 200); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("reserve with an ending context: %v", err)
		}
		if _, err := r.Write(ctx, make([]byte, 200)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write with an ending context: %v", err)
		}
		if r.Head() != head {
			t.Fatal("a cancelled reservation moved the head")
		}
		// Reserved, filled, cancelled: nothing appended, the next
		// reservation gets the same bytes.
		buf, err := r.TryReserve(50)
		if err != nil {
			t.Fatal(err)
		}
		copy(buf, bytes.Repeat([]byte{0xEE}, 50))
		if err := r.Cancel(); err != nil {
			t.Fatal(err)
		}
		if err := r.Commit(1); !errors.Is(err, ErrNotReserved) {
			t.Fatalf("commit after cancel: %v", err)
		}
		got, _, _ := c.Peek()
		if len(got) != testCap-100 || r.Head() != head {
			t.Fatalf("after cancel the consumer sees %d bytes, head %d (was %d)", len(got), r.Head(), head)
		}
		// A waiting reservation is released by the consumer.
		done := make(chan error, 1)
		go func() {
			_, err := r.Write(context.Background(), pattern(4, 200))
			done <- err
		}()
		time.Sleep(5 * time.Millisecond)
		if err := c.Release(300); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("write after the consumer released: %v", err)
		}
		if _, err := r.TryReserve(1); err != nil {
			t.Fatal(err)
		}
		if _, err := r.TryReserve(1); !errors.Is(err, ErrReserved) {
			t.Fatalf("second outstanding reservation: %v", err)
		}
		r.Cancel()
	})
}

func TestReopenKeepsPositionsAndConsumers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		path := filepath.Join(t.TempDir(), "ring")
		r, err := Create(path, &Options{Capacity: testCap, Backend: b, UserData: []byte("meta v1")})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := r.Consumer("alpha", nil)
		z, _ := r.Consumer("zeta", &ConsumerOptions{Lossy: true})
		data := pattern(5, 50000)
		produce(t, r, data)
		a.Release(1234)
		z.Release(40000)
		r.SetUserData([]byte("meta v2"))
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Peek(); !errors.Is(err, ErrClosed) {
			t.Fatalf("peek through a consumer of a closed ring: %v", err)
		}
		r, err = Open(path, &Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Head() != 50000 || string(r.UserData()) != "meta v2" {
			t.Fatalf("reopened head %d, user data %q", r.Head(), r.UserData())
		}
		infos := r.Consumers()
		if len(infos) != 2 || infos[0].Name != "alpha" || infos[0].Position != 1234 || infos[1].Position != 40000 || !infos[1].Lossy || infos[0].Lossy {
			t.Fatalf("consumers after reopen: %+v", infos)
		}
		if r.Tail() != 1234 {
			t.Fatalf("tail %d, want the slowest retaining consumer's 1234", r.Tail())
		}
		a, err = r.Consumer("alpha", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, pos, err := a.Peek()
		if err != nil || pos != 1234 || !bytes.Equal(got, data[1234:]) {
			t.Fatalf("alpha after reopen: pos %d, %d bytes, %v", pos, len(got), err)
		}
		if _, err := r.Consumer("zeta", &ConsumerOptions{Lossy: false}); err == nil {
			t.Fatal("attaching a lossy consumer as retaining succeeded")
		}
	})
}

func TestSecondProducerIsLocked(t *testing.T) {
	r, path := create(t, pager.Auto, testCap)
	_ = r
	if _, err := Open(path, nil); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second producer: %v", err)
	}
	ro, err := Open(path, &Options{ReadOnly: true})
	if pager.Available(pager.Mmap) != nil {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("a read-only open without shared memory: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("a read-only open beside the producer: %v", err)
	}
	defer ro.Close()
	if _, err := ro.TryReserve(1); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("reserve on a read-only ring: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []int64{0, -65536, 1000, 65536 + 4096} {
		if _, err := Create(filepath.Join(dir, "r"+strconv.FormatInt(c, 10)), &Options{Capacity: c}); err == nil {
			t.Errorf("capacity %d accepted", c)
		}
	}
	r, path := create(t, pager.Auto, testCap)
	_ = r
	if _, err := Create(path, &Options{Capacity: testCap}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over an existing ring: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("created file mode %v, %v", st.Mode(), err)
	}
	if _, err := os.Stat(path + ".creating"); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
}

// TestPinning checks that bytes a reader holds are never overwritten: the
// producer gets ErrFull (or waits) instead; and that a lossy consumer is
// detached, and told so, instead of holding the producer back.
func TestPinning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, _ := create(t, b, testCap)
		c, _ := r.Consumer("slow", nil)
		held := pattern(6, 40000)
		produce(t, r, held)
		view, _, _ := c.Peek()
		if _, err := r.TryReserve(30000); !errors.Is(err, ErrFull) {
			t.Fatalf("overwriting held bytes: %v", err)
		}
		if !bytes.Equal(view, held) {
			t.Fatal("held slice changed")
		}
		// A pin holds too, after the consumer lets go.
		p, err := r.Pin(c.Position() + 10000)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Release(40000); err != nil {
			t.Fatal(err)
		}
		if _, err := r.TryReserve(40000); !errors.Is(err, ErrFull) {
			t.Fatalf("overwriting pinned bytes: %v", err)
		}
		if _, err := r.TryReserve(30000); err != nil { // up to the pin
			t.Fatalf("reserving up to the pin: %v", err)
		}
		r.Cancel()
		if !bytes.Equal(view[10000:], held[10000:]) {
			t.Fatal("pinned bytes changed")
		}
		p.Release()
		if _, err := r.Pin(0); !errors.Is(err, ErrRange) {
			t.Fatalf("pin before the tail: %v", err)
		}

		// Lossy: the producer runs over it.
		l, err := r.Consumer("lossy", &ConsumerOptions{Lossy: true})
		if err != nil {
			t.Fatal(err)
		}
		produce(t, r, pattern(7, 30000))
		drain(t, c)
		lv, _, err := l.Peek()
		if err != nil || len(lv) != 30000 {
			t.Fatalf("lossy peek: %d bytes, %v", len(lv), err)
		}
		produce(t, r, pattern(8, 50000)) // overwrites the start of lv
		drain(t, c)
		if err := l.Release(100); !errors.Is(err, ErrOverrun) {
			t.Fatalf("lossy consumer after being overrun: %v", err)
		}
		if _, _, err := l.Peek(); !errors.Is(err, ErrOverrun) {
			t.Fatalf("peek after overrun: %v", err)
		}
		info := r.Consumers()
		if !info[1].Detached {
			t.Fatalf("consumers: %+v", info)
		}
		skipped, err := l.Reattach()
		if err != nil || skipped == 0 {
			t.Fatalf("reattach: skipped %d, %v", skipped, err)
		}
		produce(t, r, []byte("after"))
		if got, _, err := l.Peek(); err != nil || string(got) != "after" {
			t.Fatalf("after reattach: %q, %v", got, err)
		}
	})
}

func TestLossyMaxLag(t *testing.T) {
	r, _ := create(t, pager.Auto, testCap)
	l, _ := r.Consumer("l", &ConsumerOptions{Lossy: true, MaxLag: 1000})
	produce(t, r, make([]byte, 900))
	if _, _, err := l.Peek(); err != nil {
		t.Fatal(err)
	}
	produce(t, r, make([]byte, 200))
	if _, _, err := l.Peek(); !errors.Is(err, ErrOverrun) {
		t.Fatalf("lagging past MaxLag: %v", err)
	}
}

func TestConsumerRegistry(t *testing.T) {
	r, _ := create(t, pager.Auto, testCap)
	if _, err := r.Consumer("", nil); err == nil {
		t.Fatal("empty name accepted")
	}
	if _, err := r.Consumer(strings.Repeat("x", 64), nil); err == nil {
		t.Fatal("64-byte name accepted")
	}
	c, err := r.Consumer("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Consumer("a", nil); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("second handle: %v", err)
	}
	if err := r.RemoveConsumer("a"); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("removing an attached consumer: %v", err)
	}
	c.Close()
	if err := r.RemoveConsumer("a"); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveConsumer("a"); !errors.Is(err, ErrNoConsumer) {
		t.Fatalf("removing twice: %v", err)
	}
	for i := 0; i < maxSlots; i++ {
		c, err := r.Consumer("c"+strconv.Itoa(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if _, err := r.Consumer("one too many", nil); !errors.Is(err, ErrNoSlots) {
		t.Fatalf("consumer %d: %v", maxSlots+1, err)
	}
}

// TestModel runs random producer and consumer steps against a plain byte
// slice model.
func TestModel(t *testing.T) {
	for _, layout := range []Layout{Bounded, Growing} {
		t.Run(layout.String(), func(t *testing.T) { testModel(t, layout) })
	}
}

// layoutOptions are the options of a ring of capacity C in a layout: the
// growing one with segments of a quarter of it.
func layoutOptions(layout Layout, C int64, b pager.Backend) *Options {
	o := &Options{Capacity: C, Backend: b, Layout: layout}
	if layout == Growing {
		o.SegmentSize = C / 4
	}
	return o
}

func testModel(t *testing.T, layout Layout) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		seed := rand.Uint64()
		if s := os.Getenv("RINGLOG_SEED"); s != "" {
			seed, _ = strconv.ParseUint(s, 10, 64)
		}
		t.Logf("seed %d (rerun with RINGLOG_SEED=%d)", seed, seed)
		rng := rand.New(rand.NewPCG(seed, 1))
		path := filepath.Join(t.TempDir(), "ring")
		r, err := Create(path, layoutOptions(layout, 4*testCap, b))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { r.Close() }()
		var model []byte // every byte ever committed
		names := []string{"a", "b"}
		cons := map[string]*Consumer{}
		for _, n := range names {
			cons[n], _ = r.Consumer(n, nil)
		}
		steps := 3000
		if testing.Short() {
			steps = 500
		}
		for step := 0; step < steps; step++ {
			switch k := rng.IntN(20); {
			case k < 8: // produce
				n := rng.IntN(20000)
				if rng.IntN(10) == 0 {
					n = rng.IntN(2*testCap + 2)
				}
				p := pattern(step, n)
				var err error
				if rng.IntN(2) == 0 {
					var buf []byte
					if buf, err = r.TryReserve(n); err == nil {
						copy(buf, p)
						err = r.Commit(n)
					}
				} else {
					_, err = r.TryWrite(p)
				}
				tail := int(minPos(r))
				free := int(r.Capacity()) - (len(model) - tail)
				if layout == Growing {
					free -= tail % (r.Span()) // a slot is reused only when its segment is all released
				}
				switch {
				case n > r.Span():
					if !errors.Is(err, ErrTooLarge) {
						t.Fatalf("step %d: %d bytes: %v", step, n, err)
					}
				case n > free:
					if !errors.Is(err, ErrFull) {
						t.Fatalf("step %d: %d bytes with %d free: %v", step, n, free, err)
					}
				case err != nil:
					t.Fatalf("step %d: %d bytes with %d free: %v", step, n, free, err)
				default:
					model = append(model, p...)
				}
			case k < 16: // a consumer reads and releases some
				c := cons[names[rng.IntN(2)]]
				got, pos, err := c.Peek()
				if err != nil {
					t.Fatal(err)
				}
				// Everything unread, or (growing layout) at least a span.
				if want := min(len(model)-int(pos), r.Span()); len(got) < want || !bytes.Equal(got, model[pos:int(pos)+len(got)]) {
					for i := range got {
						if got[i] != model[int(pos)+i] {
							t.Logf("first difference at position %d (phys %d)", int(pos)+i, (int(pos)+i)%int(r.Capacity()))
							break
						}
					}
					t.Fatalf("step %d: consumer %s at %d sees %d bytes, model has %d", step, c.Name(), pos, len(got), len(model))
				}
				if layout == Bounded && int(pos)+len(got) != len(model) {
					t.Fatalf("step %d: consumer %s sees %d of %d unread bytes", step, c.Name(), len(got), len(model)-int(pos))
				}
				if len(got) > 0 {
					if err := c.Release(rng.IntN(len(got) + 1)); err != nil {
						t.Fatal(err)
					}
				}
			case k < 17: // sync
				if err := r.Sync(); err != nil {
					t.Fatal(err)
				}
			default: // reopen
				pos := map[string]uint64{}
				for n, c := range cons {
					pos[n] = c.Position()
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				if r, err = Open(path, &Options{Backend: b}); err != nil {
					t.Fatal(err)
				}
				if r.Head() != uint64(len(model)) {
					t.Fatalf("step %d: reopened head %d, model %d", step, r.Head(), len(model))
				}
				for _, n := range names {
					if cons[n], err = r.Consumer(n, nil); err != nil {
						t.Fatal(err)
					}
					if cons[n].Position() != pos[n] {
						t.Fatalf("step %d: consumer %s reopened at %d, was %d", step, n, cons[n].Position(), pos[n])
					}
				}
			}
		}
	})
}

func minPos(r *Ring) uint64 { return r.Tail() }

// flush writes what only the heap view holds (Copy backend) to the file,
// without the fdatasync of SyncData.
func flush(t testing.TB, r *Ring) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.flushLocked(); err != nil {
		t.Fatal(err)
	}
}

func TestSliceAndPin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, _ := create(t, b, testCap)
		produce(t, r, make([]byte, testCap-1000))
		rec := pattern(9, 3000) // wraps
		pos := r.Head()
		// With no consumer nothing is retained: pin first, then write.
		pin, err := r.Pin(pos)
		if err != nil {
			t.Fatal(err)
		}
		produce(t, r, rec)
		got, err := r.Slice(pos, len(rec))
		if err != nil || !bytes.Equal(got, rec) {
			t.Fatalf("slice across the wrap: %v", err)
		}
		// The pin holds it: the producer may not reach it.
		if _, err := r.TryReserve(testCap - 2999); !errors.Is(err, ErrFull) {
			t.Fatalf("overwriting a pinned record: %v", err)
		}
		if !bytes.Equal(got, rec) {
			t.Fatal("pinned slice changed")
		}
		for _, c := range []struct {
			pos uint64
			n   int
		}{{pos, len(rec) + 1}, {r.Head() + 1, 0}, {0, 10}, {pos, -1}} {
			if _, err := r.Slice(c.pos, c.n); !errors.Is(err, ErrRange) {
				t.Errorf("Slice(%d, %d): %v", c.pos, c.n, err)
			}
		}
		pin.Move(pos + 1000)
		if pin.Position() != pos+1000 {
			t.Fatalf("pin at %d after Move", pin.Position())
		}
		pin.Release()
		if _, err := r.TryReserve(testCap); err != nil {
			t.Fatalf("after the pin is released: %v", err)
		}
		r.Cancel()
	})
}

func TestWriter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, path := create(t, b, testCap)
		c, _ := r.Consumer("c", nil)
		w := r.NewWriter(4096)
		ctx := context.Background()
		var want []byte
		for i := 0; i < 50; i++ {
			rec := pattern(i, 100+i*37)
			if i == 20 {
				rec = pattern(i, 9000) // larger than the buffer: written directly
			}
			pos, err := w.Append(ctx, rec)
			if err != nil {
				t.Fatal(err)
			}
			if pos != uint64(len(want)) {
				t.Fatalf("append %d at position %d, want %d", i, pos, len(want))
			}
			want = append(want, rec...)
			if got, _, _ := c.Peek(); len(got)+w.Buffered() != len(want) {
				t.Fatalf("append %d: %d visible + %d buffered != %d", i, len(got), w.Buffered(), len(want))
			}
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got, _, err := c.Peek()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("after flush: %d bytes, %v", len(got), err)
		}
		if err := r.SyncData(); err != nil {
			t.Fatal(err)
		}
		if f := fileBytes(t, path, testCap, 0, len(want)); !bytes.Equal(f, want) {
			t.Fatal("file differs from what was written")
		}
	})
}

func TestSyncFailureIsSticky(t *testing.T) {
	r, _ := create(t, pager.Auto, testCap)
	produce(t, r, []byte("x"))
	r.f.Close() // the next fdatasync fails
	err := r.Sync()
	if !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("sync on a closed descriptor: %v", err)
	}
	if err2 := r.SyncData(); !errors.Is(err2, ErrSyncFailed) {
		t.Fatalf("sync after a failure: %v", err2)
	}
}

func TestSetHeadAndRaw(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, path := create(t, b, testCap)
		c, _ := r.Consumer("c", nil)
		produce(t, r, pattern(1, 5000))
		// Bytes written past the head (as a crashed producer may leave
		// them) are found with Raw and adopted with SetHead.
		buf, _ := r.TryReserve(3000)
		copy(buf, pattern(2, 3000))
		r.Cancel()
		raw, err := r.Raw(5000, 3000)
		if err != nil || !bytes.Equal(raw, pattern(2, 3000)) {
			t.Fatalf("raw bytes past the head: %v", err)
		}
		if err := r.SetHead(8000); err != nil {
			t.Fatal(err)
		}
		got, _, _ := c.Peek()
		if len(got) != 8000 || !bytes.Equal(got[5000:], pattern(2, 3000)) {
			t.Fatalf("after SetHead forward the consumer sees %d bytes", len(got))
		}
		// Back: the consumer past the new head moves back with it.
		c.Release(7000)
		if err := r.SetHead(6000); err != nil {
			t.Fatal(err)
		}
		if c.Position() != 6000 || r.Head() != 6000 {
			t.Fatalf("after SetHead back: consumer at %d, head %d", c.Position(), r.Head())
		}
		p, _ := r.Pin(6000)
		produce(t, r, []byte("new"))
		if err := r.SetHead(6000); !errors.Is(err, ErrRange) {
			t.Fatalf("truncating what a pin holds: %v", err)
		}
		// A pin before the new head keeps only bytes before it.
		if err := r.SetHead(6002); err != nil {
			t.Fatalf("truncating after a pin: %v", err)
		}
		if err := r.SetHead(6003); err != nil {
			t.Fatal(err)
		}
		p.Release()
		if err := r.SetHead(6000 + testCap + 1); !errors.Is(err, ErrRange) {
			t.Fatalf("head past the capacity: %v", err)
		}
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
		if f := fileBytes(t, path, testCap, 6000, 3); string(f) != "new" {
			t.Fatalf("file holds %q", f)
		}
		// The synced position moves back with the head.
		if err := r.SetHead(5500); err != nil || r.Synced() != 5500 {
			t.Fatalf("synced %d after moving the head back to 5500: %v", r.Synced(), err)
		}
	})
}

// TestReadOnlyHeadAfterProducerCloses: a read-only handle that followed a
// producer sees where it ended once it closed, not the head the header
// had when the handle opened.
func TestReadOnlyHeadAfterProducerCloses(t *testing.T) {
	if pager.Available(pager.Mmap) != nil {
		t.Skip("read-only handles need shared memory")
	}
	for _, seen := range []bool{false, true} {
		r, path := create(t, pager.Auto, testCap)
		produce(t, r, pattern(1, 1000))
		ro, err := Open(path, &Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if seen && ro.Head() != 1000 {
			t.Fatalf("read-only head %d while the producer is at 1000", ro.Head())
		}
		produce(t, r, pattern(2, 3000))
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if got := ro.Head(); got != 4000 {
			t.Fatalf("looked before: %v: read-only head %d after the producer closed at 4000", seen, got)
		}
		ro.Close()
	}
}
