package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/wal"
)

// records reads every record the log at path holds as "position: text"
// lines, the way the writer prints them.
func records(t *testing.T, path string) string {
	t.Helper()
	l, err := wal.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var b strings.Builder
	for pos, data := range rd.All() {
		fmt.Fprintf(&b, "%d: %s\n", pos, data)
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestStdin: with -stdin every input line becomes a record, empty ones
// too, and a second run appends to the same log.
func TestStdin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var out bytes.Buffer
	for _, input := range []string{"one\n\nthree\n", "four\n"} {
		if err := run(context.Background(), []string{"-log", path, "-stdin"}, strings.NewReader(input), &out); err != nil {
			t.Fatal(err)
		}
	}
	if got := records(t, path); got != out.String() {
		t.Fatalf("the log holds\n%s\nthe writer printed\n%s", got, out.String())
	}
	var texts []string
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		_, text, _ := strings.Cut(line, ": ")
		texts = append(texts, text)
	}
	if got := strings.Join(texts, "|"); got != "one||three|four" {
		t.Fatalf("records %q", got)
	}
}

// TestKeep: the writer drops old records but always keeps the latest
// -keep of them.
func TestKeep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-log", path, "-n", "23", "-every", "1ms", "-keep", "5"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(out.String(), "\n")
	lines = lines[:len(lines)-1] // after the last newline
	got := records(t, path)
	if !strings.HasSuffix(got, strings.Join(lines[len(lines)-5:], "")) {
		t.Fatalf("the log holds\n%s\nnot the last 5 of\n%s", got, out.String())
	}
	if n := strings.Count(got, "\n"); n >= 10 {
		t.Fatalf("the log still holds %d records", n)
	}
}

// TestFull: a named consumer that reads nothing holds the records; when the
// log is full the writer stops with ErrFull rather than drop them.
func TestFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	l, err := wal.Create(path, &wal.Options{Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Consumer("idle", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"-log", path, "-n", "10000", "-every", "1us", "-keep", "5"}, nil, new(bytes.Buffer))
	if !errors.Is(err, wal.ErrFull) {
		t.Fatalf("a full log: %v", err)
	}
}
