package notify

import (
	"testing"
	"time"
)

func TestNotifier(t *testing.T) {
	var n Notifier
	if n.Broadcast() {
		t.Fatal("a broadcast with nobody waiting reported waiters")
	}
	ch := n.Wait()
	select {
	case <-ch:
		t.Fatal("woken before a broadcast")
	default:
	}
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	if !n.Broadcast() {
		t.Fatal("a broadcast to a waiter reported none")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter was not woken")
	}
	if n.Broadcast() {
		t.Fatal("a second broadcast reported waiters")
	}
}
