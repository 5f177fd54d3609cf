package tail_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// build compiles the writer and the tailer into a temporary directory.
func build(t *testing.T) (writer, tailer string) {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Skip("no go command to build the programs with")
	}
	dir := t.TempDir()
	cmd := exec.Command(goTool, "build", "-o", dir+string(filepath.Separator), "./writer", "./tailer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "writer"), filepath.Join(dir, "tailer")
}

// start runs a program with its output in a buffer and stdin (if not nil)
// as its input; wait returns the output once the program has exited.
func start(t *testing.T, ctx context.Context, stdin io.Reader, prog string, args ...string) (wait func() string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, prog, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
}

// TestTail: tailers in other processes print exactly the lines the writer
// printed, in order: one follows the writer from its first run across a
// restart, another (durable records only) starts between the runs. Then a
// named consumer reads the log in two runs, the second resuming where the
// first stopped.
func TestTail(t *testing.T) {
	writer, tailer := build(t)
	// Only a guard against a hang: nothing below waits for a time.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "tail.log")
	const n = 20 // records per run of the writer
	all := fmt.Sprint(2 * n)

	// First run: generated messages.
	waitWriter := start(t, ctx, nil, writer, "-log", path, "-n", fmt.Sprint(n), "-every", "5ms", "-sync", "20ms")
	for {
		if _, err := os.Stat(path); err == nil {
			break // the writer creates the file complete, in one step
		}
		if ctx.Err() != nil {
			t.Fatal("the writer did not create the log")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitTailer := start(t, ctx, nil, tailer, "-log", path, "-n", all)
	written := waitWriter()

	// Second run: lines from stdin. The writer stays up until the tailers
	// have printed every record.
	waitDurable := start(t, ctx, nil, tailer, "-log", path, "-n", all, "-durable")
	input, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	waitWriter = start(t, ctx, input, writer, "-log", path, "-stdin", "-sync", "20ms")
	input.Close() // the writer has its own copy
	for i := range n {
		// A few hundred bytes: the pipe's buffer holds them all.
		if _, err := fmt.Fprintf(feed, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	tailed, durable := waitTailer(), waitDurable()
	feed.Close()
	written += waitWriter()

	if lines := strings.Count(written, "\n"); lines != 2*n {
		t.Fatalf("the writer printed %d lines, want %d:\n%s", lines, 2*n, written)
	}
	if tailed != written {
		t.Errorf("the tailer printed\n%s\nthe writer\n%s", tailed, written)
	}
	if durable != written {
		t.Errorf("the durable tailer printed\n%s\nthe writer\n%s", durable, written)
	}

	first := start(t, ctx, nil, tailer, "-log", path, "-consumer", "test", "-n", fmt.Sprint(n/2))()
	rest := start(t, ctx, nil, tailer, "-log", path, "-consumer", "test", "-n", fmt.Sprint(2*n-n/2))()
	if first+rest != written {
		t.Errorf("the consumer printed\n%s\nthen\n%s\nthe writer\n%s", first, rest, written)
	}
}
