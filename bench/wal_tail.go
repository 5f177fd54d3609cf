package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// The wal-tail-latency workloads measure how long a record takes from its
// append to a reader that follows the log: wal.Reader.Follow, in the
// writer's process (wal-tail-latency) or in another one that opened the
// log read-only (wal-tail-latency-xproc). The systems are the pager
// backends of the log (ringlog/remap, ringlog/mmap, ringlog/copy); the
// baseline is ringlog/remap. Pebble's log has no tailing API (a reader of
// a live Pebble log polls the file), so there is no pebble row: the table
// says so. They are durable workloads like the other wal-* ones: the log
// syncs in the background, and they refuse a data directory on tmpfs.
//
// Records: record i (0, 1, 2, ...) has 1 KiB, its first and last words
// spscFirst(i) and spscLast(i), the template between them (as in the
// other wal-* workloads).

var walTailSystems = []string{"ringlog/remap", "ringlog/mmap", "ringlog/copy"}

// walTailNotRun is the system the tail workloads leave out.
var walTailNotRun = []systemNote{{system: "pebble", reason: "no tailing API"}}

const walTailSize = 1 << 10

// walTailRecords is the number of records of one run and walTailRate the
// rate the producer appends them at, in records per second: 10,000 records
// at 10,000/s with -quick (one second of appends), 100,000 at 20,000/s in
// the full run (five seconds), 300 at 5,000/s with the test size. The
// rates are a small part of what the slowest backend appends (see
// wal-append-1k), so the producer keeps to its schedule and the figures
// are the latency of delivery, not of a backlog.
func walTailRecords(s Size) int { return pick(s, 300, 10_000, 100_000) }
func walTailRate(s Size) int    { return pick(s, 5_000, 10_000, 20_000) }

// walTailLatency measures the delivery of records to a reader following
// the log in the writer's process.
//
// Untimed: create the log in a directory of the run's own under the data
// directory, of walLogSize bytes for n records of 1 KiB (so it never
// wraps or waits for space), with sync policy SyncInterval at its default
// interval (10ms), the policy of a log whose readers tail it: Append
// returns once the record is staged, the flusher writes it at once and
// syncs in the background. A Reader at the checkpoint (the start), with
// the default watermark: it sees a record once the flusher has written it
// (Written), not only once it is durable (ReaderOptions.Durable). A
// goroutine follows it (Reader.Follow), waiting at the end of the log.
//
// Timed: from starting the producer until the follower has the last
// record. The producer appends record i at start + i/rate (it sleeps
// until then; the Go runtime's timers wake it about every millisecond, so
// records come in small bursts of rate/1000), one Append each, and takes
// the time just before it calls Append. The follower takes the time when
// Follow hands it record i. Both are readings of the monotonic clock of
// the process (time.Since of one time.Now). A record's latency is its
// delivery time minus its append time: the Append itself, which commits
// the record (stages it: its place in the log is fixed) and returns, about
// a microsecond; the flusher's write (and, when the write queues behind
// the flusher's background fdatasync, that wait: the p99); the wakeup of
// the follower; and the reading of the record from the mapping. The time
// is taken before the call, not when Append returns, because the record
// can reach the follower before Append has returned to the producer (it
// wakes the flusher on its way out, and on two cores the flusher and the
// follower may run first): stamps taken after the return gave negative
// latencies. p50 and p99 are over the n records; the JSON row adds
// max_us, the largest.
//
// Verified by the follower as records arrive: record k is the k-th it
// gets, of 1 KiB, with spscFirst(k) and spscLast(k) as its first and last
// words and the template between them; it must get n records before its
// deadline (n/rate + 60s). After timing: the XOR of the first and last
// words of the n records, the log's counters (n appends of the expected
// framed size), and the reader stopped at the end of what was written (no
// record more).
//
// n = records, bytes = n * 1 KiB; ops/s is the rate delivered, the
// producer's rate when it and the follower keep up.
var walTailLatency = &workload{
	name:     "wal-tail-latency",
	doc:      "a goroutine follows the log while 1 KiB records are appended at a steady rate; append-to-delivery p50/p99",
	systems:  walTailSystems,
	baseline: "ringlog/remap",
	notRun:   walTailNotRun,
	durable:  true,
	run:      runWALTail,
}

// walTailLatencyXProc is wal-tail-latency with the follower in another
// process.
//
// As wal-tail-latency, except: the follower is a process of its own (this
// binary again), which opens the log with wal.Open ReadOnly on the same
// backend (on ringlog/remap on Auto instead, which read-only means mmap:
// remap_file_pages cannot map a read-only file), makes its Reader at the
// checkpoint, and says it is ready before the timed region starts. Its
// Follow waits on the futex the writer wakes. Both processes read
// CLOCK_MONOTONIC (clock_gettime), which they share, for the append and
// delivery times. The follower checks every record as in
// wal-tail-latency and sends back, on a pipe, a line when it has the last
// record (which ends the timed region), then its count, XOR, end position
// and the delivery times; the producer's process computes the latencies,
// and checks the count, the XOR and that the follower stopped at the end
// of what was written. The memory figures are the producer's process.
var walTailLatencyXProc = &workload{
	name:     "wal-tail-latency-xproc",
	doc:      "as wal-tail-latency, the follower in another process with the log open read-only",
	systems:  walTailSystems,
	baseline: "ringlog/remap",
	notRun:   walTailNotRun,
	durable:  true,
	run:      runWALTailXProc,
}

// walTailTimeout bounds a follower's wait for n records appended at rate.
func walTailTimeout(n, rate int) time.Duration {
	return time.Duration(n)*time.Second/time.Duration(rate) + time.Minute
}

// monoNow reads CLOCK_MONOTONIC, in nanoseconds: a clock every process of
// the machine shares (the monotonic readings of time.Time count from the
// start of each process).
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return ts.Nano()
}

// tailProduce appends records 0..n-1 of walTailSize bytes to l, record i
// at start + i/rate, and stores in appended[i] the clock when its Append
// was called. It stops early when ctx ends.
func tailProduce(ctx context.Context, l *wal.Log, n, rate int, clock func() int64, appended []int64) error {
	m := walRecordBuf(walTailSize)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("producer stopped before record %d: %w", i, context.Cause(ctx))
		}
		walStamp(m, i)
		appended[i] = clock()
		if _, err := l.Append(ctx, m); err != nil {
			return fmt.Errorf("append %d: %w", i, err)
		}
	}
	return nil
}

// tailFollow follows rd until it has n records of size bytes, checking each
// (see tailCheck), and stores in delivered[k] the clock when it got record
// k. It returns the number of records it got and the XOR of their first
// and last words.
func tailFollow(ctx context.Context, rd *wal.Reader, n, size int, clock func() int64, delivered []int64) (count int, x uint64, err error) {
	tmpl := spscTemplate(size)
	for pos, b := range rd.Follow(ctx) {
		now := clock()
		if err := tailCheck(b, count, size, tmpl); err != nil {
			return count, x, fmt.Errorf("verification failed: record %d (at position %d): %w", count, pos, err)
		}
		delivered[count] = now
		x ^= spscFold(b)
		if count++; count == n {
			return count, x, nil
		}
	}
	return count, x, fmt.Errorf("following stopped after %d of %d records: %w", count, n, rd.Err())
}

// tailCheck checks that b is record i of size bytes.
func tailCheck(b []byte, i, size int, tmpl []byte) error {
	if len(b) != size {
		return fmt.Errorf("%d bytes, want %d", len(b), size)
	}
	if got, want := binary.LittleEndian.Uint64(b), spscFirst(i); got != want {
		return fmt.Errorf("first word %#x, want %#x", got, want)
	}
	if got, want := binary.LittleEndian.Uint64(b[size-8:]), spscLast(i); got != want {
		return fmt.Errorf("last word %#x, want %#x", got, want)
	}
	if !bytes.Equal(b[8:size-8], tmpl) {
		return errors.New("the bytes between the first and last words differ from the template")
	}
	return nil
}

// recordTailLatencies records delivered[i] - appended[i] for every record
// and adds max_us to the row.
func recordTailLatencies(r *run, appended, delivered []int64) {
	r.expectOps(len(appended))
	var most time.Duration
	for i := range appended {
		d := time.Duration(delivered[i] - appended[i])
		r.recordOp(d)
		most = max(most, d)
	}
	r.setExtra("max_us", float64(most)/float64(time.Microsecond))
}

// checkTailEnd checks, after the run, that the log holds n records of
// walTailSize bytes and that the follower stopped at the end of what was
// written, with nothing left to read.
func checkTailEnd(l *wal.Log, n int, end uint64) error {
	if err := checkRinglogAppends(l, n, walTailSize); err != nil {
		return err
	}
	// A follower in another process sees a write as soon as the ring has
	// it, a moment before the log's flusher records it in Written: wait
	// for that.
	if err := l.Flush(context.Background()); err != nil {
		return err
	}
	if w := l.Written(); end != w {
		return fmt.Errorf("verification failed: the follower stopped at position %d, the log is written up to %d", end, w)
	}
	return nil
}

func runWALTail(r *run) (_ work, err error) {
	n, rate := walTailRecords(r.size), walTailRate(r.size)
	l, cleanup, err := createRinglogLog(r, "wal-tail-", wal.Options{Capacity: walLogSize(n, walTailSize), Sync: wal.SyncInterval})
	if err != nil {
		return work{}, err
	}
	defer cleanup()
	defer closeLog(l, &err)
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		return work{}, err
	}
	defer rd.Close()

	base := time.Now()
	clock := func() int64 { return int64(time.Since(base)) }
	appended := make([]int64, n)
	delivered := make([]int64, n)
	// The first of the producer and the follower to fail stops the other
	// and is the run's error.
	tctx, stop := context.WithTimeout(context.Background(), walTailTimeout(n, rate))
	defer stop()
	ctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	type followed struct {
		count int
		x     uint64
		err   error
	}
	done := make(chan followed, 1)
	go func() {
		count, x, err := tailFollow(ctx, rd, n, walTailSize, clock, delivered)
		if err != nil {
			cancel(err)
		}
		done <- followed{count, x, err}
	}()

	r.startTimer()
	perr := tailProduce(ctx, l, n, rate, clock, appended)
	if perr != nil {
		cancel(perr)
	}
	f := <-done
	r.stopTimer()
	if f.err != nil || perr != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
			return work{}, cause
		}
		return work{}, errors.Join(f.err, perr)
	}

	if err := spscVerify("following", n, f.count, spscWantXOR(n), f.x); err != nil {
		return work{}, err
	}
	if err := checkTailEnd(l, n, rd.Position()); err != nil {
		return work{}, err
	}
	recordTailLatencies(r, appended, delivered)
	return work{n: int64(n), bytes: int64(n) * walTailSize}, nil
}

// tailFollowerSpec tells a follower process what to follow: n records of
// size bytes in the log at path, opened read-only on backend, for at most
// timeout.
type tailFollowerSpec struct {
	Path    string        `json:"path"`
	Backend string        `json:"backend"`
	N       int           `json:"n"`
	Size    int           `json:"size"`
	Timeout time.Duration `json:"timeout_ns"`
}

// tailFollowerResult is what a follower process reports after its "done"
// line: the records it got, the XOR of their first and last words, where
// its reader stopped, and the CLOCK_MONOTONIC time each record arrived.
type tailFollowerResult struct {
	Count     int     `json:"count"`
	XOR       uint64  `json:"xor"`
	End       uint64  `json:"end"`
	Delivered []int64 `json:"delivered_ns"`
}

// Lines a follower process writes on its result pipe before its result.
const (
	tailReadyLine = "ready"
	tailDoneLine  = "done"
)

// tailFollowerMain is the follower process of wal-tail-latency-xproc
// (childSpec.Follower): it writes the ready line, the done line and its
// result on resultFD, errors on stderr with a non-zero exit status.
func tailFollowerMain(s tailFollowerSpec) int {
	out := os.NewFile(resultFD, "result pipe")
	if out == nil {
		fmt.Fprintf(os.Stderr, "bench follower: no result descriptor %d\n", resultFD)
		return 2
	}
	if err := tailFollowerRun(s, out); err != nil {
		fmt.Fprintf(os.Stderr, "follower: %v\n", err)
		return 1
	}
	if err := out.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "follower: writing the result: %v\n", err)
		return 2
	}
	return 0
}

func tailFollowerRun(s tailFollowerSpec, out io.Writer) (err error) {
	backend, err := pager.ParseBackend(s.Backend)
	if err != nil {
		return err
	}
	if s.N <= 0 || s.Size < 16 {
		return fmt.Errorf("bad spec: %d records of %d bytes", s.N, s.Size)
	}
	l, err := wal.Open(s.Path, &wal.Options{ReadOnly: true, Backend: backend})
	if err != nil {
		return err
	}
	defer closeLog(l, &err)
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		return err
	}
	defer rd.Close()
	delivered := make([]int64, s.N)
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	if _, err := fmt.Fprintln(out, tailReadyLine); err != nil {
		return err
	}
	count, x, err := tailFollow(ctx, rd, s.N, s.Size, monoNow, delivered)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, tailDoneLine); err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(tailFollowerResult{Count: count, XOR: x, End: rd.Position(), Delivered: delivered})
}

// tailFollower is a running follower process, seen from the producer's.
type tailFollower struct {
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	res            *bufio.Reader
	pipe           *os.File
	stdout, stderr cappedBuffer
	waited         bool
	waitErr        error
}

// startTailFollower starts a follower process: this binary again, as a
// child with spec's Follower set (see childMain).
func startTailFollower(s tailFollowerSpec) (*tailFollower, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the bench binary: %w", err)
	}
	js, err := json.Marshal(childSpec{Follower: &s})
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout+10*time.Second)
	f := &tailFollower{cancel: cancel, pipe: pr, res: bufio.NewReader(pr)}
	f.cmd = exec.CommandContext(ctx, exe)
	// The last value of a variable wins: this one replaces the spec this
	// process was started with.
	f.cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	f.cmd.Stdout, f.cmd.Stderr = &f.stdout, &f.stderr
	f.cmd.ExtraFiles = []*os.File{pw} // resultFD
	f.cmd.WaitDelay = 5 * time.Second
	setParentDeathSignal(f.cmd)
	err = f.cmd.Start()
	pw.Close()
	if err != nil {
		cancel()
		pr.Close()
		return nil, fmt.Errorf("starting the follower: %w", err)
	}
	return f, nil
}

// expect reads the next line of the follower's result pipe, which must be
// want.
func (f *tailFollower) expect(want string) error {
	line, err := f.res.ReadString('\n')
	if line == want+"\n" {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("unexpected %q", line)
	}
	return f.failed(fmt.Errorf("waiting for the follower's %s line: %w", want, err))
}

// result reads the follower's result and waits for it to exit.
func (f *tailFollower) result() (tailFollowerResult, error) {
	var res tailFollowerResult
	if err := json.NewDecoder(f.res).Decode(&res); err != nil {
		return res, f.failed(fmt.Errorf("reading the follower's result: %w", err))
	}
	if err := f.wait(); err != nil {
		return res, f.failed(err)
	}
	return res, nil
}

// failed adds to err why the follower failed: its exit status and the
// first line of its stderr.
func (f *tailFollower) failed(err error) error {
	if !f.waited {
		// A follower that wrote something else, or that is still
		// running, will not say more (one that exited keeps its status).
		f.cmd.Process.Kill()
	}
	if werr := f.wait(); werr != nil {
		err = fmt.Errorf("%w (follower: %v)", err, werr)
	}
	if line := firstLine(strings.TrimSpace(f.stderr.String())); line != "" {
		err = fmt.Errorf("%w: %s", err, line)
	}
	return err
}

func (f *tailFollower) wait() error {
	if !f.waited {
		f.waited = true
		f.waitErr = f.cmd.Wait()
		f.cancel()
	}
	return f.waitErr
}

// stop kills the follower if it still runs and releases what it holds.
func (f *tailFollower) stop() {
	if !f.waited {
		f.cmd.Process.Kill()
		f.wait()
	}
	f.pipe.Close()
}

func runWALTailXProc(r *run) (_ work, err error) {
	n, rate := walTailRecords(r.size), walTailRate(r.size)
	if err := pager.Available(pager.Mmap); err != nil {
		return work{}, fmt.Errorf("following from another process needs shared mappings: %w", err)
	}
	backend, err := pagerBackend(r.system)
	if err != nil {
		return work{}, err
	}
	followBackend := backend
	if backend == pager.Remap {
		followBackend = pager.Auto // read-only: remap cannot
	}
	l, cleanup, err := createRinglogLog(r, "wal-tail-xproc-", wal.Options{Capacity: walLogSize(n, walTailSize), Sync: wal.SyncInterval})
	if err != nil {
		return work{}, err
	}
	defer cleanup()
	defer closeLog(l, &err)

	timeout := walTailTimeout(n, rate)
	f, err := startTailFollower(tailFollowerSpec{Path: l.Name(), Backend: followBackend.String(), N: n, Size: walTailSize, Timeout: timeout})
	if err != nil {
		return work{}, err
	}
	defer f.stop()
	if err := f.expect(tailReadyLine); err != nil {
		return work{}, err
	}
	appended := make([]int64, n)

	r.startTimer()
	perr := tailProduce(context.Background(), l, n, rate, monoNow, appended)
	var ferr error
	if perr == nil {
		ferr = f.expect(tailDoneLine)
	}
	r.stopTimer()
	if perr != nil {
		return work{}, perr
	}
	if ferr != nil {
		return work{}, ferr
	}
	res, err := f.result()
	if err != nil {
		return work{}, err
	}

	if len(res.Delivered) != n {
		return work{}, fmt.Errorf("verification failed: the follower reports %d delivery times, want %d", len(res.Delivered), n)
	}
	if err := spscVerify("following from another process", n, res.Count, spscWantXOR(n), res.XOR); err != nil {
		return work{}, err
	}
	if err := checkTailEnd(l, n, res.End); err != nil {
		return work{}, err
	}
	recordTailLatencies(r, appended, res.Delivered)
	return work{n: int64(n), bytes: int64(n) * walTailSize}, nil
}
