package storage_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/ringlog/ringlog/storage"
	_ "github.com/ringlog/ringlog/storage/engines" // registers "ringlog" and "pebble"
)

// A program picks its engine by name: only the string passed to Open
// changes between engines.
func Example() {
	fmt.Println("engines:", storage.Engines())
	for _, name := range []string{"ringlog", "pebble"} {
		fmt.Println("--", name)
		session(name)
	}
	// Output:
	// engines: [pebble ringlog]
	// -- ringlog
	// fruit:apple = red
	// fruit:cherry = dark red
	// fruit:fig = purple
	// snapshot still sees apple: green
	// banana deleted: true
	// after reopen: 4 keys
	// -- pebble
	// fruit:apple = red
	// fruit:cherry = dark red
	// fruit:fig = purple
	// snapshot still sees apple: green
	// banana deleted: true
	// after reopen: 4 keys
}

// session runs the same writes and reads on the engine called name.
func session(name string) {
	dir, err := os.MkdirTemp("", "storage-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := storage.Open(name, dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	// Single writes: nil (or storage.NoSync) leaves durability to a later
	// Sync or Close; storage.Synced waits for it.
	if err := db.Put([]byte("fruit:apple"), []byte("green"), nil); err != nil {
		log.Fatal(err)
	}
	if err := db.Put([]byte("fruit:banana"), []byte("yellow"), storage.Synced); err != nil {
		log.Fatal(err)
	}

	// A snapshot keeps seeing the store as it was.
	snap, err := db.NewSnapshot()
	if err != nil {
		log.Fatal(err)
	}

	// A batch is applied atomically: all of it or, after a crash, none.
	var b storage.Batch
	b.Put([]byte("fruit:apple"), []byte("red"))
	b.Put([]byte("fruit:cherry"), []byte("dark red"))
	b.Put([]byte("fruit:fig"), []byte("purple"))
	b.Put([]byte("veg:leek"), []byte("green"))
	b.Delete([]byte("fruit:banana"))
	if err := db.Apply(&b, storage.Synced); err != nil {
		log.Fatal(err)
	}

	// Iterate over the keys of one prefix: [fruit:, fruit;).
	it, err := db.NewIter(&storage.IterOptions{LowerBound: []byte("fruit:"), UpperBound: []byte("fruit;")})
	if err != nil {
		log.Fatal(err)
	}
	for k, v := range storage.All(it) {
		fmt.Printf("%s = %s\n", k, v)
	}
	if err := it.Error(); err != nil {
		log.Fatal(err)
	}
	if err := it.Close(); err != nil {
		log.Fatal(err)
	}

	v, err := snap.Get([]byte("fruit:apple"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("snapshot still sees apple: %s\n", v)
	if err := snap.Close(); err != nil {
		log.Fatal(err)
	}
	_, err = db.Get([]byte("fruit:banana"), nil)
	// Errors wrap the package's sentinels: test with errors.Is.
	fmt.Println("banana deleted:", errors.Is(err, storage.ErrNotFound))

	// Close syncs; the next Open finds everything.
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}
	db, err = storage.Open(name, dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	it, err = db.NewIter(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	n := 0
	for range storage.All(it) {
		n++
	}
	fmt.Println("after reopen:", n, "keys")
}

// A Batch collects writes; Ops reads them back in order.
func ExampleBatch() {
	var b storage.Batch
	b.Put([]byte("a"), []byte("1"))
	b.Delete([]byte("b"))
	b.Put([]byte("c"), nil)
	fmt.Println(b.Len(), "operations,", b.Size(), "key and value bytes")
	for op := range b.Ops() {
		switch op.Kind {
		case storage.KindPut:
			fmt.Printf("put %s = %q\n", op.Key, op.Value)
		case storage.KindDelete:
			fmt.Printf("delete %s\n", op.Key)
		}
	}
	// A key over the limit is refused when it is added, and Apply then
	// refuses the whole batch.
	b.Put(make([]byte, storage.MaxKeySize+1), nil)
	fmt.Println(errors.Is(b.Err(), storage.ErrTooLarge))
	// Output:
	// 3 operations, 4 key and value bytes
	// put a = "1"
	// delete b
	// put c = ""
	// true
}
