package ring

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

const segTest = 64 << 10

func createGrowing(t testing.TB, b pager.Backend, slots int) (*Ring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring")
	r, err := Create(path, &Options{Capacity: int64(slots) * segTest, SegmentSize: segTest, Layout: Growing, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

func fileSize(t testing.TB, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestGrowingGrowsAndRecycles: the file grows by segments while a consumer
// lags, stops growing once it releases, and segments behind the tail are
// reused (moved between slots by remapping) instead of adding more.
func TestGrowingGrowsAndRecycles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, path := createGrowing(t, b, 8)
		if r.Layout() != Growing || r.Span() != segTest || fileSize(t, path) != dataOff {
			t.Fatalf("new growing ring: layout %v span %d file %d", r.Layout(), r.Span(), fileSize(t, path))
		}
		c, _ := r.Consumer("c", nil)
		segBytes := int64(segHeaderSize + segTest)
		// Retain 5 segments' worth: the file holds at least that.
		var want []byte
		for i := 0; i < 5*16; i++ {
			rec := pattern(i, segTest/16)
			produce(t, r, rec)
			want = append(want, rec...)
		}
		grown := fileSize(t, path)
		if grown < dataOff+5*segBytes || grown > dataOff+6*segBytes {
			t.Fatalf("file of %d bytes retaining 5 segments", grown)
		}
		// Stream 40 more segments through, releasing as we go: the file
		// stops growing (the retained bytes may touch one segment more
		// than they fill, at each end).
		var settled int64
		for i := 0; i < 40*16; i++ {
			if i == 20*16 {
				settled = fileSize(t, path)
			}
			got, pos, err := c.Peek()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[:len(got)]) {
				t.Fatalf("consumer at %d reads other bytes than were written", pos)
			}
			k := min(len(got), segTest/16)
			c.Release(k)
			want = want[k:]
			rec := pattern(1000+i, segTest/16)
			produce(t, r, rec)
			want = append(want, rec...)
		}
		if end := fileSize(t, path); end != settled || end > dataOff+7*segBytes {
			t.Fatalf("file of %d bytes after 20 segments, %d after 40, retaining 5 (at first %d)", settled, end, grown)
		}
		// Retaining more than the capacity allows is refused.
		if _, err := r.TryReserve(segTest + 1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("a reservation over a segment: %v", err)
		}
	})
}

// TestGrowingWrapAtView: records that start near the end of the view run
// into the mirror of slot 0 and are still one slice, through both producer
// paths, and the file holds them where the segment table says.
func TestGrowingWrapAtView(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, path := createGrowing(t, b, 4)
		c, _ := r.Consumer("c", nil)
		V := uint64(4 * segTest)
		for lap := 0; lap < 3; lap++ {
			// Fill up to a few bytes before the end of the view.
			for r.Head()%V < V-5000 && r.Head()%V >= 0 {
				n := int(min(V-5000-r.Head()%V, segTest/2))
				if n == 0 {
					break
				}
				produce(t, r, make([]byte, n))
				drain(t, c)
			}
			rec := pattern(lap, 12000)
			pos := r.Head()
			if lap%2 == 0 {
				produce(t, r, rec)
			} else if _, err := r.Write(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			got, at, err := c.Peek()
			if err != nil || at != pos || !bytes.Equal(got, rec) {
				t.Fatalf("lap %d: peek at %d: %d bytes, %v", lap, at, len(got), err)
			}
			flush(t, r)
			f, _ := os.Open(path)
			fb := make([]byte, len(rec))
			if err := r.ReadAt(fb, pos); err != nil || !bytes.Equal(fb, rec) {
				t.Fatalf("lap %d: the file holds other bytes: %v", lap, err)
			}
			f.Close()
			drain(t, c)
		}
	})
}

// TestGrowingReopen: segments are found again by their headers.
func TestGrowingReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		r, path := createGrowing(t, b, 4)
		c, _ := r.Consumer("c", nil)
		var all []byte
		for i := 0; i < 60; i++ {
			rec := pattern(i, 3000+i*7)
			produce(t, r, rec)
			all = append(all, rec...)
			if i%3 == 0 {
				got, _, _ := c.Peek()
				c.Release(len(got) / 2)
			}
		}
		pos := c.Position()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, &Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c, err = r.Consumer("c", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for {
			b, _, err := c.Peek()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				break
			}
			got = append(got, b...)
			c.Release(len(b))
		}
		if c.Position() != uint64(len(all)) || !bytes.Equal(got, all[pos:]) {
			t.Fatalf("after reopen read %d bytes from %d; want %d", len(got), pos, len(all)-int(pos))
		}
	})
}

func TestSegmentHeader(t *testing.T) {
	b := encodeSegHeader(7, 3*segTest)
	if base, ok := decodeSegHeader(b, 7, segTest); !ok || base != 3*segTest {
		t.Fatalf("round trip: %d %v", base, ok)
	}
	for name, bad := range map[string]func([]byte){
		"other index":  func(b []byte) { b[12] = 8 },
		"flipped base": func(b []byte) { b[17] ^= 1 },
		"zeroed":       func(b []byte) { clear(b) },
	} {
		c := bytes.Clone(b)
		bad(c)
		if _, ok := decodeSegHeader(c, 7, segTest); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, ok := decodeSegHeader(encodeSegHeader(7, 3*segTest+8), 7, segTest); ok {
		t.Error("a base not on a segment boundary was accepted")
	}
}
