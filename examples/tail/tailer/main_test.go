package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringlog/ringlog/wal"
)

// writeLog creates a log with n records and returns its path and the
// lines the tailer should print for them.
func writeLog(t *testing.T, n int) (path, want string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "x.log")
	l, err := wal.Create(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range n {
		text := fmt.Sprintf("record %d", i)
		pos, err := l.Append(context.Background(), []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d: %s\n", pos, text)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, b.String()
}

func TestFromStart(t *testing.T) {
	path, want := writeLog(t, 10)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-log", path, "-n", "10"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", out.String(), want)
	}
}

// TestFromEnd: from the end nothing is printed, and the end of ctx (an
// interrupt) stops the tailer without an error.
func TestFromEnd(t *testing.T) {
	path, _ := writeLog(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-log", path, "-from", "end"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q", out.String())
	}
}

// TestConsumerResumes: a named consumer goes on where the last run under
// its name stopped.
func TestConsumerResumes(t *testing.T) {
	path, want := writeLog(t, 10)
	var out bytes.Buffer
	for _, n := range []string{"3", "7"} {
		if err := run(context.Background(), []string{"-log", path, "-consumer", "c", "-n", n}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", out.String(), want)
	}
}

func TestBadFlags(t *testing.T) {
	path, _ := writeLog(t, 1)
	for _, args := range [][]string{
		{"-log", path, "-from", "middle"},
		{"-log", filepath.Join(t.TempDir(), "missing.log")},
		{"-log", path, "extra"},
	} {
		if err := run(context.Background(), args, new(bytes.Buffer)); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
