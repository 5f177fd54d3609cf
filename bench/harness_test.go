package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/internal/osfile"
)

// The test binary is also the bench's child: the harness re-executes
// os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(spec))
	}
	// Under -race every child would otherwise sleep a second at exit
	// before it reports (the race runtime's default).
	if _, ok := os.LookupEnv("GORACE"); !ok {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// Workloads and systems that exist only in the test binary, to drive the
// harness through its failure paths.
func init() {
	registerSystem(&system{name: "test/a", available: func() error { return nil }})
	registerSystem(&system{name: "test/b", available: func() error { return nil }})
	registerSystem(&system{name: "test/none", available: func() error { return errors.New("never available in tests") }})
	registerWorkload(&workload{
		name:    "test-ok",
		doc:     "XOR 1 MiB",
		systems: []string{"test/a", "test/b", "test/none"},
		run: func(r *run) (work, error) {
			b := make([]byte, 1<<20)
			fillPattern(b, 0)
			r.startTimer()
			x := xorWords(b)
			r.stopTimer()
			r.setExtra("answer", 42)
			if x != patternXOR(int64(len(b))) {
				return work{}, errors.New("verification failed")
			}
			return work{n: 1, bytes: int64(len(b))}, nil
		},
	})
	registerWorkload(&workload{
		name:    "test-fail-verify",
		doc:     "always fails verification",
		systems: []string{"test/a"},
		run: func(r *run) (work, error) {
			r.startTimer()
			r.stopTimer()
			return work{}, errors.New("verification failed: test workload read 0x1, want 0x2")
		},
	})
	registerWorkload(&workload{
		name:    "test-panic",
		doc:     "always panics",
		systems: []string{"test/a"},
		run:     func(r *run) (work, error) { panic("test workload panics") },
	})
	registerSystem(&system{name: "test/c", available: func() error { return nil }})
	for _, name := range []string{"test-order-1", "test-order-2"} {
		registerWorkload(&workload{
			name:    name,
			doc:     "appends its name and system to the file named by " + orderEnv,
			systems: []string{"test/a", "test/b", "test/c"},
			run: func(r *run) (work, error) {
				f, err := os.OpenFile(os.Getenv(orderEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err != nil {
					return work{}, err
				}
				defer f.Close()
				r.startTimer()
				_, err = fmt.Fprintf(f, "%s %s\n", name, r.system)
				r.stopTimer()
				return work{n: 1}, err
			},
		})
	}
	registerWorkload(&workload{
		name:    "test-durable",
		doc:     "durable, does nothing",
		systems: []string{"test/a"},
		durable: true,
		run: func(r *run) (work, error) {
			r.startTimer()
			r.stopTimer()
			return work{n: 1}, nil
		},
	})
}

// orderEnv names the file the test-order workloads log to.
const orderEnv = "RINGLOG_BENCH_TEST_ORDER"

func runBench(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	status = parentMain(args, &out, &errb)
	return status, out.String(), errb.String()
}

func readRows(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("decoding %s: %v\n%s", path, err, b)
	}
	return rows
}

func TestEndToEnd(t *testing.T) {
	endToEnd(t, t.TempDir(), "pager-", "ring-spsc-")
}

// The wal-* workloads are durable: they need a data directory on a disk.
func TestEndToEndWAL(t *testing.T) {
	endToEnd(t, diskTempDir(t), "wal-")
}

// diskTempDir returns a temporary directory on a disk-backed file system,
// for durable workloads, or skips the test.
func diskTempDir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	if fs := osfile.FSType(base); osfile.IsMemFS(fs) {
		d, err := os.MkdirTemp("/var/tmp", "ringlog-bench-test-")
		if err != nil {
			t.Skipf("no disk-backed directory for durable workloads (%s is on %s): %v", base, fs, err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if osfile.IsMemFS(osfile.FSType(d)) {
			t.Skipf("no disk-backed directory for durable workloads (%s and %s are in memory)", base, d)
		}
		base = d
	}
	return base
}

// endToEnd runs the workloads whose names start with one of prefixes at
// the test size, twice each, in a data directory under base, and checks
// the table and the JSON rows.
func endToEnd(t *testing.T, base string, prefixes ...string) {
	t.Helper()
	selected := func(name string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
	}
	var res []string
	for _, p := range prefixes {
		res = append(res, regexp.QuoteMeta(p))
	}
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "2", "-dir", base, "-json", jsonPath, "-workloads", "^("+strings.Join(res, "|")+")")
	if status != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	t.Logf("\n%s", stdout)
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress written to a stderr that is not a terminal: %q", stderr)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("data directory left behind in %s: %v", base, ents)
	}

	rows := readRows(t, jsonPath)
	got := map[string]map[string]any{}
	for _, r := range rows {
		got[r["workload"].(string)+" "+r["system"].(string)] = r
	}
	want := 0
	for _, w := range registry.workloads {
		if !selected(w.name) {
			continue
		}
		if !strings.Contains(stdout, w.name) {
			t.Errorf("table has no %s", w.name)
		}
		for _, nr := range w.notRun {
			if !strings.Contains(stdout, "not run: "+nr.reason) {
				t.Errorf("table does not say why %s leaves out %s", w.name, nr.system)
			}
		}
		var n, nbytes float64
		for i, s := range w.systems {
			if err := lookupSystem(s).available(); err != nil {
				if !strings.Contains(stdout, "unavailable: ") {
					t.Errorf("%s %s unavailable (%v) but the table does not say so", w.name, s, err)
				}
				continue
			}
			want++
			r, ok := got[w.name+" "+s]
			if !ok {
				t.Errorf("no row for %s %s", w.name, s)
				continue
			}
			for _, k := range []string{"ops_per_sec", "mb_per_sec"} {
				if v, _ := r[k].(float64); v <= 0 {
					t.Errorf("%s %s: %s = %v, want > 0", w.name, s, k, r[k])
				}
			}
			if fs, _ := r["fs"].(string); fs == "" {
				t.Errorf("%s %s: empty fs", w.name, s)
			}
			if r["runs"] != 2.0 {
				t.Errorf("%s %s: runs = %v, want 2", w.name, s, r["runs"])
			}
			if i == 0 || n == 0 {
				n, nbytes = r["n"].(float64), r["bytes"].(float64)
			} else if r["n"] != n || r["bytes"] != nbytes {
				t.Errorf("%s %s: n=%v bytes=%v, other systems n=%v bytes=%v", w.name, s, r["n"], r["bytes"], n, nbytes)
			}
			if w.name == "pager-splice" || w.name == "wal-sync-8w" || strings.HasPrefix(w.name, "wal-tail-latency") {
				if v, _ := r["p99_us"].(float64); v <= 0 {
					t.Errorf("%s %s: p99_us = %v, want > 0", w.name, s, r["p99_us"])
				}
			}
			if w.name == "wal-sync-8w" {
				if v, _ := r["records_per_sync"].(float64); v < 1 {
					t.Errorf("%s %s: records_per_sync = %v, want at least 1", w.name, s, r["records_per_sync"])
				}
			}
		}
	}
	if len(rows) != want {
		t.Errorf("%d rows, want %d (one per workload and available system)", len(rows), want)
	}
}

func TestChildFailuresAreReported(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "2", "-dir", t.TempDir(), "-json", jsonPath,
		"-workloads", "^test-(ok|fail-verify|panic)$")
	if status == 0 {
		t.Fatalf("status 0 although children failed\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	for _, want := range []string{
		"FAILED test-fail-verify on test/a, repeat 1 of 2",
		"FAILED test-fail-verify on test/a, repeat 2 of 2",
		"| verification failed: test workload read 0x1, want 0x2",
		"FAILED test-panic on test/a, repeat 1 of 2",
		"| panic: test workload panics",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, want := range []string{"FAILED", "unavailable: never available in tests"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	// The passing workload still ran on both available systems.
	rows := readRows(t, jsonPath)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want the 2 of test-ok: %v", len(rows), rows)
	}
	for _, r := range rows {
		if r["workload"] != "test-ok" || r["runs"] != 2.0 || r["answer"] != 42.0 {
			t.Errorf("unexpected row %v", r)
		}
	}
}

// Repeats are interleaved (every pair once before any pair twice) and the
// order of the systems rotates from one repeat to the next.
func TestInterleavedRotatedOrder(t *testing.T) {
	log := filepath.Join(t.TempDir(), "order.log")
	t.Setenv(orderEnv, log)
	status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "3", "-dir", t.TempDir(), "-workloads", "^test-order-")
	if status != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"test-order-1 test/a", "test-order-1 test/b", "test-order-1 test/c",
		"test-order-2 test/a", "test-order-2 test/b", "test-order-2 test/c",
		"test-order-1 test/b", "test-order-1 test/c", "test-order-1 test/a",
		"test-order-2 test/b", "test-order-2 test/c", "test-order-2 test/a",
		"test-order-1 test/c", "test-order-1 test/a", "test-order-1 test/b",
		"test-order-2 test/c", "test-order-2 test/a", "test-order-2 test/b",
	}, "\n") + "\n"
	if string(b) != want {
		t.Errorf("order of runs:\n%s\nwant:\n%s", b, want)
	}
}

func TestDurableRefusesTmpfs(t *testing.T) {
	if fs := osfile.FSType("/dev/shm"); fs != "tmpfs" {
		t.Skipf("/dev/shm is %s, not tmpfs", fs)
	}
	dir, err := os.MkdirTemp("/dev/shm", "ringlog-bench-test-")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(dir)
	status, stdout, stderr := runBench(t, "-size", "tiny", "-dir", dir, "-workloads", "^test-durable$")
	if status == 0 || !strings.Contains(stderr, "tmpfs") || !strings.Contains(stderr, "test-durable") {
		t.Fatalf("status %d, want a refusal naming tmpfs and the workload\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	// A workload that is not durable runs there.
	if status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "1", "-dir", dir, "-workloads", "^test-ok$"); status != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
}

func TestBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-workloads", "("},
		{"-workloads", "^no-such-workload$"},
		{"-size", "huge"},
		{"-repeats", "-1"},
		{"stray"},
	} {
		if status, _, _ := runBench(t, args...); status != 2 {
			t.Errorf("%q: status %d, want 2", args, status)
		}
	}
}

func TestRegistry(t *testing.T) {
	if err := checkRegistry(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pager-splice", "pager-read-cold", "pager-read-warm"} {
		w := lookupWorkload(name)
		if w == nil {
			t.Fatalf("%s not registered", name)
		}
		if w.baselineSystem() != "ringlog/copy" {
			t.Errorf("%s: baseline %s, want ringlog/copy", name, w.baselineSystem())
		}
	}
	for _, name := range []string{"ring-spsc-64b", "ring-spsc-1k", "ring-spsc-64k"} {
		w := lookupWorkload(name)
		if w == nil {
			t.Fatalf("%s not registered", name)
		}
		if want := []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy", "chan"}; !slices.Equal(w.systems, want) {
			t.Errorf("%s: systems %v, want %v", name, w.systems, want)
		}
		if w.baselineSystem() != "chan" {
			t.Errorf("%s: baseline %s, want chan", name, w.baselineSystem())
		}
		if w.durable {
			t.Errorf("%s is durable; it issues no syncs", name)
		}
	}
	for _, name := range []string{"wal-tail-latency", "wal-tail-latency-xproc"} {
		w := lookupWorkload(name)
		if w == nil {
			t.Fatalf("%s not registered", name)
		}
		if want := []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy"}; !slices.Equal(w.systems, want) {
			t.Errorf("%s: systems %v, want %v", name, w.systems, want)
		}
		if w.baselineSystem() != "ringlog/remap" {
			t.Errorf("%s: baseline %s, want ringlog/remap", name, w.baselineSystem())
		}
		if len(w.notRun) != 1 || w.notRun[0].system != "pebble" {
			t.Errorf("%s: left out %v, want pebble", name, w.notRun)
		}
		if !w.durable {
			t.Errorf("%s is not durable", name)
		}
	}
	for _, name := range []string{"wal-append-128b", "wal-append-1k", "wal-append-64k", "wal-sync-8w", "wal-replay-1k", "wal-open-replay-1k"} {
		w := lookupWorkload(name)
		if w == nil {
			t.Fatalf("%s not registered", name)
		}
		if want := []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy", "pebble"}; !slices.Equal(w.systems, want) {
			t.Errorf("%s: systems %v, want %v", name, w.systems, want)
		}
		if w.baselineSystem() != "pebble" {
			t.Errorf("%s: baseline %s, want pebble", name, w.baselineSystem())
		}
		if !w.durable {
			t.Errorf("%s is not durable", name)
		}
	}
}
