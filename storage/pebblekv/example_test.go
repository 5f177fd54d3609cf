package pebblekv_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/pebblekv"
)

// The "pebble" engine behind the storage.Engine interface: the same calls
// as any other engine.
func Example() {
	dir, err := os.MkdirTemp("", "pebblekv-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// nil options: Pebble as its users run it (see Options). Small
	// caches are enough here.
	db, err := pebblekv.Open(dir, &pebblekv.Options{CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		log.Fatal(err)
	}
	var e storage.Engine = db

	// The empty key is a key like any other.
	if err := e.Put(nil, []byte("the empty key"), nil); err != nil {
		log.Fatal(err)
	}
	var b storage.Batch
	b.Put([]byte("a"), []byte("1"))
	b.Put([]byte("b"), []byte("2"))
	b.Put([]byte("c"), []byte("3"))
	if err := e.Apply(&b, storage.Synced); err != nil {
		log.Fatal(err)
	}
	snap, err := e.NewSnapshot()
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Delete([]byte("b"), nil); err != nil {
		log.Fatal(err)
	}

	v, err := e.Get(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q = %s\n", "", v)
	_, err = e.Get([]byte("b"), nil)
	fmt.Println("b deleted:", errors.Is(err, storage.ErrNotFound))

	// The snapshot still holds b; iterate over it from b on.
	it, err := snap.NewIter(&storage.IterOptions{LowerBound: []byte("b")})
	if err != nil {
		log.Fatal(err)
	}
	for k, v := range storage.All(it) {
		fmt.Printf("snapshot: %s = %s\n", k, v)
	}
	if err := it.Error(); err != nil {
		log.Fatal(err)
	}
	it.Close()
	snap.Close()

	// Backward over the whole store.
	it, err = e.NewIter(nil)
	if err != nil {
		log.Fatal(err)
	}
	for k := range storage.Backward(it) {
		fmt.Printf("backward: %q\n", k)
	}
	it.Close()

	fmt.Println("engine:", e.Stats().Engine)
	if err := e.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// "" = the empty key
	// b deleted: true
	// snapshot: b = 2
	// snapshot: c = 3
	// backward: "c"
	// backward: "a"
	// backward: ""
	// engine: pebble
}

// Importing the package registers the engine, so storage.Open takes its
// name, with this package's Options.
func Example_storageOpen() {
	dir, err := os.MkdirTemp("", "pebblekv-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	e, err := storage.Open(pebblekv.Name, dir, &pebblekv.Options{CacheSize: 8 << 20})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Put([]byte("k"), []byte("v"), storage.Synced); err != nil {
		log.Fatal(err)
	}
	if err := e.Close(); err != nil {
		log.Fatal(err)
	}

	// Reopened, the store has the key.
	e, err = storage.Open("pebble", dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	v, err := e.Get([]byte("k"), nil)
	fmt.Printf("%s %v\n", v, err)
	// Output:
	// v <nil>
}
