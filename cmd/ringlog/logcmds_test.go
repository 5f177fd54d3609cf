package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// testLog is a log with records of known payloads.
type testLog struct {
	l        *wal.Log
	path     string
	pos      []uint64
	payloads [][]byte
}

// newTestLog creates a log with n records; every third is stored compressed.
func newTestLog(t *testing.T, n int) *testLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{l: l, path: path}
	t.Cleanup(func() { tl.l.Close() })
	for i := range n {
		p := []byte(fmt.Sprintf("record %d:", i))
		var pos uint64
		if i%3 == 2 {
			p = append(p, bytes.Repeat([]byte("compressible "), 40+i)...)
			pos, err = l.AppendWith(context.Background(), wal.AppendOptions{Compression: wal.S2, Sync: true}, p)
		} else {
			p = append(p, bytes.Repeat([]byte{byte(i)}, i*7)...)
			pos, err = l.AppendSync(context.Background(), p)
		}
		if err != nil {
			t.Fatal(err)
		}
		tl.pos = append(tl.pos, pos)
		tl.payloads = append(tl.payloads, p)
	}
	return tl
}

// closeLog closes the writer, so that the file is as a clean Close left it.
func (tl *testLog) closeLog(t *testing.T) {
	t.Helper()
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInspect(t *testing.T) {
	tl := newTestLog(t, 10)
	c, err := tl.l.Consumer("indexer", &wal.ConsumerOptions{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if !c.Next() {
			t.Fatal(c.Err())
		}
	}
	if err := c.Ack(tl.pos[2]); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := tl.l.TruncateFront(tl.pos[1]); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"checkpoint":   strconv.FormatUint(tl.l.Checkpoint(), 10),
		"written":      strconv.FormatUint(tl.l.Written(), 10),
		"durable":      strconv.FormatUint(tl.l.Durable(), 10),
		"max_record":   strconv.Itoa(tl.l.MaxRecordSize()),
		"layout":       "bounded",
		"capacity":     "1048576",
		"segment_size": "0",
		"epoch":        strconv.FormatUint(uint64(tl.l.Info().Epoch), 10),
		"backend":      pager.DefaultBackend(true).String(), // a read-only view's
	}
	code, out, errOut := runCmd("inspect", tl.path)
	if code != exitOK {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("inspect: %s %q, want %q\n%s", k, got[k], v, out)
		}
	}
	if got["file"] != tl.path {
		t.Errorf("inspect: file %q, want %q", got["file"], tl.path)
	}
	wantCons := fmt.Sprintf(`"indexer" acked=%d lag=`, tl.pos[2])
	if !strings.HasPrefix(got["consumer"], wantCons) {
		t.Errorf("inspect: consumer %q, want it to start with %q", got["consumer"], wantCons)
	}

	code, out, errOut = runCmd("inspect", "-json", tl.path)
	if code != exitOK {
		t.Fatalf("inspect -json: exit %d: %s", code, errOut)
	}
	var info inspectInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("inspect -json: %v: %q", err, out)
	}
	if info.Checkpoint != tl.l.Checkpoint() || info.Written != tl.l.Written() || info.Durable != tl.l.Durable() ||
		info.MaxRecord != tl.l.MaxRecordSize() || info.Backend == "" || info.FileSize <= 0 ||
		info.Layout != "bounded" || info.Capacity != 1<<20 || info.SegmentSize != 0 || info.Epoch == 0 {
		t.Errorf("inspect -json: %+v", info)
	}
	if len(info.Consumers) != 1 || info.Consumers[0].Name != "indexer" || info.Consumers[0].Acked != tl.pos[2] {
		t.Errorf("inspect -json: consumers %+v", info.Consumers)
	}
}

func TestVerify(t *testing.T) {
	tl := newTestLog(t, 12)
	tl.closeLog(t)
	code, out, errOut := runCmd("verify", tl.path)
	if code != exitOK {
		t.Fatalf("verify: exit %d: %s", code, errOut)
	}
	want := fmt.Sprintf("ok records=12 bytes=%d first=%d last=%d ", totalLen(tl.payloads), tl.pos[0], tl.pos[11])
	if !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
		t.Errorf("verify: %q, want it to start with %q", out, want)
	}

	// Flip a byte of the payload of record 7 (stored as it is).
	l, err := wal.Open(tl.path, &wal.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	recOff := l.FileOffset(tl.pos[7])
	l.Close()
	f, err := os.OpenFile(tl.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, recOff+wal.HeaderSize+3); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, recOff+wal.HeaderSize+3); err != nil {
		t.Fatal(err)
	}
	f.Close()

	code, out, errOut = runCmd("verify", tl.path)
	if code != exitFound {
		t.Fatalf("verify of a damaged log: exit %d, want %d: %s %s", code, exitFound, out, errOut)
	}
	want = fmt.Sprintf("damaged records=7 bytes=%d first=%d last=%d ", totalLen(tl.payloads[:7]), tl.pos[0], tl.pos[6])
	if !strings.HasPrefix(out, want) {
		t.Errorf("verify of a damaged log: %q, want it to start with %q", out, want)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "ringlog verify: ") ||
		!strings.Contains(errOut, tl.path) || !strings.Contains(errOut, fmt.Sprintf("file offset %d", recOff)) {
		t.Errorf("verify of a damaged log: stderr %q, want one line naming %s and file offset %d", errOut, tl.path, recOff)
	}
}

func totalLen(ps [][]byte) int {
	n := 0
	for _, p := range ps {
		n += len(p)
	}
	return n
}

// decodeLines decodes dump's JSON lines.
func decodeLines(t *testing.T, out string) []recordJSON {
	t.Helper()
	var recs []recordJSON
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r recordJSON
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// checkRecords checks that recs are the records of tl from index first on.
func checkRecords(t *testing.T, tl *testLog, recs []recordJSON, first int) {
	t.Helper()
	for i, r := range recs {
		j := first + i
		if j >= len(tl.pos) {
			t.Fatalf("record %d: more records than the log has", i)
		}
		if r.Pos != tl.pos[j] || !bytes.Equal(r.Data, tl.payloads[j]) || r.Len != len(tl.payloads[j]) {
			t.Errorf("record %d: pos %d len %d data %q, want pos %d len %d data %q", i, r.Pos, r.Len, r.Data, tl.pos[j], len(tl.payloads[j]), tl.payloads[j])
		}
		if want := tl.l.FileOffset(r.Pos); r.FileOffset != want {
			t.Errorf("record %d: file_offset %d, want %d", i, r.FileOffset, want)
		}
	}
}

func TestDump(t *testing.T) {
	tl := newTestLog(t, 9)
	code, out, errOut := runCmd("dump", tl.path)
	if code != exitOK {
		t.Fatalf("dump: exit %d: %s", code, errOut)
	}
	recs := decodeLines(t, out)
	if len(recs) != 9 {
		t.Fatalf("dump: %d records, want 9", len(recs))
	}
	checkRecords(t, tl, recs, 0)

	code, out, errOut = runCmd("dump", "-from", strconv.FormatUint(tl.pos[4], 10), "-n", "3", tl.path)
	if code != exitOK {
		t.Fatalf("dump -from -n: exit %d: %s", code, errOut)
	}
	recs = decodeLines(t, out)
	if len(recs) != 3 {
		t.Fatalf("dump -from -n 3: %d records", len(recs))
	}
	checkRecords(t, tl, recs, 4)

	code, out, errOut = runCmd("dump", "-hex", "-n", "3", tl.path)
	if code != exitOK {
		t.Fatalf("dump -hex: exit %d: %s", code, errOut)
	}
	heads := regexp.MustCompile(`(?m)^pos=(\d+) file_offset=(-?\d+) len=(\d+)$`).FindAllStringSubmatch(out, -1)
	if len(heads) != 3 {
		t.Fatalf("dump -hex: %d header lines, want 3: %s", len(heads), out)
	}
	for i, h := range heads {
		if h[1] != strconv.FormatUint(tl.pos[i], 10) || h[3] != strconv.Itoa(len(tl.payloads[i])) {
			t.Errorf("dump -hex: header %q, want pos %d len %d", h[0], tl.pos[i], len(tl.payloads[i]))
		}
	}
	if !strings.Contains(out, "|record 2:compres|") {
		t.Errorf("dump -hex: the decompressed payload of record 2 is not in the dump: %s", out)
	}
}

func TestLogCommandUsageErrors(t *testing.T) {
	tl := newTestLog(t, 3)
	for _, args := range [][]string{
		{"inspect"},
		{"inspect", tl.path, tl.path},
		{"inspect", "-bogus", tl.path},
		{"inspect", "-backend", "nosuch", tl.path},
		{"verify"},
		{"dump"},
		{"dump", "-from", "x", tl.path},
		{"dump", "-n", "-1", tl.path},
		{"dump", "-from", strconv.FormatUint(tl.pos[1]+8, 10), tl.path},
		{"dump", "-from", strconv.FormatUint(tl.l.Written()+8, 10), tl.path},
		{"tail"},
		{"tail", "-from", "-3", tl.path},
		{"tail", "-from", strconv.FormatUint(tl.pos[1]+8, 10), tl.path},
	} {
		code, _, errOut := runCmd(args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, code, exitUsage, errOut)
		}
	}
	for _, cmd := range []string{"inspect", "verify", "dump", "tail"} {
		code, _, errOut := runCmd(cmd, filepath.Join(t.TempDir(), "nosuch"))
		if code != exitFailure || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "ringlog "+cmd+": ") {
			t.Errorf("%s of a missing file: exit %d, stderr %q", cmd, code, errOut)
		}
		if code, _, errOut := runCmd("help", cmd); code != exitOK || !strings.Contains(errOut, "usage: ringlog "+cmd) {
			t.Errorf("help %s: exit %d, %q", cmd, code, errOut)
		}
	}
}

// TestTail starts tail on a log open for writing, appends records after it
// started, and checks that tail printed the first ones it saw, in order.
func TestTail(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%t", durable), func(t *testing.T) {
			tl := newTestLog(t, 4)
			start := tl.l.Written()
			args := []string{"tail", "-n", "3", tl.path}
			if durable {
				args = append([]string{"tail", "-durable"}, args[1:]...)
			}
			type result struct {
				code        int
				out, errOut string
			}
			done := make(chan result, 1)
			go func() {
				code, out, errOut := runCmd(args...)
				done <- result{code, out, errOut}
			}()
			// Append until tail has printed its records: records
			// appended before it opened the log are not its to print.
			var mu sync.Mutex
			var appended [][]byte
			var pos []uint64
			stop := make(chan struct{})
			appender := make(chan error, 1)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						appender <- nil
						return
					default:
					}
					p := []byte(fmt.Sprintf("tail record %d %s", i, strings.Repeat("x", i%50)))
					var at uint64
					var err error
					if durable {
						at, err = tl.l.Append(context.Background(), p)
					} else {
						at, err = tl.l.AppendWith(context.Background(), wal.AppendOptions{Compression: wal.S2}, p)
						if err == nil {
							err = tl.l.Flush(context.Background())
						}
					}
					if err != nil {
						appender <- err
						return
					}
					mu.Lock()
					appended, pos = append(appended, p), append(pos, at)
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatal("tail -n 3 did not return")
			}
			close(stop)
			if err := <-appender; err != nil {
				t.Fatal(err)
			}
			if r.code != exitOK {
				t.Fatalf("tail: exit %d: %s", r.code, r.errOut)
			}
			recs := decodeLines(t, r.out)
			if len(recs) != 3 {
				t.Fatalf("tail -n 3: %d records: %s", len(recs), r.out)
			}
			first := -1
			for i, at := range pos {
				if at == recs[0].Pos {
					first = i
				}
			}
			if first < 0 || recs[0].Pos < start {
				t.Fatalf("tail: first record at %d is not one appended after it started (at %d)", recs[0].Pos, start)
			}
			for i, rec := range recs {
				j := first + i
				if j >= len(pos) || rec.Pos != pos[j] || !bytes.Equal(rec.Data, appended[j]) {
					t.Errorf("tail: record %d: pos %d data %q", i, rec.Pos, rec.Data)
				}
			}
		})
	}
}

// flipByte flips a bit of the byte at offset off of the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyTornTail damages a record a live writer has written but not
// synced: verify calls it a torn tail and exits 0, and damage before the
// durable end is still damage.
func TestVerifyTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20, Sync: wal.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	var pos []uint64
	for i := range 6 {
		p, err := l.Append(ctx, []byte(fmt.Sprintf("record %d of the torn tail test", i)))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
		if i == 2 {
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Durable() > pos[4] {
		t.Fatalf("durable end %d is past record 4 at %d: nothing to tear", l.Durable(), pos[4])
	}
	flipByte(t, path, l.FileOffset(pos[4])+wal.HeaderSize+2)
	code, out, errOut := runCmd("verify", path)
	if code != exitOK || !strings.HasPrefix(out, "torn-tail records=4 ") || errOut != "" {
		t.Errorf("verify of a torn tail: exit %d, %q, stderr %q", code, out, errOut)
	}
	flipByte(t, path, l.FileOffset(pos[1])+wal.HeaderSize+2)
	code, out, errOut = runCmd("verify", path)
	if code != exitFound || !strings.HasPrefix(out, "damaged records=1 ") || !strings.Contains(errOut, fmt.Sprintf("file offset %d", l.FileOffset(pos[1]))) {
		t.Errorf("verify of damage before the durable end: exit %d, %q, stderr %q", code, out, errOut)
	}
}

// checkWriter checks every JSON line written to it with check.
type checkWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	check func(line []byte)
}

func (w *checkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadBytes('\n')
		if err != nil {
			w.buf.Write(line)
			return len(p), nil
		}
		w.check(line)
	}
}

// TestTailDurable follows a log whose writer flushes records at once and
// syncs every third: tail -durable must print no record before a sync
// that covers it started.
func TestTailDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20, Sync: wal.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var bound atomic.Uint64 // the written end when the last Sync started
	var mu sync.Mutex
	var problems []string
	var printed int
	out := &checkWriter{check: func(line []byte) {
		var r recordJSON
		err := json.Unmarshal(line, &r)
		mu.Lock()
		defer mu.Unlock()
		printed++
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %q: %v", line, err))
		} else if end := r.Pos + uint64(wal.RecordSize(r.Len)); end > bound.Load() {
			problems = append(problems, fmt.Sprintf("record at %d ending at %d printed before a sync covered it (synced up to %d at most)", r.Pos, end, bound.Load()))
		}
	}}
	var errOut strings.Builder
	done := make(chan int, 1)
	go func() { done <- run([]string{"tail", "-durable", "-n", "9", path}, out, &errOut) }()
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case code := <-done:
			if code != exitOK {
				t.Fatalf("tail -durable: exit %d: %s", code, errOut.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if printed != 9 || len(problems) > 0 {
				t.Fatalf("tail -durable: %d records printed, want 9; %q", printed, problems)
			}
			return
		default:
		}
		if i > 20000 {
			t.Fatal("tail -durable -n 9 did not return")
		}
		if _, err := l.Append(ctx, []byte(fmt.Sprintf("durable tail record %d", i))); err != nil {
			t.Fatal(err)
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 {
			bound.Store(l.Written())
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}
