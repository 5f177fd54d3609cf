package osfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestPreallocateAndZeroes(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Preallocate(f, 3<<20+5); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 3<<20+5 {
		t.Fatalf("size %d after Preallocate", st.Size())
	}
	f.WriteAt([]byte{9, 9, 9}, 100)
	if err := WriteZeroes(f, 99, 2); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	f.ReadAt(got, 98)
	if got[0] != 0 || got[1] != 0 || got[2] != 0 || got[3] != 9 {
		t.Fatalf("bytes 98..101 = %v", got)
	}
	if err := Fdatasync(f); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Dir(f.Name())); err != nil {
		t.Fatal(err)
	}
	if FSType(f.Name()) == "" {
		t.Fatal("empty file system name")
	}
}

func TestTryLock(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		t.Skip("no file locks on this platform")
	}
	path := filepath.Join(t.TempDir(), "f")
	a, _ := os.Create(path)
	defer a.Close()
	if err := TryLock(a); err != nil {
		t.Fatal(err)
	}
	b, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer b.Close()
	err := TryLock(b)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	a.Close()
	if err := TryLock(b); err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
	if !ProcessAlive(os.Getpid()) || ProcessAlive(-1) {
		t.Fatal("ProcessAlive is wrong about this process")
	}
}
