package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRowJSON(t *testing.T) {
	r := row{Workload: "kv-overwrite-gc", System: "ringlog/remap", OpsPerSec: 1234.56789, MBPerSec: 0.1234567,
		P50us: 1.5, P99us: 20.0004, RSSAnonMB: 10, RSSFileMB: 2.5, N: 1000, Bytes: 64000, FS: "ext4", Runs: 3}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"workload":"kv-overwrite-gc","system":"ringlog/remap","ops_per_sec":1234.568,"mb_per_sec":0.123,` +
		`"p50_us":1.5,"p99_us":20,"rss_anon_mb":10,"rss_file_mb":2.5,"n":1000,"bytes":64000,"fs":"ext4","runs":3}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}

	r.Extra = map[string]float64{"space_amp": 1.23456, "gc_ms": 7}
	b, err = json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	wantExtra := strings.TrimSuffix(want, "}") + `,"gc_ms":7,"space_amp":1.235}`
	if string(b) != wantExtra {
		t.Errorf("got  %s\nwant %s", b, wantExtra)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range rowFields {
		if _, ok := m[k]; !ok {
			t.Errorf("field %s missing", k)
		}
	}

	r.Extra = map[string]float64{"runs": 1}
	if _, err := json.Marshal(r); err == nil {
		t.Error("an extra field shadowing a fixed one was accepted")
	}
}

func TestEncodeRows(t *testing.T) {
	b, err := encodeRows(nil)
	if err != nil || strings.TrimSpace(string(b)) != "[\n]" {
		t.Errorf("empty: %q, %v", b, err)
	}
	rows := []row{{Workload: "a", System: "x", Runs: 1}, {Workload: "a", System: "y", Runs: 1}}
	b, err = encodeRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	var back []row
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(back) != 2 || back[1].System != "y" {
		t.Errorf("round trip: %+v", back)
	}
}

func TestTable(t *testing.T) {
	groups := []tableGroup{
		{workload: "pager-splice", baseline: "ringlog/copy", entries: []tableEntry{
			{system: "ringlog/remap", row: &row{OpsPerSec: 400000, MBPerSec: 26214.4, P50us: 2.1, P99us: 7.25, RSSAnonMB: 5.9, RSSFileMB: 6.9, Runs: 3}},
			{system: "ringlog/mmap", note: "unavailable: not here"},
			{system: "ringlog/copy", row: &row{OpsPerSec: 100000, MBPerSec: 6553.6, P50us: 9.5, P99us: 30, RSSAnonMB: 10.1, RSSFileMB: 2.8, Runs: 3}},
		}},
		{workload: "pager-read-warm", baseline: "ringlog/copy", entries: []tableEntry{
			{system: "ringlog/remap", row: &row{OpsPerSec: 2.5e6, MBPerSec: 10240, RSSAnonMB: 5.8, RSSFileMB: 271, Runs: 2}},
			{system: "ringlog/copy", note: "FAILED (1 problem(s), see stderr)"},
		}},
	}
	var sb strings.Builder
	writeTable(&sb, groups)
	const want = `workload         system           ops/s   MB/s  p50 µs  p99 µs  anon MB  file MB  runs  ratio
pager-splice     ringlog/remap   400000  26214    2.10    7.25     5.90     6.90     3  4.00x
                 ringlog/mmap   unavailable: not here
                 ringlog/copy    100000   6554    9.50   30.00    10.10     2.80     3   base

pager-read-warm  ringlog/remap  2500000  10240       -       -     5.80    271.0     2      -
                 ringlog/copy   FAILED (1 problem(s), see stderr)
`
	if got := sb.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFmtNum(t *testing.T) {
	for x, want := range map[float64]string{0: "-", 0.1234: "0.123", 1.5: "1.50", 99.999: "100.00", 123.45: "123.5", 1e6 + 0.4: "1000000"} {
		if got := fmtNum(x); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", x, got, want)
		}
	}
}

func TestParseMemStat(t *testing.T) {
	status := "Name:\tbench\nVmRSS:\t  300 kB\nRssAnon:\t    1024 kB\nRssFile:\t     512 kB\nRssShmem:\t       0 kB\n"
	m := parseMemStat([]byte(status))
	if m.anon != 1024<<10 || m.file != 512<<10 {
		t.Errorf("got %+v", m)
	}
	if m := parseMemStat([]byte("Name: x\n")); m != (memStat{}) {
		t.Errorf("no Rss lines: got %+v", m)
	}
	if m := readMemStat(); m.anon <= 0 {
		t.Logf("no RssAnon here: %+v", m)
	}
}
