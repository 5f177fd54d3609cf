// Command writer appends lines of text to a log, one every -every, and
// prints the position of each record it appends. Run the tailer beside it
// (in another terminal) to watch the records arrive.
//
//	go run ./examples/tail/writer -log /tmp/x.log
//	seq 5 | go run ./examples/tail/writer -log /tmp/x.log -stdin
//
// Ctrl-C closes the log cleanly; starting the writer again continues the
// same log.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ringlog/ringlog/wal"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("writer: ")
	// Ctrl-C (or a kill) cancels ctx: the loop stops and the log is closed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Fatal(err)
	}
}

// run is the whole program, minus the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) (err error) {
	flags := flag.NewFlagSet("writer", flag.ContinueOnError)
	path := flags.String("log", filepath.Join(os.TempDir(), "tail.log"), "the log file (created if it does not exist)")
	every := flags.Duration("every", 500*time.Millisecond, "time between two generated messages")
	n := flags.Int("n", 0, "number of records to append (0: until interrupted)")
	fromStdin := flags.Bool("stdin", false, "append the lines read from standard input instead of generated messages")
	syncEvery := flags.Duration("sync", time.Second, "how often the log is synced (0: every append waits for its sync)")
	keep := flags.Int("keep", 10000, "how many of the latest records to keep for tailers that start from the beginning; older ones are dropped (0: keep all, until the log is full)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}

	opts := &wal.Options{
		// A sync every interval in the background: Append returns as soon
		// as the record is in the log, and tailers with -durable see it
		// once the next sync has made it durable.
		Sync:         wal.SyncInterval,
		SyncInterval: *syncEvery,
		// A full log (a tailer's named consumer holds the space) fails
		// Append with ErrFull instead of making it wait.
		Full: wal.FullError,
	}
	if *syncEvery == 0 {
		opts.Sync = wal.SyncAlways
	}
	l, err := wal.Open(*path, opts)
	if errors.Is(err, fs.ErrNotExist) {
		l, err = wal.Create(*path, opts)
	}
	if err != nil {
		return err
	}
	// Close writes and syncs whatever is still staged.
	defer func() {
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}()
	if r := l.Report(); r.Cut() {
		fmt.Fprintf(stdout, "recovery: %v\n", r)
	}

	// Stops the goroutine that produces the lines when run returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lines <-chan string
	if *fromStdin {
		lines = scan(ctx, stdin)
	} else {
		lines = generate(ctx, *every)
	}
	var kept []uint64 // positions of this run's records still in the log, oldest first
	for i := 0; *n == 0 || i < *n; i++ {
		var line string
		select {
		case <-ctx.Done():
			return nil // interrupted: the deferred Close finishes the log
		case s, ok := <-lines:
			if !ok {
				return nil // end of the input
			}
			line = s
		}
		pos, err := l.Append(ctx, []byte(line))
		if ctx.Err() != nil && errors.Is(err, wal.ErrNotDurable) {
			// Interrupted while waiting for the sync (-sync 0): the
			// record is in the log, and Close syncs it.
			err = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: nothing was appended
			}
			return err
		}
		fmt.Fprintf(stdout, "%d: %s\n", pos, line)

		// Without truncation a bounded log fills up and appends fail.
		// Drop the oldest records now and then (every truncation syncs
		// the log's header, so not after every append). Tailers still
		// reading them keep them until they move on.
		kept = append(kept, pos)
		if *keep > 0 && len(kept) >= 2**keep {
			cut := kept[len(kept)-*keep]
			// TruncateFront takes only records already written: Flush
			// hands the staged ones to the operating system first.
			if err := l.Flush(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if err := l.TruncateFront(cut); err != nil {
				return err
			}
			kept = append(kept[:0], kept[len(kept)-*keep:]...)
		}
	}
	return nil
}

// generate sends a numbered, timestamped message every interval until ctx
// ends.
func generate(ctx context.Context, every time.Duration) <-chan string {
	lines := make(chan string)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case lines <- fmt.Sprintf("message %d at %s", i, time.Now().Format("15:04:05.000")):
			case <-ctx.Done():
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}

// scan sends the lines of r until its end, then closes the channel. A
// read blocked on a terminal is left behind when ctx ends: the program is
// exiting then.
func scan(ctx context.Context, r io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			log.Print(err)
		}
	}()
	return lines
}
