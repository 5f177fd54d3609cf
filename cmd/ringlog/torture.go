package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/internal/torture"
)

const tortureSynopsis = `torture [-quick] [-dir DIR] [-suites LIST] [-trials SUITE=N,...] [-duration D] [-seed N] [-v]

Runs the reliability suites against a directory and prints one line per
suite:

  RELIABILITY <suite> trials=N acked=A lost=L corrupt=C undetected=U

acked: acknowledged-durable records checked after recovery; lost: of those,
missing, counting only what the recovery mode promises to keep; corrupt:
records returned with wrong bytes, out of order, or never written;
undetected: injected damage the reader did not report. The exit status is
1 if any of the last three is above 0.

Suites:
%s
Run it on the file system you will use: -dir on that disk (the default is
a temporary directory on a disk, not tmpfs). Some suites need root (the
full-disk suite mounts a small file system) and say so when skipped.

flags:`

func runTorture(args []string, stdout, stderr io.Writer) int {
	var list strings.Builder
	for _, s := range torture.Suites() {
		fmt.Fprintf(&list, "  %-10s %s\n", s.Name, s.Doc)
	}
	fs := newFlags("torture", fmt.Sprintf(tortureSynopsis, list.String()), stderr)
	quick := fs.Bool("quick", false, "small counts (about 3 minutes on 2 cores)")
	dir := fs.String("dir", "", "run the trials in a temporary directory under `DIR` (default: the temporary directory, or /var/tmp when that is in memory)")
	suites := fs.String("suites", "", "comma-separated suites to run (default: all)")
	trials := fs.String("trials", "", "trials per suite, as `SUITE=N,...` (default: each suite's count for -quick or the full run)")
	duration := fs.Duration("duration", 0, "repeat each suite's trials until at least this long has passed")
	seed := fs.Uint64("seed", 0, "seed of the trials' random choices (default: random, printed)")
	verbose := fs.Bool("v", false, "describe every failure (the first few per suite are always shown)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ringlog torture: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	cfg := &torture.Config{Dir: *dir, Seed: *seed, Quick: *quick, Duration: *duration, Trials: map[string]int{}}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Dir == "" {
		cfg.Dir = osfile.DurableTempDir()
	} else if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "ringlog torture: %v\n", err)
		return exitFailure
	}
	if abs, err := filepath.Abs(cfg.Dir); err == nil {
		cfg.Dir = abs
	}
	if *trials != "" {
		for _, kv := range strings.Split(*trials, ",") {
			name, n, ok := strings.Cut(kv, "=")
			count, err := strconv.Atoi(n)
			if !ok || err != nil || count < 0 {
				fmt.Fprintf(stderr, "ringlog torture: -trials: %q is not SUITE=N\n", kv)
				return exitUsage
			}
			cfg.Trials[strings.TrimSpace(name)] = count
		}
	}
	var names []string
	if *suites != "" {
		names = strings.Split(*suites, ",")
	}
	known := map[string]bool{}
	for _, s := range torture.Suites() {
		known[s.Name] = true
	}
	for _, n := range append(names, keys(cfg.Trials)...) {
		if !known[n] {
			fmt.Fprintf(stderr, "ringlog torture: no suite %q (ringlog torture -h lists them)\n", n)
			return exitUsage
		}
	}
	fsType := osfile.FSType(cfg.Dir)
	fmt.Fprintf(stderr, "ringlog torture: seed %d, directory %s (%s)\n", cfg.Seed, cfg.Dir, fsType)
	if osfile.IsMemFS(fsType) {
		fmt.Fprintf(stderr, "ringlog torture: %s is in memory (%s): the suites run, but prove nothing about a disk\n", cfg.Dir, fsType)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var bar *progressbar.ProgressBar
	if osfile.IsTerminal(stderr) {
		cfg.Progress = func(suite string, done, total int) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription(suite), progressbar.OptionShowCount(),
					progressbar.OptionClearOnFinish(), progressbar.OptionSetElapsedTime(true))
			}
			bar.ChangeMax(max(total, done))
			bar.Set(done)
		}
	}
	var details strings.Builder
	cfg.Log = &details
	status := exitOK
	for _, s := range torture.Suites() {
		if len(names) > 0 && !contains(names, s.Name) {
			continue
		}
		start := time.Now()
		r, err := torture.RunSuite(ctx, cfg, s)
		if bar != nil {
			bar.Finish()
			bar = nil
		}
		if err != nil {
			fmt.Fprintf(stderr, "ringlog torture: %v\n", err)
			return exitFailure
		}
		fmt.Fprintln(stdout, r.Line())
		fails := r.Failures
		if !*verbose && len(fails) > 3 {
			fails = fails[:3]
		}
		for _, f := range fails {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
		if *verbose {
			fmt.Fprintf(stdout, "  (%s in %v)\n", s.Name, time.Since(start).Round(time.Millisecond))
		}
		if !r.OK() {
			status = exitFound
		}
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "ringlog torture: interrupted")
			return exitFailure
		}
	}
	if *verbose && details.Len() > 0 {
		fmt.Fprint(stdout, details.String())
	}
	return status
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
