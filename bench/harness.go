package main

import (
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"time"
)

// Size selects how much work one run of a workload does.
type Size int

// Sizes.
const (
	// SizeTiny makes a whole bench run take a second or two; for tests.
	SizeTiny Size = iota
	// SizeQuick is -quick.
	SizeQuick
	// SizeFull is the default.
	SizeFull
)

var sizeNames = [...]string{SizeTiny: "tiny", SizeQuick: "quick", SizeFull: "full"}

func (s Size) String() string {
	if s >= 0 && int(s) < len(sizeNames) {
		return sizeNames[s]
	}
	return fmt.Sprintf("Size(%d)", int(s))
}

func parseSize(name string) (Size, error) {
	for i, n := range sizeNames {
		if n == name {
			return Size(i), nil
		}
	}
	return 0, fmt.Errorf("unknown size %q (want tiny, quick or full)", name)
}

// defaultRepeats is the number of repeats of every (workload, system) pair
// when -repeats is not given.
func (s Size) defaultRepeats() int { return pick(s, 3, 3, 5) }

// pick returns tiny, quick or full according to s.
func pick[T any](s Size, tiny, quick, full T) T {
	switch s {
	case SizeTiny:
		return tiny
	case SizeQuick:
		return quick
	}
	return full
}

// A system is one implementation the workloads measure: a pager backend,
// later Pebble, a Go channel, and so on.
type system struct {
	name string
	// available reports nil if the system works on this machine, or why
	// not. It runs in the parent; an unavailable system is listed in the
	// table with the reason instead of being run.
	available func() error
}

// A workload is one measured task. The parent runs each selected workload
// on each of its systems, every run in a fresh child process.
type workload struct {
	name string
	// doc is one line for -list. The full contract (what is timed, what an
	// operation is, what is verified) is the doc comment of the
	// workload's definition.
	doc string
	// systems are the names of the systems the workload runs on, in table
	// order.
	systems []string
	// baseline is the system the ratio column compares with; empty means
	// the first of systems.
	baseline string
	// notRun are systems the workload leaves out on purpose, each with
	// the reason (pebble has no tailing API, say). The table lists them
	// after the workload's systems, the reason in place of figures; they
	// are never run and have no JSON row.
	notRun []systemNote
	// durable workloads measure syncs to stable storage and refuse a data
	// directory on tmpfs, where fdatasync is a no-op.
	durable bool
	// setup prepares inputs shared by all runs (data files) in the data
	// directory. It runs once per bench run in the parent, before any
	// child, and must be idempotent. Optional.
	setup func(e *env) error
	// run performs one measurement of the workload on r.system in a child
	// process and reports how much work it did. It returns an error when
	// anything fails, including data read back that differs from what was
	// written: the run then counts as failed.
	run func(r *run) (work, error)
}

func (w *workload) baselineSystem() string {
	if w.baseline != "" {
		return w.baseline
	}
	return w.systems[0]
}

// systemNote is a system a workload leaves out, and why.
type systemNote struct {
	system string
	reason string
}

// work is what one run did: n operations moving bytes bytes. Both must be
// the same for every system of a workload (the parent checks).
type work struct {
	n     int64
	bytes int64
}

// env is what every workload sees, in the parent's setup and in the child.
type env struct {
	dir  string // the data directory, shared by all runs of one bench run
	size Size
	// systems, in setup, are the workload's systems that will run
	// (selected and available), so that setup prepares inputs for those
	// only; nil in a child.
	systems []string
}

var registry struct {
	systems   []*system
	workloads []*workload
}

// registerSystem adds a system. Call from init.
func registerSystem(s *system) { registry.systems = append(registry.systems, s) }

// registerWorkload adds a workload. Call from init; the table lists
// workloads in registration order.
func registerWorkload(w *workload) { registry.workloads = append(registry.workloads, w) }

func lookupSystem(name string) *system {
	for _, s := range registry.systems {
		if s.name == name {
			return s
		}
	}
	return nil
}

func lookupWorkload(name string) *workload {
	for _, w := range registry.workloads {
		if w.name == name {
			return w
		}
	}
	return nil
}

// checkRegistry reports registration mistakes: duplicate names, unknown
// systems, a baseline outside the workload's systems.
func checkRegistry() error {
	seen := map[string]bool{}
	for _, s := range registry.systems {
		if seen["system "+s.name] {
			return fmt.Errorf("system %q registered twice", s.name)
		}
		seen["system "+s.name] = true
	}
	for _, w := range registry.workloads {
		if seen["workload "+w.name] {
			return fmt.Errorf("workload %q registered twice", w.name)
		}
		seen["workload "+w.name] = true
		if len(w.systems) == 0 || w.run == nil {
			return fmt.Errorf("workload %q has no systems or no run function", w.name)
		}
		for _, s := range w.systems {
			if lookupSystem(s) == nil {
				return fmt.Errorf("workload %q names unknown system %q", w.name, s)
			}
		}
		if !slices.Contains(w.systems, w.baselineSystem()) {
			return fmt.Errorf("workload %q: baseline %q is not one of its systems", w.name, w.baseline)
		}
		for _, nr := range w.notRun {
			if lookupSystem(nr.system) == nil || slices.Contains(w.systems, nr.system) || nr.reason == "" {
				return fmt.Errorf("workload %q: system %q left out must be a known system other than its own, with a reason", w.name, nr.system)
			}
		}
	}
	return nil
}

// selectPairs returns the selected workloads (in registration order) and,
// for each, its systems that match the filter. Workloads left without
// systems are dropped.
func selectPairs(workloads, systems *regexp.Regexp) []selection {
	var out []selection
	for _, w := range registry.workloads {
		if !workloads.MatchString(w.name) {
			continue
		}
		var ss []string
		for _, s := range w.systems {
			if systems.MatchString(s) {
				ss = append(ss, s)
			}
		}
		if len(ss) > 0 {
			out = append(out, selection{w: w, systems: ss})
		}
	}
	return out
}

type selection struct {
	w       *workload
	systems []string
}

// run is one measurement of one workload on one system, in a child
// process. Like testing.B it owns the timer: a workload sets up untimed,
// calls startTimer, does the measured work, and calls stopTimer. The timer
// may be started and stopped several times; the timed regions add up.
type run struct {
	env
	system string

	everStarted bool
	timing      bool
	t0          time.Time
	elapsed     time.Duration
	lat         []time.Duration
	mem         memStat
	extra       map[string]float64
}

// startTimer starts (or resumes) the timed region. The first call collects
// garbage first, so allocations made during setup are not collected on the
// clock.
func (r *run) startTimer() {
	if r.timing {
		return
	}
	if !r.everStarted {
		runtime.GC()
		r.everStarted = true
	}
	r.timing = true
	r.t0 = time.Now()
}

// stopTimer ends the timed region and samples the process's resident
// memory: call it while the data the workload measured is still live.
func (r *run) stopTimer() {
	if !r.timing {
		return
	}
	r.elapsed += time.Since(r.t0)
	r.timing = false
	r.mem = readMemStat()
}

// expectOps sizes the latency record for n operations, so that recordOp
// does not allocate on the clock.
func (r *run) expectOps(n int) { r.lat = make([]time.Duration, 0, n) }

// recordOp records the latency of one operation.
func (r *run) recordOp(d time.Duration) { r.lat = append(r.lat, d) }

// setExtra records a workload-specific figure, reported as a field of its
// own in the JSON row (the median over repeats).
func (r *run) setExtra(key string, v float64) {
	if r.extra == nil {
		r.extra = map[string]float64{}
	}
	r.extra[key] = v
}
