package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

const inspectSynopsis = `inspect [-json] [-backend B] PATH

Prints what the log at PATH says about itself, opened read-only (beside a
writer in another process if there is one, without recovery):

  file            the log's file and its size in bytes
  layout          bounded (a ring) or growing (segments)
  capacity        the ring's capacity in bytes (growing: the most the log may hold)
  segment_size    the segment size of a growing log (0 for a bounded one)
  epoch           the epoch the header records: new records carry it
  max_record      the largest payload a record may have
  backend         the pager backend of this read-only view
  checkpoint      where reading and recovery start
  written         the end of the records handed to the operating system
                  (the ring's head)
  durable         the end of the records known to be on stable storage
  consumer "NAME" each registered consumer: acknowledged position, lag in
                  bytes, lossy, detached, and the pid attached to it

Text by default, one "key value" pair per line; -json prints one JSON object.

flags:`

// inspectInfo is what inspect prints.
type inspectInfo struct {
	File        string         `json:"file"`
	FileSize    int64          `json:"file_size"`
	Layout      string         `json:"layout"`
	Capacity    int64          `json:"capacity"`
	SegmentSize int64          `json:"segment_size"`
	Epoch       uint32         `json:"epoch"`
	MaxRecord   int            `json:"max_record"`
	Backend     string         `json:"backend"`
	Checkpoint  uint64         `json:"checkpoint"`
	Written     uint64         `json:"written"`
	Durable     uint64         `json:"durable"`
	Consumers   []consumerInfo `json:"consumers"`
}

type consumerInfo struct {
	Name     string `json:"name"`
	Acked    uint64 `json:"acked"`
	Lag      uint64 `json:"lag"`
	Lossy    bool   `json:"lossy"`
	Detached bool   `json:"detached"`
	PID      int    `json:"pid"`
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	lf := newLogFlags("inspect", inspectSynopsis, stderr)
	asJSON := lf.fs.Bool("json", false, "print one JSON object")
	l, _, code, ok := lf.open(args, stderr)
	if !ok {
		return code
	}
	defer l.Close()
	li := l.Info()
	info := inspectInfo{
		File:        l.Name(),
		FileSize:    -1,
		Layout:      li.Layout.String(),
		Capacity:    li.Capacity,
		SegmentSize: li.SegmentSize,
		Epoch:       li.Epoch,
		MaxRecord:   l.MaxRecordSize(),
		Backend:     li.Backend.String(),
		Checkpoint:  l.Checkpoint(),
		Written:     l.Written(),
		Durable:     l.Durable(),
		Consumers:   []consumerInfo{},
	}
	if st, err := os.Stat(l.Name()); err == nil {
		info.FileSize = st.Size()
	}
	for _, c := range l.Consumers() {
		info.Consumers = append(info.Consumers, consumerInfo{Name: c.Name, Acked: c.Acked, Lag: c.Lag, Lossy: c.Lossy, Detached: c.Detached, PID: c.PID})
	}
	if *asJSON {
		b, err := json.Marshal(info)
		if err != nil {
			fmt.Fprintf(stderr, "ringlog inspect: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintf(stdout, "file %s\n", info.File)
	fmt.Fprintf(stdout, "file_size %d\n", info.FileSize)
	fmt.Fprintf(stdout, "layout %s\n", info.Layout)
	fmt.Fprintf(stdout, "capacity %d\n", info.Capacity)
	fmt.Fprintf(stdout, "segment_size %d\n", info.SegmentSize)
	fmt.Fprintf(stdout, "epoch %d\n", info.Epoch)
	fmt.Fprintf(stdout, "max_record %d\n", info.MaxRecord)
	fmt.Fprintf(stdout, "backend %s\n", info.Backend)
	fmt.Fprintf(stdout, "checkpoint %d\n", info.Checkpoint)
	fmt.Fprintf(stdout, "written %d\n", info.Written)
	fmt.Fprintf(stdout, "durable %d\n", info.Durable)
	for _, c := range info.Consumers {
		fmt.Fprintf(stdout, "consumer %q acked=%d lag=%d lossy=%t detached=%t pid=%d\n", c.Name, c.Acked, c.Lag, c.Lossy, c.Detached, c.PID)
	}
	return exitOK
}
