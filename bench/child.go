package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/ringlog/ringlog/internal/osfile"
)

// childEnv is the environment variable that turns the binary into a child
// running one measurement; its value is a JSON childSpec.
const childEnv = "RINGLOG_BENCH_CHILD"

// resultFD is the descriptor on which a child writes its childResult: a pipe
// the parent passes in, so that stdout and stderr stay free for anything
// the code under test prints.
const resultFD = 3

// childSpec tells a child what to run.
type childSpec struct {
	Workload string `json:"workload"`
	System   string `json:"system"`
	Dir      string `json:"dir"`
	Size     string `json:"size"`
	// Follower, if set, makes the child the follower process of
	// wal-tail-latency-xproc instead (see tailFollowerMain).
	Follower *tailFollowerSpec `json:"follower,omitempty"`
}

// childResult is what a child reports about its one run.
type childResult struct {
	N              int64              `json:"n"`
	Bytes          int64              `json:"bytes"`
	Elapsed        time.Duration      `json:"elapsed_ns"`
	LatencySamples int                `json:"latency_samples"`
	P50            time.Duration      `json:"p50_ns"`
	P99            time.Duration      `json:"p99_ns"`
	RSSAnon        int64              `json:"rss_anon_bytes"`
	RSSFile        int64              `json:"rss_file_bytes"`
	Extra          map[string]float64 `json:"extra,omitempty"`
}

// childMain runs the measurement described by spec and writes the result to
// resultFD. Errors go to stderr with a non-zero exit status.
func childMain(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintf(os.Stderr, "bench child: bad %s: %v\n", childEnv, err)
		return 2
	}
	if s.Follower != nil {
		return tailFollowerMain(*s.Follower)
	}
	res, err := runChild(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := os.NewFile(resultFD, "result pipe")
	if out == nil {
		fmt.Fprintf(os.Stderr, "bench child: no result descriptor %d\n", resultFD)
		return 2
	}
	if err := json.NewEncoder(out).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "bench child: writing the result: %v\n", err)
		return 2
	}
	if err := out.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "bench child: writing the result: %v\n", err)
		return 2
	}
	return 0
}

func runChild(s childSpec) (childResult, error) {
	w := lookupWorkload(s.Workload)
	if w == nil {
		return childResult{}, fmt.Errorf("unknown workload")
	}
	if !slices.Contains(w.systems, s.System) {
		return childResult{}, fmt.Errorf("system not supported by this workload")
	}
	size, err := parseSize(s.Size)
	if err != nil {
		return childResult{}, err
	}
	if fs := osfile.FSType(s.Dir); w.durable && osfile.IsMemFS(fs) {
		return childResult{}, fmt.Errorf("durable workload refuses %s (on %s, where fdatasync is a no-op)", s.Dir, fs)
	}
	r := &run{env: env{dir: s.Dir, size: size}, system: s.System}
	wk, err := w.run(r)
	if err != nil {
		return childResult{}, err
	}
	switch {
	case r.timing:
		return childResult{}, errors.New("the workload returned with its timer running")
	case r.elapsed <= 0:
		return childResult{}, errors.New("the workload timed nothing")
	case wk.n <= 0:
		return childResult{}, fmt.Errorf("the workload reports %d operations", wk.n)
	}
	res := childResult{
		N:       wk.n,
		Bytes:   wk.bytes,
		Elapsed: r.elapsed,
		RSSAnon: r.mem.anon,
		RSSFile: r.mem.file,
		Extra:   r.extra,
	}
	if len(r.lat) > 0 {
		slices.Sort(r.lat)
		res.LatencySamples = len(r.lat)
		res.P50 = percentile(r.lat, 50)
		res.P99 = percentile(r.lat, 99)
	}
	return res, nil
}

// memStat is the resident memory of this process, in bytes; zero where
// /proc/self/status is unavailable.
type memStat struct {
	anon int64 // RssAnon: heap, stacks, private anonymous mappings
	file int64 // RssFile: file pages mapped, binary included
}

func readMemStat() memStat {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return memStat{}
	}
	return parseMemStat(b)
}

// parseMemStat reads the RssAnon and RssFile lines ("RssAnon:  1234 kB")
// of /proc/<pid>/status.
func parseMemStat(status []byte) memStat {
	var m memStat
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "RssAnon":
			dst = &m.anon
		case "RssFile":
			dst = &m.file
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			continue
		}
		if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
			*dst = kb << 10
		}
	}
	return m
}
