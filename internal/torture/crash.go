//go:build linux

package torture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ringlog/ringlog/wal"
)

// The crash suite. A child process (this executable again, see Child)
// opens a log and appends from several writers, in every way the wal
// offers: AppendSync, synced batches, appends under the sync policy
// followed by Sync, compressed records; a truncator moves the checkpoint
// as a database's checkpointing would. The child prints each
// acknowledgement on a pipe once the call that made it durable returned,
// and each truncation before it starts. The parent kills the child with
// SIGKILL at a random moment (sometimes before its first acknowledgement:
// during its open and recovery), reopens the log in the default recovery
// mode, and checks:
//
//   - every acknowledged record at or after the last truncation the child
//     announced is there, byte for byte (else lost);
//   - every record the log returns is one the child wrote, intact, and each
//     writer's records come in the order it wrote them (else corrupt).
//
// A log lives through several kills (each child continues it after the
// previous one's crash), then a new one with another shape (backend,
// layout, capacity, sync policy, compression) starts. Half of the trials
// use a key-value store (storage/logkv) instead: see crashKV.
//
// A process crash keeps the page cache, so this suite cannot catch a
// missing fsync; the powerloss suite does.

func init() {
	childJobs["crash-wal"] = func(spec []byte) error {
		var j crashJob
		if err := json.Unmarshal(spec, &j); err != nil {
			return err
		}
		return crashWALChild(&j)
	}
	childJobs["crash-kv"] = func(spec []byte) error {
		var j crashJob
		if err := json.Unmarshal(spec, &j); err != nil {
			return err
		}
		return crashKVChild(&j)
	}
	register(Suite{Name: "crash", order: 1, Quick: 100, Full: 2000, Writes: true, run: runCrash,
		Doc: "a child process appends (several writers, batches, every sync policy) or writes a key-value store, and is killed with SIGKILL at random moments; every acknowledged write must be recovered, byte for byte, in order"})
}

// crashJob is a child's job.
type crashJob struct {
	Path    string    `json:"path"`
	Log     logConfig `json:"log"`
	Run     uint64    `json:"run"`
	Seed    uint64    `json:"seed"`
	Writers int       `json:"writers"`
}

// killsPerLog is how many crashes a log (or store) lives through.
const killsPerLog = 5

func runCrash(ctx context.Context, c *Config, dir string, trials int, r *Result) error {
	rng := rand.New(rand.NewPCG(c.Seed, 0x637261736821))
	for t := 0; t < trials && ctx.Err() == nil; {
		kills := min(killsPerLog, trials-t)
		var err error
		if rng.IntN(2) == 0 {
			err = crashWALSeries(ctx, c, dir, rng, kills, r)
		} else {
			err = crashKVSeries(ctx, c, dir, rng, kills, r)
		}
		if err != nil {
			return err
		}
		t += kills
		c.progress("crash", t, trials)
	}
	return nil
}

// walExpect is what the parent knows of a log across kills.
type walExpect struct {
	acked map[recID]uint64 // acknowledged records -> position (a batch's: the batch's)
	floor uint64           // the highest truncation announced
}

func crashWALSeries(ctx context.Context, c *Config, dir string, rng *rand.Rand, kills int, r *Result) error {
	lc := randomLogConfig(rng)
	path := filepath.Join(dir, "crash.wal")
	os.Remove(path)
	os.Remove(path + ".live")
	defer os.Remove(path)
	defer os.Remove(path + ".live")
	o, err := lc.options()
	if err != nil {
		return err
	}
	l, err := wal.Create(path, o)
	if err != nil {
		return fmt.Errorf("create %s (%v): %w", path, lc, err)
	}
	if err := l.Close(); err != nil {
		return err
	}
	exp := &walExpect{acked: map[recID]uint64{}}
	for range kills {
		job := crashJob{Path: path, Log: lc, Run: rng.Uint64(), Seed: rng.Uint64(), Writers: 1 + rng.IntN(4)}
		lines, err := runAndKill(ctx, "crash-wal", &job, rng)
		if err != nil {
			return fmt.Errorf("%v: %w", lc, err)
		}
		for _, ln := range lines {
			f := strings.Fields(ln)
			switch {
			case len(f) == 2 && f[0] == "T":
				p, _ := strconv.ParseUint(f[1], 10, 64)
				exp.floor = max(exp.floor, p)
			case len(f) == 4 && f[0] == "A":
				p, _ := strconv.ParseUint(f[1], 10, 64)
				w, _ := strconv.Atoi(f[2])
				k, _ := strconv.Atoi(f[3])
				exp.acked[recID{job.Run, w, k}] = p
			}
		}
		checkWAL(c, path, lc, exp, job.Run, r)
		r.Trials++
	}
	return nil
}

// checkWAL reopens the log and checks it against exp, counting the
// records acknowledged by run.
func checkWAL(c *Config, path string, lc logConfig, exp *walExpect, run uint64, r *Result) {
	o, _ := lc.options()
	o.Recovery = recoveryModes[int(run%uint64(len(recoveryModes)))]
	o.Full = wal.FullError // a full log (nothing truncated since the crash) takes no append, and says so
	promised := 0
	for id, p := range exp.acked {
		if p >= exp.floor && id.run == run {
			promised++
		}
	}
	r.Acked += int64(promised)
	l, err := wal.Open(path, o)
	if err != nil {
		r.Lost += int64(promised)
		r.fail("crash (%v, %v recovery): reopen: %v", lc, o.Recovery, err)
		c.logf("crash (%v, %v recovery): reopen: %v", lc, o.Recovery, err)
		return
	}
	defer reopenStrict(path, o, lc, r)
	defer l.Close()
	found := readChecked(l, r, func(b string) { r.fail("crash (%v): %s; %v", lc, b, l.Report()) })
	for id, p := range exp.acked {
		if p < exp.floor {
			continue
		}
		if _, ok := found[id]; !ok {
			if id.run == run {
				r.Lost++
			} else {
				// Checked (and counted) after an earlier crash, gone now.
				r.Lost++
				r.Acked++
			}
			r.fail("crash (%v): acknowledged %s at position %d is missing; %v", lc, id, p, l.Report())
		}
	}
	// The log takes appends after recovery (the next child will append
	// too, but a log that cannot is a failure of this open).
	if _, err := l.AppendSync(context.Background(), payload(recID{run: run ^ 1, w: 99}, minPayload)); err != nil && !errors.Is(err, wal.ErrFull) {
		r.fail("crash (%v): append after recovery: %v", lc, err)
		r.Corrupt++
	}
}

// readChecked reads every record of l (see readAll), counts the bad ones
// as corrupt, describing each with fail, and returns the good ones.
func readChecked(l *wal.Log, r *Result, fail func(bad string)) map[recID]uint64 {
	found, bad := readAll(l)
	r.Corrupt += int64(len(bad))
	for _, b := range bad {
		fail(b)
	}
	return found
}

// readAll reads every record of l from its checkpoint: the ids of the good
// ones, and a description of each bad one (not a record the suites wrote,
// or out of its writer's order).
func readAll(l *wal.Log) (map[recID]uint64, []string) {
	found := map[recID]uint64{}
	var bad []string
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		return found, []string{"reader: " + err.Error()}
	}
	defer rd.Close()
	last := map[[2]uint64]int{}
	for pos, data := range rd.All() {
		id, ok := parsePayload(data)
		if !ok {
			bad = append(bad, fmt.Sprintf("record at position %d (file offset %d, %d bytes) is not one that was written", pos, l.FileOffset(pos), len(data)))
			continue
		}
		wk := [2]uint64{id.run, uint64(id.w)}
		if prev, ok := last[wk]; ok && id.k <= prev {
			bad = append(bad, fmt.Sprintf("%s at position %d comes after record %d of its writer", id, pos, prev))
		}
		last[wk] = id.k
		found[id] = pos
	}
	if err := rd.Err(); err != nil {
		bad = append(bad, "reading: "+err.Error())
	}
	return found, bad
}

// runAndKill starts a child doing job, kills it at a random moment and
// returns the lines it printed. A child that fails on its own is an error.
func runAndKill(ctx context.Context, kind string, job any, rng *rand.Rand) ([]string, error) {
	cmd, err := childCommand(kind, job)
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		lines []string
		first = make(chan struct{})
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if !once {
				once = true
				close(first)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	exited := make(chan error, 1)
	if rng.IntN(8) == 0 {
		// During the child's open and recovery.
		time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond)
	} else {
		select {
		case <-first:
		case <-done:
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
		}
		time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	go func() { exited <- cmd.Wait() }()
	werr := <-exited
	var ee *exec.ExitError
	if werr != nil && errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			werr = nil
		}
	}
	if werr != nil || stderr.Len() > 0 {
		return nil, fmt.Errorf("child %s failed (%v): %s", kind, werr, strings.TrimSpace(stderr.String()))
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(lines), nil
}

// ackPrinter prints a child's lines, each flushed at once.
type ackPrinter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newAckPrinter() *ackPrinter { return &ackPrinter{w: bufio.NewWriter(os.Stdout)} }

func (p *ackPrinter) print(lines ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range lines {
		p.w.WriteString(l)
		p.w.WriteByte('\n')
	}
	p.w.Flush()
}

// crashWALChild is the child of crashWALSeries: it appends until killed.
func crashWALChild(j *crashJob) error {
	o, err := j.Log.options()
	if err != nil {
		return err
	}
	l, err := wal.Open(j.Path, o)
	if err != nil {
		return err
	}
	out := newAckPrinter()
	return writeWAL(context.Background(), l, j, func(pos uint64, ids ...recID) {
		lines := make([]string, len(ids))
		for i, id := range ids {
			lines[i] = fmt.Sprintf("A %d %d %d", pos, id.w, id.k)
		}
		out.print(lines...)
	}, func(to uint64) {
		out.print(fmt.Sprintf("T %d", to))
	})
}

// writeWAL appends to l from j.Writers writers until ctx ends or a call
// fails, calling acked once records are durable (with the position of the
// first) and truncating before each TruncateFront.
func writeWAL(ctx context.Context, l *wal.Log, j *crashJob, acked func(pos uint64, ids ...recID), truncating func(to uint64)) error {
	o, err := j.Log.options()
	if err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		poses []uint64 // acknowledged record boundaries, for the truncator
		top   uint64
	)
	ack := func(pos uint64, ids ...recID) {
		acked(pos, ids...)
		mu.Lock()
		poses = append(poses, pos)
		top = max(top, pos)
		mu.Unlock()
	}
	// The records already in the log (from before a crash) are the
	// truncator's too: a log left full would otherwise take no append.
	if rd, err := l.NewReader(l.Checkpoint(), nil); err == nil {
		for pos := range rd.All() {
			poses = append(poses, pos)
			top = max(top, pos)
		}
		rd.Close()
	}
	maxSize := min(4096, l.MaxRecordSize()/8)
	errc := make(chan error, j.Writers+1)
	var wg sync.WaitGroup
	for w := range j.Writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(j.Seed, uint64(w)))
			var pending []recID // appended under the policy, not yet known durable
			var pendingPos uint64
			for k := 0; ctx.Err() == nil; {
				size := minPayload + rng.IntN(maxSize-minPayload)
				id := recID{j.Run, w, k}
				switch op := rng.IntN(10); {
				case op < 4:
					pos, err := l.AppendSync(ctx, payload(id, size))
					if err != nil {
						errc <- fmt.Errorf("AppendSync: %w", err)
						return
					}
					ack(pos, id)
					k++
				case op < 6:
					n := 2 + rng.IntN(3)
					ps := make([][]byte, n)
					ids := make([]recID, n)
					for i := range ps {
						ids[i] = recID{j.Run, w, k + i}
						ps[i] = payload(ids[i], minPayload+rng.IntN(maxSize/2))
					}
					pos, err := l.AppendBatchSync(ctx, ps)
					if err != nil {
						errc <- fmt.Errorf("AppendBatchSync: %w", err)
						return
					}
					ack(pos, ids...)
					k += n
				case op < 9:
					pos, err := l.Append(ctx, payload(id, size))
					if err != nil {
						errc <- fmt.Errorf("Append: %w", err)
						return
					}
					k++
					if o.Sync == wal.SyncAlways {
						ack(pos, id)
						continue
					}
					if len(pending) == 0 {
						pendingPos = pos
					}
					pending = append(pending, id)
					if rng.IntN(4) == 0 {
						if err := l.Sync(ctx); err != nil {
							errc <- fmt.Errorf("Sync: %w", err)
							return
						}
						ack(pendingPos, pending...)
						pending = pending[:0]
					}
				default:
					c := []wal.Compression{wal.S2, wal.Zstd}[rng.IntN(2)]
					pos, err := l.AppendWith(ctx, wal.AppendOptions{Compression: c, Sync: true}, payload(id, size))
					if err != nil {
						errc <- fmt.Errorf("AppendWith: %w", err)
						return
					}
					ack(pos, id)
					k++
				}
			}
		})
	}
	// The truncator: keeps the log at most half full of acknowledged
	// records by moving the checkpoint to an acknowledged record boundary.
	wg.Go(func() {
		half := uint64(j.Log.Capacity / 2)
		rng := rand.New(rand.NewPCG(j.Seed, 0x7472756e63))
		for ctx.Err() == nil {
			time.Sleep(time.Duration(1+rng.IntN(5)) * time.Millisecond)
			mu.Lock()
			var to uint64
			for _, p := range poses {
				if p+half <= top && p > to {
					to = p
				}
			}
			poses = slices.DeleteFunc(poses, func(p uint64) bool { return p < to })
			mu.Unlock()
			if to == 0 || to <= l.Checkpoint() {
				continue
			}
			truncating(to)
			if err := l.TruncateFront(to); err != nil {
				errc <- fmt.Errorf("TruncateFront(%d): %w", to, err)
				return
			}
		}
	})
	return waitWriters(ctx, &wg, errc)
}

// waitWriters waits for the writers of wg to end: the first error one of
// them sends on errc, or nil if they all ended (or ctx did: a call it
// ended is no failure).
func waitWriters(ctx context.Context, wg *sync.WaitGroup, errc <-chan error) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case err := <-errc:
		if ctx.Err() != nil {
			<-done
			return nil
		}
		return err
	case <-done:
		return nil
	}
}
