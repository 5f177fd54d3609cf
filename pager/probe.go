package pager

import (
	"bytes"
	"fmt"
	"os"
	"sync"
)

var probe struct {
	once sync.Once
	errs [len(backendNames)]error
}

// Available reports whether backend b works in this process: nil, or why
// not. Auto and Copy are always available. The answer comes from a probe
// run once per process on a scratch file.
func Available(b Backend) error {
	switch b {
	case Auto, Copy:
		return nil
	case Remap, Mmap:
		probe.once.Do(func() {
			for _, b := range []Backend{Remap, Mmap} {
				probe.errs[b] = probeBackend(b)
			}
		})
		return probe.errs[b]
	}
	return fmt.Errorf("pager: backend %v: %w", b, ErrUnsupported)
}

// DefaultBackend is what Auto picks: the first available of Remap, Mmap and
// Copy, never Remap for a read-only view.
func DefaultBackend(readOnly bool) Backend {
	if !readOnly && Available(Remap) == nil {
		return Remap
	}
	if Available(Mmap) == nil {
		return Mmap
	}
	return Copy
}

// probeBackend exercises b on a two-page scratch file: map, re-splice over
// mapped pages, alias one file page at two view pages, store through one
// and read through the other.
func probeBackend(b Backend) (err error) {
	ps := PageSize
	f, cleanup, err := probeFile()
	if err != nil {
		return fmt.Errorf("pager: probing %v: %w", b, err)
	}
	defer cleanup()
	if _, err := f.WriteAt(append(bytes.Repeat([]byte{1}, ps), bytes.Repeat([]byte{2}, ps)...), 0); err != nil {
		return fmt.Errorf("pager: probing %v: %w", b, err)
	}
	v, err := newView(f, 2*ps, Options{Backend: b})
	if err != nil {
		return err
	}
	defer v.Close()
	if err := v.Map(0, 0, 2*ps); err != nil {
		return err
	}
	if err := v.Map(0, int64(ps), ps); err != nil {
		return err
	}
	if _, err := v.WriteAt([]byte{3}, 0); err != nil {
		return err
	}
	got := make([]byte, 2)
	if _, err := v.ReadAt(got[:1], int64(ps)); err != nil {
		return err
	}
	if _, err := f.ReadAt(got[1:], int64(ps)); err != nil {
		return err
	}
	if got[0] != 3 || got[1] != 3 {
		return fmt.Errorf("pager: probing %v: a store through an alias read back %v, want [3 3]: %w", b, got, ErrUnsupported)
	}
	return nil
}

// tempProbeFile is the portable scratch file.
func tempProbeFile() (*os.File, func(), error) {
	f, err := os.CreateTemp("", "ringlog-probe-*")
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close(); os.Remove(f.Name()) }, nil
}
