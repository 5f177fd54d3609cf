package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// fuzzBase is a crashed log image (what the file holds after a kill) and
// the records it was written with, by position.
var fuzzBase struct {
	once    sync.Once
	image   []byte
	records map[uint64][]byte
	end     uint64
	err     error
}

func fuzzImage() ([]byte, map[uint64][]byte, uint64, error) {
	fuzzBase.once.Do(func() {
		dir, err := os.MkdirTemp("", "ringlog-fuzz-")
		if err != nil {
			fuzzBase.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "wal")
		l, err := Create(path, &Options{Capacity: 64 << 10, Sync: SyncNever, Backend: pager.Copy})
		if err != nil {
			fuzzBase.err = err
			return
		}
		l.batchForTest = true
		recs := map[uint64][]byte{}
		ctx := context.Background()
		for i := 0; i < 40; i++ {
			r := rec(i, 10+i*9)
			if i%10 == 7 {
				ps := [][]byte{r, rec(i+100, 5), rec(i+200, 30)}
				p, _ := l.AppendBatch(ctx, ps)
				for _, q := range ps {
					recs[p] = q
					p += uint64(recordSize(len(q)))
				}
			} else if i%4 == 1 {
				// Compressed records: recovery and readers decode them.
				r = compressible(i, 100+i*9)
				p, _ := l.AppendWith(ctx, AppendOptions{Compression: []Compression{S2, Zstd}[i/4%2]}, r)
				recs[p] = r
			} else {
				p, _ := l.Append(ctx, r)
				recs[p] = r
			}
			if i == 20 {
				l.Sync(ctx)
			}
			if i%6 == 0 {
				l.Flush(ctx)
			}
		}
		l.Flush(ctx)
		fuzzBase.end = l.Written()
		fuzzBase.image, fuzzBase.err = os.ReadFile(path)
		fuzzBase.records = recs
		l.Close()
	})
	return fuzzBase.image, fuzzBase.records, fuzzBase.end, fuzzBase.err
}

// FuzzRecovery damages a crashed log's data area with the fuzzer's edits
// (each 3 bytes: a position in the written part, a value, how to apply
// it) and opens it in every recovery mode. It must never panic; an error
// must name the file; and every record a reader then returns must be one
// that was written at that position, byte for byte.
func FuzzRecovery(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{10, 0, 0xFF})          // the first record's header
	f.Add([]byte{200, 3, 1, 201, 3, 2}) // two flips in a payload
	f.Add([]byte{250, 9, 0})            // zero a byte near the end
	f.Add([]byte{4, 0, 0x7F, 5, 0, 0xFF, 6, 0, 0xFF, 7, 0, 0xFF})
	f.Fuzz(func(t *testing.T, edits []byte) {
		image, records, end, err := fuzzImage()
		if err != nil {
			t.Fatal(err)
		}
		img := bytes.Clone(image)
		for i := 0; i+3 <= len(edits) && i < 60; i += 3 {
			pos := (uint64(edits[i]) | uint64(edits[i+1])<<8) % end
			off := 64<<10 + int(pos%(64<<10))
			switch edits[i+2] % 3 {
			case 0:
				img[off] = 0
			case 1:
				img[off] ^= 1 << (edits[i+2] % 8)
			default:
				img[off] = edits[i+2]
			}
		}
		for _, mode := range []RecoveryMode{RecoverDefault, RecoverStrict, RecoverPointInTime, RecoverSalvage} {
			dir := t.TempDir()
			path := filepath.Join(dir, "wal")
			if err := os.WriteFile(path, img, 0o600); err != nil {
				t.Fatal(err)
			}
			replayed := map[uint64][]byte{}
			l, err := Open(path, &Options{Backend: pager.Copy, Recovery: mode, Replay: func(pos uint64, data []byte) error {
				replayed[pos] = bytes.Clone(data)
				return nil
			}})
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("%v: error without the file name: %v", mode, err)
				}
				continue
			}
			check := func(how string, pos uint64, data []byte) {
				if want, ok := records[pos]; !ok || !bytes.Equal(data, want) {
					t.Fatalf("%v: %s returned %d bytes at %d that were never written there", mode, how, len(data), pos)
				}
			}
			for pos, data := range replayed {
				check("replay", pos, data)
			}
			rd, err := l.NewReader(l.Checkpoint(), nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for pos, data := range rd.All() {
				check("a reader", pos, data)
				n++
			}
			if err := rd.Err(); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v: reading: %v", mode, err)
			}
			rd.Close()
			if n != len(replayed) {
				t.Fatalf("%v: replay gave %d records, a reader %d", mode, len(replayed), n)
			}
			l.Close()
		}
	})
}
