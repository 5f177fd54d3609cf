package raftstore

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// crashOp is one call of the crash test's writer: StoreLogs of entries
// lo..hi of term, or DeleteRange(lo, hi) when del is set.
type crashOp struct {
	del       bool
	lo, hi    uint64
	term      uint64
	prefixDel bool
}

// crashOps is the writer's sequence of calls for seed: batches of 1 to
// 100 entries, now and then a suffix deleted and written again in a new
// term, or a prefix deleted as raft compacts.
func crashOps(seed uint64, n int) []crashOp {
	rng := rand.New(rand.NewPCG(seed, 0))
	var ops []crashOp
	var first, last uint64 = 1, 0
	term := uint64(1)
	for len(ops) < n {
		switch r := rng.IntN(10); {
		case r == 0 && last >= first+10:
			lo := last - uint64(rng.IntN(10))
			ops = append(ops, crashOp{del: true, lo: lo, hi: last})
			last = lo - 1
			term++
		case r == 1 && last >= first+50:
			hi := first + uint64(rng.IntN(40))
			ops = append(ops, crashOp{del: true, lo: first, hi: hi, prefixDel: true})
			first = hi + 1
		default:
			k := uint64(1 + rng.IntN(100))
			ops = append(ops, crashOp{lo: last + 1, hi: last + k, term: term})
			last += k
		}
	}
	return ops
}

// crashModel is the index -> term a store holds after some of the ops.
func crashModel(ops []crashOp) map[uint64]uint64 {
	m := map[uint64]uint64{}
	for _, op := range ops {
		for i := op.lo; i <= op.hi; i++ {
			if op.del {
				delete(m, i)
			} else {
				m[i] = op.term
			}
		}
	}
	return m
}

const (
	crashEnvDir  = "RAFTSTORE_CRASH_DIR"
	crashEnvSeed = "RAFTSTORE_CRASH_SEED"
	crashOpCount = 100_000
)

// The writer of TestCrash, in a child process: it runs the ops of its
// seed on the store in its directory and prints the number of each op
// done, after the call returned, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("the child of TestCrash")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	s, err := Open(dir, &Options{SegmentSize: 1 << 20, Capacity: 64 << 20})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	for k, op := range crashOps(seed, crashOpCount) {
		if op.del {
			err = s.DeleteRange(op.lo, op.hi)
		} else {
			err = s.StoreLogs(entries(op.lo, op.hi, op.term))
		}
		if err != nil {
			fmt.Println("error", err)
			return
		}
		fmt.Println(k + 1)
	}
}

// A writer process killed (SIGKILL) while it stores batches and deletes
// ranges: the reopened store holds exactly what the acknowledged calls
// left, or that and the call under way, whole: every acknowledged batch
// and deletion survives, no batch is cut. Repeated with different seeds
// and moments.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const trials = 6
	for trial := range trials {
		seed := uint64(time.Now().UnixNano()) + uint64(trial)
		dir := t.TempDir()
		cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvSeed+"="+strconv.FormatUint(seed, 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once it has acknowledged a number of calls that
		// differs from trial to trial.
		killAt := 50 + trial*80
		acked := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "error") {
				t.Fatalf("seed %d: the writer failed: %s", seed, line)
			}
			if k, err := strconv.Atoi(line); err == nil {
				acked = k
				if acked >= killAt {
					cmd.Process.Kill()
					break
				}
			}
		}
		// Lines written before the kill but not read yet were
		// acknowledged too.
		for sc.Scan() {
			if k, err := strconv.Atoi(sc.Text()); err == nil {
				acked = k
			}
		}
		cmd.Wait()
		if acked < killAt {
			t.Fatalf("seed %d: the writer stopped after %d calls", seed, acked)
		}

		ops := crashOps(seed, crashOpCount)
		s, err := Open(dir, &Options{SegmentSize: 1 << 20, Capacity: 64 << 20})
		if err != nil {
			t.Fatalf("seed %d: reopening after the kill: %v", seed, err)
		}
		got, err := storeContents(s)
		s.Close()
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		done, next := crashModel(ops[:acked]), crashModel(ops[:acked+1])
		if !sameModel(got, done) && !sameModel(got, next) {
			t.Fatalf("seed %d: after %d acknowledged calls the store holds %s; want %s, or %s if call %d (%+v) was durable",
				seed, acked, describe(got), describe(done), describe(next), acked+1, ops[acked])
		}
		t.Logf("seed %d: killed after %d calls, the store holds %s", seed, acked, describe(got))
	}
}

// storeContents reads every entry of s, checking each against what entry
// gives for its index and term.
func storeContents(s *Store) (map[uint64]uint64, error) {
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	m := map[uint64]uint64{}
	if first == 0 {
		return m, nil
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := s.GetLog(i, &l); err != nil {
			return nil, err
		}
		if !sameLog(&l, entry(i, l.Term)) {
			return nil, fmt.Errorf("entry %d of term %d has other contents", i, l.Term)
		}
		m[i] = l.Term
	}
	return m, nil
}

func sameModel(a, b map[uint64]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// describe summarises a model: its range and the terms at its ends.
func describe(m map[uint64]uint64) string {
	if len(m) == 0 {
		return "no entries"
	}
	lo, hi := ^uint64(0), uint64(0)
	for k := range m {
		lo, hi = min(lo, k), max(hi, k)
	}
	return fmt.Sprintf("%d entries [%d (term %d), %d (term %d)]", len(m), lo, m[lo], hi, m[hi])
}
