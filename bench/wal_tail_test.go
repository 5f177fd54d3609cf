package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringlog/ringlog/wal"
)

// Each tail workload on each backend, at the test size, in this process
// (the cross-process one starts its follower from this test binary):
// every record delivered and a latency recorded for it, the producer kept
// to its rate.
func TestWALTailRuns(t *testing.T) {
	dir := diskTempDir(t)
	n, rate := walTailRecords(SizeTiny), walTailRate(SizeTiny)
	for _, w := range []*workload{walTailLatency, walTailLatencyXProc} {
		for _, s := range w.systems {
			t.Run(w.name+"/"+s, func(t *testing.T) {
				if err := lookupSystem(s).available(); err != nil {
					t.Skip(err)
				}
				r := &run{env: env{dir: dir, size: SizeTiny}, system: s}
				wk, err := w.run(r)
				if err != nil {
					t.Fatal(err)
				}
				if wk.n != int64(n) || wk.bytes != int64(n)*walTailSize {
					t.Errorf("work n=%d bytes=%d, want %d records of %d bytes", wk.n, wk.bytes, n, walTailSize)
				}
				if r.timing {
					t.Error("the timer still runs")
				}
				// The producer appends the last record (n-1)/rate after
				// the first.
				if min := time.Duration(n-1) * time.Second / time.Duration(rate); r.elapsed < min {
					t.Errorf("timed %v, less than the %v the producer's schedule takes", r.elapsed, min)
				}
				if len(r.lat) != n {
					t.Fatalf("%d latencies recorded, want %d", len(r.lat), n)
				}
				lat := slices.Sorted(slices.Values(r.lat))
				p50, p99 := percentile(lat, 50), percentile(lat, 99)
				t.Logf("min %v p50 %v p99 %v max %v", lat[0], p50, p99, lat[n-1])
				// A record reaches the follower after its Append was
				// called: no latency is 0 or less.
				if lat[0] <= 0 || p99 < p50 || p99 > time.Minute {
					t.Errorf("min %v, p50 %v, p99 %v: want 0 < min <= p50 <= p99 < 1m", lat[0], p50, p99)
				}
				if got := r.extra["max_us"]; got != float64(lat[n-1])/float64(time.Microsecond) {
					t.Errorf("max_us %v, the largest latency is %v", got, lat[n-1])
				}
			})
		}
	}
}

// newTailLog creates a log for the follower tests, with a reader at its
// start.
func newTailLog(t *testing.T) (*wal.Log, *wal.Reader) {
	t.Helper()
	l, err := wal.Create(filepath.Join(t.TempDir(), "log"), &wal.Options{Capacity: 1 << 20, Sync: wal.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return l, rd
}

// The follower notices a record out of order, with other bytes, of
// another size, and records that never come.
func TestTailFollowDetects(t *testing.T) {
	const n = 10
	for name, c := range map[string]struct {
		seq  []int // record numbers appended, in order
		edit func(m []byte) []byte
		want string
	}{
		"good":      {seq: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		"skipped":   {seq: []int{0, 1, 2, 4, 5, 6, 7, 8, 9, 10}, want: "verification failed: record 3 "},
		"reordered": {seq: []int{0, 1, 3, 2, 4, 5, 6, 7, 8, 9}, want: "verification failed: record 2 "},
		"middle": {seq: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, want: "differ from the template",
			edit: func(m []byte) []byte { m[100] ^= 1; return m }},
		"short": {seq: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, want: "1016 bytes, want 1024",
			edit: func(m []byte) []byte { return m[:walTailSize-8] }},
		"missing": {seq: []int{0, 1, 2, 3, 4, 5, 6, 7, 8}, want: "following stopped after 9 of 10 records"},
	} {
		t.Run(name, func(t *testing.T) {
			l, rd := newTailLog(t)
			ctx := context.Background()
			for k, i := range c.seq {
				m := walRecordBuf(walTailSize)
				walStamp(m, i)
				if c.edit != nil && k == 5 {
					m = c.edit(m)
				}
				if _, err := l.Append(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			fctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			delivered := make([]int64, n)
			count, x, err := tailFollow(fctx, rd, n, walTailSize, monoNow, delivered)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := spscVerify("follow", n, count, spscWantXOR(n), x); err != nil {
					t.Fatal(err)
				}
				if !slices.IsSorted(delivered) || delivered[0] <= 0 {
					t.Errorf("delivery times %v", delivered)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// A follower process that fails says why, and the producer's side gets it.
func TestTailFollowerFails(t *testing.T) {
	f, err := startTailFollower(tailFollowerSpec{Path: filepath.Join(t.TempDir(), "no-such-log"), Backend: "copy", N: 10, Size: walTailSize, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	err = f.expect(tailReadyLine)
	if err == nil || !strings.Contains(err.Error(), "no-such-log") || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("a follower without a log: %v", err)
	}
}

// The table lists the system a tail workload leaves out, with the reason,
// unless -systems leaves it out too.
func TestWALTailNotRunInTable(t *testing.T) {
	dir := diskTempDir(t)
	for _, c := range []struct {
		systems string
		want    bool
	}{{"copy", false}, {"copy|pebble", true}, {"", true}} {
		status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "1", "-dir", dir, "-workloads", "^wal-tail-latency$", "-systems", c.systems)
		if status != 0 {
			t.Fatalf("-systems %q: status %d\nstdout:\n%s\nstderr:\n%s", c.systems, status, stdout, stderr)
		}
		var line string
		for l := range strings.SplitSeq(stdout, "\n") {
			if strings.Contains(l, "pebble") {
				line = l
			}
		}
		if got := strings.Contains(line, "not run: no tailing API"); got != c.want {
			t.Errorf("-systems %q: pebble line %q, want it listed: %v\n%s", c.systems, line, c.want, stdout)
		}
	}
	var sb strings.Builder
	listRegistry(&sb)
	if !strings.Contains(sb.String(), "not run on pebble: no tailing API") {
		t.Errorf("-list does not say why the tail workloads leave out pebble:\n%s", sb.String())
	}
}
