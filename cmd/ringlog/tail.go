package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringlog/ringlog/wal"
)

const tailSynopsis = `tail [-from POS] [-n N] [-durable] [-hex] [-backend B] PATH

Follows the log at PATH, which another process may be writing, opened
read-only, and prints each new record as dump does (a JSON line, or with
-hex a header line and a hex dump), from the end of the log or -from POS
(the position of a record), until interrupted (SIGINT, SIGTERM) or -n
records were printed. With -durable a record is printed only once it is
durable, and the default start is the durable end.

Exit status 0 when interrupted or after -n records; 1 if a record is
damaged (one line on standard error names the file and the offset); 3 if
the log could not be read (cut back under the reader by a truncation or a
writer's recovery, say).

flags:`

func runTail(args []string, stdout, stderr io.Writer) int {
	lf := newLogFlags("tail", tailSynopsis, stderr)
	from, n, asHex := lf.records("start at the record at `POS` (default: the end of the log)", "stop after `N` records (0: follow until interrupted)")
	durable := lf.fs.Bool("durable", false, "print records only once they are durable")
	l, start, code, ok := lf.open(args, stderr)
	if !ok {
		return code
	}
	defer l.Close()
	if *from == "" {
		start = l.Written()
		if *durable {
			start = l.Durable()
		}
	}
	rd, err := l.NewReader(start, &wal.ReaderOptions{Durable: *durable})
	if err != nil {
		return readFailure("tail", l, start, *from != "", err, stderr)
	}
	defer rd.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := bufio.NewWriter(stdout)
	p := &recordPrinter{w: w, l: l, hex: *asHex}
	count := 0
	for pos, data := range rd.Follow(ctx) {
		err := p.print(pos, data)
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			fmt.Fprintf(stderr, "ringlog tail: %v\n", err)
			return exitFailure
		}
		count++
		if *n > 0 && count >= *n {
			return exitOK
		}
	}
	if err := rd.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return readFailure("tail", l, rd.Position(), false, err, stderr)
	}
	return exitOK
}
