package wal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
)

const truncChildEnv = "RINGLOG_WAL_TRUNC_CHILD"

// idRecord is record id's content: its first 8 bytes hold the id, so a
// record found after a crash says which one it is.
func idRecord(id, size int) []byte { return payloadFor(id, 0, size) }

// truncChild appends records with increasing ids, truncates back at a
// random record of the last round, appends records of exactly the dropped
// sizes and then of other sizes, and so on until it is killed. On stdout:
// "A id pos" once record id is durable, "T id" for every record a
// TruncateBack is about to drop, "D id" for each once it returned.
func truncChild(spec string) error {
	var path, backend string
	var seed uint64
	fmt.Sscanf(spec, "%s %s %d", &path, &backend, &seed)
	b, err := pager.ParseBackend(backend)
	if err != nil {
		return err
	}
	l, err := Open(path, &Options{Backend: b, Sync: SyncNever})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	rng := rand.New(rand.NewPCG(seed, uint64(os.Getpid())))
	ctx := context.Background()
	type rec struct {
		id, size int
		pos      uint64
	}
	var live []rec // records since the checkpoint, in order
	id := 1
	appendRec := func(size int, sync bool) error {
		var pos uint64
		var err error
		if sync {
			pos, err = l.AppendSync(ctx, idRecord(id, size))
		} else {
			pos, err = l.Append(ctx, idRecord(id, size))
		}
		if err != nil {
			return err
		}
		live = append(live, rec{id, size, pos})
		if sync {
			// Everything appended before is durable too.
			for _, r := range live {
				fmt.Fprintf(out, "A %d %d\n", r.id, r.pos)
			}
			out.Flush()
		}
		id++
		return nil
	}
	for round := 0; ; round++ {
		start := len(live)
		for range 4 + rng.IntN(12) {
			if err := appendRec(16+rng.IntN(2000), rng.IntN(3) == 0); err != nil {
				return err
			}
		}
		if err := l.Sync(ctx); err != nil {
			return err
		}
		for _, r := range live[start:] {
			fmt.Fprintf(out, "A %d %d\n", r.id, r.pos)
		}
		out.Flush()
		cut := start + rng.IntN(len(live)-start)
		dropped := live[cut:]
		for _, r := range dropped {
			fmt.Fprintf(out, "T %d\n", r.id)
		}
		out.Flush()
		if err := l.TruncateBack(ctx, dropped[0].pos); err != nil {
			return err
		}
		for _, r := range dropped {
			fmt.Fprintf(out, "D %d\n", r.id)
		}
		out.Flush()
		sizes := make([]int, len(dropped))
		for i, r := range dropped {
			sizes[i] = r.size
		}
		live = live[:cut]
		for _, size := range sizes {
			if err := appendRec(size, rng.IntN(4) == 0); err != nil {
				return err
			}
		}
		for range rng.IntN(6) {
			if err := appendRec(16+rng.IntN(2000), rng.IntN(4) == 0); err != nil {
				return err
			}
		}
		if round%8 == 7 {
			// Keep the log small: drop all but the last few records at
			// the front.
			keep := max(0, len(live)-4)
			if keep > 0 {
				if err := l.TruncateFront(live[keep].pos); err != nil {
					return err
				}
				live = live[keep:]
			}
		}
	}
}

// TestTruncateBackCrash kills a process that truncates back and appends
// over the dropped records (of exactly their sizes, then of others), at
// random moments, and checks after each kill that no dropped record
// reappears, that every durable record that was not dropped is there, and
// that the records are in the order they were appended.
func TestTruncateBackCrash(t *testing.T) {
	trials := 4
	if testing.Short() {
		trials = 2
	}
	forEachConfig(t, func(t *testing.T, c config) {
		seed := rand.Uint64()
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 9))
		for trial := range trials {
			path := filepath.Join(t.TempDir(), "wal")
			l, err := Create(path, c.opts(Options{Capacity: 8 << 20}))
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", truncChildEnv, path, c.b, seed+uint64(trial)))
			stdout, _ := cmd.StdoutPipe()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[int]uint64{}
			dropped := map[int]bool{}
			dropping := map[int]bool{} // a truncation the kill may have cut short
			done := make(chan struct{})
			drops := 0
			go func() {
				defer close(done)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					id, _ := strconv.Atoi(f[1])
					switch f[0] {
					case "A":
						p, _ := strconv.ParseUint(f[2], 10, 64)
						acked[id] = p
					case "T":
						dropping[id] = true
					case "D":
						dropped[id] = true
						drops++
					}
				}
			}()
			time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			cmd.Wait()
			if stderr.Len() > 0 {
				t.Fatalf("child: %s", stderr.String())
			}
			l, err = Open(path, &Options{Backend: c.b})
			if err != nil {
				t.Fatalf("trial %d: reopen: %v", trial, err)
			}
			rd, err := l.NewReader(l.Checkpoint(), nil)
			if err != nil {
				t.Fatal(err)
			}
			found := map[int]uint64{}
			last := 0
			for pos, data := range rd.All() {
				id := int(binary.LittleEndian.Uint64(data))
				if !bytes.Equal(data, idRecord(id, len(data))) {
					t.Fatalf("trial %d: record at %d (id %d) has wrong bytes", trial, pos, id)
				}
				if dropped[id] {
					t.Fatalf("trial %d: record %d at %d was dropped by TruncateBack and came back; %v", trial, id, pos, l.Report())
				}
				if id <= last {
					t.Fatalf("trial %d: record %d at %d after record %d", trial, id, pos, last)
				}
				last = id
				found[id] = pos
			}
			if err := rd.Err(); err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			rd.Close()
			cp := l.Checkpoint()
			for id, pos := range acked {
				if dropped[id] || dropping[id] || pos < cp {
					continue
				}
				if got, ok := found[id]; !ok || got != pos {
					t.Fatalf("trial %d: durable record %d at %d missing (found at %d, %v); %v", trial, id, pos, got, ok, l.Report())
				}
			}
			t.Logf("trial %d: %d durable, %d dropped, %d found; %v", trial, len(acked), drops, len(found), l.Report())
			if drops == 0 {
				t.Logf("trial %d: killed before the first truncation", trial)
			}
			l.Close()
		}
	})
}

// TestTruncateBothEnds truncates at both ends at random, checks the
// records against a model after each step, and again after reopening,
// over every layout and backend.
func TestTruncateBothEnds(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		seed := rand.Uint64()
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 3))
		l, path := createWith(t, c, Options{Capacity: 1 << 20, Sync: SyncNever})
		ctx := context.Background()
		type rec struct {
			pos uint64
			id  int
		}
		var model []rec
		check := func(l *Log, step string) {
			t.Helper()
			pos, data := readAll(t, l)
			if len(pos) != len(model) {
				t.Fatalf("%s: %d records, want %d", step, len(pos), len(model))
			}
			for i := range pos {
				id := int(binary.LittleEndian.Uint64(data[i]))
				if pos[i] != model[i].pos || id != model[i].id {
					t.Fatalf("%s: record %d: id %d at %d, want id %d at %d", step, i, id, pos[i], model[i].id, model[i].pos)
				}
			}
		}
		id := 1
		for step := range 300 {
			if l.Written()-l.Checkpoint() > 512<<10 {
				// Keep room: a full log would make appends wait.
				i := len(model) / 2
				if err := l.TruncateFront(model[i].pos); err != nil {
					t.Fatal(err)
				}
				model = model[i:]
			}
			switch op := rng.IntN(10); {
			case op < 6:
				n := 1 + rng.IntN(8)
				ps := make([][]byte, n)
				for i := range ps {
					ps[i] = idRecord(id+i, 16+rng.IntN(3000))
				}
				var pos uint64
				var err error
				if n > 1 && rng.IntN(2) == 0 {
					pos, err = l.AppendBatch(ctx, ps)
				} else {
					for i, p := range ps {
						q, e := l.Append(ctx, p)
						if i == 0 {
							pos = q
						}
						err = errors.Join(err, e)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				// Batch members or not, the records are contiguous but for
				// sync markers; take the positions from a read.
				_ = pos
				all, data := readAll(t, l)
				model = model[:0]
				for i := range all {
					model = append(model, rec{all[i], int(binary.LittleEndian.Uint64(data[i]))})
				}
				for i := range n {
					if model[len(model)-n+i].id != id+i {
						t.Fatalf("step %d: appended record %d not at the end", step, id+i)
					}
				}
				id += n
			case op < 8 && len(model) > 0:
				i := rng.IntN(len(model) + 1)
				at := l.Written()
				if i < len(model) {
					at = model[i].pos
				}
				err := l.TruncateBack(ctx, at)
				if errors.Is(err, ErrInBatch) {
					continue
				}
				if err != nil {
					t.Fatalf("step %d: truncate back to %d: %v", step, at, err)
				}
				if i < len(model) {
					model = model[:i]
				}
				check(l, fmt.Sprintf("step %d: after truncate back to %d", step, at))
			case len(model) > 0:
				i := rng.IntN(len(model))
				if err := l.TruncateFront(model[i].pos); err != nil {
					t.Fatalf("step %d: truncate front to %d: %v", step, model[i].pos, err)
				}
				model = model[i:]
				check(l, fmt.Sprintf("step %d: after truncate front", step))
			}
			if step%50 == 49 {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				var err error
				if l, err = Open(path, &Options{Backend: c.b, Recovery: RecoverStrict, Sync: SyncNever}); err != nil {
					t.Fatalf("step %d: reopen: %v", step, err)
				}
				check(l, fmt.Sprintf("step %d: after reopening", step))
			}
		}
		l.Close()
	})
}

// TestTruncateBackReaders: a reader holding a record to be dropped makes
// TruncateBack fail; one that has read past the cut and waits at the end
// does not, and learns of the cut with ErrTruncated once records come;
// consumers that acknowledged past the cut move back to it.
func TestTruncateBackReaders(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		l, _ := createWith(t, c, Options{Sync: SyncNever})
		defer l.Close()
		ctx := context.Background()
		var pos []uint64
		for i := range 10 {
			p, err := l.Append(ctx, idRecord(i, 100))
			if err != nil {
				t.Fatal(err)
			}
			pos = append(pos, p)
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cons, err := l.Consumer("c", &ConsumerOptions{FromStart: true})
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			if !cons.Next() {
				t.Fatal(cons.Err())
			}
		}
		if err := cons.Ack(cons.Position()); err != nil {
			t.Fatal(err)
		}
		rd, err := l.NewReader(pos[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 7 {
			rd.Next()
		}
		// rd holds record 6.
		if err := l.TruncateBack(ctx, pos[5]); !errors.Is(err, ErrRange) {
			t.Fatalf("truncate under a held record: %v", err)
		}
		if err := l.TruncateBack(ctx, pos[7]); err != nil {
			t.Fatalf("truncate after the held record: %v", err)
		}
		for rd.Next() {
		}
		if rd.Err() != nil {
			t.Fatal(rd.Err())
		}
		if rd.Position() != pos[7] {
			t.Fatalf("reader at %d, want %d", rd.Position(), pos[7])
		}
		// A follower that read to the end (record 9), then the log is cut
		// at 4 and records come again.
		f, err := l.NewReader(pos[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n := 0
		for f.Next() {
			n++
		}
		if n != 7 || f.Err() != nil {
			t.Fatalf("follower read %d records: %v", n, f.Err())
		}
		rd.Close()
		if err := l.TruncateBack(ctx, pos[4]); err != nil {
			t.Fatal(err)
		}
		if got := l.Consumers(); got[0].Acked != pos[4] {
			t.Fatalf("consumer acknowledged %d after the cut to %d", got[0].Acked, pos[4])
		}
		var first uint64
		for i := range 10 {
			p, err := l.Append(ctx, idRecord(100+i, 60))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = p
			}
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if f.Next() || !errors.Is(f.Err(), ErrTruncated) {
			t.Fatalf("follower past the cut: %v", f.Err())
		}
		if cons.Next() || !errors.Is(cons.Err(), ErrTruncated) {
			t.Fatalf("consumer past the cut: %v", cons.Err())
		}
		// The consumer goes back to its (moved) acknowledged position.
		if _, err := cons.Reattach(); err != nil {
			t.Fatal(err)
		}
		if !cons.Next() {
			t.Fatal(cons.Err())
		}
		if p, data := cons.Record(); p != first || binary.LittleEndian.Uint64(data) != 100 {
			t.Fatalf("consumer after the cut reads id %d at %d", binary.LittleEndian.Uint64(data), p)
		}
		cons.Close()
	})
}
