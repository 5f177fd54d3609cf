package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ringlog/ringlog/pager"
)

// A report directory (-report DIR) holds:
//
//	results.json  the rows, exactly as -json writes them
//	run.json      the run: machine, command, date, and every (workload,
//	              system) pair in table order with its baseline, a pair
//	              without a row carrying the reason (runInfo)
//	results.md    a Markdown table per family of workloads, the machine
//	              and the command
//	ratio.svg     per workload, each system's ops/s over the baseline's
//	latency.svg   per workload with per-operation latency, p50 and p99
//
// -from FILE renders the directory again from a results file: run.json
// beside FILE, if it describes FILE's rows, gives the machine, the command
// and the pairs without a row; without it the report has the rows only,
// each workload's baseline taken from the bench's own registry.
const (
	reportResults = "results.json"
	reportRun     = "run.json"
	reportMD      = "results.md"
	reportRatio   = "ratio.svg"
	reportLatency = "latency.svg"
)

// runInfo describes a bench run: where and how the rows of results.json
// were taken, and the pairs that have no row. It is run.json.
type runInfo struct {
	Command   string        `json:"command"`
	Date      string        `json:"date"` // end of the run, RFC 3339, UTC
	GOOS      string        `json:"goos"`
	GOARCH    string        `json:"goarch"`
	CPUs      int           `json:"cpus"`
	Kernel    string        `json:"kernel"`
	FS        string        `json:"fs"` // of the data directory
	Go        string        `json:"go"`
	PageSize  int           `json:"page_size"`
	Size      string        `json:"size"`
	Repeats   int           `json:"repeats"`
	Workloads []runWorkload `json:"workloads"`
}

// runWorkload is one workload of a run: its baseline and its systems in
// table order.
type runWorkload struct {
	Name     string     `json:"name"`
	Baseline string     `json:"baseline"`
	Systems  []runEntry `json:"systems"`
}

// runEntry is one system of a workload. Note is empty when the pair has a
// row in results.json, and otherwise says why not (unavailable, failed,
// not run).
type runEntry struct {
	System string `json:"system"`
	Note   string `json:"note,omitempty"`
}

// newRunInfo describes the current machine and a run of the bench with
// args; the caller adds the workloads.
func newRunInfo(args []string, size Size, repeats int, fs string, now time.Time) runInfo {
	return runInfo{
		Command:  shellCommand(append([]string{"go", "run", "./bench"}, args...)),
		Date:     now.UTC().Format(time.RFC3339),
		GOOS:     runtime.GOOS,
		GOARCH:   runtime.GOARCH,
		CPUs:     runtime.NumCPU(),
		Kernel:   kernelRelease(),
		FS:       fs,
		Go:       runtime.Version(),
		PageSize: pager.PageSize,
		Size:     size.String(),
		Repeats:  repeats,
	}
}

// shellCommand joins args into a command line a POSIX shell reads back as
// args: an argument with anything but letters, digits and -_./=:,+@ is
// single-quoted.
func shellCommand(args []string) string {
	var out []string
	for _, a := range args {
		plain := a != ""
		for _, c := range a {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=:,+@", c)) {
				plain = false
				break
			}
		}
		if plain {
			out = append(out, a)
		} else {
			out = append(out, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
	}
	return strings.Join(out, " ")
}

// describeGroups records the groups' pairs in info.Workloads.
func (info *runInfo) describeGroups(groups []tableGroup) {
	info.Workloads = nil
	for _, g := range groups {
		w := runWorkload{Name: g.workload, Baseline: g.baseline}
		for _, e := range g.entries {
			w.Systems = append(w.Systems, runEntry{System: e.system, Note: e.note})
		}
		info.Workloads = append(info.Workloads, w)
	}
}

// groupsFromRun rebuilds the table groups of info from rows. It fails if
// info and rows do not describe the same pairs.
func groupsFromRun(info runInfo, rows []row) ([]tableGroup, error) {
	byPair := map[[2]string]*row{}
	for i := range rows {
		r := &rows[i]
		k := [2]string{r.Workload, r.System}
		if byPair[k] != nil {
			return nil, fmt.Errorf("two rows for %s on %s", r.Workload, r.System)
		}
		byPair[k] = r
	}
	var groups []tableGroup
	used := 0
	for _, w := range info.Workloads {
		g := tableGroup{workload: w.Name, baseline: w.Baseline}
		for _, s := range w.Systems {
			e := tableEntry{system: s.System, note: s.Note}
			r := byPair[[2]string{w.Name, s.System}]
			switch {
			case s.Note == "" && r == nil:
				return nil, fmt.Errorf("no row for %s on %s", w.Name, s.System)
			case s.Note != "" && r != nil:
				return nil, fmt.Errorf("a row for %s on %s, which has none (%s)", w.Name, s.System, s.Note)
			case r != nil:
				e.row = r
				used++
			}
			g.entries = append(g.entries, e)
		}
		groups = append(groups, g)
	}
	if used != len(rows) {
		return nil, fmt.Errorf("%d row(s) of pairs it does not list", len(rows)-used)
	}
	return groups, nil
}

// groupsFromRows groups rows by workload in their order, each workload's
// baseline being the one the bench registers for it, or its first system
// for a workload the bench does not know.
func groupsFromRows(rows []row) []tableGroup {
	var groups []tableGroup
	index := map[string]int{}
	for i := range rows {
		r := &rows[i]
		gi, ok := index[r.Workload]
		if !ok {
			gi = len(groups)
			index[r.Workload] = gi
			base := r.System
			if w := lookupWorkload(r.Workload); w != nil {
				base = w.baselineSystem()
			}
			groups = append(groups, tableGroup{workload: r.Workload, baseline: base})
		}
		groups[gi].entries = append(groups[gi].entries, tableEntry{system: r.System, row: r})
	}
	return groups
}

// writeReportDir writes the report of a run into dir, creating it if
// needed. results is the content of results.json: the encoded rows of the
// groups.
func writeReportDir(dir string, info runInfo, groups []tableGroup, results []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-report: %w", err)
	}
	info.describeGroups(groups)
	runJSON, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("-report: encoding %s: %w", reportRun, err)
	}
	var md bytes.Buffer
	writeMarkdown(&md, info, groups)
	files := []struct {
		name string
		data []byte
	}{
		{reportResults, results},
		{reportRun, append(runJSON, '\n')},
		{reportMD, md.Bytes()},
		{reportRatio, ratioSVG(groups)},
		{reportLatency, latencySVG(groups)},
	}
	for _, f := range files {
		if f.data == nil {
			continue // results.json is the file rendered from
		}
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fmt.Errorf("-report: %w", err)
		}
	}
	return nil
}

// reportFromFile renders the report directory dir from the results file
// from (and run.json beside it): the -from mode, in which nothing runs.
// Problems that leave a usable report are written to warn.
func reportFromFile(dir, from string, warn io.Writer) error {
	results, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("-from: %w", err)
	}
	var rows []row
	if err := json.Unmarshal(results, &rows); err != nil {
		return fmt.Errorf("-from: %s is not a results file of the bench (a JSON array of rows): %w", from, err)
	}
	for i, r := range rows {
		if r.Workload == "" || r.System == "" {
			return fmt.Errorf("-from: %s: row %d has no workload or system", from, i)
		}
	}
	var info runInfo
	var groups []tableGroup
	runPath := filepath.Join(filepath.Dir(from), reportRun)
	b, err := os.ReadFile(runPath)
	switch {
	case err == nil:
		if err = json.Unmarshal(b, &info); err == nil {
			groups, err = groupsFromRun(info, rows)
		}
		if err != nil {
			fmt.Fprintf(warn, "bench: -from: ignoring %s: it does not describe the rows of %s: %v\n", runPath, from, err)
			info, groups = runInfo{}, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("-from: %w", err)
	}
	if groups == nil {
		groups = groupsFromRows(rows)
		if len(rows) > 0 {
			info.FS = rows[0].FS
		}
	}
	// Copy the results file as it is (extra fields included), unless it is
	// the one in dir already.
	if fi, err := os.Stat(filepath.Join(dir, reportResults)); err == nil {
		if src, err := os.Stat(from); err == nil && os.SameFile(fi, src) {
			results = nil
		}
	}
	return writeReportDir(dir, info, groups, results)
}

// family is the part of a workload's name before the first '-': the
// Markdown report has a table per family (pager, ring, wal, kv, ...).
func family(workload string) string {
	f, _, _ := strings.Cut(workload, "-")
	return f
}

// mdEscape makes s literal text in a Markdown table cell: Markdown and
// HTML punctuation is backslash-escaped, so a name shows as it is.
func mdEscape(s string) string {
	var sb strings.Builder
	for _, c := range s {
		if c == '\n' || c == '\r' {
			c = ' ' // a line break would end the table row
		}
		if strings.ContainsRune("\\`*_{}[]<>#!|&~$", c) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

// mdHeader is the header of every workload table of results.md.
var mdHeader = []string{"workload", "system", "ops/s", "MB/s", "p50 µs", "p99 µs", "ratio", "anon MB", "file MB", "runs"}

// writeMarkdown writes results.md: the run, the charts, then a table per
// family of workloads, one line per (workload, system), the ratio of ops/s
// to the workload's baseline, and pairs without figures with the reason.
func writeMarkdown(w io.Writer, info runInfo, groups []tableGroup) {
	or := func(s string) string {
		if s == "" {
			return "not recorded"
		}
		return mdEscape(s)
	}
	fmt.Fprintf(w, "# ringlog bench results\n\n")
	fmt.Fprintf(w, "| run | |\n|---|---|\n")
	fmt.Fprintf(w, "| date | %s |\n", or(info.Date))
	machine := ""
	if info.GOOS != "" {
		machine = fmt.Sprintf("%s/%s, %d CPUs, kernel %s, page size %d", info.GOOS, info.GOARCH, info.CPUs, info.Kernel, info.PageSize)
	}
	fmt.Fprintf(w, "| machine | %s |\n", or(machine))
	fmt.Fprintf(w, "| file system of the data | %s |\n", or(info.FS))
	fmt.Fprintf(w, "| Go | %s |\n", or(info.Go))
	sizes := ""
	if info.Size != "" {
		sizes = fmt.Sprintf("%s, %d repeat(s)", info.Size, info.Repeats)
	}
	fmt.Fprintf(w, "| size | %s |\n\n", or(sizes))
	if info.Command != "" {
		fence := "```"
		for strings.Contains(info.Command, fence) {
			fence += "`"
		}
		fmt.Fprintf(w, "Command:\n\n%ssh\n%s\n%s\n\n", fence, info.Command, fence)
	}
	fmt.Fprintf(w, "![ops/s relative to the baseline of each workload](%s)\n\n", reportRatio)
	fmt.Fprintf(w, "![p50 and p99 per-operation latency](%s)\n\n", reportLatency)

	var families []string
	byFamily := map[string][]tableGroup{}
	for _, g := range groups {
		f := family(g.workload)
		if _, ok := byFamily[f]; !ok {
			families = append(families, f)
		}
		byFamily[f] = append(byFamily[f], g)
	}
	line := func(cells []string) {
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	for _, f := range families {
		fmt.Fprintf(w, "## %s\n\n", mdEscape(f))
		line(mdHeader)
		align := []string{"---", "---"}
		for range mdHeader[2:] {
			align = append(align, "--:")
		}
		fmt.Fprintf(w, "|%s|\n", strings.Join(align, "|"))
		for _, g := range byFamily[f] {
			base := g.baseOps()
			for i, e := range g.entries {
				name := ""
				if i == 0 {
					name = mdEscape(g.workload)
				}
				sys := mdEscape(e.system)
				if e.row == nil {
					cells := []string{name, sys, mdEscape(e.note)}
					for len(cells) < len(mdHeader) {
						cells = append(cells, "")
					}
					line(cells)
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
				line([]string{name, sys, fmtNum(r.OpsPerSec), fmtNum(r.MBPerSec), fmtNum(r.P50us), fmtNum(r.P99us),
					ratio, fmtNum(r.RSSAnonMB), fmtNum(r.RSSFileMB), fmt.Sprint(r.Runs)})
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%s\n", strings.ReplaceAll(tableLegend, "\n", " "))
}

// writeReport writes -report DIR at the end of a run. The report shows the
// rows as results.json has them (figures rounded to 3 decimals), so that
// rendering it again with -from gives the same files.
func (b *benchRun) writeReport(groups []tableGroup, rows []row) error {
	results, err := encodeRows(rows)
	if err != nil {
		return fmt.Errorf("-report: encoding %s: %w", reportResults, err)
	}
	var decoded []row
	if err := json.Unmarshal(results, &decoded); err != nil {
		return fmt.Errorf("-report: decoding %s: %w", reportResults, err)
	}
	info := newRunInfo(b.cfg.args, b.cfg.size, b.cfg.repeats, b.fs, time.Now())
	info.describeGroups(groups)
	if groups, err = groupsFromRun(info, decoded); err != nil {
		return fmt.Errorf("-report: %w", err)
	}
	return writeReportDir(b.cfg.reportDir, info, groups, results)
}
