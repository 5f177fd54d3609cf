package wal

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// TestInfo: Info reports what the log was created with, the backend it
// is mapped with, and the epoch its records carry.
func TestInfo(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		o    Options
		seg  int64
	}{
		{"bounded", Options{Capacity: 1 << 20, Backend: pager.Copy}, 0},
		{"growing", Options{Layout: Growing, Capacity: 8 << 20, SegmentSize: 1 << 20, Backend: pager.Mmap}, 1 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := pager.Available(c.o.Backend); err != nil {
				t.Skipf("backend %v: %v", c.o.Backend, err)
			}
			path := filepath.Join(dir, c.name)
			l, err := Create(path, &c.o)
			if err != nil {
				t.Fatal(err)
			}
			i := l.Info()
			if i.Layout != c.o.Layout || i.Capacity != c.o.Capacity || i.SegmentSize != c.seg || i.Backend != c.o.Backend || i.Epoch != l.Report().Epoch {
				t.Fatalf("Info() = %+v; created with %+v, report epoch %d", i, c.o, l.Report().Epoch)
			}
			if _, err := l.AppendSync(context.Background(), []byte("x")); err != nil {
				t.Fatal(err)
			}
			epoch := i.Epoch
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// A reopen starts a new epoch; a read-only open reports the
			// header's.
			l, err = Open(path, &Options{Backend: pager.Copy})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			i = l.Info()
			if i.Epoch <= epoch || i.Epoch != l.Report().Epoch || i.Backend != pager.Copy || i.Layout != c.o.Layout {
				t.Fatalf("after reopen: Info() = %+v, epoch before %d, report epoch %d", i, epoch, l.Report().Epoch)
			}
			if pager.Available(pager.Mmap) != nil {
				return // a reader beside a writer needs the header region shared (mmap)
			}
			ro, err := Open(path, &Options{ReadOnly: true, Backend: pager.Copy})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			if ri := ro.Info(); ri != i {
				t.Fatalf("read-only Info() = %+v, the writer's %+v", ri, i)
			}
		})
	}
}
