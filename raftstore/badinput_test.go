package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// Records the wal keeps (their checksums hold) but the store cannot
// apply fail Open with ErrCorrupt, naming the file and the position.
func TestBadRecords(t *testing.T) {
	for name, bad := range map[string][]byte{
		"unknown kind":   {9, 1, 2, 3},
		"empty":          {},
		"index 0":        appendEntry(nil, &raft.Log{Index: 0, Term: 1}),
		"gap":            appendEntry(nil, &raft.Log{Index: 12, Term: 1}),
		"overlap":        appendEntry(nil, &raft.Log{Index: 3, Term: 1}),
		"short delete":   {kindDelete, 5},
		"inverted range": appendDelete(nil, 9, 4),
		"middle":         appendDelete(nil, 4, 5),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, testOptions(pager.Auto))
			if err := s.StoreLogs(entries(1, 10, 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, LogName)
			l, err := wal.Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			pos, err := l.AppendSync(context.Background(), bad)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = Open(dir, nil)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("position %d", pos)) {
				t.Fatalf("Open of a log with a bad record at %d: %v", pos, err)
			}
		})
	}
}

// A record damaged under an open store (its bytes changed in the file,
// which the mapping shows) is caught by GetLog's checksum: an error naming
// the file and offset, not an entry with other contents.
func TestGetLogDamaged(t *testing.T) {
	for _, b := range backends(t) {
		if b == pager.Copy {
			continue // its heap copy does not see writes to the file
		}
		t.Run(b.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, testOptions(b))
			defer s.Close()
			want := &raft.Log{Index: 1, Term: 1, Data: []byte("a distinctive payload of entry one"), AppendedAt: time.Unix(5, 0)}
			if err := s.StoreLogs([]*raft.Log{want, entry(2, 1)}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, LogName)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Find the payload in the file and change one byte of it.
			buf := make([]byte, 4<<20)
			n, _ := f.ReadAt(buf, 0)
			off := bytes.Index(buf[:n], want.Data)
			if off < 0 {
				t.Fatal("payload not found in the file")
			}
			if _, err := f.WriteAt([]byte{'A'}, int64(off)); err != nil {
				t.Fatal(err)
			}
			var l raft.Log
			err = s.GetLog(1, &l)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("GetLog of a damaged record: %v (%q)", err, l.Data)
			}
			if err := s.GetLog(2, &l); err != nil || !sameLog(&l, entry(2, 1)) {
				t.Fatalf("GetLog of the record after it: %v", err)
			}
		})
	}
}

// Every field of an entry survives encoding and decoding; bad bytes are
// errors, never panics.
func TestCodec(t *testing.T) {
	for _, l := range []*raft.Log{
		{},
		{Index: 1},
		{Index: 1<<64 - 1, Term: 1<<64 - 1, Type: raft.LogConfiguration, Data: []byte("d"), Extensions: []byte("e"), AppendedAt: time.Unix(-5, 999_999_999)},
		{Index: 7, Term: 3, Extensions: []byte("only extensions")},
		{Index: 8, Term: 3, Data: []byte("only data"), AppendedAt: time.Date(2262, 1, 1, 0, 0, 0, 1, time.UTC)},
		entry(12, 4),
	} {
		b := appendEntry(nil, l)
		if len(b) > entrySize(l) {
			t.Fatalf("%+v encodes to %d bytes, entrySize says at most %d", l, len(b), entrySize(l))
		}
		var got raft.Log
		err := decodeEntry(b, &got)
		if l.Index == 0 {
			if err == nil {
				t.Fatal("entry of index 0 decoded")
			}
			continue
		}
		if err != nil || !sameLog(&got, l) {
			t.Fatalf("%+v decodes to %+v, %v", *l, got, err)
		}
		if kind, index, _, err := peekRecord(b); err != nil || kind != kindEntry || index != l.Index {
			t.Fatalf("peekRecord of entry %d: %d %d %v", l.Index, kind, index, err)
		}
		for cut := range len(b) - len(l.Data) - len(l.Extensions) {
			if err := decodeEntry(b[:cut], &got); err == nil {
				t.Fatalf("entry %d cut to %d of %d bytes decoded", l.Index, cut, len(b))
			}
		}
	}
	// Extensions longer than what follows.
	long := appendEntry(nil, &raft.Log{Index: 5, Extensions: []byte("abc")})
	long[5] = 100 // kind, flags, type, index 5, term 0, then the length
	var got raft.Log
	if err := decodeEntry(long, &got); err == nil {
		t.Fatalf("an entry whose extensions run past its end decoded: %+v", got)
	}
	if kind, lo, hi, err := peekRecord(appendDelete(nil, 3, 1<<63)); err != nil || kind != kindDelete || lo != 3 || hi != 1<<63 {
		t.Fatalf("delete record: %d %d %d %v", kind, lo, hi, err)
	}
}

// FuzzDecode: any bytes decode or fail without panicking; what decodes
// as an entry encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(appendEntry(nil, entry(2, 1)))
	f.Add(appendEntry(nil, entry(3, 9)))
	f.Add(appendDelete(nil, 4, 9))
	f.Add([]byte{kindEntry, 1, 0, 0x80})
	f.Add([]byte{kindEntry, 0, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		peekRecord(b)
		var l raft.Log
		if err := decodeEntry(b, &l); err != nil {
			return
		}
		if c := appendEntry(nil, &l); !bytes.Equal(c, b) {
			// Varints have several encodings; the decoded entry
			// must at least survive a second round.
			var l2 raft.Log
			if err := decodeEntry(c, &l2); err != nil || !sameLog(&l, &l2) {
				t.Fatalf("%x decodes to %+v, which does not round-trip: %v", b, l, err)
			}
		}
	})
}

// FuzzStable: any bytes as the stable file load or are refused with
// ErrCorrupt, never panic; what loads encodes back to the same bytes.
func FuzzStable(f *testing.F) {
	f.Add(encodeStable(map[string][]byte{"CurrentTerm": {1, 0, 0, 0, 0, 0, 0, 0}, "LastVoteCand": []byte("n1")}))
	f.Add(encodeStable(map[string][]byte{}))
	f.Add([]byte(stableMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeStable("stable", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("not ErrCorrupt: %v", err)
			}
			return
		}
		if c := encodeStable(m); len(c) > len(b) {
			t.Fatalf("%d bytes decode to pairs that encode to %d", len(b), len(c))
		}
	})
}
