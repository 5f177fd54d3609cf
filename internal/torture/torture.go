// Package torture runs ringlog's reliability suites: it crashes writers,
// simulates power loss, feeds recovery damaged files and fills the disk,
// and counts what a user would care about: records acknowledged as durable
// that were checked, lost, returned wrong, and damage nobody noticed.
//
// `ringlog torture` (cmd/ringlog) runs the suites against a directory of
// the user's choosing; the package's tests run them with small counts.
//
// Each suite reports one line:
//
//	RELIABILITY <suite> trials=N acked=A lost=L corrupt=C undetected=U
//
// acked: acknowledged-durable records (or keys) checked after recovery;
// lost: of those, missing after recovery, counting only what the recovery
// mode promises to keep; corrupt: records returned with wrong bytes, out of
// order, or never written (phantoms); undetected: injected damage that the
// reader did not report. A suite passes when the last three are 0.
package torture

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is what a run of the suites is given.
type Config struct {
	// Dir is where trials create their files: a real disk (not tmpfs) for
	// the suites whose point is durability. Each suite works in a
	// directory of its own under Dir and removes it.
	Dir string
	// Seed makes the trials' random choices reproducible (with the same
	// binary on the same machine; the moments of a kill still depend on
	// scheduling).
	Seed uint64
	// Trials per suite; a suite missing from the map runs its default
	// (Quick or full) count.
	Trials map[string]int
	// Quick picks the small default counts.
	Quick bool
	// Duration, if positive, repeats each suite's trials until at least
	// this long has passed (counts add up).
	Duration time.Duration
	// Progress, if set, is called as trials finish.
	Progress func(suite string, done, total int)
	// Log, if set, receives a line for every failure (at most a few per
	// suite) and for skipped parts.
	Log io.Writer

	// skipSyncs, for the package's own tests: every sync becomes a no-op
	// that reports success, which the powerloss suite must notice.
	skipSyncs bool
}

// Result is one suite's counts.
type Result struct {
	Suite      string
	Trials     int64
	Acked      int64
	Lost       int64
	Corrupt    int64
	Undetected int64
	// Skipped says why the suite (or part of it) could not run here, if
	// so; the counts are what ran.
	Skipped string
	// Failures describes the first few failures.
	Failures []string
	// Elapsed is the suite's wall time.
	Elapsed time.Duration

	mu sync.Mutex
}

// maxFailures bounds Result.Failures.
const maxFailures = 8

// fail records a failure description.
func (r *Result) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.Failures) < maxFailures {
		r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
	}
}

// OK says whether nothing was lost, corrupt or undetected.
func (r *Result) OK() bool { return r.Lost == 0 && r.Corrupt == 0 && r.Undetected == 0 }

// Line is the suite's RELIABILITY line.
func (r *Result) Line() string {
	s := fmt.Sprintf("RELIABILITY %s trials=%d acked=%d lost=%d corrupt=%d undetected=%d",
		r.Suite, r.Trials, r.Acked, r.Lost, r.Corrupt, r.Undetected)
	if r.Skipped != "" {
		s += " (skipped: " + r.Skipped + ")"
	}
	return s
}

// Suite is one reliability suite.
type Suite struct {
	Name  string
	Doc   string
	Quick int // trials with -quick
	Full  int // trials otherwise
	// Writes says whether the suite acknowledges writes (acked must be
	// above 0 for it to count as having run).
	Writes bool
	order  int // place in Suites
	run    func(ctx context.Context, c *Config, dir string, trials int, r *Result) error
}

// Suites lists the suites in the order they run.
func Suites() []Suite {
	out := slices.Clone(registry)
	slices.SortStableFunc(out, func(a, b Suite) int { return a.order - b.order })
	return out
}

// registry holds the suites; each suite's file registers it in init.
var registry []Suite

func register(s Suite) { registry = append(registry, s) }

// Run runs the named suites (all if names is empty) and returns their
// results in order. An error means a suite could not be run at all (its
// directory could not be made, say); failures of the library are counted
// in the results.
func Run(ctx context.Context, c *Config, names ...string) ([]*Result, error) {
	var out []*Result
	for _, s := range Suites() {
		if len(names) > 0 && !contains(names, s.Name) {
			continue
		}
		r, err := RunSuite(ctx, c, s)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	for _, n := range names {
		if !hasSuite(n) {
			return out, fmt.Errorf("torture: no suite %q (suites: %s)", n, strings.Join(suiteNames(), ", "))
		}
	}
	return out, nil
}

// RunSuite runs one suite.
func RunSuite(ctx context.Context, c *Config, s Suite) (*Result, error) {
	trials := s.Full
	if c.Quick {
		trials = s.Quick
	}
	if n, ok := c.Trials[s.Name]; ok {
		trials = n
	}
	base := c.Dir
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "ringlog-torture-"+s.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("torture: %s: %w", s.Name, err)
	}
	defer os.RemoveAll(dir)
	r := &Result{Suite: s.Name}
	start := time.Now()
	for {
		if err := s.run(ctx, c, dir, trials, r); err != nil {
			return r, fmt.Errorf("torture: %s: %w", s.Name, err)
		}
		if c.Duration <= 0 || time.Since(start) >= c.Duration || ctx.Err() != nil {
			break
		}
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasSuite(name string) bool { return contains(suiteNames(), name) }

func suiteNames() []string {
	var n []string
	for _, s := range Suites() {
		n = append(n, s.Name)
	}
	return n
}

// progress reports a finished trial.
func (c *Config) progress(suite string, done, total int) {
	if c.Progress != nil {
		c.Progress(suite, done, total)
	}
}

// logf writes a detail line to the log, if any.
func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// parseSeed reads a seed in decimal or 0x-prefixed hex.
func parseSeed(s string) (uint64, error) {
	return strconv.ParseUint(s, 0, 64)
}
