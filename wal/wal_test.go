package wal

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/ringlog/ringlog/internal/testkit"
	"github.com/ringlog/ringlog/pager"
)

var (
	backends       = testkit.Backends
	forEachBackend = testkit.ForEachBackend
)

const testCap = 1 << 20

func createLog(t testing.TB, b pager.Backend, o Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wal")
	o.Backend = b
	if o.Capacity == 0 {
		o.Capacity = testCap
	}
	l, err := Create(path, &o)
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}

func rec(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j*13 + j>>8)
	}
	return b
}

// readAll reads every record from the checkpoint.
func readAll(t testing.TB, l *Log) (pos []uint64, data [][]byte) {
	t.Helper()
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for p, b := range rd.All() {
		pos = append(pos, p)
		data = append(data, bytes.Clone(b))
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return pos, data
}

func TestAppendReopenRead(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		ctx := context.Background()
		l, path := createWith(t, c, Options{Sync: SyncNever})
		var want [][]byte
		var wantPos []uint64
		for i := 0; i < 300; i++ {
			r := rec(i, i*11%3000)
			p, err := l.Append(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			want, wantPos = append(want, r), append(wantPos, p)
		}
		batch := [][]byte{rec(1000, 10), rec(1001, 0), rec(1002, 5000)}
		p, err := l.AppendBatchSync(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range batch {
			want, wantPos = append(want, r), append(wantPos, p)
			p += uint64(recordSize(len(r)))
		}
		check := func(l *Log) {
			pos, data := readAll(t, l)
			if len(data) != len(want) {
				t.Fatalf("read %d records, want %d", len(data), len(want))
			}
			for i := range want {
				if pos[i] != wantPos[i] || !bytes.Equal(data[i], want[i]) {
					t.Fatalf("record %d at %d differs (want position %d)", i, pos[i], wantPos[i])
				}
			}
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		check(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open(path, &Options{Backend: c.b, Recovery: RecoverStrict})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		t.Log(l.Report())
		if l.Report().Cut() || l.Report().Records != len(want) {
			t.Fatalf("clean reopen: %v", l.Report())
		}
		check(l)
	})
}

// config is one layout on one backend.
type config struct {
	b      pager.Backend
	layout Layout
}

func (c config) String() string { return c.layout.String() + "/" + c.b.String() }

// opts fills in the backend and layout; the growing layout gets segments
// of a quarter of the capacity.
func (c config) opts(o Options) *Options {
	o.Backend, o.Layout = c.b, c.layout
	if o.Capacity == 0 {
		o.Capacity = testCap
	}
	if c.layout == Growing {
		o.SegmentSize = o.Capacity / 4
	}
	return &o
}

// forEachConfig runs fn for every layout on every backend.
func forEachConfig(t *testing.T, fn func(t *testing.T, c config)) {
	for _, layout := range []Layout{Bounded, Growing} {
		t.Run(layout.String(), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b pager.Backend) { fn(t, config{b, layout}) })
		})
	}
}

func createWith(t testing.TB, c config, o Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wal")
	l, err := Create(path, c.opts(o))
	if err != nil {
		t.Fatal(err)
	}
	return l, path
}
