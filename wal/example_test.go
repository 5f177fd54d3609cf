package wal_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ringlog/ringlog/wal"
)

// tempDir makes a directory for one example; the caller removes it.
func tempDir() string {
	dir, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		log.Fatal(err)
	}
	return dir
}

// Append records, make them durable, read them back, and reopen the log.
func Example() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "example.wal")
	ctx := context.Background()

	// A bounded log of 1 MiB. SyncNever leaves durability to explicit
	// syncs (the default, SyncAlways, makes every Append wait for one).
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20, Sync: wal.SyncNever})
	if err != nil {
		log.Fatal(err)
	}
	// Append returns each record's position: where a reader finds it.
	var positions []uint64
	for _, s := range []string{"alpha", "bravo", "charlie"} {
		pos, err := l.Append(ctx, []byte(s))
		if err != nil {
			log.Fatal(err)
		}
		positions = append(positions, pos)
	}
	// Sync makes every record appended so far durable: one fdatasync for
	// all three.
	if err := l.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("durable:", l.Durable() == l.Written())

	// A reader returns each record as a slice of the log's mapping, valid
	// until its next call.
	rd, err := l.NewReader(positions[0], nil)
	if err != nil {
		log.Fatal(err)
	}
	for rd.Next() {
		pos, data := rd.Record()
		fmt.Printf("record %d: %s\n", slices.Index(positions, pos), data)
	}
	if err := rd.Err(); err != nil {
		log.Fatal(err)
	}
	rd.Close()
	if err := l.Close(); err != nil {
		log.Fatal(err)
	}

	// Open runs recovery and says what it found.
	l, err = wal.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	rep := l.Report()
	fmt.Println("reopened:", rep.Records, "records, cut:", rep.Cut())
	// Output:
	// durable: true
	// record 0: alpha
	// record 1: bravo
	// record 2: charlie
	// reopened: 3 records, cut: false
}

// A named consumer keeps a durable acknowledged position: opened again
// under the same name, in this process or another, it goes on where it
// stopped, and the log keeps every record it has not acknowledged.
func ExampleLog_Consumer() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "example.wal")
	ctx := context.Background()

	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	var positions []uint64
	for _, s := range []string{"one", "two", "three", "four"} {
		pos, err := l.Append(ctx, []byte(s))
		if err != nil {
			log.Fatal(err)
		}
		positions = append(positions, pos)
	}

	// A new consumer starts at the end of the log unless FromStart says
	// otherwise. It reads two records and acknowledges them.
	c, err := l.Consumer("indexer", &wal.ConsumerOptions{FromStart: true})
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		if !c.Next() {
			log.Fatal(c.Err())
		}
		_, data := c.Record()
		fmt.Printf("first run: %s\n", data)
	}
	// Ack takes the position up to which records are done: the consumer's
	// Position is just past the last record it read.
	if err := c.Ack(c.Position()); err != nil {
		log.Fatal(err)
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	// Close syncs the log, the acknowledged position with it.
	if err := l.Close(); err != nil {
		log.Fatal(err)
	}

	l, err = wal.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	for _, ci := range l.Consumers() {
		done := 0
		for _, pos := range positions {
			if pos < ci.Acked {
				done++
			}
		}
		fmt.Printf("registered: %s, %d records acknowledged\n", ci.Name, done)
	}
	c, err = l.Consumer("indexer", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for c.Next() {
		_, data := c.Record()
		fmt.Printf("second run: %s\n", data)
	}
	if err := c.Err(); err != nil {
		log.Fatal(err)
	}
	if err := c.Ack(c.Position()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// first run: one
	// first run: two
	// registered: indexer, 2 records acknowledged
	// second run: three
	// second run: four
}

// Recovery after a crash: the last write was cut short. The default
// recovery mode keeps every record a sync proved durable and cuts the torn
// tail, and the report says what it kept and what it dropped.
func ExampleOpen_recovery() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "example.wal")
	ctx := context.Background()

	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20, Sync: wal.SyncNever})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"synced 1", "synced 2"} {
		if _, err := l.Append(ctx, []byte(s)); err != nil {
			log.Fatal(err)
		}
	}
	if err := l.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	// Two more records, written to the file but not synced.
	var last uint64
	for _, s := range []string{"written 3", "written 4"} {
		if last, err = l.Append(ctx, []byte(s)); err != nil {
			log.Fatal(err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	// The file as a crash would leave it: taken before Close (which would
	// sync and mark the log clean), with the last record torn.
	img, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	img[l.FileOffset(last)+wal.HeaderSize] ^= 0xff
	if err := l.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, img, 0o600); err != nil {
		log.Fatal(err)
	}

	l, err = wal.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	rep := l.Report()
	fmt.Println("records kept:", rep.Records)
	fmt.Println("cut at the torn record:", rep.Cut() && rep.CutAt == last)
	fmt.Println("reason:", strings.SplitN(rep.Reason, ":", 2)[0])
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rd.Close()
	for _, data := range rd.All() {
		fmt.Printf("%s\n", data)
	}
	if err := rd.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// records kept: 3
	// cut at the torn record: true
	// reason: checksum mismatch
	// synced 1
	// synced 2
	// written 3
}

// Compressed records are smaller in the log and read back as they were
// appended; the reader decodes them into a buffer of its own.
func ExampleOptions_compression() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "example.wal")
	ctx := context.Background()

	// Every Append of this log compresses with S2.
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20, Compression: wal.S2})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	rec := bytes.Repeat([]byte("a line of a log that repeats itself\n"), 100)
	before := l.Metrics().Bytes
	pos, err := l.Append(ctx, rec)
	if err != nil {
		log.Fatal(err)
	}
	stored := l.Metrics().Bytes - before
	fmt.Println("payload:", len(rec), "bytes")
	fmt.Println("uncompressed, the record would take:", wal.RecordSize(len(rec)), "bytes")
	fmt.Println("compressed, it takes less:", stored < uint64(wal.RecordSize(len(rec))))

	// AppendWith chooses per call: this copy is stored as it is.
	before = l.Metrics().Bytes
	if _, err := l.AppendWith(ctx, wal.AppendOptions{Compression: wal.NoCompression}, rec); err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored as it is:", l.Metrics().Bytes-before, "bytes")

	// Readers decode whatever each record says.
	rd, err := l.NewReader(pos, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rd.Close()
	for _, data := range rd.All() {
		fmt.Printf("read %d bytes, as appended: %v\n", len(data), bytes.Equal(data, rec))
	}
	if err := rd.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// payload: 3600 bytes
	// uncompressed, the record would take: 3624 bytes
	// compressed, it takes less: true
	// stored as it is: 3624 bytes
	// read 3600 bytes, as appended: true
	// read 3600 bytes, as appended: true
}
