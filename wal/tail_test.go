package wal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/ring"
)

// TestFollow: a reader following the log sees every record, in order, as
// it is written; with Durable only once it is synced; and Follow ends with
// ctx.
func TestFollow(t *testing.T) {
	forEachConfig(t, func(t *testing.T, c config) {
		for _, durable := range []bool{false, true} {
			t.Run(fmt.Sprint("durable=", durable), func(t *testing.T) {
				l, _ := createWith(t, c, Options{Sync: SyncNever})
				defer l.Close()
				rd, err := l.NewReader(l.Checkpoint(), &ReaderOptions{Durable: durable})
				if err != nil {
					t.Fatal(err)
				}
				defer rd.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				const n = 300
				go func() {
					for i := 0; i < n; i++ {
						l.Append(context.Background(), rec(i, 50+i))
						if i%7 == 0 {
							l.Flush(context.Background())
						}
						if i%30 == 0 {
							l.Sync(context.Background())
						}
					}
					l.Sync(context.Background())
				}()
				i := 0
				for pos, data := range rd.Follow(ctx) {
					if !bytes.Equal(data, rec(i, 50+i)) {
						t.Fatalf("record %d at %d differs", i, pos)
					}
					if durable && pos >= l.Durable() {
						t.Fatalf("a durable follower saw a record at %d past the durable end %d", pos, l.Durable())
					}
					i++
					if i == n {
						break
					}
				}
				if i != n {
					t.Fatalf("followed %d records: %v", i, rd.Err())
				}
				// ctx ends the wait at the end of the log.
				short, cancelShort := context.WithTimeout(context.Background(), 30*time.Millisecond)
				defer cancelShort()
				for range rd.Follow(short) {
					t.Fatal("a record after the last")
				}
				if !errors.Is(rd.Err(), context.DeadlineExceeded) {
					t.Fatalf("follow ended by its context: %v", rd.Err())
				}
			})
		}
	})
}

const tailChildEnv = "RINGLOG_WAL_TAIL_CHILD"

// tailChild follows the log at path read-only from another process and
// prints "pos len" for each record, then "done".
func tailChild(spec string) error {
	var path, backend string
	var n int
	fmt.Sscanf(spec, "%s %s %d", &path, &backend, &n)
	b, _ := pager.ParseBackend(backend)
	l, err := Open(path, &Options{ReadOnly: true, Backend: b})
	if err != nil {
		return err
	}
	defer l.Close()
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		return err
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	i := 0
	for pos, data := range rd.Follow(ctx) {
		w := int(binary.LittleEndian.Uint64(data))
		k := int(binary.LittleEndian.Uint64(data[8:]))
		if !bytes.Equal(data, payloadFor(w, k, len(data))) {
			return fmt.Errorf("record at %d has wrong bytes", pos)
		}
		fmt.Fprintf(out, "%d %d %d\n", pos, w, k)
		if i++; i == n {
			fmt.Fprintln(out, "done")
			return nil
		}
	}
	return rd.Err()
}

// TestFollowFromAnotherProcess: a child process opens the log read-only and
// follows it while this process writes, across a restart of the writer
// (which starts a new epoch): it sees every record, in order, intact.
func TestFollowFromAnotherProcess(t *testing.T) {
	if pager.Available(pager.Mmap) != nil {
		t.Skip("following from another process needs shared memory")
	}
	forEachConfig(t, func(t *testing.T, c config) {
		l, path := createWith(t, c, Options{Sync: SyncNever})
		const n = 600
		childBackend := c.b
		if c.b == pager.Remap {
			childBackend = pager.Auto // read-only: remap cannot
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", tailChildEnv, path, childBackend, n))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var want []uint64
		for i := 0; i < n; i++ {
			if i == n/2 {
				// The writer restarts: a new epoch from here on.
				l.Close()
				var err error
				if l, err = Open(path, &Options{Backend: c.b, Sync: SyncNever}); err != nil {
					t.Fatal(err)
				}
			}
			p, err := l.Append(ctx, payloadFor(1, i, 16+i%500))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, p)
			if i%10 == 0 {
				l.Flush(ctx)
				time.Sleep(time.Millisecond)
			}
		}
		l.Flush(ctx)
		err := cmd.Wait()
		l.Close()
		if err != nil {
			t.Fatalf("follower: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if len(lines) != n+1 || lines[n] != "done" {
			t.Fatalf("follower printed %d lines, last %q; %s", len(lines), lines[len(lines)-1], stderr.String())
		}
		for i, line := range lines[:n] {
			f := strings.Fields(line)
			pos, _ := strconv.ParseUint(f[0], 10, 64)
			k, _ := strconv.Atoi(f[2])
			if pos != want[i] || k != i {
				t.Fatalf("record %d: the follower saw number %d at %d, written at %d", i, k, pos, want[i])
			}
		}
	})
}

// TestFollowBeforeSync: a follower of the written end gets a record as soon
// as it is written, while its sync is still running; a follower of the
// durable end only after the sync.
func TestFollowBeforeSync(t *testing.T) {
	l, _ := createWith(t, config{b: pager.Auto, layout: Bounded}, Options{Sync: SyncAlways})
	defer l.Close()
	release := make(chan struct{})
	syncData = func(r *ring.Ring) error {
		<-release
		return r.SyncData()
	}
	defer func() { syncData = (*ring.Ring).SyncData }()
	written, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer written.Close()
	durable, err := l.NewReader(l.Checkpoint(), &ReaderOptions{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer durable.Close()
	got := make(chan string, 2)
	follow := func(name string, rd *Reader) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for range rd.Follow(ctx) {
			got <- name
			return
		}
		got <- name + ": " + fmt.Sprint(rd.Err())
	}
	go follow("written", written)
	go follow("durable", durable)
	// Let both followers reach their wait (else they may find the record
	// without waiting, and the test shows nothing).
	time.Sleep(100 * time.Millisecond)
	appended := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), []byte("x"))
		appended <- err
	}()
	// The sync is held: only the follower of the written end may see it.
	if g := <-got; g != "written" {
		t.Fatalf("first delivery while the sync runs: %q", g)
	}
	select {
	case g := <-got:
		t.Fatalf("delivered before the sync ended: %q", g)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if g := <-got; g != "durable" {
		t.Fatalf("after the sync: %q", g)
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
}
