// Command kv is a small key-value session on any storage engine: it
// opens a store with storage.Open, writes, reads, scans a range, takes a
// snapshot and reopens the store, printing what it sees at each step.
//
//	go run ./examples/kv -engine ringlog -dir /tmp/kv
//	go run ./examples/kv -engine pebble -dir /tmp/kv-pebble
//
// The same program runs on both engines: only the -engine string changes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/ringlog/ringlog/storage"
	_ "github.com/ringlog/ringlog/storage/engines" // registers "ringlog" and "pebble"
)

func main() {
	engine := flag.String("engine", "ringlog", "storage engine: "+fmt.Sprint(storage.Engines()))
	dir := flag.String("dir", filepath.Join(os.TempDir(), "ringlog-kv-example"), "directory of the store (created if missing)")
	flag.Parse()
	log.SetFlags(0)
	if err := run(os.Stdout, *engine, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer, engine, dir string) error {
	db, err := storage.Open(engine, dir, nil)
	if err != nil {
		return err
	}
	// Single writes: Put and Delete, synced when the caller needs them
	// durable before going on.
	for i, fruit := range []string{"apple", "banana", "cherry", "damson", "elder"} {
		if err := db.Put([]byte("fruit/"+fruit), []byte(fmt.Sprint(i+1)), storage.NoSync); err != nil {
			return err
		}
	}
	if err := db.Delete([]byte("fruit/damson"), storage.Synced); err != nil {
		return err
	}
	// A batch is applied atomically: after a crash, all of it or none.
	var b storage.Batch
	b.Put([]byte("veg/leek"), []byte("10"))
	b.Put([]byte("veg/kale"), []byte("11"))
	b.Delete([]byte("fruit/elder"))
	if err := db.Apply(&b, storage.Synced); err != nil {
		return err
	}
	// Get copies the value into a buffer the caller owns.
	v, err := db.Get([]byte("fruit/banana"), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "get fruit/banana = %s\n", v)
	if _, err := db.Get([]byte("fruit/damson"), nil); errors.Is(err, storage.ErrNotFound) {
		fmt.Fprintln(w, "get fruit/damson: not found")
	}
	// A snapshot keeps seeing the store as it was.
	snap, err := db.NewSnapshot()
	if err != nil {
		return err
	}
	if err := db.Put([]byte("fruit/apple"), []byte("100"), nil); err != nil {
		return err
	}
	// Range scans: [fruit/, fruit0) is every key with the prefix.
	if err := scan(w, "now", db, "fruit/", "fruit0"); err != nil {
		return err
	}
	if err := scan(w, "snapshot", snap, "fruit/", "fruit0"); err != nil {
		return err
	}
	if err := snap.Close(); err != nil {
		return err
	}
	// Backward over everything.
	it, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	fmt.Fprint(w, "all keys, backward:")
	for k := range storage.Backward(it) {
		fmt.Fprintf(w, " %s", k)
	}
	fmt.Fprintln(w)
	if err := it.Error(); err != nil {
		return err
	}
	if err := it.Close(); err != nil {
		return err
	}
	st := db.Stats()
	fmt.Fprintf(w, "%s engine: %d puts, %d deletes, %d batches\n", st.Engine, st.Puts, st.Deletes, st.Batches)
	if err := db.Close(); err != nil {
		return err
	}
	// Reopen: everything written is still there.
	db, err = storage.Open(engine, dir, nil)
	if err != nil {
		return err
	}
	if err := scan(w, "after reopen", db, "", ""); err != nil {
		return err
	}
	return db.Close()
}

// scan prints the pairs of r in [lo, hi) ("" is open).
func scan(w io.Writer, what string, r storage.Reader, lo, hi string) error {
	o := &storage.IterOptions{}
	if lo != "" {
		o.LowerBound = []byte(lo)
	}
	if hi != "" {
		o.UpperBound = []byte(hi)
	}
	it, err := r.NewIter(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s:", what)
	for k, v := range storage.All(it) {
		fmt.Fprintf(w, " %s=%s", k, v)
	}
	fmt.Fprintln(w)
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}
