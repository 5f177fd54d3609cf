package wal

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/internal/logtest"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// logRecorder returns a logger at Debug level and a function returning
// the records it got so far.
func logRecorder(t *testing.T) (*slog.Logger, func() []map[string]any) {
	lg, rec := logtest.New(slog.LevelDebug)
	return lg, func() []map[string]any { t.Helper(); return rec.Records(t) }
}

// only returns the records of the log at level (or with the message msg,
// if not empty).
func only(recs []map[string]any, level, msg string) []map[string]any {
	var out []map[string]any
	for _, m := range recs {
		if m["level"] == level && (msg == "" || m["msg"] == msg) {
			out = append(out, m)
		}
	}
	return out
}

// num is a JSON number attribute as a uint64.
func num(m map[string]any, k string) uint64 {
	f, _ := m[k].(float64)
	return uint64(f)
}

// TestLogRecoveryCut: a torn tail cut by recovery is one Warn naming the
// file, the cut position and file offset, and the reason.
func TestLogRecoveryCut(t *testing.T) {
	path, pos, off := growingCrashImage(t, pager.Auto, false)
	flipAt(t, path, off[5]+HeaderSize+10)
	lg, records := logRecorder(t)
	l, err := Open(path, &Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	rep := l.Report()
	l.Close()
	if !rep.Cut() || rep.CutAt != pos[5] {
		t.Fatalf("recovery did not cut at %d: %v", pos[5], rep)
	}
	w := only(records(), "WARN", "")
	if len(w) != 1 {
		t.Fatalf("got %d warnings, want 1: %v", len(w), records())
	}
	m := w[0]
	if m["msg"] != "wal: recovery cut the log" || m["file"] != path || num(m, "cut_at") != pos[5] ||
		int64(num(m, "cut_file_offset")) != off[5] || m["reason"] != rep.Reason || m["mode"] != "default" ||
		num(m, "end") != rep.End || num(m, "records") != uint64(rep.Records) {
		t.Fatalf("warning = %v, report %+v", m, rep)
	}
	if !strings.Contains(rep.Reason, "position") {
		t.Fatalf("reason names no position: %q", rep.Reason)
	}
}

// TestLogCleanOpen: opening a cleanly closed log is one Info record and
// nothing above it.
func TestLogCleanOpen(t *testing.T) {
	path, _, _ := growingCrashImage(t, pager.Auto, true)
	lg, records := logRecorder(t)
	l, err := Open(path, &Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs := records()
	if w, e := only(recs, "WARN", ""), only(recs, "ERROR", ""); len(w)+len(e) != 0 {
		t.Fatalf("clean open logged %v %v", w, e)
	}
	info := only(recs, "INFO", "wal: recovered")
	if len(info) != 1 || info[0]["file"] != path || num(info[0], "records") != 6 || info[0]["duration"] == nil {
		t.Fatalf("recovery records: %v", recs)
	}
}

// TestLogSalvage: each damaged range salvage skips is a Warn with its
// position, and the summary names the copy.
func TestLogSalvage(t *testing.T) {
	path, pos, off := growingCrashImage(t, pager.Auto, false)
	flipAt(t, path, off[1]+HeaderSize+10)
	lg, records := logRecorder(t)
	l, err := Open(path, &Options{Recovery: RecoverSalvage, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	rep := l.Report()
	defer os.Remove(rep.SalvageCopy)
	l.Close()
	sum := only(records(), "WARN", "wal: recovery skipped damaged ranges")
	each := only(records(), "WARN", "wal: salvage skipped a damaged range")
	if len(sum) != 1 || sum[0]["salvage_copy"] != rep.SalvageCopy || num(sum[0], "skipped_ranges") != 1 {
		t.Fatalf("summary: %v", records())
	}
	if len(each) != 1 || num(each[0], "position") != pos[1] || int64(num(each[0], "file_offset")) != off[1] || each[0]["file"] != path {
		t.Fatalf("ranges: %v (damage at %d)", each, pos[1])
	}
}

// TestLogEvents: a failed sync is one Error; consumers, TruncateFront and
// TruncateBack are logged with their positions.
func TestLogEvents(t *testing.T) {
	lg, records := logRecorder(t)
	l, path := createLog(t, pager.Auto, Options{Sync: SyncNever, Logger: lg})
	ctx := context.Background()
	var pos []uint64
	for i := range 4 {
		p, err := l.AppendSync(ctx, rec(i, 100))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	cp := l.Checkpoint()
	c, err := l.Consumer("c1", &ConsumerOptions{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c, err = l.Consumer("c1", nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := l.RemoveConsumer("c1"); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFront(pos[1]); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateBack(ctx, pos[3]); err != nil {
		t.Fatal(err)
	}
	recs := records()
	reg := only(recs, "INFO", "wal: consumer registered")
	att := only(recs, "DEBUG", "wal: consumer attached")
	rm := only(recs, "INFO", "wal: consumer removed")
	if len(reg) != 1 || reg[0]["consumer"] != "c1" || num(reg[0], "position") != cp || reg[0]["file"] != path || len(att) != 1 || len(rm) != 1 {
		t.Fatalf("consumer records: %v", recs)
	}
	tf := only(recs, "DEBUG", "wal: truncated the front")
	if len(tf) != 1 || num(tf[0], "from") != cp || num(tf[0], "to") != pos[1] {
		t.Fatalf("truncate front records: %v", tf)
	}
	tb := only(recs, "INFO", "wal: truncated the back")
	if len(tb) != 1 || num(tb[0], "position") != pos[3] || num(tb[0], "dropped_bytes") != uint64(RecordSize(100)) {
		t.Fatalf("truncate back records: %v", tb)
	}
	if e := only(recs, "ERROR", ""); len(e) != 0 || l.Err() != nil {
		t.Fatalf("errors before any failure: %v, %v", e, l.Err())
	}

	boom := errors.New("injected EIO")
	syncData = func(*ring.Ring) error { return boom }
	defer func() { syncData = (*ring.Ring).SyncData }()
	for range 3 {
		l.AppendSync(ctx, rec(9, 10))
	}
	syncData = (*ring.Ring).SyncData
	l.Close()
	e := only(records(), "ERROR", "")
	if len(e) != 1 || e[0]["file"] != path || !strings.Contains(e[0]["error"].(string), "injected EIO") {
		t.Fatalf("failure records: %v", e)
	}
	if err := l.Err(); !errors.Is(err, ErrFailed) || !errors.Is(err, boom) {
		t.Fatalf("Err after a failed sync: %v", err)
	}
}

// TestLogNilIsSilent: without a logger nothing is logged anywhere, not
// even to slog's default logger (nor the log package's, which it feeds).
func TestLogNilIsSilent(t *testing.T) {
	lg, records := logRecorder(t)
	saved := slog.Default()
	slog.SetDefault(lg)
	defer slog.SetDefault(saved)

	path, _, off := growingCrashImage(t, pager.Auto, false)
	flipAt(t, path, off[5]+HeaderSize+10)
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Report().Cut() {
		t.Fatalf("no cut: %v", l.Report())
	}
	ctx := context.Background()
	c, err := l.Consumer("c", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	l.RemoveConsumer("c")
	syncData = func(*ring.Ring) error { return errors.New("injected EIO") }
	defer func() { syncData = (*ring.Ring).SyncData }()
	l.AppendSync(ctx, rec(1, 10))
	syncData = (*ring.Ring).SyncData
	l.Close()
	if got := records(); len(got) != 0 {
		t.Fatalf("a log without a logger logged %v", got)
	}
}

// TestLogReattach: a lossy consumer resumed after an overrun is a Warn
// saying how many bytes it skipped.
func TestLogReattach(t *testing.T) {
	lg, records := logRecorder(t)
	l, path := createLog(t, pager.Auto, Options{Sync: SyncNever, Capacity: 512 << 10, BufferSize: 16 << 10, Logger: lg})
	defer l.Close()
	cs := overrunLossy(t, l)
	n, err := cs.Reattach()
	if err != nil || n == 0 {
		t.Fatalf("reattach skipped %d: %v", n, err)
	}
	w := only(records(), "WARN", "wal: consumer reattached")
	if len(w) != 1 || w[0]["consumer"] != "lossy" || num(w[0], "skipped_bytes") != n || num(w[0], "position") != cs.Acked() || w[0]["file"] != path {
		t.Fatalf("reattach records: %v (skipped %d)", records(), n)
	}
}
