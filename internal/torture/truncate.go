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
	"strings"
	"sync"
	"time"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/wal"
)

// The truncate suite. Another process truncates a log's file under its
// live mapping. Each trial writes two logs of one layout (bounded or
// growing, picked at random), one on a mapped backend (remap or mmap) and
// one on copy, with synced records; in each, a Reader holds a record
// before the cut, and a Pin holds a record past it whose payload was taken
// with Log.Bytes. A child process (this executable again) truncates the
// file at a random point inside the written records (page-aligned or
// not). Then:
//
//   - the held Reader goes on: the records it returns before the cut are
//     intact, and on a mapped backend it stops with an error naming the
//     file (a FaultError where the pages are gone) instead of the process
//     dying; on copy it reads everything, intact (the heap copy is
//     unaffected);
//   - the Bytes slice, read inside pager.Guard, fails with a FaultError
//     naming the file on a mapped backend, and holds the record's bytes on
//     copy;
//   - a new Reader from the checkpoint does the same as the held one;
//     a second handle, writable (ErrLocked) or read-only, fails or reads
//     with an error;
//   - Append, AppendSync and Sync fail with an error naming the file (the
//     ring checks the file's size before each sync), unless a write
//     extended the file to its full size again, which hides the
//     truncation: then the next Open must report it;
//   - a second child holds a Reader's slice of a record past the cut in a
//     read-only handle of its own (mapped backends): read inside
//     pager.Guard it must fail with a FaultError naming the file; read
//     without it, the child must die of SIGBUS, as the pager documents.
//
// After Close, reopening in the default mode must fail with an error that
// names the file and offset (the records the sync markers prove durable
// are gone), or report a cut, or the writer must have reported the
// truncation already (a writer that failed writes no header at Close, so
// the file may no longer prove how far it was durable). Reopening point-in-time (after restoring the file's
// size if the layout refuses a short file, as an operator would) must
// recover every record acknowledged before the truncation that lies
// wholly before the cut, intact and in order, and take appends again.
//
// Counts: acked, the records synced before the truncation wholly before
// the cut; lost, those missing after the point-in-time reopen; corrupt,
// wrong bytes from any read (readers, the Bytes slice, the reopened log);
// undetected, a truncation a call should have reported and did not (a
// reader or guarded read that returns no error, an error that does not
// name the file, neither the writer nor the reopen reporting it, a
// point-in-time report that ends before the proven durable end without a
// cut, a child that read a vanished page without dying).

func init() {
	childJobs["truncate-file"] = func(spec []byte) error {
		var j truncFileJob
		if err := json.Unmarshal(spec, &j); err != nil {
			return err
		}
		return os.Truncate(j.Path, j.Size)
	}
	childJobs["truncate-hold"] = func(spec []byte) error {
		var j truncHoldJob
		if err := json.Unmarshal(spec, &j); err != nil {
			return err
		}
		return truncHoldChild(&j)
	}
	register(Suite{Name: "truncate", order: 5, Quick: 1, Full: 10, Writes: true, run: runTruncate,
		Doc: "another process truncates a log's file under its live mapping: readers, Bytes under a Pin and a second handle get errors (a guarded read a FaultError; an unguarded one in a child dies of SIGBUS, as documented), reopening reports the damage, and point-in-time recovery keeps every acknowledged record before the cut"})
}

// truncFileJob is the truncating child's job.
type truncFileJob struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// truncHoldJob is the job of the child that holds a slice.
type truncHoldJob struct {
	Path   string `json:"path"`
	Target uint64 `json:"target"` // position of the record to hold
}

func runTruncate(ctx context.Context, c *Config, dir string, trials int, r *Result) error {
	rng := rand.New(rand.NewPCG(c.Seed, 0x7472756e6366))
	var mapped []string
	for _, b := range backends() {
		if b != "copy" {
			mapped = append(mapped, b)
		}
	}
	if len(mapped) == 0 {
		r.Skipped = "no mapped backend here (" + pager.Available(pager.Mmap).Error() + "): only copy was truncated under"
		c.logf("truncate: %s", r.Skipped)
	}
	var st truncStats
	defer func() {
		if st.silent > 0 {
			c.logf("truncate: in %d of %d logs the writer's Append, AppendSync and Sync after the truncation returned no error (a write that extended the file to its full size again hid the truncation; the next Open reports it)", st.silent, st.logs)
		}
	}()
	for t := 0; t < trials && ctx.Err() == nil; t++ {
		growing := rng.IntN(2) == 0
		bs := []string{"copy"}
		if len(mapped) > 0 {
			bs = append(bs, mapped[rng.IntN(len(mapped))])
		}
		for _, b := range bs {
			lc := logConfig{Backend: b, Capacity: 1 << 20, Policy: "always"}
			if growing {
				lc.Growing, lc.SegmentSize, lc.Capacity = true, 64<<10, 64*64<<10
			}
			if err := truncTrial(ctx, c, dir, lc, rng, &st, r); err != nil {
				return err
			}
		}
		r.Trials++
		c.progress("truncate", t+1, trials)
	}
	return nil
}

// truncRec is a record the trial wrote.
type truncRec struct {
	id   recID
	pos  uint64
	size int
	off  int64 // file offset of its first byte
	end  int64 // file offset just past its last byte
	last int   // index of the last member of its batch (itself if none)
}

// truncStats counts, over a run, the logs whose writer took Append,
// AppendSync and Sync after the truncation without an error.
type truncStats struct{ silent, logs int }

func truncTrial(ctx context.Context, c *Config, dir string, lc logConfig, rng *rand.Rand, st *truncStats, r *Result) error {
	path := filepath.Join(dir, "trunc.wal")
	removeLog := func() {
		os.Remove(path)
		os.Remove(path + ".live")
		if m, _ := filepath.Glob(path + ".salvage-*"); m != nil {
			for _, f := range m {
				os.Remove(f)
			}
		}
	}
	removeLog()
	defer removeLog()
	o, err := lc.options()
	if err != nil {
		return err
	}
	l, err := wal.Create(path, o)
	if err != nil {
		return fmt.Errorf("create %s (%v): %w", path, lc, err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	mappedLog := lc.Backend != "copy"

	// Synced records, well short of the capacity (no wrap: log order is
	// file order).
	run := rng.Uint64()
	n := 100 + rng.IntN(200)
	var recs []truncRec
	for k := 0; k < n; {
		if rng.IntN(4) == 0 {
			m := 2 + rng.IntN(3)
			ps := make([][]byte, m)
			for i := range ps {
				ps[i] = payload(recID{run, 0, k + i}, minPayload+rng.IntN(1500))
			}
			pos, err := l.AppendBatchSync(ctx, ps)
			if err != nil {
				return fmt.Errorf("%v: append: %w", lc, err)
			}
			for i, p := range ps {
				recs = append(recs, truncRec{id: recID{run, 0, k + i}, pos: pos, size: len(p), last: k + m - 1})
				pos += uint64(wal.RecordSize(len(p)))
			}
			k += m
			continue
		}
		size := minPayload + rng.IntN(3000)
		pos, err := l.AppendSync(ctx, payload(recID{run, 0, k}, size))
		if err != nil {
			return fmt.Errorf("%v: append: %w", lc, err)
		}
		recs = append(recs, truncRec{id: recID{run, 0, k}, pos: pos, size: size, last: k})
		k++
	}
	for i := range recs {
		rc := &recs[i]
		rc.off = l.FileOffset(rc.pos)
		rc.end = l.FileOffset(rc.pos+uint64(wal.RecordSize(rc.size))-1) + 1
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	size0 := fi.Size()

	// The cut: inside a record between a fifth and four fifths of them,
	// at a page boundary half of the time. The pages from the first
	// boundary at or after the cut are gone; records wholly before the
	// cut survive, except the members of a batch whose last member does
	// not (a batch is kept or dropped whole).
	page := int64(pager.PageSize)
	cr := recs[len(recs)/5+rng.IntN(len(recs)*3/5)]
	cut := cr.off + rng.Int64N(cr.end-cr.off)
	if rng.IntN(2) == 0 {
		cut = cut / page * page
	}
	gone := (cut + page - 1) / page * page
	promised, target := 0, -1
	for i, rc := range recs {
		if recs[rc.last].end <= cut && promised == i {
			promised = i + 1
		}
		if target < 0 && rc.off >= gone {
			target = i
		}
	}
	what := fmt.Sprintf("truncate (log %v, %d records in %d bytes, cut at offset %d)", lc, len(recs), size0, cut)
	if target < 0 {
		return fmt.Errorf("%s: no record lies past the cut", what)
	}
	tr := recs[target]

	// Held: a Reader at a record before the cut, a Pin and a Bytes slice
	// of the target's payload.
	held := rng.IntN(max(promised, 1))
	rd, err := l.NewReader(recs[held].pos, nil)
	if err != nil {
		return fmt.Errorf("%s: reader: %w", what, err)
	}
	defer rd.Close()
	if !rd.Next() {
		return fmt.Errorf("%s: reading record %d: %v", what, held, rd.Err())
	}
	pin, err := l.Pin(tr.pos)
	if err != nil {
		return fmt.Errorf("%s: pin: %w", what, err)
	}
	release := sync.OnceFunc(pin.Release)
	defer release()
	view, err := l.Bytes(tr.pos+wal.HeaderSize, tr.size)
	if err != nil {
		return fmt.Errorf("%s: bytes: %w", what, err)
	}

	// The child that holds a slice of the target in a handle of its own.
	var hold *holdChild
	if mappedLog {
		if hold, err = startHoldChild(path, tr.pos); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer hold.kill()
	}

	// The truncation, by another process.
	cmd, err := childCommand("truncate-file", truncFileJob{Path: path, Size: cut})
	if err != nil {
		return err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: truncating child: %v: %s", what, err, bytes.TrimSpace(out))
	}

	if hold != nil {
		hold.check(c, what, path, r)
	}

	// The held reader's record lies before the cut: its slice still holds
	// the record's bytes.
	_, cur := rd.Record()
	heldCopy := make([]byte, len(cur))
	if err := pager.Guard(func() { copy(heldCopy, cur) }); err != nil || !bytes.Equal(heldCopy, payload(recs[held].id, recs[held].size)) {
		r.Corrupt++
		r.fail("%s: the held reader's slice of record %d, before the cut, no longer holds it (%v)", what, held, err)
	}

	// The held reader goes on.
	checkRead := func(name string, rd *wal.Reader, from int) {
		k := from
		for rd.Next() {
			pos, data := rd.Record()
			if k >= len(recs) || pos != recs[k].pos || !bytes.Equal(data, payload(recs[k].id, recs[k].size)) {
				r.Corrupt++
				r.fail("%s: %s returned %d bytes at position %d that are not record %d", what, name, len(data), pos, k)
				return
			}
			k++
		}
		err := rd.Err()
		switch {
		case !mappedLog && (err != nil || k != len(recs)):
			r.Corrupt++
			r.fail("%s: %s read %d of %d records of the heap copy: %v", what, name, k, len(recs), err)
		case !mappedLog:
		case err == nil:
			r.Undetected++
			r.fail("%s: %s stopped after record %d of %d with no error", what, name, k, len(recs))
		case !strings.Contains(err.Error(), path):
			r.Undetected++
			r.fail("%s: %s stopped with an error that does not name the file: %v", what, name, err)
		case k < promised:
			r.Corrupt++
			r.fail("%s: %s failed at record %d, before the cut (record %d): %v", what, name, k, promised, err)
		}
	}
	checkRead("the held reader", rd, held+1)
	rd.Close()
	if rd2, err := l.NewReader(l.Checkpoint(), nil); err != nil {
		if !mappedLog || !strings.Contains(err.Error(), path) {
			r.Undetected++
			r.fail("%s: a new reader: %v", what, err)
		}
	} else {
		checkRead("a new reader", rd2, 0)
		rd2.Close()
	}

	// The Bytes slice, read under a guard.
	got := make([]byte, len(view))
	ferr := pager.Guard(func() { copy(got, view) })
	var fe *pager.FaultError
	switch {
	case !mappedLog && (ferr != nil || !bytes.Equal(got, payload(tr.id, tr.size))):
		r.Corrupt++
		r.fail("%s: the Bytes slice of the heap copy: %v", what, ferr)
	case !mappedLog:
	case !errors.As(ferr, &fe) || fe.File != path || fe.Offset < gone:
		r.Undetected++
		r.fail("%s: reading the Bytes slice of record %d (file offset %d) under a guard: %v", what, target, tr.off, ferr)
	}
	release()

	// The writer's calls and a second handle.
	// The writer reports the truncation if one of them fails naming the
	// file (the ring checks the file's size before each sync and growth).
	writerSaw := ""
	for i, call := range []func() error{
		func() error { _, err := l.Append(ctx, payload(recID{run, 1, 0}, minPayload)); return err },
		func() error { _, err := l.AppendSync(ctx, payload(recID{run, 1, 1}, minPayload)); return err },
		func() error { return l.Sync(ctx) },
	} {
		if err := call(); err != nil && writerSaw == "" {
			writerSaw = fmt.Sprintf("%s: %v", []string{"Append", "AppendSync", "Sync"}[i], err)
			if !strings.Contains(err.Error(), path) {
				r.Undetected++
				r.fail("%s: the writer's %s", what, writerSaw)
			}
		}
	}
	if writerSaw == "" {
		st.silent++
	}
	st.logs++
	if l2, err := wal.Open(path, o); err == nil {
		l2.Close()
		r.Undetected++
		r.fail("%s: a second writable handle opened", what)
	}
	ro := *o
	ro.ReadOnly = true
	if ro.Backend == pager.Remap {
		ro.Backend = pager.Mmap // read-only views never take remap
	}
	if l2, err := wal.Open(path, &ro); err != nil {
		if !strings.Contains(err.Error(), path) {
			r.Undetected++
			r.fail("%s: opening a read-only handle: %v", what, err)
		}
	} else {
		found, bad := 0, ""
		if rd2, err := l2.NewReader(l2.Checkpoint(), nil); err != nil {
			bad = err.Error()
		} else {
			for _, data := range rd2.All() {
				if id, ok := parsePayload(data); !ok || id.run != run || (id.w == 0 && (id.k != found || id.k >= len(recs))) {
					r.Corrupt++
					r.fail("%s: a read-only handle returned a record that is not record %d", what, found)
					break
				}
				found++
			}
			if rd2.Err() != nil {
				bad = rd2.Err().Error()
			}
			rd2.Close()
		}
		l2.Close()
		if bad == "" && found < len(recs) {
			r.Undetected++
			r.fail("%s: a read-only handle read %d of %d records and reported nothing", what, found, len(recs))
		}
	}
	closed = true
	l.Close() // fails if the writer failed

	// Reopen: the default mode reports the damage; point-in-time keeps
	// the records before the cut.
	// (A writer that failed wrote no header at Close, so the file may no
	// longer prove how far it was durable: then the default reopen may
	// take the cut for a torn tail, and the writer's error was the
	// report.)
	r.Acked += int64(promised)
	// Copies of the file as the truncation (and the writes after it) left
	// it, for the point-in-time checks below: the default reopen changes
	// the file (a cut starts a new epoch, which buries what lay after it
	// for good), so they must not see its result.
	asis := path + ".asis"
	restored := path + ".restored"
	for _, cp := range []string{asis, restored} {
		if err := copyFile(path, cp); err != nil {
			return err
		}
		defer os.Remove(cp + ".live")
		defer os.Remove(cp)
	}
	if l2, err := wal.Open(path, o); err != nil {
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset") {
			r.Undetected++
			r.fail("%s: the default reopen fails without naming the file and offset: %v", what, err)
		}
	} else {
		rep := l2.Report()
		l2.Close()
		if !rep.Cut() && writerSaw == "" {
			r.Undetected++
			r.fail("%s: no writer's call failed and the default reopen opened the log and reported no cut: %v", what, rep)
		}
	}
	pit := *o
	pit.Recovery = wal.RecoverPointInTime
	// Point-in-time on a copy of the file as the truncation (and the
	// writes after it) left it: whatever it keeps is intact, and if it
	// drops records acknowledged before the cut it reports a cut. (The
	// bounded layout refuses a file shorter than its data area in every
	// mode; the growing one leaves out a segment the file does not hold
	// whole.)
	if l2, err := wal.Open(asis, &pit); err != nil {
		if !strings.Contains(err.Error(), asis) {
			r.Undetected++
			r.fail("%s: the point-in-time reopen of the short file fails without naming the file: %v", what, err)
		}
	} else {
		rep := l2.Report()
		found, bad := readAll(l2)
		l2.Close()
		r.Corrupt += int64(len(bad))
		for _, b := range bad {
			r.fail("%s: point-in-time reopen of the short file: %s", what, b)
		}
		if rep.End < rep.Synced && !rep.Cut() {
			r.Undetected++
			r.fail("%s: point-in-time reopen of the short file ends before where the log was proven durable and reports no cut: %v", what, rep)
		}
		for id := range found {
			if id.run != run || id.w > 1 || (id.w == 0 && id.k >= len(recs)) || (id.w == 1 && id.k > 1) {
				r.Corrupt++
				r.fail("%s: point-in-time reopen of the short file: %s was never written", what, id)
			}
		}
	}
	// Then with the file's size given back, as an operator would: every
	// record wholly before the cut is recovered.
	if fi, err := os.Stat(restored); err != nil {
		return err
	} else if fi.Size() < size0 {
		if err := os.Truncate(restored, size0); err != nil {
			return err
		}
	}
	l2, err := wal.Open(restored, &pit)
	if err != nil {
		r.Lost += int64(promised)
		r.fail("%s: point-in-time reopen: %v", what, err)
		return nil
	}
	defer l2.Close()
	rep := l2.Report()
	found := readChecked(l2, r, func(b string) { r.fail("%s: point-in-time reopen: %s", what, b) })
	for id := range found {
		if id.run != run || id.w > 1 || (id.w == 0 && id.k >= len(recs)) || (id.w == 1 && id.k > 1) {
			r.Corrupt++
			r.fail("%s: point-in-time reopen: %s was never written", what, id)
		}
	}
	for _, rc := range recs[:promised] {
		if _, ok := found[rc.id]; !ok {
			r.Lost++
			r.fail("%s: point-in-time reopen: record %d (file offset %d), acknowledged before the truncation, is missing; %v", what, rc.id.k, rc.off, rep)
		}
	}
	if rep.End < rep.Synced && !rep.Cut() {
		r.Undetected++
		r.fail("%s: the point-in-time reopen ends before where the log was proven durable and reports no cut: %v", what, rep)
	}
	if _, err := l2.AppendSync(ctx, payload(recID{run, 2, 0}, minPayload)); err != nil {
		r.fail("%s: append after the point-in-time reopen: %v", what, err)
		r.Lost++
	}
	return nil
}

// holdChild is a running truncate-hold child.
type holdChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr bytes.Buffer
	done   chan error
}

func startHoldChild(path string, target uint64) (*holdChild, error) {
	cmd, err := childCommand("truncate-hold", truncHoldJob{Path: path, Target: target})
	if err != nil {
		return nil, err
	}
	h := &holdChild{cmd: cmd, lines: make(chan string, 16), done: make(chan error, 1)}
	cmd.Stderr = &h.stderr
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.done <- cmd.Wait()
	}()
	select {
	case ln, ok := <-h.lines:
		if ok && ln == "ready" {
			return h, nil
		}
		h.kill()
		return nil, fmt.Errorf("holding child: %q: %s", ln, bytes.TrimSpace(h.stderr.Bytes()))
	case <-time.After(30 * time.Second):
		h.kill()
		return nil, errors.New("holding child: not ready after 30s")
	}
}

// check lets the child read its slice after the truncation: under a guard
// it must get a FaultError naming the file, without one it must die of
// SIGBUS.
func (h *holdChild) check(c *Config, what, path string, r *Result) {
	io.WriteString(h.stdin, "go\n")
	var out []string
	for ln := range h.lines {
		out = append(out, ln)
	}
	werr := <-h.done
	guard := ""
	for _, ln := range out {
		if s, ok := strings.CutPrefix(ln, "guard "); ok {
			guard = s
		}
	}
	switch {
	case guard == "":
		r.Undetected++
		r.fail("%s: the holding child printed %q, no guarded read (%v: %s)", what, out, werr, bytes.TrimSpace(h.stderr.Bytes()))
		return
	case !strings.Contains(guard, path) || !strings.Contains(guard, "memory fault"):
		r.Undetected++
		r.fail("%s: the holding child's guarded read of a slice past the cut: %s", what, guard)
	}
	var ee *exec.ExitError
	if werr == nil || !errors.As(werr, &ee) || !strings.Contains(h.stderr.String(), "SIGBUS") {
		r.Undetected++
		r.fail("%s: the holding child read a vanished page without a guard and did not die of SIGBUS: %v; %q", what, werr, out)
	}
}

func (h *holdChild) kill() {
	h.cmd.Process.Kill()
}

// truncHoldChild opens the log read-only, holds the slice of the record at
// j.Target, and once told to (after the truncation) reads it under
// pager.Guard, then without: the second read is fatal.
func truncHoldChild(j *truncHoldJob) error {
	l, err := wal.Open(j.Path, &wal.Options{Backend: pager.Mmap, ReadOnly: true})
	if err != nil {
		return err
	}
	rd, err := l.NewReader(j.Target, nil)
	if err != nil {
		return err
	}
	if !rd.Next() {
		return fmt.Errorf("no record at %d: %v", j.Target, rd.Err())
	}
	_, data := rd.Record()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	var sum byte
	read := func() {
		for _, b := range data {
			sum ^= b
		}
	}
	if err := pager.Guard(read); err != nil {
		fmt.Println("guard", err)
	} else {
		fmt.Println("guard ok")
	}
	read() // fatal: the page is gone
	fmt.Println("read", sum)
	return nil
}

// copyFile copies the file src to dst.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}
