//go:build linux

package ring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringlog/ringlog/pager"
)

// unwritable returns a directory showing dir's files where this process
// cannot open them for writing: a read-only bind mount of dir (root, whom
// file modes do not stop), else dir with its files' write bits cleared.
func unwritable(t *testing.T, dir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			if err := os.Chmod(filepath.Join(dir, de.Name()), 0o400); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dst := t.TempDir()
	if err := unix.Mount(dir, dst, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount %s on %s: %v", dir, dst, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dst, 0); err != nil {
			t.Errorf("unmount %s: %v", dst, err)
			unix.Unmount(dst, unix.MNT_DETACH)
		}
	})
	if err := unix.Mount(dir, dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("remount %s read-only: %v", dst, err)
	}
	return dst
}

// TestReadOnlyFile: a ring whose file cannot be opened for writing (a
// read-only mount) opens ReadOnly and reads what the file holds, with
// consumers private to the handle; a producer's open fails naming the file.
func TestReadOnlyFile(t *testing.T) {
	for _, layout := range []Layout{Bounded, Growing} {
		t.Run(layout.String(), func(t *testing.T) {
			src := t.TempDir()
			path := filepath.Join(src, "ring")
			r, err := Create(path, &Options{Capacity: 4 * testCap, Layout: layout, SegmentSize: testCap})
			if err != nil {
				t.Fatal(err)
			}
			c, err := r.Consumer("alpha", nil)
			if err != nil {
				t.Fatal(err)
			}
			data := pattern(3, 40000)
			produce(t, r, data)
			if err := c.Release(1000); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			path = filepath.Join(unwritable(t, src), "ring")
			if _, err := Open(path, nil); !errors.Is(err, syscall.EROFS) && !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), path) {
				t.Fatalf("producer open of an unwritable file: %v, want EROFS or EACCES naming the file", err)
			}
			for _, b := range []pager.Backend{pager.Mmap, pager.Copy} {
				if pager.Available(b) != nil {
					continue
				}
				r, err := Open(path, &Options{ReadOnly: true, Backend: b})
				if err != nil {
					t.Fatalf("read-only open (%v) of an unwritable file: %v", b, err)
				}
				if r.Head() != uint64(len(data)) {
					t.Errorf("read-only (%v): head %d, want %d", b, r.Head(), len(data))
				}
				c, err := r.Consumer("alpha", nil)
				if err != nil {
					t.Fatalf("read-only (%v): attaching a consumer: %v", b, err)
				}
				got, pos, err := c.Peek()
				if err != nil || pos != 1000 || !bytes.Equal(got, data[1000:1000+len(got)]) || len(got) == 0 {
					t.Errorf("read-only (%v): peek: position %d, %d bytes, %v", b, pos, len(got), err)
				}
				if err := c.Release(2000); err != nil {
					t.Errorf("read-only (%v): release: %v", b, err)
				}
				if err := c.Sync(); !errors.Is(err, pager.ErrReadOnly) {
					t.Errorf("read-only (%v): consumer sync: %v, want pager.ErrReadOnly", b, err)
				}
				if _, err := r.TryReserve(10); !errors.Is(err, ErrReadOnly) {
					t.Errorf("read-only (%v): reserve: %v, want ErrReadOnly", b, err)
				}
				if err := r.Close(); err != nil {
					t.Errorf("read-only (%v): close: %v", b, err)
				}
			}
		})
	}
}
