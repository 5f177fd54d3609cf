// Package notify wakes goroutines of one process waiting for a condition,
// at the cost of one atomic load for the side that signals when nobody
// waits.
package notify

import (
	"sync"
	"sync/atomic"
)

// Notifier wakes every goroutine waiting on it. The zero value is ready.
//
// A waiter calls Wait, then checks its condition again, then blocks on the
// channel: a Broadcast that came between the first check and Wait is not
// missed, since the waiter looks again after arming.
type Notifier struct {
	armed atomic.Bool
	mu    sync.Mutex
	ch    chan struct{}
}

// Wait arms the notifier and returns the channel the next Broadcast closes.
func (n *Notifier) Wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	n.armed.Store(true)
	return n.ch
}

// Broadcast wakes the waiters, reporting whether there were any. It costs
// one atomic load when nobody has armed the notifier since the last wake.
func (n *Notifier) Broadcast() bool {
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
