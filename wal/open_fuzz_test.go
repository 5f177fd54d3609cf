package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// fuzzClosed is a log closed cleanly (everything synced, the header's
// head at its end, the data area wrapped once) and every record written
// to it, by position: those before its checkpoint too, since damaged
// metadata may point recovery back at them.
var fuzzClosed struct {
	once    sync.Once
	image   []byte
	records map[uint64][]byte
	err     error
}

func fuzzClosedImage() ([]byte, map[uint64][]byte, error) {
	fuzzClosed.once.Do(func() {
		dir, err := os.MkdirTemp("", "ringlog-fuzz-")
		if err != nil {
			fuzzClosed.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "wal")
		l, err := Create(path, &Options{Capacity: 64 << 10, Sync: SyncNever, Backend: pager.Copy})
		if err != nil {
			fuzzClosed.err = err
			return
		}
		// Appends stay staged until Flush or Sync: the same writes, and
		// the same positions, in every process.
		l.batchForTest = true
		ctx := context.Background()
		recs := map[uint64][]byte{} // every record written, truncated or not
		var starts []uint64         // where records and batches start
		for i := 0; i < 260 && err == nil; i++ {
			var p uint64
			switch r := rec(i, 40+i*37%900); {
			case i%9 == 4:
				ps := [][]byte{r, rec(i+500, 20)}
				if p, err = l.AppendBatch(ctx, ps); err == nil {
					recs[p], recs[p+uint64(recordSize(len(r)))] = r, ps[1]
				}
			case i%5 == 2:
				r = compressible(i, 300)
				if p, err = l.AppendWith(ctx, AppendOptions{Compression: S2}, r); err == nil {
					recs[p] = r
				}
			default:
				if p, err = l.Append(ctx, r); err == nil {
					recs[p] = r
				}
			}
			starts = append(starts, p)
			if i%10 == 9 && err == nil {
				// Keep about half the ring: the log wraps.
				err = l.Sync(ctx)
				for _, q := range starts {
					if w := l.Written(); err == nil && w > 32<<10 && q >= w-32<<10 {
						if q > l.Checkpoint() {
							err = l.TruncateFront(q)
						}
						break
					}
				}
			}
		}
		if err == nil {
			err = l.Close()
		}
		if err != nil {
			fuzzClosed.err = err
			return
		}
		fuzzClosed.image, fuzzClosed.err = os.ReadFile(path)
		fuzzClosed.records = recs
	})
	return fuzzClosed.image, fuzzClosed.records, fuzzClosed.err
}

// readChecked opens the log at path with o and reads it from its
// checkpoint; every record returned must be the one written at its
// position. It returns the error of Open, if any.
func readChecked(t *testing.T, path string, o *Options, records map[uint64][]byte) error {
	t.Helper()
	l, err := Open(path, o)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error without the file name: %v", err)
		}
		return err
	}
	defer l.Close()
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("reader: error without the file name: %v", err)
		}
		return nil
	}
	defer rd.Close()
	for pos, data := range rd.All() {
		if want, ok := records[pos]; !ok || !bytes.Equal(data, want) {
			t.Fatalf("%d bytes returned at %d were never written there", len(data), pos)
		}
	}
	if err := rd.Err(); err != nil && !strings.Contains(err.Error(), path) {
		t.Fatalf("reading: error without the file name: %v", err)
	}
	return nil
}

// FuzzDecodeMeta feeds arbitrary bytes to the decoder of the log's
// metadata (the ring header's user data): no panic, nothing out of range
// accepted, and what it accepts survives a round trip. Then a log whose
// header carries those bytes (both copies, checksums made to match) is
// opened and read: an error must name the file, every record read must be
// one written at its position, and the open and the read stay within
// 64 MiB of allocation.
func FuzzDecodeMeta(f *testing.F) {
	m := meta{checkpoint: 64, epoch: 3, maxRecord: 1000, epochStart: 128, cleanEnd: 512, clean: true}
	f.Add(m.encode(), uint64(64<<10))
	f.Add(make([]byte, metaSize), uint64(64<<10))
	f.Add([]byte(metaMagic), uint64(1<<20))
	if image, _, err := fuzzClosedImage(); err == nil {
		n := binary.LittleEndian.Uint32(image[64:])
		f.Add(bytes.Clone(image[72:72+n]), uint64(64<<10))
	}
	f.Fuzz(func(t *testing.T, b []byte, capacity uint64) {
		m, err := decodeMeta(b, capacity)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("neither corrupt nor another version: %v", err)
			}
			return
		}
		if m.maxRecord == 0 || uint64(recordSize(int(m.maxRecord))) > capacity || m.checkpoint%align != 0 || m.epochStart%align != 0 {
			t.Fatalf("accepted %+v for a capacity of %d", m, capacity)
		}
		if again, err := decodeMeta(m.encode(), capacity); err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
		if len(b) > 1024 {
			return
		}
		image, records, err := fuzzClosedImage()
		if err != nil {
			t.Fatal(err)
		}
		img := bytes.Clone(image)
		for _, off := range []int{0, 4096} { // the ring header's two copies
			c := img[off : off+4096]
			binary.LittleEndian.PutUint32(c[64:], uint32(len(b)))
			clear(c[72:4092])
			copy(c[72:], b)
			binary.LittleEndian.PutUint32(c[4092:], crc32.Checksum(c[:4092], castagnoli))
		}
		path := filepath.Join(t.TempDir(), "wal")
		if err := os.WriteFile(path, img, 0o600); err != nil {
			t.Fatal(err)
		}
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		readChecked(t, path, &Options{Backend: pager.Copy}, records)
		runtime.ReadMemStats(&ms1)
		if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 64<<20 {
			t.Fatalf("the open and the read allocated %d bytes", a)
		}
	})
}

// FuzzReadOnly damages a log closed cleanly with the fuzzer's edits (each
// 3 bytes: a place in the data area, a value, how to apply it) and reads
// it through a read-only handle, which runs no recovery: the reader alone
// meets the damage. It must never panic, an error must name the file, and
// every record returned must be one written at its position.
func FuzzReadOnly(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{40, 0, 0xFF})                        // a header near the start
	f.Add([]byte{10, 1, 1, 11, 1, 2})                 // a payload
	f.Add([]byte{0, 0x80, 0x42})                      // the middle of the data area
	f.Add([]byte{4, 0, 0, 5, 0, 0, 6, 0, 0, 7, 0, 0}) // a length
	f.Fuzz(func(t *testing.T, edits []byte) {
		image, records, err := fuzzClosedImage()
		if err != nil {
			t.Fatal(err)
		}
		img := bytes.Clone(image)
		for i := 0; i+3 <= len(edits) && i < 60; i += 3 {
			off := 64<<10 + (int(edits[i])|int(edits[i+1])<<8)%(64<<10)
			switch edits[i+2] % 3 {
			case 0:
				img[off] = 0
			case 1:
				img[off] ^= 1 << (edits[i+2] % 8)
			default:
				img[off] = edits[i+2]
			}
		}
		path := filepath.Join(t.TempDir(), "wal")
		if err := os.WriteFile(path, img, 0o600); err != nil {
			t.Fatal(err)
		}
		readChecked(t, path, &Options{Backend: pager.Copy, ReadOnly: true}, records)
	})
}
