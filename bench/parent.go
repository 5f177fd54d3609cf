package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
)

// config is the parsed command line.
type config struct {
	size      Size
	repeats   int
	dir       string
	jsonPath  string
	workloads *regexp.Regexp
	systems   *regexp.Regexp
	timeout   time.Duration
	list      bool
	reportDir string   // -report
	from      string   // -from
	args      []string // the command line, for the report
}

// hiddenFlags are left out of -help: they exist for the bench's own tests.
var hiddenFlags = map[string]bool{"size": true}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "3 repeats of small sizes (finishes in at most about 10 minutes on 2 cores)")
	sizeName := fs.String("size", "", "size of every run: tiny, quick or full (tiny is for tests)")
	repeats := fs.Int("repeats", 0, "repeats of every (workload, system) pair (default 3 with -quick, 5 otherwise)")
	dir := fs.String("dir", "", "create the data directory under `DIR` (default: the temporary directory, or /var/tmp or . when that is tmpfs); it is removed at the end")
	jsonPath := fs.String("json", "", "write the results as a JSON array to `FILE`")
	wre := fs.String("workloads", "", "run only workloads whose name matches `REGEXP`")
	sre := fs.String("systems", "", "run only systems whose name matches `REGEXP`")
	timeout := fs.Duration("timeout", 10*time.Minute, "kill a run (one child process) that takes longer than this")
	list := fs.Bool("list", false, "list workloads and systems and exit")
	reportDir := fs.String("report", "", "write results.json, run.json, results.md, ratio.svg and latency.svg into `DIR` (created if missing)")
	from := fs.String("from", "", "with -report: render the report from the results `FILE` of an earlier run (-json or -report's results.json) instead of running")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: go run ./bench [flags]\n\nRuns every workload on every system in child processes, interleaved and\nrepeated, and prints the medians.\n\nflags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			if hiddenFlags[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			line := "  -" + f.Name
			if name != "" {
				line += " " + name
			}
			if name == "duration" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(out, "%s\n    \t%s\n", line, usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return config{}, errors.New("bad usage")
	}
	c := config{size: SizeFull, dir: *dir, jsonPath: *jsonPath, timeout: *timeout, list: *list,
		reportDir: *reportDir, from: *from, args: args}
	if c.from != "" && c.reportDir == "" {
		fmt.Fprintf(stderr, "bench: -from needs -report DIR to render into\n")
		return config{}, errors.New("bad usage")
	}
	if *quick {
		c.size = SizeQuick
	}
	if *sizeName != "" {
		s, err := parseSize(*sizeName)
		if err != nil {
			fmt.Fprintf(stderr, "bench: -size: %v\n", err)
			return config{}, err
		}
		c.size = s
	}
	c.repeats = c.size.defaultRepeats()
	if *repeats != 0 {
		c.repeats = *repeats
	}
	if c.repeats < 1 {
		fmt.Fprintf(stderr, "bench: -repeats %d: need at least 1\n", c.repeats)
		return config{}, errors.New("bad usage")
	}
	var err error
	if c.workloads, err = regexp.Compile(*wre); err != nil {
		fmt.Fprintf(stderr, "bench: -workloads: %v\n", err)
		return config{}, err
	}
	if c.systems, err = regexp.Compile(*sre); err != nil {
		fmt.Fprintf(stderr, "bench: -systems: %v\n", err)
		return config{}, err
	}
	return c, nil
}

// parentMain is the bench's command line: it returns the exit status.
func parentMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if err := checkRegistry(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	if cfg.list {
		listRegistry(stdout)
		return 0
	}
	if cfg.from != "" {
		if err := reportFromFile(cfg.reportDir, cfg.from, stderr); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	sel := selectPairs(cfg.workloads, cfg.systems)
	if len(sel) == 0 {
		fmt.Fprintf(stderr, "bench: no (workload, system) pair matches -workloads %q -systems %q (see -list)\n", cfg.workloads, cfg.systems)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &benchRun{cfg: cfg, stdout: stdout, stderr: stderr, progress: osfile.IsTerminal(stderr)}
	return b.run(ctx, sel)
}

func listRegistry(w io.Writer) {
	fmt.Fprintf(w, "workloads:\n")
	for _, wl := range registry.workloads {
		d := ""
		if wl.durable {
			d = " (durable)"
		}
		fmt.Fprintf(w, "  %-22s %s%s\n  %-22s systems: %s; ratio against %s\n", wl.name, wl.doc, d, "", strings.Join(wl.systems, ", "), wl.baselineSystem())
		for _, nr := range wl.notRun {
			fmt.Fprintf(w, "  %-22s not run on %s: %s\n", "", nr.system, nr.reason)
		}
	}
	fmt.Fprintf(w, "systems:\n")
	for _, s := range registry.systems {
		status := "available"
		if err := s.available(); err != nil {
			status = "unavailable: " + err.Error()
		}
		fmt.Fprintf(w, "  %-22s %s\n", s.name, status)
	}
}

// benchRun is one invocation of the bench in the parent process.
type benchRun struct {
	cfg      config
	stdout   io.Writer
	stderr   io.Writer
	progress bool // stderr is a terminal: show progress in place
	dir      string
	fs       string
}

// pairState collects the runs of one (workload, system) pair.
type pairState struct {
	w           *workload
	system      string
	unavailable error         // the system does not work here: not run
	setupErr    error         // the workload's setup failed: not run
	results     []childResult // successful runs
	failures    []string      // one line per failed run or problem found
}

// toRun reports whether the pair's children should be started.
func (p *pairState) toRun() bool { return p.unavailable == nil && p.setupErr == nil }

// run is the whole bench run: data directory, setup, the children, the
// report. It returns the exit status.
func (b *benchRun) run(ctx context.Context, sel []selection) int {
	start := time.Now()
	dir, cleanup, err := makeDataDir(b.cfg.dir)
	if err != nil {
		fmt.Fprintf(b.stderr, "bench: %v\n", err)
		return 2
	}
	defer cleanup()
	b.dir, b.fs = dir, osfile.FSType(dir)
	if err := refuseMemFS(sel, dir, b.fs); err != nil {
		fmt.Fprintf(b.stderr, "bench: %v\n", err)
		return 2
	}

	// Every pair, in table order; unavailable systems stay in the table.
	var groups [][]*pairState
	avail := map[string]error{}
	for _, s := range sel {
		var g []*pairState
		for _, name := range s.systems {
			if _, ok := avail[name]; !ok {
				avail[name] = lookupSystem(name).available()
			}
			g = append(g, &pairState{w: s.w, system: name, unavailable: avail[name]})
		}
		groups = append(groups, g)
	}

	b.setup(groups)
	done, total, interrupted := b.runAll(ctx, groups)
	// Same work for every repeat and every system of a workload, or the
	// figures are not comparable.
	for _, g := range groups {
		checkSameWork(g)
	}

	status := b.report(groups)
	fmt.Fprintf(b.stdout, "%d runs in %.1fs\n", done, time.Since(start).Seconds())
	if interrupted {
		fmt.Fprintf(b.stderr, "bench: interrupted after %d of %d runs\n", done, total)
		status = 1
	}
	return status
}

// refuseMemFS reports an error if a durable workload is selected and the
// data directory is in memory.
func refuseMemFS(sel []selection, dir, fs string) error {
	if !osfile.IsMemFS(fs) {
		return nil
	}
	var durable []string
	for _, s := range sel {
		if s.w.durable {
			durable = append(durable, s.w.name)
		}
	}
	if len(durable) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to run durable workloads (%s) in %s: it is on %s, where fdatasync is a no-op, so their figures would mean nothing; use -dir on a disk-backed file system, or leave them out with -workloads",
		strings.Join(durable, ", "), dir, fs)
}

// setup prepares the shared inputs of every workload that has a system to
// run on, once, before any child starts. A workload whose setup fails is not
// run.
func (b *benchRun) setup(groups [][]*pairState) {
	for _, g := range groups {
		w := g[0].w
		if w.setup == nil || !slices.ContainsFunc(g, (*pairState).toRun) {
			continue
		}
		var systems []string
		for _, p := range g {
			if p.toRun() {
				systems = append(systems, p.system)
			}
		}
		b.showProgress("preparing %s", w.name)
		err := w.setup(&env{dir: b.dir, size: b.cfg.size, systems: systems})
		b.clearProgress()
		if err != nil {
			fmt.Fprintf(b.stderr, "bench: FAILED %s: setup: %v\n", w.name, err)
			for _, p := range g {
				if p.toRun() {
					p.setupErr = err
					p.failures = append(p.failures, "setup: "+err.Error())
				}
			}
		}
	}
}

// runAll runs the children: for each repeat, every workload on every
// system, the order of the systems rotating from one repeat to the next so
// that no system always runs first. A failed run is reported at once on
// stderr and the others go on.
func (b *benchRun) runAll(ctx context.Context, groups [][]*pairState) (done, total int, interrupted bool) {
	for _, g := range groups {
		for _, p := range g {
			if p.toRun() {
				total += b.cfg.repeats
			}
		}
	}
	defer b.clearProgress()
	for rep := range b.cfg.repeats {
		for _, g := range groups {
			var ps []*pairState
			for _, p := range g {
				if p.toRun() {
					ps = append(ps, p)
				}
			}
			for i := range ps {
				p := ps[(i+rep)%len(ps)]
				b.showProgress("[%d/%d] %s %s repeat %d/%d", done+1, total, p.w.name, p.system, rep+1, b.cfg.repeats)
				res, err := b.execChild(ctx, childSpec{Workload: p.w.name, System: p.system, Dir: b.dir, Size: b.cfg.size.String()})
				if ctx.Err() != nil {
					return done, total, true
				}
				done++
				if err != nil {
					b.clearProgress()
					msg := fmt.Sprintf("repeat %d of %d: %v", rep+1, b.cfg.repeats, err)
					p.failures = append(p.failures, msg)
					fmt.Fprintf(b.stderr, "bench: FAILED %s on %s, %s\n", p.w.name, p.system, msg)
					var ce *childError
					if errors.As(err, &ce) {
						ce.writeOutput(b.stderr)
					}
					continue
				}
				p.results = append(p.results, res)
			}
		}
	}
	return done, total, false
}

// report prints the table on stdout, writes -json, and lists the failures
// on stderr. It returns the exit status so far.
func (b *benchRun) report(groups [][]*pairState) int {
	var tgroups []tableGroup
	var rows []row
	for _, g := range groups {
		tg := tableGroup{workload: g[0].w.name, baseline: g[0].w.baselineSystem()}
		for _, p := range g {
			e := tableEntry{system: p.system}
			switch {
			case p.unavailable != nil:
				e.note = "unavailable: " + p.unavailable.Error()
			case len(p.failures) > 0:
				e.note = fmt.Sprintf("FAILED (%d problem(s), see stderr)", len(p.failures))
			case len(p.results) == 0:
				e.note = "not run (interrupted)"
			default:
				r := summarize(p.w.name, p.system, b.fs, p.results)
				e.row = &r
				rows = append(rows, r)
			}
			tg.entries = append(tg.entries, e)
		}
		for _, nr := range g[0].w.notRun {
			if b.cfg.systems == nil || b.cfg.systems.MatchString(nr.system) {
				tg.entries = append(tg.entries, tableEntry{system: nr.system, note: "not run: " + nr.reason})
			}
		}
		tgroups = append(tgroups, tg)
	}

	fmt.Fprintf(b.stdout, "ringlog bench: size %s, %d repeat(s), data in %s (%s, removed at exit), %s %s/%s, %d CPUs, kernel %s, page size %d\n\n",
		b.cfg.size, b.cfg.repeats, b.dir, b.fs, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), kernelRelease(), pager.PageSize)
	writeTable(b.stdout, tgroups)
	fmt.Fprintf(b.stdout, "\n%s\n", tableLegend)

	status := 0
	if b.cfg.jsonPath != "" {
		if err := writeJSONFile(b.cfg.jsonPath, rows); err != nil {
			fmt.Fprintf(b.stderr, "bench: %v\n", err)
			status = 1
		}
	}
	if b.cfg.reportDir != "" {
		if err := b.writeReport(tgroups, rows); err != nil {
			fmt.Fprintf(b.stderr, "bench: %v\n", err)
			status = 1
		}
	}
	var failed []string
	for _, g := range groups {
		for _, p := range g {
			for _, f := range p.failures {
				failed = append(failed, fmt.Sprintf("  %s on %s: %s", p.w.name, p.system, firstLine(f)))
			}
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(b.stderr, "bench: %d failure(s):\n%s\n", len(failed), strings.Join(failed, "\n"))
		status = 1
	}
	return status
}

// checkSameWork records a failure on every pair of a workload whose runs did
// different amounts of work (n, bytes) from one repeat to another or from
// the other systems: such figures cannot be compared.
func checkSameWork(g []*pairState) {
	type amount struct{ n, bytes int64 }
	seen := map[amount][]string{}
	for _, p := range g {
		for _, r := range p.results {
			a := amount{r.N, r.Bytes}
			if !slices.Contains(seen[a], p.system) {
				seen[a] = append(seen[a], p.system)
			}
		}
	}
	if len(seen) <= 1 {
		return
	}
	var desc []string
	for _, a := range slices.SortedFunc(maps.Keys(seen), func(x, y amount) int {
		return cmp.Or(cmp.Compare(x.n, y.n), cmp.Compare(x.bytes, y.bytes))
	}) {
		desc = append(desc, fmt.Sprintf("n=%d bytes=%d on %s", a.n, a.bytes, strings.Join(seen[a], ", ")))
	}
	msg := "runs did different amounts of work: " + strings.Join(desc, "; ")
	for _, p := range g {
		if len(p.results) > 0 {
			p.failures = append(p.failures, msg)
		}
	}
}

// summarize turns the runs of one pair into its row: every figure is the
// median over the runs, taken independently.
func summarize(workload, system, fs string, rs []childResult) row {
	var ops, mb, p50, p99, anon, file []float64
	extras := map[string][]float64{}
	for _, r := range rs {
		sec := r.Elapsed.Seconds()
		ops = append(ops, float64(r.N)/sec)
		mb = append(mb, float64(r.Bytes)/1e6/sec)
		p50 = append(p50, float64(r.P50)/float64(time.Microsecond))
		p99 = append(p99, float64(r.P99)/float64(time.Microsecond))
		anon = append(anon, float64(r.RSSAnon)/1e6)
		file = append(file, float64(r.RSSFile)/1e6)
		for k, v := range r.Extra {
			extras[k] = append(extras[k], v)
		}
	}
	out := row{
		Workload:  workload,
		System:    system,
		OpsPerSec: median(ops),
		MBPerSec:  median(mb),
		P50us:     median(p50),
		P99us:     median(p99),
		RSSAnonMB: median(anon),
		RSSFileMB: median(file),
		N:         rs[0].N,
		Bytes:     rs[0].Bytes,
		FS:        fs,
		Runs:      len(rs),
	}
	for k, vs := range extras {
		if out.Extra == nil {
			out.Extra = map[string]float64{}
		}
		out.Extra[k] = median(vs)
	}
	return out
}

// makeDataDir creates the bench run's data directory: under base if given,
// else under the temporary directory, or /var/tmp or the current directory
// when the temporary directory is in memory (tmpfs). cleanup removes it.
func makeDataDir(base string) (dir string, cleanup func(), err error) {
	var candidates []string
	if base != "" {
		if err := os.MkdirAll(base, 0o755); err != nil {
			return "", nil, fmt.Errorf("-dir: %w", err)
		}
		candidates = []string{base}
	} else {
		for _, c := range []string{os.TempDir(), "/var/tmp", "."} {
			if !osfile.IsMemFS(osfile.FSType(c)) {
				candidates = append(candidates, c)
			}
		}
		// All in memory: non-durable workloads can still run there.
		candidates = append(candidates, os.TempDir())
	}
	var errs []error
	for _, c := range candidates {
		d, err := os.MkdirTemp(c, "ringlog-bench-")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		return d, func() { os.RemoveAll(d) }, nil
	}
	return "", nil, fmt.Errorf("creating a data directory: %w", errors.Join(errs...))
}

func (b *benchRun) showProgress(format string, args ...any) {
	if b.progress {
		fmt.Fprintf(b.stderr, "\r\033[K"+format, args...)
	}
}

func (b *benchRun) clearProgress() {
	if b.progress {
		fmt.Fprint(b.stderr, "\r\033[K")
	}
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
