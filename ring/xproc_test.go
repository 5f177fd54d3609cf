package ring

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ringlog/ringlog/pager"
)

// The cross-process test re-executes the test binary as a consumer.
const childEnv = "RINGLOG_RING_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := consumerChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// streamByte is the byte at position pos of the cross-process stream.
func streamByte(pos uint64) byte { return byte(pos*131 + pos>>9) }

// consumerChild attaches to consumer "xproc" of the ring at path from
// another process, reads total bytes, checks each, and releases them.
func consumerChild(spec string) error {
	var path, backend string
	var total uint64
	if _, err := fmt.Sscanf(spec, "%s %s %d", &path, &backend, &total); err != nil {
		return err
	}
	b, err := pager.ParseBackend(backend)
	if err != nil {
		return err
	}
	r, err := Open(path, &Options{ReadOnly: true, Backend: b})
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.Consumer("xproc", nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for c.Position() < total {
		if err := c.Wait(ctx); err != nil {
			return err
		}
		got, pos, err := c.Peek()
		if err != nil {
			return err
		}
		for i, v := range got {
			if want := streamByte(pos + uint64(i)); v != want {
				return fmt.Errorf("position %d: byte %#x, want %#x", pos+uint64(i), v, want)
			}
		}
		if err := c.Release(len(got)); err != nil {
			return err
		}
	}
	return c.Sync()
}

// TestCrossProcessConsumer streams 2 MiB through a 256 KiB ring (in the
// growing layout: 4 segments, moved between slots as the stream goes on)
// to a consumer in another process: the producer can only go on as the child
// releases, and every byte must arrive intact and in order.
func TestCrossProcessConsumer(t *testing.T) {
	if err := pager.Available(pager.Mmap); err != nil {
		t.Skipf("consumers in another process need shared memory, which this build cannot map: %v", err)
	}
	for _, layout := range []Layout{Bounded, Growing} {
		t.Run(layout.String(), func(t *testing.T) { testCrossProcessConsumer(t, layout) })
	}
}

func testCrossProcessConsumer(t *testing.T, layout Layout) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		path := filepath.Join(t.TempDir(), "ring")
		r, err := Create(path, layoutOptions(layout, 4*testCap, b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c, err := r.Consumer("xproc", nil) // registered before any byte is written
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		const total = 2 << 20
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		// The child maps read-only, which remap cannot do: it takes the
		// default read-only backend then.
		childBackend := b
		if b == pager.Remap {
			childBackend = pager.Auto
		}
		cmd.Env = append(os.Environ(), childEnv+"="+path+" "+childBackend.String()+" "+strconv.Itoa(total))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		buf := make([]byte, 10000)
		for pos := uint64(0); pos < total; {
			n := min(len(buf), int(total-pos))
			for i := range buf[:n] {
				buf[i] = streamByte(pos + uint64(i))
			}
			if pos%3 == 0 {
				if _, err := r.Write(ctx, buf[:n]); err != nil {
					t.Fatal(err)
				}
			} else {
				dst, err := r.Reserve(ctx, n)
				if err != nil {
					t.Fatal(err)
				}
				copy(dst, buf[:n])
				r.Commit(n)
			}
			pos += uint64(n)
		}
		if err := r.SyncData(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("consumer process: %v\n%s", err, stderr.String())
		}
		info := r.Consumers()
		if len(info) != 1 || info[0].Position != total || info[0].PID != 0 {
			t.Fatalf("after the child: %+v", info)
		}
	})
}
