package ring

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
)

// BenchmarkWritePath decides the producer path for durable files: 1 KiB
// records stored straight into the mapping (Reserve/Commit) against records
// staged in a 1 MiB buffer and written with one pwrite per MiB (Writer), on
// the default file system and on tmpfs, with an fdatasync after every MiB
// and with none. The ring is 64 MiB and is written round and round, so
// pages cleaned by a sync are dirtied again on the next lap.
func BenchmarkWritePath(b *testing.B) {
	dirs := map[string]string{"disk": b.TempDir()}
	if osfile.FSType("/dev/shm") == "tmpfs" {
		d, err := os.MkdirTemp("/dev/shm", "ringlog-bench-")
		if err == nil {
			defer os.RemoveAll(d)
			dirs["tmpfs"] = d
		}
	}
	const recSize, syncEvery, capacity = 1 << 10, 1 << 20, 64 << 20
	rec := make([]byte, recSize)
	for i := range rec {
		rec[i] = byte(i)
	}
	for _, fs := range []string{"disk", "tmpfs"} {
		dir, ok := dirs[fs]
		if !ok {
			continue
		}
		for _, sync := range []bool{false, true} {
			for _, path := range []string{"mapped", "staged"} {
				name := fmt.Sprintf("fs=%s(%s)/sync=%v/path=%s", fs, osfile.FSType(dir), map[bool]string{false: "none", true: "1MiB"}[sync], path)
				b.Run(name, func(b *testing.B) {
					file := filepath.Join(dir, fmt.Sprintf("ring-%s-%v", path, sync))
					os.Remove(file)
					r, err := Create(file, &Options{Capacity: capacity, Backend: pager.Auto})
					if err != nil {
						b.Fatal(err)
					}
					defer os.Remove(file)
					defer r.Close()
					w := r.NewWriter(syncEvery)
					ctx := context.Background()
					// One untimed lap first: the steady state of a log
					// that has been running, pages mapped and in cache.
					write := func(records int) {
						for i := 1; i <= records; i++ {
							appendOne(b, r, w, path, rec)
							if i%(syncEvery/recSize) == 0 {
								if err := w.Flush(ctx); err != nil {
									b.Fatal(err)
								}
								if sync {
									if err := r.SyncData(); err != nil {
										b.Fatal(err)
									}
								}
							}
						}
					}
					write(capacity / recSize)
					b.SetBytes(recSize)
					b.ResetTimer()
					write(b.N)
					if err := w.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				})
			}
		}
	}
}

func appendOne(b *testing.B, r *Ring, w *Writer, path string, rec []byte) {
	if path == "mapped" {
		buf, err := r.TryReserve(len(rec))
		if err != nil {
			b.Fatal(err)
		}
		copy(buf, rec)
		r.Commit(len(rec))
	} else if _, err := w.Append(context.Background(), rec); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSPSC moves messages from one producer goroutine to one consumer
// goroutine through the ring's in-memory path: Reserve/Commit per message,
// the consumer peeking whatever has arrived and releasing it in one go.
func BenchmarkSPSC(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			r, _ := create(b, pager.Auto, 16<<20)
			c, _ := r.Consumer("c", nil)
			ctx := context.Background()
			done := make(chan error, 1)
			go func() {
				for got := 0; got < b.N*size; {
					p, _, err := c.Peek()
					if err != nil {
						done <- err
						return
					}
					if len(p) == 0 {
						c.Wait(ctx)
						continue
					}
					got += len(p)
					c.Release(len(p))
				}
				done <- nil
			}()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf, err := r.Reserve(ctx, size)
				if err != nil {
					b.Fatal(err)
				}
				buf[0], buf[size-1] = byte(i), byte(i)
				r.Commit(size)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
