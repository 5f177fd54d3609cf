package wal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
)

const crashChildEnv = "RINGLOG_WAL_CRASH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		crashChild(spec)
		os.Exit(0)
	}
	if spec := os.Getenv(truncChildEnv); spec != "" {
		if err := truncChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "truncating child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(tailChildEnv); spec != "" {
		if err := tailChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "follower:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// payloadFor is the content of writer w's k-th record: its first 16 bytes
// name it, so the parent can check any record it finds.
func payloadFor(w, k, size int) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, uint64(w))
	binary.LittleEndian.PutUint64(b[8:], uint64(k))
	for i := 16; i < size; i++ {
		b[i] = byte(w*31 + k*7 + i)
	}
	return b
}

// crashChild appends from several writers, durably, and prints one line per
// acknowledged record ("w k pos") on stdout until it is killed.
func crashChild(spec string) {
	var path, backend string
	var writers int
	fmt.Sscanf(spec, "%s %s %d", &path, &backend, &writers)
	b, _ := pager.ParseBackend(backend)
	l, err := Open(path, &Options{Backend: b, Sync: SyncAlways})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(os.Getpid())))
			for k := 0; ; k++ {
				size := 16 + rng.IntN(3000)
				if w%2 == 1 && k%5 == 0 {
					// A batch of three: acknowledged together.
					ps := [][]byte{payloadFor(w, k, size), payloadFor(w, k+1, 16), payloadFor(w, k+2, size/2+16)}
					pos, err := l.AppendBatch(context.Background(), ps)
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(3)
					}
					mu.Lock()
					for i := range ps {
						fmt.Fprintf(out, "%d %d %d\n", w, k+i, pos)
						pos += uint64(recordSize(len(ps[i])))
					}
					out.Flush()
					mu.Unlock()
					k += 2
					continue
				}
				pos, err := l.Append(context.Background(), payloadFor(w, k, size))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d %d\n", w, k, pos)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrash kills a writing child at random moments and checks, after each
// kill, that every acknowledged record is there, in order, byte for byte,
// and nothing else. A process crash keeps the page cache, so this cannot
// catch a missing fsync (that is what power-loss tests are for); it catches
// torn in-process state, recovery that loses or invents records, and
// records acknowledged before they were written.
func TestCrash(t *testing.T) {
	trials := 6
	if testing.Short() {
		trials = 2
	}
	forEachConfig(t, func(t *testing.T, c config) {
		seed := rand.Uint64()
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 7))
		path := filepath.Join(t.TempDir(), "wal")
		l, err := Create(path, c.opts(Options{Capacity: 8 << 20}))
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		acked := map[[2]int]uint64{} // (writer, k) -> position, over all trials
		for trial := 0; trial < trials; trial++ {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", crashChildEnv, path, c.b, 4))
			stdout, _ := cmd.StdoutPipe()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 1024)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			// Kill at a random moment after the first acknowledgement.
			var first []string
			select {
			case line, ok := <-lines:
				if ok {
					first = append(first, line)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("trial %d: no acknowledgement in 20s: %s", trial, stderr.String())
			}
			time.Sleep(time.Duration(rng.IntN(100_000)) * time.Microsecond)
			cmd.Process.Signal(syscall.SIGKILL)
			rest := func(yield func(string) bool) {
				for _, l := range first {
					if !yield(l) {
						return
					}
				}
				for l := range lines {
					if !yield(l) {
						return
					}
				}
			}
			for line := range rest {
				f := strings.Fields(line)
				w, _ := strconv.Atoi(f[0])
				k, _ := strconv.Atoi(f[1])
				p, _ := strconv.ParseUint(f[2], 10, 64)
				acked[[2]int{w, k + trial*1_000_000}] = p
			}
			cmd.Wait()
			if stderr.Len() > 0 {
				t.Fatalf("child: %s", stderr.String())
			}
			// Reopen and check.
			l, err := Open(path, &Options{Backend: c.b})
			if err != nil {
				t.Fatalf("trial %d: reopen: %v", trial, err)
			}
			found := map[uint64][]byte{}
			rd, err := l.NewReader(l.Checkpoint(), nil)
			if err != nil {
				t.Fatal(err)
			}
			lastK := map[int]int{}
			for pos, data := range rd.All() {
				if len(data) < 16 {
					t.Fatalf("trial %d: record at %d has %d bytes", trial, pos, len(data))
				}
				w := int(binary.LittleEndian.Uint64(data))
				k := int(binary.LittleEndian.Uint64(data[8:]))
				if !bytes.Equal(data, payloadFor(w, k, len(data))) {
					t.Fatalf("trial %d: record at %d (writer %d, number %d) has wrong bytes", trial, pos, w, k)
				}
				if prev, ok := lastK[w]; ok && k <= prev {
					t.Fatalf("trial %d: writer %d's record %d at %d comes after its record %d", trial, w, k, pos, prev)
				}
				lastK[w] = k
				found[pos] = bytes.Clone(data)
			}
			if err := rd.Err(); err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			rd.Close()
			for key, pos := range acked {
				if key[1]/1_000_000 != trial {
					continue
				}
				data, ok := found[pos]
				if !ok {
					t.Fatalf("trial %d: acknowledged record (writer %d, number %d) at %d is missing; %v", trial, key[0], key[1]%1_000_000, pos, l.Report())
				}
				w, k := int(binary.LittleEndian.Uint64(data)), int(binary.LittleEndian.Uint64(data[8:]))
				if w != key[0] || k != key[1]%1_000_000 {
					t.Fatalf("trial %d: at %d found writer %d number %d, acknowledged writer %d number %d", trial, pos, w, k, key[0], key[1]%1_000_000)
				}
			}
			n := 0
			for key := range acked {
				if key[1]/1_000_000 == trial {
					n++
				}
			}
			t.Logf("trial %d: %d acknowledged, %d found; %v", trial, n, len(found), l.Report())
			// Next trial starts from an empty log, so positions of this
			// trial's records are not mixed up with the next one's.
			l.Close()
			os.Remove(path)
			l, err = Create(path, c.opts(Options{Capacity: 8 << 20}))
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
		}
	})
}
