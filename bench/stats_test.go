package main

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1, 9, 100}, 5},
	} {
		in := slices.Clone(c.in)
		if got := median(in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median reordered its input: %v", in)
		}
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	thousand := make([]int, 1000)
	for i := range thousand {
		thousand[i] = i + 1
	}
	for _, c := range []struct {
		name string
		got  any
		want any
	}{
		{"empty", percentile([]time.Duration(nil), 50), time.Duration(0)},
		{"one p50", percentile([]int{9}, 50), 9},
		{"one p99", percentile([]int{9}, 99), 9},
		{"three p50", percentile([]int{1, 2, 3}, 50), 2},
		{"four p50", percentile([]int{1, 2, 3, 4}, 50), 2}, // nearest rank: ceil(2) = 2nd
		{"ten p99", percentile([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99), 10},
		{"ten p90", percentile([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90), 9},
		{"100 p50", percentile(hundred, 50), time.Duration(50)},
		{"100 p99", percentile(hundred, 99), time.Duration(99)},
		{"100 p100", percentile(hundred, 100), time.Duration(100)},
		{"1000 p99", percentile(thousand, 99), 990},
		{"1000 p99.9", percentile(thousand, 99.9), 999},
		{"1000 p0.01", percentile(thousand, 0.01), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestSummarizeTakesMediansIndependently(t *testing.T) {
	rs := []childResult{
		{N: 100, Bytes: 1e6, Elapsed: time.Second, P50: 2 * time.Microsecond, P99: 90 * time.Microsecond, RSSAnon: 3e6, RSSFile: 1e6, Extra: map[string]float64{"space_amp": 1.5}},
		{N: 100, Bytes: 1e6, Elapsed: 4 * time.Second, P50: 1 * time.Microsecond, P99: 10 * time.Microsecond, RSSAnon: 1e6, RSSFile: 5e6, Extra: map[string]float64{"space_amp": 1.1}},
		{N: 100, Bytes: 1e6, Elapsed: 2 * time.Second, P50: 3 * time.Microsecond, P99: 50 * time.Microsecond, RSSAnon: 2e6, RSSFile: 3e6, Extra: map[string]float64{"space_amp": 1.2}},
	}
	r := summarize("w", "s", "ext4", rs)
	want := row{Workload: "w", System: "s", OpsPerSec: 50, MBPerSec: 0.5, P50us: 2, P99us: 50,
		RSSAnonMB: 2, RSSFileMB: 3, N: 100, Bytes: 1e6, FS: "ext4", Runs: 3, Extra: map[string]float64{"space_amp": 1.2}}
	if r.Extra["space_amp"] != want.Extra["space_amp"] {
		t.Errorf("extra %v, want %v", r.Extra, want.Extra)
	}
	r.Extra, want.Extra = nil, nil
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestCheckSameWork(t *testing.T) {
	g := []*pairState{
		{system: "a", results: []childResult{{N: 10, Bytes: 80}, {N: 10, Bytes: 80}}},
		{system: "b", results: []childResult{{N: 10, Bytes: 80}}},
	}
	checkSameWork(g)
	for _, p := range g {
		if len(p.failures) != 0 {
			t.Fatalf("same work reported as different: %v", p.failures)
		}
	}
	g = append(g, &pairState{system: "c", results: []childResult{{N: 10, Bytes: 64}}})
	checkSameWork(g)
	for _, p := range g {
		if len(p.failures) != 1 {
			t.Errorf("%s: failures %v, want one", p.system, p.failures)
		}
	}
}
