package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
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
	lf := newLogFlags("dump", dumpSynopsis, stderr)
	from, n, asHex := lf.records("start at the record at `POS` (default: the checkpoint)", "print at most `N` records (0: all)")
	l, start, code, ok := lf.open(args, stderr)
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

// logFlags are the flags of the commands that read a log: -backend, and
// for those that print records -from, -n and -hex.
type logFlags struct {
	cmd     string
	fs      *flag.FlagSet
	backend *string
	from    *string // nil: the command takes no -from
	n       *int
}

func newLogFlags(cmd, synopsis string, stderr io.Writer) *logFlags {
	fs := newFlags(cmd, synopsis, stderr)
	return &logFlags{cmd: cmd, fs: fs, backend: fs.String("backend", "auto", "pager backend of the read-only view: auto, mmap or copy")}
}

// records adds -from, -n and -hex, with the command's own words for the
// first two.
func (lf *logFlags) records(fromDoc, nDoc string) (from *string, n *int, asHex *bool) {
	lf.from = lf.fs.String("from", "", fromDoc)
	lf.n = lf.fs.Int("n", 0, nDoc)
	return lf.from, lf.n, lf.fs.Bool("hex", false, "print a header line and a hex dump per record instead of JSON lines")
}

// open parses args, takes the one PATH, checks -from and -n, and opens the
// log read-only. start is the -from position (0 if not given). If ok is
// false the command returns code.
func (lf *logFlags) open(args []string, stderr io.Writer) (l *wal.Log, start uint64, code int, ok bool) {
	if code, ok := parseFlags(lf.fs, args); !ok {
		return nil, 0, code, false
	}
	fail := func(format string, args ...any) (*wal.Log, uint64, int, bool) {
		fmt.Fprintf(stderr, "ringlog %s: "+format+"\n", append([]any{lf.cmd}, args...)...)
		return nil, 0, exitUsage, false
	}
	if n := lf.fs.NArg(); n != 1 {
		return fail("want one PATH, got %d arguments (ringlog %s -h)", n, lf.cmd)
	}
	if lf.from != nil && *lf.from != "" {
		v, err := strconv.ParseUint(*lf.from, 10, 64)
		if err != nil {
			return fail("-from %q: not a position", *lf.from)
		}
		start = v
	}
	if lf.n != nil && *lf.n < 0 {
		return fail("-n %d: not a count", *lf.n)
	}
	b, err := pager.ParseBackend(*lf.backend)
	if err != nil {
		return fail("-backend: %v", err)
	}
	l, err = wal.Open(lf.fs.Arg(0), &wal.Options{ReadOnly: true, Backend: b})
	if err != nil {
		fmt.Fprintf(stderr, "ringlog %s: %s\n", lf.cmd, oneLine(err))
		if wal.IsCorruption(err) {
			return nil, 0, exitFound, false
		}
		return nil, 0, exitFailure, false
	}
	return l, start, 0, true
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
