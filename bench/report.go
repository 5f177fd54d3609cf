package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// row is the result of one (workload, system) pair: one JSON object, one
// table line. Rates and latencies are medians over Runs runs; N and Bytes
// are the work one run did. MB = 10^6 bytes.
type row struct {
	Workload  string  `json:"workload"`
	System    string  `json:"system"`
	OpsPerSec float64 `json:"ops_per_sec"`
	MBPerSec  float64 `json:"mb_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	RSSAnonMB float64 `json:"rss_anon_mb"`
	RSSFileMB float64 `json:"rss_file_mb"`
	N         int64   `json:"n"`
	Bytes     int64   `json:"bytes"`
	FS        string  `json:"fs"`
	Runs      int     `json:"runs"`
	// Extra holds the workload's own figures (space_amp, ...), written as
	// further fields of the object, in key order.
	Extra map[string]float64 `json:"-"`
}

// rowFields are the names of the fixed fields, which extras may not reuse.
var rowFields = []string{"workload", "system", "ops_per_sec", "mb_per_sec", "p50_us", "p99_us",
	"rss_anon_mb", "rss_file_mb", "n", "bytes", "fs", "runs"}

// MarshalJSON writes the fixed fields in their documented order, then the
// extras. Floats are rounded to 3 decimals; a non-finite value is an error.
func (r row) MarshalJSON() ([]byte, error) {
	type fixed row // without the method
	f := fixed(r)
	for _, p := range []*float64{&f.OpsPerSec, &f.MBPerSec, &f.P50us, &f.P99us, &f.RSSAnonMB, &f.RSSFileMB} {
		*p = round3(*p)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if len(r.Extra) == 0 {
		return b, nil
	}
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // drop '}'
	for _, k := range slices.Sorted(maps.Keys(r.Extra)) {
		if slices.Contains(rowFields, k) {
			return nil, fmt.Errorf("row %s/%s: extra field %q shadows a fixed field", r.Workload, r.System, k)
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(round3(r.Extra[k]))
		if err != nil {
			return nil, fmt.Errorf("row %s/%s: extra field %q: %w", r.Workload, r.System, k, err)
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func round3(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x // json.Marshal reports it
	}
	return math.Round(x*1000) / 1000
}

// encodeRows returns the JSON array of rows, one object per line.
func encodeRows(rows []row) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n  ")
		buf.Write(b)
	}
	buf.WriteString("\n]\n")
	return buf.Bytes(), nil
}

func writeJSONFile(path string, rows []row) error {
	b, err := encodeRows(rows)
	if err != nil {
		return fmt.Errorf("encoding -json: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing -json: %w", err)
	}
	return nil
}

// tableGroup is the rows of one workload.
type tableGroup struct {
	workload string
	baseline string // system the ratio column compares with
	entries  []tableEntry
}

// baseOps is the ops/s of the workload's baseline, 0 if it has no row.
func (g tableGroup) baseOps() float64 {
	for _, e := range g.entries {
		if e.system == g.baseline && e.row != nil {
			return e.row.OpsPerSec
		}
	}
	return 0
}

// tableEntry is one system of a workload: a row, or a note saying why
// there is none (unavailable, failed).
type tableEntry struct {
	system string
	row    *row
	note   string
}

const tableLegend = `ops/s, MB/s (10^6 bytes), p50/p99 (per-operation latency, µs; "-" where the
workload has no per-operation latency), anon/file MB (RssAnon/RssFile of the
run's process at the end of its timed work): medians over "runs" runs.
ratio: ops/s over that of the row marked "base" in the same workload.`

var tableHeader = []string{"workload", "system", "ops/s", "MB/s", "p50 µs", "p99 µs", "anon MB", "file MB", "runs", "ratio"}

// writeTable prints the groups as an aligned plain-text table: text columns
// left-aligned, numbers right-aligned, a blank line between workloads.
func writeTable(w io.Writer, groups []tableGroup) {
	var lines [][]string // nil = blank line between groups
	notes := map[int]string{}
	for gi, g := range groups {
		if gi > 0 {
			lines = append(lines, nil)
		}
		base := g.baseOps()
		for i, e := range g.entries {
			name := ""
			if i == 0 {
				name = g.workload
			}
			if e.row == nil {
				notes[len(lines)] = e.note
				lines = append(lines, []string{name, e.system})
				continue
			}
			r := e.row
			ratio := "-"
			switch {
			case e.system == g.baseline:
				ratio = "base"
			case base > 0:
				ratio = fmt.Sprintf("%.2fx", r.OpsPerSec/base)
			}
			lines = append(lines, []string{name, e.system,
				fmtNum(r.OpsPerSec), fmtNum(r.MBPerSec), fmtNum(r.P50us), fmtNum(r.P99us),
				fmtNum(r.RSSAnonMB), fmtNum(r.RSSFileMB), fmt.Sprint(r.Runs), ratio})
		}
	}
	width := make([]int, len(tableHeader))
	for _, l := range append([][]string{tableHeader}, lines...) {
		for i, c := range l {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	const textCols = 2 // workload, system: left-aligned
	put := func(cells []string) {
		var sb strings.Builder
		for i, c := range cells {
			if i > 0 {
				sb.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i < textCols {
				sb.WriteString(c + pad)
			} else {
				sb.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(sb.String(), " "))
	}
	put(tableHeader)
	for i, l := range lines {
		if l == nil {
			fmt.Fprintln(w)
			continue
		}
		if note, ok := notes[i]; ok {
			// The note takes the place of the figures.
			fmt.Fprintf(w, "%-*s  %-*s  %s\n", width[0], l[0], width[1], l[1], note)
			continue
		}
		put(l)
	}
}

// fmtNum prints a figure with three or four significant digits, "-" for
// zero (not measured).
func fmtNum(x float64) string {
	a := math.Abs(x)
	switch {
	case x == 0:
		return "-"
	case a >= 1000:
		return fmt.Sprintf("%.0f", x)
	case a >= 100:
		return fmt.Sprintf("%.1f", x)
	case a >= 1:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3f", x)
}
