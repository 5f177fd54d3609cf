package futex

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitWake(t *testing.T) {
	var w atomic.Uint32
	// A value that does not match returns at once.
	t0 := time.Now()
	Wait(&w, 1, time.Second)
	if time.Since(t0) > 500*time.Millisecond {
		t.Fatal("Wait on a word that already moved blocked")
	}
	// A waiter is woken.
	done := make(chan struct{})
	go func() {
		for w.Load() == 0 {
			Wait(&w, 0, time.Second)
		}
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	w.Store(1)
	Wake(&w)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the waiter was not woken")
	}
	// The timeout bounds the wait.
	t0 = time.Now()
	Wait(&w, 1, 20*time.Millisecond)
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("waited %v past a 20ms timeout", d)
	}
}
