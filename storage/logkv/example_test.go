package logkv_test

import (
	"fmt"
	"log"
	"os"

	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
)

// tempDir makes a directory for one example; the caller removes it.
func tempDir() string {
	dir, err := os.MkdirTemp("", "logkv-example")
	if err != nil {
		log.Fatal(err)
	}
	return dir
}

// Writes, reads, a snapshot, and a reopen that loads the index
// checkpoint Close wrote instead of replaying the log.
func Example() {
	dir := tempDir()
	defer os.RemoveAll(dir)

	db, err := logkv.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := db.Put([]byte("user:1"), []byte("ada"), nil); err != nil {
		log.Fatal(err)
	}
	if err := db.Put([]byte("user:2"), []byte("grace"), nil); err != nil {
		log.Fatal(err)
	}
	snap, err := db.NewSnapshot()
	if err != nil {
		log.Fatal(err)
	}

	// A batch is one log record: atomic, also across a crash.
	var b storage.Batch
	b.Put([]byte("user:2"), []byte("grace hopper"))
	b.Put([]byte("user:3"), []byte("barbara"))
	b.Delete([]byte("user:1"))
	if err := db.Apply(&b, storage.Synced); err != nil {
		log.Fatal(err)
	}

	// Get appends to the buffer it is given: reuse one across calls.
	buf := make([]byte, 0, 64)
	for _, k := range []string{"user:1", "user:2", "user:3"} {
		v, err := db.Get([]byte(k), buf)
		fmt.Printf("now      %s: %q %v\n", k, v, err != nil)
		v, err = snap.Get([]byte(k), buf)
		fmt.Printf("snapshot %s: %q %v\n", k, v, err != nil)
	}
	// Iterators, snapshots and views must be closed before the store.
	if err := snap.Close(); err != nil {
		log.Fatal(err)
	}
	st := db.Stats()
	fmt.Println("engine:", st.Engine, "keys:", st.Keys)
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}

	db, err = logkv.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	rep := db.Report()
	fmt.Println("index loaded:", rep.IndexLoaded, "entries replayed:", rep.Replayed)
	fmt.Println("keys:", db.Stats().Keys)
	// Output:
	// now      user:1: "" true
	// snapshot user:1: "ada" false
	// now      user:2: "grace hopper" false
	// snapshot user:2: "grace" false
	// now      user:3: "barbara" false
	// snapshot user:3: "" true
	// engine: ringlog keys: 2
	// index loaded: true entries replayed: 0
	// keys: 2
}

// small is the options of a small store, quick to create: 1 MiB segments
// (so values of at most about 1 MiB), at most 64 MiB of log.
var small = &logkv.Options{SegmentSize: 1 << 20, Capacity: 64 << 20}

// Iteration is ordered by bytes.Compare and bounded to [LowerBound,
// UpperBound); it sees the store as it was when NewIter was called.
func ExampleDB_NewIter() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	db, err := logkv.Open(dir, small)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	var b storage.Batch
	for _, k := range []string{"a", "b/1", "b/2", "b/3", "c"} {
		b.Put([]byte(k), []byte("value of "+k))
	}
	if err := db.Apply(&b, nil); err != nil {
		log.Fatal(err)
	}

	it, err := db.NewIter(&storage.IterOptions{LowerBound: []byte("b/"), UpperBound: []byte("b0")})
	if err != nil {
		log.Fatal(err)
	}
	// Writes after NewIter are not seen by it.
	if err := db.Put([]byte("b/4"), nil, nil); err != nil {
		log.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		// Key and Value are valid until the iterator moves: copy to keep.
		fmt.Printf("%s: %s\n", it.Key(), it.Value())
	}
	// Seek within the bounds, and walk backward.
	for ok := it.SeekLT([]byte("b/3")); ok; ok = it.Prev() {
		fmt.Printf("backward: %s\n", it.Key())
	}
	if err := it.Error(); err != nil {
		log.Fatal(err)
	}
	if err := it.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// b/1: value of b/1
	// b/2: value of b/2
	// b/3: value of b/3
	// backward: b/2
	// backward: b/1
}

// GetView reads a value without copying it: the bytes are the log's own
// mapping, valid until Release. Close refuses while a view is out.
func ExampleDB_GetView() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	db, err := logkv.Open(dir, small)
	if err != nil {
		log.Fatal(err)
	}
	if err := db.Put([]byte("k"), []byte("a value read in place"), nil); err != nil {
		log.Fatal(err)
	}
	v, err := db.GetView([]byte("k"))
	if err != nil {
		log.Fatal(err)
	}
	// Overwriting the key does not change the bytes the view holds: the
	// new value goes elsewhere in the log, and the view pins the old one.
	if err := db.Put([]byte("k"), []byte("another value"), nil); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("view: %s\n", v.Bytes())
	fmt.Println("close with a view out fails:", db.Close() != nil)
	v.Release()
	fmt.Println("after Release:", v.Bytes() == nil)
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// view: a value read in place
	// close with a view out fails: true
	// after Release: true
}
