package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// compressible is a record of n bytes that compresses well (text-like),
// different for each i.
func compressible(i, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "record %d: key=user%06d value=%d status=ok;", i, b.Len()%977, i*b.Len())
	}
	return b.Bytes()[:n]
}

// incompressible is n random bytes.
func incompressible(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestCompressionRoundTrip appends records with each codec, by the log's
// option and per call (single records and batches, compressible,
// incompressible and short), and reads them back with a Reader, a
// Consumer and recovery's Replay after reopening; compressed records take
// less space and carry the codec in their flags.
func TestCompressionRoundTrip(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		for _, codec := range []Compression{S2, Zstd} {
			t.Run(codec.String(), func(t *testing.T) {
				ctx := context.Background()
				l, path := createWith(t, c, Options{Sync: SyncNever, Compression: codec})
				cs, err := l.Consumer("c", nil)
				if err != nil {
					t.Fatal(err)
				}
				var want [][]byte
				var first []uint64 // position of each call's first record
				raw := 0
				add := func(p uint64, ps ...[]byte) {
					first = append(first, p)
					for _, q := range ps {
						want = append(want, q)
						raw += recordSize(len(q))
					}
				}
				for i := range 40 {
					var p uint64
					var err error
					switch i % 5 {
					case 0, 1:
						r := compressible(i, 500+i*97)
						p, err = l.Append(ctx, r)
						add(p, r)
					case 2:
						r := incompressible(uint64(i), 300)
						p, err = l.Append(ctx, r)
						add(p, r)
					case 3:
						ps := [][]byte{compressible(i, 2000), []byte("short"), compressible(i+1000, 700)}
						p, err = l.AppendWith(ctx, AppendOptions{Compression: codec}, ps...)
						add(p, ps...)
					case 4:
						r := compressible(i, 1000)
						p, err = l.AppendWith(ctx, AppendOptions{Compression: NoCompression}, r)
						add(p, r)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := l.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if used := int(l.Written()); used >= raw*3/4 {
					t.Fatalf("%d bytes of compressed log for %d bytes of records", used, raw)
				}
				check := func(what string, got [][]byte) {
					t.Helper()
					if len(got) != len(want) {
						t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
					}
					for i := range got {
						if !bytes.Equal(got[i], want[i]) {
							t.Fatalf("%s: record %d differs", what, i)
						}
					}
				}
				_, data := readAll(t, l)
				check("reader", data)
				// The consumer holds every record (not copied) until it
				// acknowledges: all must still be intact at the end.
				var held [][]byte
				for cs.Next() {
					_, b := cs.Record()
					held = append(held, b)
				}
				if cs.Err() != nil {
					t.Fatal(cs.Err())
				}
				check("consumer", held)
				// Flags: record 0 is compressed, record 4 (NoCompression) is
				// not.
				for i, want := range map[int]Compression{0: codec, 2: NoCompression, 4: NoCompression} {
					hb, _ := l.r.Slice(first[i], headerSize)
					if codecOf(hb[21]) != want {
						t.Fatalf("record of call %d has flags %#x, want codec %v", i, hb[21], want)
					}
				}
				cs.Close()
				l.Close()
				var replayed [][]byte
				l, err = Open(path, c.opts(Options{Recovery: RecoverStrict, Replay: func(_ uint64, d []byte) error {
					replayed = append(replayed, bytes.Clone(d))
					return nil
				}}))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				check("replay", replayed)
			})
		}
	})
}

// plantRecord overwrites the data record at pos (appended with a payload
// of len(payload) bytes) with one carrying payload and flags, its checksum
// valid: what a foreign or malicious writer could leave.
func plantRecord(t *testing.T, l *Log, pos uint64, flags uint8, payload []byte) {
	t.Helper()
	b := make([]byte, recordSize(len(payload)))
	putRecord(b, recordHeader{pos: pos, epoch: l.mu.meta.epoch, typ: typeData, flags: flags}, payload)
	if err := l.r.Overwrite(pos, b); err != nil {
		t.Fatal(err)
	}
}

// TestCompressionCorrupt: compressed payloads with valid checksums that do
// not decode, or claim or produce more than the maximum record size, or
// more than they claim, fail reads with an error that names the file and
// offset, and allocate no more than about one maximum record.
func TestCompressionCorrupt(t *testing.T) {
	const maxRec = 64 << 10
	zeros := make([]byte, 8<<20)
	zenc, _ := zstd.NewWriter(nil)
	bomb := zenc.EncodeAll(zeros, nil) // 8 MiB of zeros in a few hundred bytes
	s2bomb := s2.Encode(nil, zeros)
	cases := []struct {
		name    string
		codec   Compression
		payload []byte
	}{
		{"s2 garbage", S2, withPrefix(1000, bytes.Repeat([]byte{0xff}, 200))},
		{"zstd garbage", Zstd, withPrefix(1000, bytes.Repeat([]byte{0x28}, 200))},
		{"s2 claims too much", S2, withPrefix(1<<30, s2.Encode(nil, compressible(1, 1000)))},
		{"zstd bomb", Zstd, withPrefix(100, bomb)},
		{"zstd bomb claimed", Zstd, withPrefix(maxRec, bomb)},
		{"s2 bomb", S2, withPrefix(100, s2bomb)},
		{"s2 wrong length", S2, withPrefix(999, s2.Encode(nil, compressible(1, 1000)))},
		{"short", S2, []byte{1, 2}},
	}
	forEachConfig(t, func(t *testing.T, c config) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				l, _ := createWith(t, c, Options{Sync: SyncNever, MaxRecordSize: maxRec, Capacity: 4 << 20})
				defer l.Close()
				good, _ := l.Append(ctx, []byte("before"))
				pos, err := l.Append(ctx, make([]byte, len(tc.payload)))
				if err != nil {
					t.Fatal(err)
				}
				l.Append(ctx, []byte("after"))
				l.Flush(ctx)
				plantRecord(t, l, pos, uint8(tc.codec)<<codecShift, tc.payload)
				rd, err := l.NewReader(good, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer rd.Close()
				if !rd.Next() {
					t.Fatal(rd.Err())
				}
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				if rd.Next() {
					t.Fatalf("a bad payload decoded to %d bytes", len(rd.cur))
				}
				runtime.ReadMemStats(&ms1)
				err = rd.Err()
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("file offset %d", l.r.FileOffset(pos))) || !strings.Contains(err.Error(), l.Name()) {
					t.Fatalf("error %v does not say corrupt, file and offset", err)
				}
				if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 4*maxRec+(1<<20) {
					t.Fatalf("decoding a bad payload allocated %d bytes (maximum record %d)", alloc, maxRec)
				}
				if rd.Position() != pos {
					t.Fatalf("reader stopped at %d, want the bad record at %d", rd.Position(), pos)
				}
				// Recovery's replay reports it the same way.
				l.Close()
				_, err = Open(l.Name(), c.opts(Options{Replay: func(uint64, []byte) error { return nil }}))
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "file offset") {
					t.Fatalf("replay of a bad payload: %v", err)
				}
			})
		}
	})
}

// FuzzDecode feeds arbitrary stored payloads to both codecs: no panic, no
// result longer than the maximum, and a result always as long as claimed.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(1), withPrefix(1000, s2.Encode(nil, compressible(1, 1000))))
	zenc, _ := zstd.NewWriter(nil)
	f.Add(uint8(2), withPrefix(1000, zenc.EncodeAll(compressible(2, 1000), nil)))
	f.Add(uint8(2), withPrefix(10, zenc.EncodeAll(make([]byte, 1<<20), nil)))
	d := &decoder{maxRec: 64 << 10}
	defer d.close()
	f.Fuzz(func(t *testing.T, codec uint8, p []byte) {
		c := Compression(codec % 3)
		out, err := d.decode(nil, c, p)
		if err != nil {
			return
		}
		if len(out) > d.maxRec || len(out) != int(binary.LittleEndian.Uint32(p)) {
			t.Fatalf("decoded %d bytes, claimed %d, maximum %d", len(out), binary.LittleEndian.Uint32(p), d.maxRec)
		}
	})
}

func withPrefix(n uint32, block []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, n), block...)
}
