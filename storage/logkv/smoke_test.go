package logkv

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ringlog/ringlog/storage"
)

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, &Options{SegmentSize: 1 << 20, GCDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := db.Put([]byte(fmt.Sprintf("k%04d", i)), []byte(fmt.Sprintf("v%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	v, err := db.Get([]byte("k0042"), nil)
	if err != nil || string(v) != "v42" {
		t.Fatalf("%q %v", v, err)
	}
	if err := db.Delete([]byte("k0042"), storage.Synced); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get([]byte("k0042"), nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	it, _ := db.NewIter(&storage.IterOptions{LowerBound: []byte("k0040"), UpperBound: []byte("k0045")})
	var got []string
	for k, v := range storage.All(it) {
		got = append(got, string(k)+"="+string(v))
	}
	it.Close()
	if fmt.Sprint(got) != "[k0040=v40 k0041=v41 k0043=v43 k0044=v44]" {
		t.Fatal(got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err = db.Get([]byte("k0999"), nil)
	if err != nil || !bytes.Equal(v, []byte("v999")) {
		t.Fatalf("%q %v", v, err)
	}
	if _, err := db.Get([]byte("k0042"), nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
}
