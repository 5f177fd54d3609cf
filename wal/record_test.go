package wal

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 1000} {
		p := rec(n, n)
		b := make([]byte, recordSize(n))
		if got := putRecord(b, recordHeader{pos: 4096, epoch: 3, typ: typeData, flags: flagMore}, p); got != len(b) || got%align != 0 {
			t.Fatalf("size %d for %d bytes", got, n)
		}
		h, err := parseHeader(b, 4096, 3, 3, 1<<20)
		if err != nil || h.length != uint32(n) || h.flags != flagMore {
			t.Fatalf("header of %d bytes: %+v, %v", n, h, err)
		}
		if err := checkRecord(b[:headerSize+n]); err != nil || !bytes.Equal(b[headerSize:headerSize+n], p) {
			t.Fatalf("record of %d bytes: %v", n, err)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	good := make([]byte, recordSize(16))
	putRecord(good, recordHeader{pos: 800, epoch: 5, typ: typeData}, rec(1, 16))
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name string
		b    []byte
		pos  uint64
		lo   uint32
		want error
	}{
		{"zeroed", make([]byte, 64), 0, 1, errZeroed},
		{"other position (an earlier lap)", good, 800 + 1<<20, 5, errStale},
		{"older epoch (a truncated suffix)", good, 800, 6, errStale},
		{"bad type", mod(func(b []byte) { b[20] = 9 }), 800, 5, errBadHeader},
		{"unknown flag", mod(func(b []byte) { b[21] = 4 }), 800, 5, errBadHeader},
		{"huge length", mod(func(b []byte) { b[7] = 0xFF }), 800, 5, errTooLong},
	}
	for _, c := range cases {
		_, err := parseHeader(c.b, c.pos, c.lo, c.lo+1, 1000)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	flipped := mod(func(b []byte) { b[headerSize+3] ^= 1 })
	if err := checkRecord(flipped[:headerSize+16]); !errors.Is(err, errChecksum) {
		t.Errorf("flipped payload: %v", err)
	}
}

// FuzzRecord: any bytes at any expected position parse or fail cleanly,
// and whatever parses and checks re-encodes to the same bytes.
func FuzzRecord(f *testing.F) {
	b := make([]byte, recordSize(5))
	putRecord(b, recordHeader{pos: 64, epoch: 2, typ: typeData}, []byte("hello"))
	f.Add(b, uint64(64))
	s := make([]byte, markerSize)
	putRecord(s, recordHeader{pos: 8, epoch: 1, typ: typeSync}, make([]byte, 8))
	f.Add(s, uint64(8))
	f.Add(make([]byte, 40), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, pos uint64) {
		if len(b) < headerSize {
			return
		}
		h, err := parseHeader(b, pos, 1, 3, 1<<16)
		if err != nil {
			return
		}
		if h.pos != pos || h.epoch < 1 || h.epoch > 3 || h.length > 1<<16 || h.typ == 0 {
			t.Fatalf("accepted %+v", h)
		}
		if headerSize+int(h.length) > len(b) {
			return
		}
		if checkRecord(b[:headerSize+int(h.length)]) != nil {
			return
		}
		again := make([]byte, recordSize(int(h.length)))
		putRecord(again, h, b[headerSize:headerSize+int(h.length)])
		if !bytes.Equal(again[:headerSize+int(h.length)], b[:headerSize+int(h.length)]) {
			t.Fatal("a valid record does not re-encode to itself")
		}
	})
}
