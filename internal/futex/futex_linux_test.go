//go:build linux

package futex

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestSharedMapping: the word can live in a shared file mapping (what the
// ring's live file is).
func TestSharedMapping(t *testing.T) {
	if !Supported() {
		t.Skip("no futexes here")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(4096)
	m, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Munmap(m)
	w := (*atomic.Uint32)(unsafe.Pointer(&m[64]))
	done := make(chan struct{})
	go func() {
		for w.Load() == 0 {
			Wait(w, 0, time.Second)
		}
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	w.Store(7)
	Wake(w)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the waiter on a shared mapping was not woken")
	}
}
