//go:build linux

package torture

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Child()
	os.Exit(m.Run())
}

// runSuite runs one suite with trials trials in a temporary directory and
// fails the test on any error or bad count.
func runSuite(t *testing.T, name string, trials int, mod func(*Config)) *Result {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RINGLOG_SEED"); s != "" {
		var err error
		if seed, err = parseSeed(s); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (RINGLOG_SEED replays it)", seed)
	var log strings.Builder
	c := &Config{Dir: t.TempDir(), Seed: seed, Trials: map[string]int{name: trials}, Log: &log}
	if mod != nil {
		mod(c)
	}
	res, err := Run(context.Background(), c, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results", len(res))
	}
	r := res[0]
	t.Log(r.Line())
	for _, f := range r.Failures {
		t.Log(f)
	}
	if log.Len() > 0 {
		t.Log(log.String())
	}
	return r
}

func TestCrash(t *testing.T) {
	r := runSuite(t, "crash", 10, nil)
	if !r.OK() || r.Acked == 0 || r.Trials != 10 {
		t.Fatalf("%s", r.Line())
	}
}

func TestPowerloss(t *testing.T) {
	r := runSuite(t, "powerloss", 40, nil)
	if !r.OK() || r.Acked == 0 || r.Trials != 40 {
		t.Fatalf("%s", r.Line())
	}
}

// TestPowerlossCatchesMissingSyncs: with every sync skipped (and reported
// as done), the suite must count lost records; a suite that cannot fail
// proves nothing.
func TestPowerlossCatchesMissingSyncs(t *testing.T) {
	r := runSuite(t, "powerloss", 40, func(c *Config) { c.skipSyncs = true })
	if r.Lost == 0 {
		t.Fatalf("syncs skipped, yet: %s", r.Line())
	}
}
