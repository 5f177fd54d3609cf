package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := header{seq: 7, capacity: 3 * layoutAlign, head: 1 << 40, tail: 1<<40 - 100, userData: []byte("hello")}
	got, err := decodeHeader(h.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.seq != h.seq || got.capacity != h.capacity || got.head != h.head || got.tail != h.tail || string(got.userData) != "hello" {
		t.Fatalf("round trip: %+v", got)
	}
}

// closedRing makes a ring, writes to it, syncs twice (so both header copies
// are in use) and closes it. It returns the path and the head.
func closedRing(t *testing.T) (string, uint64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring")
	r, err := Create(path, &Options{Capacity: testCap})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, r, pattern(1, 1000))
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	produce(t, r, pattern(2, 500))
	if err := r.Close(); err != nil { // the newest header says head 1500
		t.Fatal(err)
	}
	return path, 1500
}

// newestCopy returns the offset of the header copy with the higher sequence.
func newestCopy(t *testing.T, path string) (newest, older int64) {
	f, _ := os.Open(path)
	defer f.Close()
	_, info, err := readHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	if info.HeaderCopy == headerA {
		return headerA, headerB
	}
	return headerB, headerA
}

func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestHeaderCorruption(t *testing.T) {
	type result struct {
		ok      bool
		head    uint64 // when ok
		mention []string
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, newest, older int64)
		want   func(head uint64, newest, older int64) result
	}{
		{"bit flip in the newest copy", func(t *testing.T, path string, newest, _ int64) {
			patchFile(t, path, newest+50, []byte{0xFF})
		}, func(head uint64, newest, _ int64) result {
			return result{ok: true, head: 1000, mention: []string{"offset " + itoa(newest), "checksum"}}
		}},
		{"torn newest copy (second half never written)", func(t *testing.T, path string, newest, _ int64) {
			patchFile(t, path, newest+2048, make([]byte, 2048))
		}, func(head uint64, newest, _ int64) result {
			return result{ok: true, head: 1000, mention: []string{"checksum"}}
		}},
		{"older copy zeroed", func(t *testing.T, path string, _, older int64) {
			patchFile(t, path, older, make([]byte, headerCopySize))
		}, func(head uint64, _, older int64) result {
			return result{ok: true, head: head, mention: []string{"offset " + itoa(older), "all zeroes"}}
		}},
		{"both copies damaged", func(t *testing.T, path string, newest, older int64) {
			patchFile(t, path, newest+9, []byte{0x55})
			patchFile(t, path, older+100, []byte{0x55})
		}, func(uint64, int64, int64) result {
			return result{mention: []string{"both header copies", "offset 0", "offset 4096", "checksum"}}
		}},
		{"not a ring", func(t *testing.T, path string, _, _ int64) {
			patchFile(t, path, 0, bytes.Repeat([]byte("some other file "), 600))
		}, func(uint64, int64, int64) result {
			return result{mention: []string{"bad magic"}}
		}},
		{"data area cut short", func(t *testing.T, path string, _, _ int64) {
			os.Truncate(path, dataOff+testCap-1)
		}, func(uint64, int64, int64) result {
			return result{mention: []string{"data area ends at offset " + itoa(dataOff+testCap)}}
		}},
		{"shorter than a header", func(t *testing.T, path string, _, _ int64) {
			os.Truncate(path, 100)
		}, func(uint64, int64, int64) result {
			return result{mention: []string{"unexpected EOF"}}
		}},
		{"future format version", func(t *testing.T, path string, newest, older int64) {
			for _, off := range []int64{newest, older} {
				f, _ := os.Open(path)
				b := make([]byte, headerCopySize)
				f.ReadAt(b, off)
				f.Close()
				binary.LittleEndian.PutUint32(b[8:], 2)
				binary.LittleEndian.PutUint32(b[crcOff:], crcOf(b[:crcOff]))
				patchFile(t, path, off, b)
			}
		}, func(uint64, int64, int64) result {
			return result{mention: []string{"format version 2"}}
		}},
		{"copies disagree on the capacity", func(t *testing.T, path string, _, older int64) {
			h := header{seq: 0, capacity: 2 * testCap}
			patchFile(t, path, older, h.encode())
		}, func(uint64, int64, int64) result {
			return result{mention: []string{"disagree"}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, head := closedRing(t)
			newest, older := newestCopy(t, path)
			c.damage(t, path, newest, older)
			want := c.want(head, newest, older)
			r, err := Open(path, nil)
			if !want.ok {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
					t.Fatalf("open: %v, want ErrCorrupt naming %s", err, path)
				}
				for _, m := range want.mention {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer r.Close()
			if r.Head() != want.head {
				t.Fatalf("head %d, want %d", r.Head(), want.head)
			}
			for _, m := range want.mention {
				if e := r.Info().HeaderError; e == nil || !strings.Contains(e.Error(), m) {
					t.Errorf("Info().HeaderError = %v, want it to mention %q", e, m)
				}
			}
			// The next header write replaces the bad copy; both are good
			// after two syncs.
			r.Sync()
			r.Sync()
			f, _ := os.Open(path)
			defer f.Close()
			if _, info, err := readHeader(f); err != nil || info.HeaderError != nil {
				t.Fatalf("after two syncs: %v, %v", err, info.HeaderError)
			}
		})
	}
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestDamagedSlots: registrations a crash cut short or that were damaged
// are cleared when a producer opens the ring; positions past the durable
// head are moved back to it.
func TestDamagedSlots(t *testing.T) {
	path, _ := closedRing(t)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"keep", "torn", "ahead"} {
		c, err := r.Consumer(n, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	r.slot(1).b[slotName] ^= 0xFF  // damage "torn"'s name
	r.slot(2).pos().Store(1 << 30) // "ahead" acknowledged more than exists
	r.slot(3).state().Store(slotClaimed)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r, err = Open(path, &Options{Backend: pager.Auto})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	infos := r.Consumers()
	if len(infos) != 2 || infos[0].Name != "keep" || infos[1].Name != "ahead" || infos[1].Position != r.Head() {
		t.Fatalf("consumers after repair: %+v", infos)
	}
	if got := strings.Join(r.Info().Reset, "\n"); !strings.Contains(got, "damaged registration") || !strings.Contains(got, "unfinished") || !strings.Contains(got, "past the durable head") {
		t.Fatalf("repairs reported: %s", got)
	}
}

// FuzzDecodeHeader feeds arbitrary bytes to the header decoder: it must
// never panic, and whatever it accepts must be within range and survive a
// round trip.
func FuzzDecodeHeader(f *testing.F) {
	h := header{seq: 3, capacity: layoutAlign, head: 10, tail: 5, userData: []byte("x")}
	f.Add(h.encode())
	f.Add(make([]byte, headerCopySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < headerCopySize {
			b = append(b, make([]byte, headerCopySize-len(b))...)
		}
		b = b[:headerCopySize]
		h, err := decodeHeader(b)
		if err != nil {
			return
		}
		if h.capacity == 0 || h.capacity%layoutAlign != 0 || h.tail > h.head || h.head-h.tail > h.capacity || len(h.userData) > maxUserData {
			t.Fatalf("accepted an out-of-range header: %+v", h)
		}
		again, err := decodeHeader(h.encode())
		if err != nil || again.seq != h.seq || again.capacity != h.capacity || again.head != h.head || again.tail != h.tail || !bytes.Equal(again.userData, h.userData) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}
