package main

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/wal"
)

const verifySynopsis = `verify [-backend B] PATH

Reads every record of the log at PATH, opened read-only (beside a writer in
another process if there is one, without recovery), from the checkpoint to
the end of what is written, verifying each checksum, and prints one line:

  STATUS records=N bytes=B first=P last=Q checkpoint=C end=E durable=D

records and bytes count the records read and their payloads (decompressed);
first and last are the positions of the first and last record read (-1 if
none); end is where reading stopped. STATUS is:

  ok         every record up to the end is intact (exit 0)
  torn-tail  a record at or after the durable end does not parse: a write
             the writer had not synced yet, which recovery may cut (exit 0);
             only seen beside a live writer, since without one a read-only
             view ends at the durable end the header records, and bytes a
             crashed writer left after it are never read
  damaged    a record before the durable end does not parse: damage to
             synced data (exit 1); one line on standard error names the
             file and the file offset, as the wal's reader reported it

Exit status 3 if the log could not be opened or read for another reason.

flags:`

func runVerify(args []string, stdout, stderr io.Writer) int {
	lf := newLogFlags("verify", verifySynopsis, stderr)
	l, _, code, ok := lf.open(args, stderr)
	if !ok {
		return code
	}
	defer l.Close()
	checkpoint := l.Checkpoint()
	rd, err := l.NewReader(checkpoint, nil)
	if err != nil {
		return readFailure("verify", l, checkpoint, false, err, stderr)
	}
	defer rd.Close()

	var bar *progressbar.ProgressBar
	const barStep = 16 << 20 // bytes of the log between updates of the bar
	span := l.Written() - checkpoint
	if osfile.IsTerminal(stderr) && span >= 4*barStep {
		bar = progressbar.NewOptions64(int64(span), progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("verify"), progressbar.OptionShowBytes(true),
			progressbar.OptionClearOnFinish())
	}
	var records, bytes uint64
	first, last := int64(-1), int64(-1)
	shown := checkpoint
	for rd.Next() {
		pos, data := rd.Record()
		if first < 0 {
			first = int64(pos)
		}
		last = int64(pos)
		records++
		bytes += uint64(len(data))
		if bar != nil && pos-shown >= barStep {
			bar.Set64(int64(pos - checkpoint))
			shown = pos
		}
	}
	if bar != nil {
		bar.Finish()
	}
	end, durable := rd.Position(), l.Durable()
	err = rd.Err()
	status := "ok"
	if err != nil {
		if !wal.IsCorruption(err) {
			return readFailure("verify", l, end, false, err, stderr)
		}
		status = "damaged"
		if end >= durable {
			status = "torn-tail"
		}
	}
	fmt.Fprintf(stdout, "%s records=%d bytes=%d first=%d last=%d checkpoint=%d end=%d durable=%d\n",
		status, records, bytes, first, last, checkpoint, end, durable)
	if status == "damaged" {
		return readFailure("verify", l, end, false, err, stderr)
	}
	return exitOK
}
