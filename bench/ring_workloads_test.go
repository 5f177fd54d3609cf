package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// newSPSCPass creates a ring of capacity bytes on backend in a test
// directory and a pass over it for messages of size bytes.
func newSPSCPass(t *testing.T, backend pager.Backend, capacity, size int) *spscRingPass {
	t.Helper()
	if err := pager.Available(backend); err != nil {
		t.Skip(err)
	}
	rg, err := ring.Create(filepath.Join(t.TempDir(), "ring"), &ring.Options{Capacity: int64(capacity), Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rg.Close() })
	c, err := rg.Consumer("bench", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &spscRingPass{r: rg, c: c, size: size, tmpl: spscTemplate(size), batchMax: capacity / 4}
}

// A ring of 16 messages, 3000 of them passed through it: the producer keeps
// running into a full ring and waiting for the consumer's releases, which
// the workloads' large rings seldom do. Run twice, as the workload runs a
// warm-up pass and a timed pass over the same ring.
func TestSPSCRingPassSmallRing(t *testing.T) {
	for _, b := range []pager.Backend{pager.Remap, pager.Mmap, pager.Copy} {
		t.Run(b.String(), func(t *testing.T) {
			const capacity, size, n = 64 << 10, 4 << 10, 3000
			p := newSPSCPass(t, b, capacity, size)
			for pass := range 2 {
				start := p.r.Head()
				perr, cerr := p.run(n)
				if perr != nil || cerr != nil {
					t.Fatalf("pass %d: producer %v, consumer %v", pass, perr, cerr)
				}
				if err := spscVerify("pass", n, p.count, spscWantXOR(n), p.xor); err != nil {
					t.Fatalf("pass %d: %v", pass, err)
				}
				if got := p.r.Head() - start; got != n*size {
					t.Fatalf("pass %d: head moved %d bytes, want %d", pass, got, n*size)
				}
				if p.batches == 0 || p.count/p.batches > capacity/4/size {
					t.Fatalf("pass %d: %d messages in %d batches, batches of at most %d", pass, p.count, p.batches, capacity/4/size)
				}
			}
		})
	}
}

func TestSPSCChanPass(t *testing.T) {
	const size, n = 64, 10_000
	count, x := spscChanPass(size, n, 16, spscTemplate(size))
	if err := spscVerify("pass", n, count, spscWantXOR(n), x); err != nil {
		t.Fatal(err)
	}
}

// The check notices a message missing, doubled or replaced by another.
func TestSPSCCheck(t *testing.T) {
	const n = 100_000
	m := make([]byte, 64)
	tmpl := spscTemplate(len(m))
	seen := map[uint64]int{}
	for i := range n {
		spscFill(m, tmpl, i)
		f := spscFold(m)
		if f == 0 {
			t.Fatalf("message %d folds to 0: missing or doubled, it would go unnoticed", i)
		}
		if j, ok := seen[f]; ok {
			t.Fatalf("messages %d and %d fold to the same word", j, i)
		}
		seen[f] = i
	}
	want := spscWantXOR(n)
	if err := spscVerify("pass", n, n-1, want, want); err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Errorf("a missing message: %v", err)
	}
	if err := spscVerify("pass", n, n, want, want^1); err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Errorf("a wrong XOR: %v", err)
	}
}

// A batch that is not a whole number of messages fails the consumer.
func TestSPSCRingPartialMessage(t *testing.T) {
	p := newSPSCPass(t, pager.Copy, 64<<10, 64)
	if _, err := p.r.TryReserve(100); err != nil {
		t.Fatal(err)
	}
	if err := p.r.Commit(100); err != nil {
		t.Fatal(err)
	}
	err := p.consume(context.Background(), 10)
	if err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Fatalf("consuming 100 bytes of 64-byte messages: %v", err)
	}
}

// A consumer that expects more messages than the producer commits stops
// when the producer is gone instead of waiting for ever, and the count
// fails verification.
func TestSPSCRingShortProducer(t *testing.T) {
	p := newSPSCPass(t, pager.Copy, 64<<10, 64)
	if err := p.produce(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	produced, done := context.WithCancel(context.Background())
	done()
	if err := p.consume(produced, 10); err != nil {
		t.Fatal(err)
	}
	if err := spscVerify("pass", 10, p.count, spscWantXOR(10), p.xor); err == nil {
		t.Fatalf("5 of 10 messages passed verification")
	}
	if p.count != 5 || p.xor != spscWantXOR(5) {
		t.Fatalf("consumer saw %d messages, XOR %#x; want 5, %#x", p.count, p.xor, spscWantXOR(5))
	}
}
