package osfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMkdirAllSyncsParents: each directory MkdirAll creates has its entry
// synced (its parent fsynced), outermost first; existing ones are not.
func TestMkdirAllSyncsParents(t *testing.T) {
	base := t.TempDir()
	var synced []string
	defer SetHooks(&Hooks{Dir: func(dir string, sync func() error) error {
		synced = append(synced, dir)
		return sync()
	}})()
	if err := MkdirAll(filepath.Join(base, "a", "b", "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := []string{base, filepath.Join(base, "a"), filepath.Join(base, "a", "b")}
	if !slices.Equal(synced, want) {
		t.Fatalf("synced %q, want %q", synced, want)
	}
	if fi, err := os.Stat(filepath.Join(base, "a", "b", "c")); err != nil || !fi.IsDir() {
		t.Fatalf("not created: %v", err)
	}
	synced = nil
	if err := MkdirAll(filepath.Join(base, "a", "b", "c"), 0o755); err != nil || len(synced) != 0 {
		t.Fatalf("existing directory: err %v, synced %q", err, synced)
	}
}

// TestHooksSeeSyncs: Fdatasync and SyncDir go through the hooks, and a
// hook's error is what the caller gets.
func TestHooksSeeSyncs(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var files, dirs int
	restore := SetHooks(&Hooks{
		File: func(*os.File, func() error) error { files++; return os.ErrDeadlineExceeded },
		Dir:  func(string, func() error) error { dirs++; return nil },
	})
	if err := Fdatasync(f); err == nil || files != 1 {
		t.Fatalf("Fdatasync: err %v, hook calls %d", err, files)
	}
	if err := SyncDir(filepath.Dir(f.Name())); err != nil || dirs != 1 {
		t.Fatalf("SyncDir: err %v, hook calls %d", err, dirs)
	}
	restore()
	if err := Fdatasync(f); err != nil || files != 1 {
		t.Fatalf("after restore: err %v, hook calls %d", err, files)
	}
}
