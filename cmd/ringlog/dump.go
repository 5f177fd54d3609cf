package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

const dumpSynopsis = `dump [-from POS] [-n N] [-hex] [-backend B] PATH

Prints the records of the log at PATH, opened read-only (beside a writer in
another process if there is one, without recovery), from the checkpoint or
-from POS (the position of a record) to the end of what is written.

One JSON object per line by default:

  {"pos":P,"file_offset":F,"len":N,"data":"<base64>"}

pos is the record's position in the log, file_offset the offset in the file
of its header (-1 if no part of the file holds it), len and data the payload
(compressed records are decompressed). With -hex, a line
"pos=P file_offset=F len=N" per record, then its payload as a hex dump.

Exit status 1 if a record is damaged (one line on standard error names the
file and the offset), 3 if the log could not be read.

flags:`

func runDump(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dump", dumpSynopsis, stderr)
	from := fs.String("from", "", "start at the record at `POS` (default: the checkpoint)")
	n := fs.Int("n", 0, "print at most `N` records (0: all)")
	asHex := fs.Bool("hex", false, "print a header line and a hex dump per record instead of JSON lines")
	backend := backendFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	path, code, ok := onePath("dump", fs.Args(), stderr)
	if !ok {
		return code
	}
	start, code, ok := parsePos("dump", *from, stderr)
	if !ok {
		return code
	}
	if *n < 0 {
		fmt.Fprintf(stderr, "ringlog dump: -n %d: not a count\n", *n)
		return exitUsage
	}
	l, code, ok := openReadOnly("dump", path, *backend, stderr)
	if !ok {
		return code
	}
	defer l.Close()
	if *from == "" {
		start = l.Checkpoint()
	}
	rd, err := l.NewReader(start, nil)
	if err != nil {
		return readFailure("dump", l, start, *from != "", err, stderr)
	}
	defer rd.Close()
	w := bufio.NewWriter(stdout)
	p := &recordPrinter{w: w, l: l, hex: *asHex}
	count := 0
	for *n == 0 || count < *n {
		if !rd.Next() {
			break
		}
		pos, data := rd.Record()
		if err := p.print(pos, data); err != nil {
			fmt.Fprintf(stderr, "ringlog dump: %v\n", err)
			return exitFailure
		}
		count++
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "ringlog dump: %v\n", err)
		return exitFailure
	}
	if err := rd.Err(); err != nil {
		return readFailure("dump", l, rd.Position(), false, err, stderr)
	}
	return exitOK
}

// recordJSON is a record as dump and tail print it.
type recordJSON struct {
	Pos        uint64 `json:"pos"`
	FileOffset int64  `json:"file_offset"`
	Len        int    `json:"len"`
	Data       []byte `json:"data"`
}

// recordPrinter prints records as JSON lines or hex dumps.
type recordPrinter struct {
	w   *bufio.Writer
	l   *wal.Log
	hex bool
}

func (p *recordPrinter) print(pos uint64, data []byte) error {
	off := p.l.FileOffset(pos)
	if p.hex {
		fmt.Fprintf(p.w, "pos=%d file_offset=%d len=%d\n", pos, off, len(data))
		d := hex.Dumper(p.w)
		d.Write(data)
		return d.Close()
	}
	b, err := json.Marshal(recordJSON{Pos: pos, FileOffset: off, Len: len(data), Data: data})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = p.w.Write(b)
	return err
}

// backendFlag adds the -backend flag of the commands that open a log.
func backendFlag(fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("backend", "auto", "pager backend of the read-only view: auto, mmap or copy")
}

// onePath returns the single PATH argument of cmd.
func onePath(cmd string, args []string, stderr io.Writer) (string, int, bool) {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "ringlog %s: want one PATH, got %d arguments (ringlog %s -h)\n", cmd, len(args), cmd)
		return "", exitUsage, false
	}
	return args[0], 0, true
}

// parsePos parses a -from value; "" is 0.
func parsePos(cmd, s string, stderr io.Writer) (uint64, int, bool) {
	if s == "" {
		return 0, 0, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		fmt.Fprintf(stderr, "ringlog %s: -from %q: not a position\n", cmd, s)
		return 0, exitUsage, false
	}
	return v, 0, true
}

// openReadOnly opens the log at path read-only with the named backend.
func openReadOnly(cmd, path, backend string, stderr io.Writer) (*wal.Log, int, bool) {
	b, err := pager.ParseBackend(backend)
	if err != nil {
		fmt.Fprintf(stderr, "ringlog %s: -backend: %v\n", cmd, err)
		return nil, exitUsage, false
	}
	l, err := wal.Open(path, &wal.Options{ReadOnly: true, Backend: b})
	if err != nil {
		fmt.Fprintf(stderr, "ringlog %s: %s\n", cmd, oneLine(err))
		if wal.IsCorruption(err) {
			return nil, exitFound, false
		}
		return nil, exitFailure, false
	}
	return l, 0, true
}

// readFailure reports err, met reading the log at position pos, as one line
// naming the file and the offset, and returns the exit status: 2 if pos
// came from the user (-from) and is not a record of the log, 1 for damage,
// 3 otherwise.
func readFailure(cmd string, l *wal.Log, pos uint64, fromUser bool, err error, stderr io.Writer) int {
	msg := oneLine(err)
	if wal.IsCorruption(err) && !strings.Contains(msg, "file offset") {
		msg += fmt.Sprintf(" (file %s, offset %d)", l.Name(), l.FileOffset(pos))
	}
	fmt.Fprintf(stderr, "ringlog %s: %s\n", cmd, msg)
	switch {
	case fromUser && (errors.Is(err, wal.ErrRange) || errors.Is(err, wal.ErrNotRecord)):
		return exitUsage
	case wal.IsCorruption(err):
		return exitFound
	}
	return exitFailure
}

// oneLine is err's message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}
