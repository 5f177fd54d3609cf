package pebblekv

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/ringlog/ringlog/storage"
)

func TestDefaultOptions(t *testing.T) {
	for _, o := range []*Options{nil, {}} {
		po, err := o.pebbleOptions()
		if err != nil {
			t.Fatal(err)
		}
		if po.CacheSize != 256<<20 {
			t.Errorf("CacheSize = %d, want 256 MiB", po.CacheSize)
		}
		if po.MemTableSize != 64<<20 {
			t.Errorf("MemTableSize = %d, want 64 MiB", po.MemTableSize)
		}
		for i, l := range po.Levels {
			if l.FilterPolicy != bloom.FilterPolicy(10) {
				t.Errorf("level %d: FilterPolicy = %v, want bloom.FilterPolicy(10)", i, l.FilterPolicy)
			}
		}
		if po.FormatMajorVersion != pebble.FormatNewest {
			t.Errorf("FormatMajorVersion = %v, want FormatNewest", po.FormatMajorVersion)
		}
		if _, ok := po.Logger.(quietLogger); !ok {
			t.Errorf("Logger = %T, want quietLogger", po.Logger)
		}
		if po.CompactionConcurrencyRange != nil {
			t.Errorf("CompactionConcurrencyRange set, want Pebble's default")
		}
	}
}

func TestOptions(t *testing.T) {
	po, err := (&Options{
		CacheSize:                1 << 20,
		MemTableSize:             2 << 20,
		BloomBitsPerKey:          -1,
		MaxConcurrentCompactions: 3,
		MaxOpenFiles:             50,
		FormatMajorVersion:       pebble.FormatColumnarBlocks,
		Logger:                   pebble.DefaultLogger,
	}).pebbleOptions()
	if err != nil {
		t.Fatal(err)
	}
	if po.CacheSize != 1<<20 || po.MemTableSize != 2<<20 || po.MaxOpenFiles != 50 || po.FormatMajorVersion != pebble.FormatColumnarBlocks || po.Logger != pebble.DefaultLogger {
		t.Errorf("options not passed on: cache %d memtable %d open files %d format %v logger %T", po.CacheSize, po.MemTableSize, po.MaxOpenFiles, po.FormatMajorVersion, po.Logger)
	}
	if lo, hi := po.CompactionConcurrencyRange(); lo != 1 || hi != 3 {
		t.Errorf("CompactionConcurrencyRange = %d, %d; want 1, 3", lo, hi)
	}
	for i, l := range po.Levels {
		if l.FilterPolicy != nil {
			t.Errorf("level %d: FilterPolicy = %v with BloomBitsPerKey -1, want none", i, l.FilterPolicy)
		}
	}
	po, err = (&Options{BloomBitsPerKey: 16}).pebbleOptions()
	if err != nil || po.Levels[6].FilterPolicy != bloom.FilterPolicy(16) {
		t.Errorf("BloomBitsPerKey 16: %v, %v", po.Levels[6].FilterPolicy, err)
	}

	// A custom configuration is taken as it is, and copied.
	custom := &pebble.Options{MemTableSize: 8 << 20, CacheSize: 3 << 20}
	po, err = (&Options{Pebble: custom, CacheSize: 1 << 30}).pebbleOptions()
	if err != nil {
		t.Fatal(err)
	}
	if po == custom || po.MemTableSize != 8<<20 || po.CacheSize != 3<<20 || po.Levels[0].FilterPolicy != nil {
		t.Errorf("custom options: got memtable %d cache %d filter %v (same pointer %v)", po.MemTableSize, po.CacheSize, po.Levels[0].FilterPolicy, po == custom)
	}

	for _, bad := range []*Options{
		{CacheSize: -1},
		{MaxConcurrentCompactions: -2},
		{MaxOpenFiles: -1},
		{Pebble: &pebble.Options{ReadOnly: true}},
		{Pebble: &pebble.Options{DisableWAL: true}},
	} {
		if _, err := bad.pebbleOptions(); !errors.Is(err, storage.ErrBadOption) {
			t.Errorf("%+v: err = %v, want ErrBadOption", *bad, err)
		}
	}
}

func TestKeyEncoding(t *testing.T) {
	keys := [][]byte{{}, {0}, {0, 0}, {0, 1}, {1}, []byte("a"), []byte("a\x00"), []byte("a\x00\x00"), []byte("a\x01"), []byte("ab"), {0xff}, {0xff, 0}, {0xff, 0xff}}
	for _, a := range keys {
		ea := encodeKey(nil, a)
		if got := decodeKey(ea); string(got) != string(a) {
			t.Errorf("decodeKey(encodeKey(%q)) = %q", a, got)
		}
		for _, b := range keys {
			if got, want := compare(ea, encodeKey(nil, b)), compare(a, b); got != want {
				t.Errorf("order of %q, %q: encoded %d, want %d", a, b, got, want)
			}
		}
	}
}

func compare(a, b []byte) int {
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}
