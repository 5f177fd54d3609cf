package ring_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ringlog/ringlog/ring"
)

// A record written across the end of the data area comes back as one
// slice: the data area is mapped twice, back to back.
func Example() {
	dir, err := os.MkdirTemp("", "ring-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ring")
	ctx := context.Background()

	// A ring of 64 KiB of data (the smallest capacity).
	r, err := ring.Create(path, &ring.Options{Capacity: 64 << 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("capacity:", r.Capacity())

	// A named consumer retains what it has not released: the producer
	// never overwrites it.
	c, err := r.Consumer("reader", nil)
	if err != nil {
		log.Fatal(err)
	}

	// Fill most of the ring, and let the consumer read and release it.
	if _, err := r.Write(ctx, make([]byte, 60<<10)); err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.Peek(); err != nil {
		log.Fatal(err)
	}
	if err := c.Release(60 << 10); err != nil {
		log.Fatal(err)
	}

	// An 8 KiB record at position 60 KiB: 4 KiB before the end of the
	// data area, 4 KiB after its start.
	// Its first half is 'a's, the second 'b's.
	rec := append(bytes.Repeat([]byte("a"), 4<<10), bytes.Repeat([]byte("b"), 4<<10)...)
	pos, err := r.Write(ctx, rec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("record at %d..%d: file offsets %d and %d\n",
		pos, pos+uint64(len(rec)), r.FileOffset(pos), r.FileOffset(pos+4<<10))

	// Peek hands out everything unreleased as one slice of the mapping.
	got, at, err := c.Peek()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("peek at", at, "length", len(got), "equal:", bytes.Equal(got, rec))

	// Slice reads any retained range in place, also across the wrap.
	s, err := r.Slice(pos+4<<10-3, 6)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("across the wrap: %s\n", s)

	if err := c.Release(len(got)); err != nil {
		log.Fatal(err)
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	// Close syncs: the head and the consumer's position are durable.
	if err := r.Close(); err != nil {
		log.Fatal(err)
	}

	r, err = ring.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for _, ci := range r.Consumers() {
		fmt.Printf("after reopen: head %d, consumer %q at %d\n", r.Head(), ci.Name, ci.Position)
	}
	// Output:
	// capacity: 65536
	// record at 61440..69632: file offsets 126976 and 65536
	// peek at 61440 length 8192 equal: true
	// across the wrap: aaabbb
	// after reopen: head 69632, consumer "reader" at 69632
}
