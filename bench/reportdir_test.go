package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// mdTables returns the body lines of each "## family" table of a
// results.md, split into cells.
func mdTables(t *testing.T, md string) map[string][][]string {
	t.Helper()
	out := map[string][][]string{}
	section := ""
	for line := range strings.Lines(md) {
		line = strings.TrimRight(line, "\n")
		if f, ok := strings.CutPrefix(line, "## "); ok {
			section = f
			continue
		}
		if section == "" || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] == "workload" || strings.HasPrefix(cells[0], "--") {
			continue // header, alignment
		}
		out[section] = append(out[section], cells)
	}
	return out
}

func TestMarkdown(t *testing.T) {
	groups := chartGroups()
	r := groups[0].entries[0].row
	r.MBPerSec, r.RSSAnonMB, r.RSSFileMB, r.Runs = 3.072, 12.5, 300, 3
	info := newRunInfo([]string{"-quick", "-workloads", "^(wal|kv)-", "-report", "out dir"}, SizeQuick, 3, "ext4",
		time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
	var sb strings.Builder
	writeMarkdown(&sb, info, groups)
	md := sb.String()
	t.Logf("\n%s", md)

	want := map[string][][]string{
		"wal": {
			{"wal-append-1k", "ringlog/remap", "3000", "3.07", "2.00", "40.00", "1.50x", "12.50", "300.0", "3"},
			{"", `odd \<\&\> "sys"`, "1500", "-", "0.500", "3.00", "0.75x", "-", "-", "0"},
			{"", "ringlog/copy", "FAILED (1 problem(s), see stderr)", "", "", "", "", "", "", ""},
			{"", "pebble", "2000", "-", "4.00", "2500", "base", "-", "-", "0"},
			{"wal-replay-1k", "ringlog/remap", "500.0", "-", "-", "-", "0.50x", "-", "-", "0"},
			{"", "pebble", "1000", "-", "-", "-", "base", "-", "-", "0"},
		},
		"kv": {
			{"kv-scan", "ringlog/remap", "7000000", "-", "-", "-", "7.00x", "-", "-", "0"},
			{"", "ringlog/mmap", "unavailable: not here", "", "", "", "", "", "", ""},
			{"", "pebble", "1000000", "-", "-", "-", "base", "-", "-", "0"},
			{"kv-get-random", "ringlog/remap", "500000", "-", "-", "-", "-", "-", "-", "0"},
			{"", "pebble", "FAILED (3 problem(s), see stderr)", "", "", "", "", "", "", ""},
		},
	}
	got := mdTables(t, md)
	if len(got) != len(want) {
		t.Errorf("tables %v, want wal and kv", slices.Collect(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		}))
	}
	for f, rows := range want {
		if len(got[f]) != len(rows) {
			t.Errorf("%s: %d rows, want %d:\n%q", f, len(got[f]), len(rows), got[f])
			continue
		}
		for i := range rows {
			if !slices.Equal(got[f][i], rows[i]) {
				t.Errorf("%s row %d:\ngot  %q\nwant %q", f, i, got[f][i], rows[i])
			}
		}
	}
	if strings.Index(md, "## wal") > strings.Index(md, "## kv") {
		t.Error("families not in the order of the workloads")
	}
	for _, s := range []string{
		"| date | 2024-05-06T07:08:09Z |",
		"| machine | " + info.GOOS + "/" + info.GOARCH + ", " + fmt.Sprint(info.CPUs) + " CPUs, kernel ",
		"| file system of the data | ext4 |",
		"| Go | " + info.Go + " |",
		"| size | quick, 3 repeat(s) |",
		"```sh\ngo run ./bench -quick -workloads '^(wal|kv)-' -report 'out dir'\n```",
		"](ratio.svg)", "](latency.svg)",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("no %q", s)
		}
	}
}

func TestShellCommand(t *testing.T) {
	got := shellCommand([]string{"go", "run", "./bench", "-workloads", "^(a|b)$", "-dir", "/var/tmp/x", "", "it's"})
	want := `go run ./bench -workloads '^(a|b)$' -dir /var/tmp/x '' 'it'\''s'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var reportFiles = []string{reportResults, reportRun, reportMD, reportRatio, reportLatency}

// A run with -json and -report, then -from its results.json and from the
// -json file: the report directory holds the bench's own JSON, lists the
// failed and unavailable pairs, and renders again identically from its
// files.
func TestReportRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	jsonPath := filepath.Join(tmp, "json", "out.json")
	if err := os.Mkdir(filepath.Dir(jsonPath), 0o755); err != nil {
		t.Fatal(err)
	}
	d1 := filepath.Join(tmp, "d1", "new") // created with its parent
	status, stdout, stderr := runBench(t, "-size", "tiny", "-repeats", "1", "-dir", t.TempDir(), "-json", jsonPath,
		"-report", d1, "-workloads", "^test-(ok|fail-verify)$")
	if status != 1 {
		t.Fatalf("status %d, want 1 (test-fail-verify fails)\nstdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	js := readFile(t, jsonPath)
	if got := readFile(t, filepath.Join(d1, reportResults)); !bytes.Equal(got, js) {
		t.Errorf("results.json differs from -json:\n%s\n%s", got, js)
	}
	var rows []row
	if err := json.Unmarshal(js, &rows); err != nil || len(rows) != 2 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	var info runInfo
	if err := json.Unmarshal(readFile(t, filepath.Join(d1, reportRun)), &info); err != nil {
		t.Fatal(err)
	}
	wantW := []runWorkload{
		{Name: "test-ok", Baseline: "test/a", Systems: []runEntry{{System: "test/a"}, {System: "test/b"},
			{System: "test/none", Note: "unavailable: never available in tests"}}},
		{Name: "test-fail-verify", Baseline: "test/a", Systems: []runEntry{{System: "test/a", Note: "FAILED (1 problem(s), see stderr)"}}},
	}
	if fmt.Sprint(info.Workloads) != fmt.Sprint(wantW) {
		t.Errorf("run.json workloads\n%+v\nwant\n%+v", info.Workloads, wantW)
	}
	if !strings.Contains(info.Command, "-report "+d1) || info.FS == "" || info.Size != "tiny" || info.Repeats != 1 {
		t.Errorf("run.json: %+v", info)
	}
	md := string(readFile(t, filepath.Join(d1, reportMD)))
	ratio := fmt.Sprintf("%.2fx", rows[1].OpsPerSec/rows[0].OpsPerSec)
	okRows := [][]string{
		{"test-ok", "test/a", fmtNum(rows[0].OpsPerSec), fmtNum(rows[0].MBPerSec), "-", "-", "base", fmtNum(rows[0].RSSAnonMB), fmtNum(rows[0].RSSFileMB), "1"},
		{"", "test/b", fmtNum(rows[1].OpsPerSec), fmtNum(rows[1].MBPerSec), "-", "-", ratio, fmtNum(rows[1].RSSAnonMB), fmtNum(rows[1].RSSFileMB), "1"},
	}
	want := append(slices.Clone(okRows),
		[]string{"", "test/none", "unavailable: never available in tests", "", "", "", "", "", "", ""},
		[]string{"test-fail-verify", "test/a", "FAILED (1 problem(s), see stderr)", "", "", "", "", "", "", ""})
	if got := mdTables(t, md)["test"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results.md table\n%q\nwant\n%q\n%s", got, want, md)
	}
	root := parseSVG(t, readFile(t, filepath.Join(d1, reportRatio)))
	var bars []string
	for _, b := range root.all(hasClass("bar")) {
		bars = append(bars, title(b))
	}
	if wantBars := []string{"test-ok / test/a: 1.00x", "test-ok / test/b: " + ratio}; !slices.Equal(bars, wantBars) {
		t.Errorf("ratio.svg bars %q, want %q", bars, wantBars)
	}

	// Rendered again from its own results.json, elsewhere and in place;
	// in place, the file rendered from is left alone.
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(d1, reportResults), old, old); err != nil {
		t.Fatal(err)
	}
	for _, d2 := range []string{filepath.Join(tmp, "d2"), d1} {
		if status, _, stderr := runBench(t, "-report", d2, "-from", filepath.Join(d1, reportResults)); status != 0 || stderr != "" {
			t.Fatalf("-from into %s: status %d\n%s", d2, status, stderr)
		}
		for _, f := range reportFiles {
			if a, b := readFile(t, filepath.Join(d1, f)), readFile(t, filepath.Join(d2, f)); !bytes.Equal(a, b) {
				t.Errorf("%s rendered from %s differs:\n%s\nfirst:\n%s", f, d1, b, a)
			}
		}
	}

	if fi, err := os.Stat(filepath.Join(d1, reportResults)); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("results.json rendered from in place was written again: %v, %v", fi.ModTime(), err)
	}

	// From the -json file, without run.json: the rows, nothing else.
	d3 := filepath.Join(tmp, "d3")
	if status, _, stderr := runBench(t, "-report", d3, "-from", jsonPath); status != 0 || stderr != "" {
		t.Fatalf("-from %s: status %d\n%s", jsonPath, status, stderr)
	}
	if got := readFile(t, filepath.Join(d3, reportResults)); !bytes.Equal(got, js) {
		t.Errorf("results.json differs from the file rendered from")
	}
	md3 := string(readFile(t, filepath.Join(d3, reportMD)))
	if got := mdTables(t, md3)["test"]; fmt.Sprint(got) != fmt.Sprint(okRows) {
		t.Errorf("results.md from -json\n%q\nwant\n%q", got, okRows)
	}
	if !strings.Contains(md3, "| machine | not recorded |") || !strings.Contains(md3, "| file system of the data | "+info.FS+" |") {
		t.Errorf("results.md from -json does not say what is not recorded:\n%s", md3)
	}
	for _, f := range []string{reportRatio, reportLatency} {
		if a, b := readFile(t, filepath.Join(d1, f)), readFile(t, filepath.Join(d3, f)); !bytes.Equal(a, b) {
			t.Errorf("%s from -json differs from the run's", f)
		}
	}
}

func TestReportFromBadInput(t *testing.T) {
	tmp := t.TempDir()
	results := filepath.Join(tmp, "results.json")
	rows := []row{{Workload: "test-ok", System: "test/a", OpsPerSec: 10, Runs: 1}, {Workload: "test-ok", System: "test/b", OpsPerSec: 20, Runs: 1}}
	b, err := encodeRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(results, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// run.json listing a pair that has no row: ignored, with a warning.
	info := runInfo{GOOS: "plan9", Workloads: []runWorkload{{Name: "test-ok", Baseline: "test/b",
		Systems: []runEntry{{System: "test/a"}, {System: "test/b"}, {System: "test/c"}}}}}
	ib, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(tmp, reportRun), ib, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	status, _, stderr := runBench(t, "-report", out, "-from", results)
	if status != 0 || !strings.Contains(stderr, "ignoring "+filepath.Join(tmp, reportRun)) || !strings.Contains(stderr, "no row for test-ok on test/c") {
		t.Errorf("status %d, stderr %q", status, stderr)
	}
	md := string(readFile(t, filepath.Join(out, reportMD)))
	if strings.Contains(md, "plan9") || !strings.Contains(md, "| test-ok | test/a | 10.00 | - | - | - | base |") {
		t.Errorf("run.json not ignored:\n%s", md)
	}

	// run.json whose rows agree: used.
	info.Workloads[0].Systems[2].Note = "unavailable: elsewhere"
	ib, _ = json.Marshal(info)
	if err := os.WriteFile(filepath.Join(tmp, reportRun), ib, 0o644); err != nil {
		t.Fatal(err)
	}
	if status, _, stderr := runBench(t, "-report", out, "-from", results); status != 0 || stderr != "" {
		t.Errorf("status %d, stderr %q", status, stderr)
	}
	md = string(readFile(t, filepath.Join(out, reportMD)))
	if !strings.Contains(md, "plan9") || !strings.Contains(md, "| test-ok | test/a | 10.00 | - | - | - | 0.50x |") ||
		!strings.Contains(md, "|  | test/c | unavailable: elsewhere |") {
		t.Errorf("run.json not used:\n%s", md)
	}

	notRows := filepath.Join(tmp, "bad.json")
	if err := os.WriteFile(notRows, []byte(`{"workload":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		status int
		msg    string
	}{
		{[]string{"-from", results}, 2, "-from needs -report"},
		{[]string{"-report", out, "-from", filepath.Join(tmp, "missing.json")}, 1, "missing.json"},
		{[]string{"-report", out, "-from", notRows}, 1, "bad.json is not a results file"},
	} {
		if status, _, stderr := runBench(t, c.args...); status != c.status || !strings.Contains(stderr, c.msg) {
			t.Errorf("%q: status %d, stderr %q; want %d and %q", c.args, status, stderr, c.status, c.msg)
		}
	}
}

// Without run.json, a workload's baseline is the one the bench registers,
// wherever its row is; a workload the bench does not know compares with
// its first row.
func TestReportFromRowsBaseline(t *testing.T) {
	tmp := t.TempDir()
	results := filepath.Join(tmp, "x.json")
	b, err := encodeRows([]row{
		{Workload: "pager-splice", System: "ringlog/remap", OpsPerSec: 300, Runs: 1},
		{Workload: "pager-splice", System: "ringlog/copy", OpsPerSec: 100, Runs: 1},
		{Workload: "no-such", System: "s1", OpsPerSec: 50, Runs: 1},
		{Workload: "no-such", System: "s2", OpsPerSec: 100, Runs: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(results, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reportFromFile(tmp, results, t.Output()); err != nil {
		t.Fatal(err)
	}
	tables := mdTables(t, string(readFile(t, filepath.Join(tmp, reportMD))))
	for _, c := range []struct {
		family string
		ratios []string
	}{{"pager", []string{"3.00x", "base"}}, {"no", []string{"base", "2.00x"}}} {
		var got []string
		for _, r := range tables[c.family] {
			got = append(got, r[6])
		}
		if !slices.Equal(got, c.ratios) {
			t.Errorf("%s: ratios %q, want %q", c.family, got, c.ratios)
		}
	}
}

// The report of a run shows the figures as results.json has them, rounded
// to 3 decimals, as a rendering with -from does.
func TestReportShowsJSONFigures(t *testing.T) {
	r := row{Workload: "test-ok", System: "test/a", OpsPerSec: 1000, P50us: 1.2349, P99us: 2, Runs: 1}
	groups := []tableGroup{{workload: "test-ok", baseline: "test/a", entries: []tableEntry{
		{system: "test/a", row: &r}, {system: "test/none", note: "unavailable: never"}}}}
	dir := t.TempDir()
	b := &benchRun{cfg: config{reportDir: dir, size: SizeTiny, repeats: 1}, fs: "ext4"}
	if err := b.writeReport(groups, []row{r}); err != nil {
		t.Fatal(err)
	}
	rows := mdTables(t, string(readFile(t, filepath.Join(dir, reportMD))))["test"]
	// 1.2349 is 1.235 in the JSON: "1.24", where the unrounded figure
	// prints as "1.23".
	if len(rows) != 2 || rows[0][4] != "1.24" || rows[1][2] != "unavailable: never" {
		t.Errorf("table %q, want p50 1.24 and the unavailable pair", rows)
	}
}

// TestMdEscapeLineBreaks: a note with a line break (an error message, say)
// stays on its table row.
func TestMdEscapeLineBreaks(t *testing.T) {
	if got, want := mdEscape("FAILED (open x:\nno such file\r\n)"), "FAILED (open x: no such file  )"; got != want {
		t.Errorf("mdEscape = %q, want %q", got, want)
	}
}
