package storagetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringlog/ringlog/storage"
)

// The crash child's environment.
const (
	envCrashChild  = "STORAGETEST_CRASH_CHILD"  // set (to "1") in the child
	envCrashEngine = "STORAGETEST_CRASH_ENGINE" // Config.Name
	envCrashDir    = "STORAGETEST_CRASH_DIR"    // the store
	envCrashSeed   = "STORAGETEST_CRASH_SEED"   // the seed batches derive from
	envCrashStart  = "STORAGETEST_CRASH_START"  // the first batch's number
)

const (
	crashRounds = 5  // kills
	crashShared = 4  // keys every batch overwrites
	crashMaxOps = 50 // own keys of a batch, at most
)

// crashChildLimit bounds a crash child's life if its parent never kills it.
const crashChildLimit = 60 * time.Second

func crashOwnKey(n, i int) string { return fmt.Sprintf("b%06d-%02d", n, i) }
func crashSharedKey(j int) string { return fmt.Sprintf("shared-%d", j) }
func crashMarker(n int) string    { return fmt.Sprintf("marker-%06d", n) }
func crashSharedVal(n int) string { return strconv.Itoa(n) }
func parseAck(line string) (int, bool) {
	s, ok := strings.CutPrefix(line, "ACK ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// crashOwn returns the keys batch n writes besides the shared keys and the
// marker, with their values. Their number and sizes derive from seed and n;
// one value in 25 is 32 to 64 KiB, so that batches span log blocks.
func crashOwn(seed uint64, n int) []kv {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	cnt := 1 + rng.IntN(crashMaxOps)
	own := make([]kv, cnt)
	for i := range own {
		size := rng.IntN(100)
		if rng.IntN(25) == 0 {
			size = 32<<10 + rng.IntN(32<<10)
		}
		k := crashOwnKey(n, i)
		own[i] = kv{k, string(selfVal([]byte(k), uint64(n), size))}
	}
	return own
}

// crashBatch fills b with batch n: half its own keys, the shared keys set
// to n, the rest of its own keys, the previous batch's marker deleted and
// its own marker put.
func crashBatch(b *storage.Batch, seed uint64, n int) {
	b.Reset()
	own := crashOwn(seed, n)
	half := len(own) / 2
	for _, p := range own[:half] {
		b.Put([]byte(p.k), []byte(p.v))
	}
	for j := range crashShared {
		b.Put([]byte(crashSharedKey(j)), []byte(crashSharedVal(n)))
	}
	for _, p := range own[half:] {
		b.Put([]byte(p.k), []byte(p.v))
	}
	if n > 1 {
		b.Delete([]byte(crashMarker(n - 1)))
	}
	b.Put([]byte(crashMarker(n)), nil)
}

// crashModel is the store after batches 1 to applied.
func crashModel(seed uint64, applied int) model {
	m := model{}
	for n := 1; n <= applied; n++ {
		for _, p := range crashOwn(seed, n) {
			m[p.k] = p.v
		}
	}
	if applied > 0 {
		for j := range crashShared {
			m[crashSharedKey(j)] = crashSharedVal(applied)
		}
		m[crashMarker(applied)] = ""
	}
	return m
}

// crashChild is the child's side: apply synced batches from the start
// number on and acknowledge each on stdout, until killed.
func crashChild(c Config) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "storagetest crash child: "+format+"\n", args...)
		os.Exit(2)
	}
	dir := os.Getenv(envCrashDir)
	seed, err := strconv.ParseUint(os.Getenv(envCrashSeed), 10, 64)
	if err != nil {
		fail("%s: %v", envCrashSeed, err)
	}
	start, err := strconv.Atoi(os.Getenv(envCrashStart))
	if err != nil || start < 1 {
		fail("%s=%q: %v", envCrashStart, os.Getenv(envCrashStart), err)
	}
	e, err := storage.Open(c.Name, dir, c.options())
	if err != nil {
		fail("open: %v", err)
	}
	deadline := time.Now().Add(crashChildLimit)
	var b storage.Batch
	for n := start; time.Now().Before(deadline); n++ {
		crashBatch(&b, seed, n)
		if err := e.Apply(&b, storage.Synced); err != nil {
			fail("apply batch %d: %v", n, err)
		}
		if _, err := fmt.Fprintf(os.Stdout, "ACK %d\n", n); err != nil {
			os.Exit(3) // the parent is gone
		}
	}
	e.Close()
	os.Exit(0)
}

// runPattern is a -test.run value that selects exactly the test named
// name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// testCrash kills a child writing synced batches, crashRounds times, and
// checks after each kill that the store holds every acknowledged batch
// and, of the others, at most the next one, whole.
func testCrash(t *testing.T, c Config) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0xc7a5))
	dir := t.TempDir()
	pattern := runPattern(t.Name())
	applied := 0
	for round := range crashRounds {
		start := applied + 1
		killAfter := 1 + rng.IntN(25)
		delay := time.Duration(rng.IntN(3000)) * time.Microsecond
		if rng.IntN(4) == 0 {
			delay = 0
		}
		lastAck := runCrashChild(t, c, dir, seed, start, pattern, killAfter, delay)

		e := openAt(t, c, dir)
		got := scan(t, e, nil)
		gotM := model{}
		for _, p := range got {
			gotM[p.k] = p.v
		}
		// The shared keys name the last batch applied.
		a := 0
		if v, ok := gotM[crashSharedKey(0)]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("round %d: %s = %q", round, crashSharedKey(0), v)
			}
			a = n
		}
		for j := 1; j < crashShared; j++ {
			if v := gotM[crashSharedKey(j)]; v != gotM[crashSharedKey(0)] {
				t.Fatalf("round %d: %s = %q but %s = %q: a batch was applied in part", round, crashSharedKey(0), gotM[crashSharedKey(0)], crashSharedKey(j), v)
			}
		}
		if a < lastAck {
			t.Fatalf("round %d (seed %d): batch %d was acknowledged (synced) but the store holds batches up to %d only; %s",
				round, seed, lastAck, a, crashReport(gotM, seed, start, lastAck+1))
		}
		if a > lastAck+1 {
			t.Fatalf("round %d: the store holds batch %d, but only %d had been acknowledged and %d started", round, a, lastAck, lastAck+1)
		}
		want := crashModel(seed, a)
		if d := diffPairs(got, want.pairs(nil, nil)); d != "" {
			t.Fatalf("round %d (seed %d): after the kill, with batch %d last applied (%d acknowledged): %s; %s",
				round, seed, a, lastAck, d, crashReport(gotM, seed, start, lastAck+1))
		}
		wantContents(t, e, want)
		mustClose(t, e)
		t.Logf("round %d: killed after %d acks + %v: batches %d..%d acknowledged, %d applied", round, killAfter, delay, start, lastAck, a)
		applied = a
	}
}

// crashReport says which of batches from to to are present in m, and how
// much of each.
func crashReport(m model, seed uint64, from, to int) string {
	var parts []string
	for n := from; n <= to; n++ {
		own := crashOwn(seed, n)
		have := 0
		for _, p := range own {
			if _, ok := m[p.k]; ok {
				have++
			}
		}
		parts = append(parts, fmt.Sprintf("batch %d: %d of %d keys", n, have, len(own)))
	}
	return strings.Join(parts, ", ")
}

// runCrashChild runs a child writing batches from start on, kills it
// delay after its killAfter-th acknowledgement and returns the last batch
// it acknowledged.
func runCrashChild(t *testing.T, c Config, dir string, seed uint64, start int, pattern string, killAfter int, delay time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+pattern, "-test.count=1")
	cmd.Env = append(os.Environ(),
		envCrashChild+"=1",
		envCrashEngine+"="+c.Name,
		envCrashDir+"="+dir,
		envCrashSeed+"="+strconv.FormatUint(seed, 10),
		envCrashStart+"="+strconv.Itoa(start),
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start crash child: %v", err)
	}
	acks := make(chan int, 1<<16)
	var other []string // lines not acks; read after acks is closed
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, ok := parseAck(sc.Text()); ok {
				acks <- n
			} else if len(other) < 20 {
				other = append(other, sc.Text())
			}
		}
	}()
	lastAck := start - 1
	takeAck := func(n int) {
		t.Helper()
		if n != lastAck+1 {
			cmd.Process.Kill()
			t.Fatalf("crash child acknowledged batch %d after %d", n, lastAck)
		}
		lastAck = n
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for got := 0; got < killAfter; got++ {
		select {
		case n, ok := <-acks:
			if !ok {
				err := cmd.Wait()
				t.Fatalf("crash child ended (%v) after acknowledging batches %d..%d; stdout: %q; stderr: %s", err, start, lastAck, other, stderr.Bytes())
			}
			takeAck(n)
		case <-timeout.C:
			cmd.Process.Kill()
			for range acks {
			}
			cmd.Wait()
			t.Fatalf("crash child acknowledged %d batches in 30s, want %d; stdout: %q; stderr: %s", got, killAfter, other, stderr.Bytes())
		}
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill crash child: %v", err)
	}
	for n := range acks { // what it acknowledged before it died
		takeAck(n)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.Exited() {
		t.Fatalf("crash child was not killed but ended: %v; stderr: %s", err, stderr.Bytes())
	}
	return lastAck
}
