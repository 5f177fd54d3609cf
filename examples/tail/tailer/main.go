// Command tailer follows a log that another process writes, like tail -f,
// and prints each record as "position: text". It opens the log read-only,
// so it runs beside the writer (see ../writer), and it keeps following
// when the writer stops and starts again.
//
//	go run ./examples/tail/tailer -log /tmp/x.log
//	go run ./examples/tail/tailer -log /tmp/x.log -from end -durable
//	go run ./examples/tail/tailer -log /tmp/x.log -consumer me
//
// With -consumer the tailer reads as a named consumer: the log remembers
// what it has acknowledged, so a tailer started again under the same name
// goes on where the last one stopped. Ctrl-C stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ringlog/ringlog/wal"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("tailer: ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Fatal(err)
	}
}

// run is the whole program, minus the process: tests call it directly.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	flags := flag.NewFlagSet("tailer", flag.ContinueOnError)
	path := flags.String("log", filepath.Join(os.TempDir(), "tail.log"), "the log file (the writer creates it)")
	from := flags.String("from", "start", "where to begin: start (the oldest record the log holds) or end (only records written from now on)")
	durable := flags.Bool("durable", false, "print a record only once it is durable (synced by the writer)")
	consumer := flags.String("consumer", "", "read as the named consumer: resume where the last tailer of that name stopped (-from then applies to a new name only)")
	n := flags.Int("n", 0, "stop after this many records (0: until interrupted)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if *from != "start" && *from != "end" {
		return fmt.Errorf("-from %q: want start or end", *from)
	}

	// ReadOnly: no recovery and no writes; the writer in the other process
	// keeps the log. The file must exist (start the writer first).
	l, err := wal.Open(*path, &wal.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}()

	if *consumer != "" {
		return followConsumer(ctx, l, *consumer, *from == "start", *durable, *n, stdout)
	}

	// The oldest record the log still holds is at the checkpoint; the end
	// is where the writer has written up to.
	start := l.Checkpoint()
	if *from == "end" {
		start = l.Written()
	}
	rd, err := l.NewReader(start, &wal.ReaderOptions{Durable: *durable})
	if err != nil {
		return err
	}
	defer rd.Close() // before the log's Close
	// Follow yields the records up to the end, then waits for more,
	// until ctx ends. data is a slice of the log's mapping, valid only
	// until the next record: print it, don't keep it.
	if err := printRecords(stdout, rd.Follow(ctx), *n, nil); err != nil {
		return err
	}
	return stopped(ctx, rd.Err())
}

// followConsumer follows the log as the named consumer, acknowledging each
// record once it is printed.
func followConsumer(ctx context.Context, l *wal.Log, name string, fromStart, durable bool, n int, stdout io.Writer) (err error) {
	// The first call registers the name (at the oldest record, or at the
	// end); later ones attach to it at its acknowledged position.
	c, err := l.Consumer(name, &wal.ConsumerOptions{FromStart: fromStart, Durable: durable})
	if err != nil {
		return err
	}
	defer func() {
		// Make the acknowledged position durable, then let go of the
		// name (the registration stays).
		if serr := c.Sync(); err == nil {
			err = serr
		}
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}()
	// Ack(pos) says every record before pos is done: Position, once a
	// record is printed, is where the next one starts.
	ack := func() error { return c.Ack(c.Position()) }
	if err := printRecords(stdout, c.Follow(ctx), n, ack); err != nil {
		return err
	}
	return stopped(ctx, c.Err())
}

// printRecords writes each record as "position: text", calls done (if not
// nil) after each, and stops after n records (n > 0).
func printRecords(w io.Writer, records iter.Seq2[uint64, []byte], n int, done func() error) error {
	i := 0
	for pos, data := range records {
		if _, err := fmt.Fprintf(w, "%d: %s\n", pos, data); err != nil {
			return err
		}
		if done != nil {
			if err := done(); err != nil {
				return err
			}
		}
		if i++; i == n {
			break
		}
	}
	return nil
}

// stopped is the error following ended with, or nil if ctx ended it (an
// interrupt) or it never ended (the loop stopped after n records).
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}
