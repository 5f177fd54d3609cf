//go:build linux

package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
	"github.com/ringlog/ringlog/wal"
)

// Faults of the environment a log lives in: a second writer process, a
// read-only mount, an I/O error on sync. Each must end in an error that
// names the file, never in a panic, a hang, or a log that serves bytes the
// disk does not hold.

func init() {
	childJobs["faults-lock"] = func(spec []byte) error {
		var j lockJob
		if err := json.Unmarshal(spec, &j); err != nil {
			return err
		}
		rep := lockChild(&j)
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
}

// lockJob is the job of the child of TestSecondWriterProcess: open for
// writing a log and a store the parent has open for writing.
type lockJob struct {
	Log   string `json:"log"`
	Run   uint64 `json:"run"` // the run of the records the parent wrote to Log
	Store string `json:"store"`
}

// lockReport is what the child saw.
type lockReport struct {
	LogErr    string // the open of Log for writing
	LogLocked bool   // LogErr wraps wal.ErrLocked
	// The read-only open of Log beside the writer: its error, the record
	// numbers of the parent's records it read, and anything else it read.
	ReadErr string
	Read    []int
	Bad     []string

	StoreErr    string // the open of Store
	StoreLocked bool   // StoreErr wraps wal.ErrLocked
	// The read-only open of the store's log beside the store: its error
	// and the records it read.
	StoreReadErr string
	StoreRecords int
}

func lockChild(j *lockJob) *lockReport {
	rep := &lockReport{}
	if l, err := wal.Open(j.Log, nil); err != nil {
		rep.LogErr, rep.LogLocked = err.Error(), errors.Is(err, wal.ErrLocked)
	} else {
		l.Close()
	}
	if l, err := wal.Open(j.Log, &wal.Options{ReadOnly: true}); err != nil {
		rep.ReadErr = err.Error()
	} else {
		found, bad := readAll(l)
		for id := range found {
			if id.run == j.Run && id.w == 0 {
				rep.Read = append(rep.Read, id.k)
			} else {
				bad = append(bad, fmt.Sprintf("%s was never written", id))
			}
		}
		slices.Sort(rep.Read)
		rep.Bad = bad
		if err := l.Close(); err != nil {
			rep.ReadErr = "close: " + err.Error()
		}
	}
	if db, err := logkv.Open(j.Store, nil); err != nil {
		rep.StoreErr, rep.StoreLocked = err.Error(), errors.Is(err, wal.ErrLocked)
	} else {
		db.Close()
	}
	if l, err := wal.Open(filepath.Join(j.Store, logkv.LogName), &wal.Options{ReadOnly: true}); err != nil {
		rep.StoreReadErr = err.Error()
	} else {
		rd, err := l.NewReader(l.Checkpoint(), nil)
		if err != nil {
			rep.StoreReadErr = err.Error()
		} else {
			for range rd.All() {
				rep.StoreRecords++
			}
			if err := rd.Err(); err != nil {
				rep.StoreReadErr = err.Error()
			}
			rd.Close()
		}
		l.Close()
	}
	return rep
}

// TestSecondWriterProcess: while this process has a log and a store open
// for writing, another process that opens them for writing gets
// wal.ErrLocked naming the file, and exits normally; it can open the log
// read-only beside the writer and read every record. The writer is not
// disturbed. (ring's TestSecondProducerIsLocked covers a second producer
// in the same process.)
func TestSecondWriterProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "locked.wal")
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 18})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }() // the last handle
	const run, n = 0x10c4, 50
	ctx := context.Background()
	for k := range n {
		if _, err := l.AppendSync(ctx, payload(recID{run, 0, k}, minPayload+k*7)); err != nil {
			t.Fatal(err)
		}
	}
	store := filepath.Join(dir, "store")
	db, err := logkv.Open(store, &logkv.Options{SegmentSize: 1 << 16, Capacity: 1 << 20, GCDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	for k := range n {
		id := recID{run, 1, k}
		if err := db.Put([]byte(kvKey(id, 0)), payload(id, minPayload+k), storage.Synced); err != nil {
			t.Fatal(err)
		}
	}

	cmd, err := childCommand("faults-lock", &lockJob{Log: path, Run: run, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	var rep lockReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child's report %q: %v", out, err)
	}
	t.Logf("child: %+v", rep)
	if !rep.LogLocked || !strings.Contains(rep.LogErr, path) {
		t.Errorf("second writer process opening %s: %q, want wal.ErrLocked naming the file", path, rep.LogErr)
	}
	if !rep.StoreLocked || !strings.Contains(rep.StoreErr, filepath.Join(store, logkv.LogName)) {
		t.Errorf("second writer process opening the store %s: %q, want wal.ErrLocked naming the log file", store, rep.StoreErr)
	}
	if rep.ReadErr != "" || len(rep.Bad) > 0 {
		t.Errorf("read-only open beside the writer: %q, %q", rep.ReadErr, rep.Bad)
	}
	if len(rep.Read) != n || rep.Read[0] != 0 || rep.Read[n-1] != n-1 {
		t.Errorf("read-only open beside the writer read records %v, want 0 .. %d", rep.Read, n-1)
	}
	if rep.StoreReadErr != "" || rep.StoreRecords == 0 {
		t.Errorf("read-only open of the store's log beside the store: %d records, %q", rep.StoreRecords, rep.StoreReadErr)
	}

	// The writers go on as if nothing happened, and everything is there
	// after a clean close (strict recovery: no defect at all).
	for k := n; k < 2*n; k++ {
		if _, err := l.AppendSync(ctx, payload(recID{run, 0, k}, minPayload+k*7)); err != nil {
			t.Fatal(err)
		}
		id := recID{run, 1, k}
		if err := db.Put([]byte(kvKey(id, 0)), payload(id, minPayload+k), storage.Synced); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = wal.Open(path, &wal.Options{Recovery: wal.RecoverStrict})
	if err != nil {
		t.Fatal(err)
	}
	found, bad := readAll(l)
	if len(found) != 2*n || len(bad) > 0 {
		t.Errorf("after the child: %d records of %d, %q", len(found), 2*n, bad)
	}
	db, err = logkv.Open(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 2 * n {
		id := recID{run, 1, k}
		v, err := db.Get([]byte(kvKey(id, 0)), nil)
		if err != nil || !bytes.Equal(v, payload(id, minPayload+k)) {
			t.Errorf("after the child: key %s: %d bytes, %v", kvKey(id, 0), len(v), err)
		}
	}
}

// eioDisk is a sync hook (osfile.SetHooks) that fails one fdatasync of a
// file with EIO, as a disk's write error would, and models what the disk
// holds under a directory: each file's content at its last successful
// sync, each directory's entries at its last fsync (as the powerloss
// suite's plState), except that the pages the failed sync should have
// written are left as Linux leaves them after a failed writeback: clean in
// the page cache, showing bytes the disk does not have. A later sync
// writes such a page only if something dirtied it again; until then the
// disk keeps its old bytes there.
type eioDisk struct {
	dir  string // the files under it are modelled
	name string // base name of the file whose sync fails

	mu      sync.Mutex
	hold    chan struct{}                // if set, the next sync of the file waits until it is closed
	held    chan struct{}                // closed when that sync waits
	fail    bool                         // the next sync of the file fails
	failed  int                          // syncs failed so far
	files   map[uint64][]byte            // inode -> content on disk
	entries map[string]map[string]uint64 // directory -> name -> inode on disk
	stale   map[uint64]map[int]bool      // inode -> offsets of pages clean in the cache, old on disk
}

func newEIODisk(dir, name string) *eioDisk {
	return &eioDisk{dir: dir, name: name, files: map[uint64][]byte{},
		entries: map[string]map[string]uint64{}, stale: map[uint64]map[int]bool{}}
}

// install puts the hooks in place until the test ends.
func (d *eioDisk) install(t *testing.T) {
	t.Cleanup(osfile.SetHooks(&osfile.Hooks{File: d.fileSync, Dir: d.dirSync}))
}

// holdNext makes the next sync of the file wait until release is called;
// held is closed once it waits.
func (d *eioDisk) holdNext() (held <-chan struct{}, release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hold, d.held = make(chan struct{}), make(chan struct{})
	hold := d.hold
	return d.held, func() { close(hold) }
}

// failNext makes the next sync of the file fail.
func (d *eioDisk) failNext() {
	d.mu.Lock()
	d.fail = true
	d.mu.Unlock()
}

func (d *eioDisk) failures() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

// staleCount is the number of pages the page cache shows and the disk
// does not hold.
func (d *eioDisk) staleCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, pages := range d.stale {
		n += len(pages)
	}
	return n
}

func (d *eioDisk) fileSync(f *os.File, sync func() error) error {
	if rel, err := filepath.Rel(d.dir, f.Name()); err != nil || strings.HasPrefix(rel, "..") {
		return sync()
	}
	fail := false
	if filepath.Base(f.Name()) == d.name {
		d.mu.Lock()
		hold, held := d.hold, d.held
		d.hold, d.held = nil, nil
		if hold == nil {
			fail, d.fail = d.fail, false
		}
		d.mu.Unlock()
		if hold != nil {
			// A held sync succeeds: failNext is for the one after it.
			close(held)
			<-hold
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	// The content through /proc, so that a write-only descriptor does
	// not matter.
	content := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if fail {
		// The sync fails, and the pages it was to write are marked
		// clean: a real sync does that here. They are those that differ
		// from the disk, which the model keeps as it was.
		if err := sync(); err != nil {
			return err
		}
		cur, err := os.ReadFile(content)
		if err != nil {
			return err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		old := d.files[st.Ino]
		if d.stale[st.Ino] == nil {
			d.stale[st.Ino] = map[int]bool{}
		}
		for p := 0; p < max(len(cur), len(old)); p += pageSize {
			if !bytes.Equal(zeroPadded(cur, p, p+pageSize), zeroPadded(old, p, p+pageSize)) {
				d.stale[st.Ino][p] = true
			}
		}
		d.failed++
		return syscall.EIO
	}
	// What the sync covers: the content when it begins, but for the
	// stale pages nothing dirtied since.
	cur, err := os.ReadFile(content)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old, stale := d.files[st.Ino], d.stale[st.Ino]
	snap := cur
	var written []int
	for p := range stale {
		dirty, err := pageDirty(f, p)
		if err != nil {
			return err
		}
		if dirty {
			written = append(written, p)
		} else if p < len(snap) {
			copy(snap[p:min(p+pageSize, len(snap))], zeroPadded(old, p, p+pageSize))
		}
	}
	if err := sync(); err != nil {
		return err
	}
	for _, p := range written {
		delete(stale, p)
	}
	d.files[st.Ino] = snap
	return nil
}

func (d *eioDisk) dirSync(dir string, sync func() error) error {
	if rel, err := filepath.Rel(d.dir, dir); err != nil || strings.HasPrefix(rel, "..") {
		return sync()
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	names := map[string]uint64{}
	for _, de := range des {
		var st unix.Stat_t
		if de.Type().IsRegular() && unix.Stat(filepath.Join(dir, de.Name()), &st) == nil {
			names[de.Name()] = st.Ino
		}
	}
	if err := sync(); err != nil {
		return err
	}
	d.mu.Lock()
	d.entries[dir] = names
	d.mu.Unlock()
	return nil
}

// image writes into out what the disk holds of directory dir: the files
// of its last fsync, each with its content on disk.
func (d *eioDisk) image(dir, out string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, ino := range d.entries[dir] {
		if err := os.WriteFile(filepath.Join(out, name), d.files[ino], 0o600); err != nil {
			return err
		}
	}
	return nil
}

// pageSize is the unit the model tracks. The page cache writes back whole
// folios, which may be larger; cachestat counts every page of a dirty
// folio as dirty, so the model writes a stale page when the kernel would.
const pageSize = 4096

// zeroPadded is b[from:to], zero-padded where b is shorter.
func zeroPadded(b []byte, from, to int) []byte {
	out := make([]byte, to-from)
	if from < len(b) {
		copy(out, b[from:min(to, len(b))])
	}
	return out
}

// pageDirty says whether the page of f at offset off is dirty (or being
// written back) in the page cache.
func pageDirty(f *os.File, off int) (bool, error) {
	var cs unix.Cachestat_t
	r := unix.CachestatRange{Off: uint64(off), Len: pageSize}
	if err := unix.Cachestat(uint(f.Fd()), &r, &cs, 0); err != nil {
		return false, fmt.Errorf("cachestat %s at offset %d: %w", f.Name(), off, err)
	}
	return cs.Dirty > 0 || cs.Writeback > 0, nil
}

// needCachestat skips the test where the kernel cannot tell dirty pages.
func needCachestat(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "cachestat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := pageDirty(f, 0); err != nil {
		t.Skipf("the model of a failed sync needs cachestat (Linux 6.5): %v", err)
	}
}

// durableDir is a temporary directory on a disk (fdatasync must write
// something for a failed one to mean anything), removed when the test
// ends.
func durableDir(t *testing.T) string {
	dir, err := os.MkdirTemp(osfile.DurableTempDir(), "ringlog-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if osfile.IsMemFS(osfile.FSType(dir)) {
		t.Skipf("%s is in memory: no disk to fail", dir)
	}
	return dir
}

// faultsWait polls cond until it holds; after a minute the test fails.
func faultsWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not after a minute", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// goroutinesIn counts the goroutines whose stack holds a call of fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn+"(") {
			count++
		}
	}
	return count
}

// TestSyncEIO: an fdatasync of the log fails with EIO while several
// writers wait in AppendSync for it (group commit). Every one of them gets
// the error, the log refuses writes from then on, and Close returns. The
// log reopened in the same process, whose page cache still shows the
// records of the failed sync, serves only records the disk holds after the
// reopen (the wal writes the bytes after the last proven sync again and
// syncs them), and every record acknowledged before the failure.
func TestSyncEIO(t *testing.T) {
	needCachestat(t)
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) { testSyncEIO(t, b) })
	}
}

func testSyncEIO(t *testing.T, backend string) {
	live := durableDir(t)
	d := newEIODisk(live, "eio.wal")
	d.install(t)
	path := filepath.Join(live, "eio.wal")
	bk, err := pager.ParseBackend(backend)
	if err != nil {
		t.Fatal(err)
	}
	o := &wal.Options{Backend: bk, Capacity: 2 << 20}
	l, err := wal.Create(path, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }() // the last handle
	// The records before the failure fill the first MiB, so that the
	// failed write lies in page-cache folios of its own: a folio is
	// written back whole, and one that also held the header would be
	// written with it whatever the log does.
	const run, before, waiters = 0xe10, 30, 4
	ctx := context.Background()
	acked := map[recID]bool{}
	var batch [][]byte
	for k := range before {
		batch = append(batch, payload(recID{run, 0, k}, 32<<10+k*13))
	}
	if _, err := l.AppendBatchSync(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for k := range before {
		acked[recID{run, 0, k}] = true
	}

	// One writer's sync is held while the others stage their records; the
	// next sync covers all of theirs, and fails.
	held, release := d.holdNext()
	first := make(chan error, 1)
	go func() {
		_, err := l.AppendSync(ctx, payload(recID{run, 1, 0}, 1000))
		first <- err
	}()
	<-held
	errs := make(chan error, waiters)
	for w := range waiters {
		go func() {
			_, err := l.AppendSync(ctx, payload(recID{run, 2 + w, 0}, 6000+w))
			errs <- err
		}()
	}
	// Metrics would wait for the held sync (it takes the ring's lock):
	// the appends are staged once their callers wait for durability.
	faultsWait(t, "the waiters' appends", func() bool { return goroutinesIn("wal.(*Log).waitFor") == 1+waiters })
	d.failNext()
	release()
	if err := <-first; err != nil {
		t.Fatalf("the writer whose sync succeeded: %v", err)
	}
	acked[recID{run, 1, 0}] = true
	for range waiters {
		if err := <-errs; !errors.Is(err, syscall.EIO) || !errors.Is(err, wal.ErrFailed) {
			t.Errorf("a writer waiting for the failed sync: %v, want wal.ErrFailed wrapping EIO", err)
		}
	}
	if n := d.failures(); n != 1 {
		t.Fatalf("%d syncs failed, want the one all waiters shared", n)
	}
	// The log refuses writes from now on.
	if _, err := l.AppendSync(ctx, payload(recID{run, 9, 0}, 100)); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("AppendSync after the failure: %v, want wal.ErrFailed", err)
	}
	if _, err := l.Append(ctx, payload(recID{run, 9, 1}, 100)); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Append after the failure: %v, want wal.ErrFailed", err)
	}
	if _, err := l.AppendBatchSync(ctx, [][]byte{payload(recID{run, 9, 2}, 100)}); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("AppendBatchSync after the failure: %v, want wal.ErrFailed", err)
	}
	if err := l.Sync(ctx); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Sync after the failure: %v, want wal.ErrFailed", err)
	}
	if err := l.Close(); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Close after the failure: %v, want wal.ErrFailed", err)
	}
	if d.staleCount() == 0 {
		t.Fatal("no page of the failed write is left that the cache shows and the disk lacks: the reopen below would prove nothing")
	}

	// Reopened in this process, with the failed pages still in the cache.
	l, err = wal.Open(path, o)
	if err != nil {
		t.Fatalf("reopen after the failure: %v", err)
	}
	t.Logf("reopen: %v", l.Report())
	served, bad := readAll(l)
	for _, b := range bad {
		t.Errorf("reopened log: %s", b)
	}
	for id := range acked {
		if _, ok := served[id]; !ok {
			t.Errorf("acknowledged %s is not served after the reopen", id)
		}
	}
	checkServedOnDisk(t, d, live, "eio.wal", o, served, acked)
	// And it takes writes again.
	if _, err := l.AppendSync(ctx, payload(recID{run, 10, 0}, 100)); err != nil {
		t.Errorf("AppendSync after the reopen: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("close after the reopen: %v", err)
	}
}

// checkServedOnDisk opens the log the disk holds now (a copy, elsewhere)
// and checks that it has every record served (the reopened log's) and
// every record acknowledged.
func checkServedOnDisk(t *testing.T, d *eioDisk, live, name string, o *wal.Options, served map[recID]uint64, acked map[recID]bool) {
	t.Helper()
	img := filepath.Join(durableDir(t), "disk")
	if err := d.image(live, img); err != nil {
		t.Fatal(err)
	}
	io := *o
	io.Replay = nil
	l, err := wal.Open(filepath.Join(img, name), &io)
	if err != nil {
		t.Fatalf("the log on disk after the reopen does not open: %v", err)
	}
	defer l.Close()
	disk, bad := readAll(l)
	for _, b := range bad {
		t.Errorf("the log on disk: %s", b)
	}
	for id, pos := range served {
		if _, ok := disk[id]; !ok {
			t.Errorf("the reopened log serves %s at position %d (file offset %d), which is not on disk", id, pos, l.FileOffset(pos))
		}
	}
	for id := range acked {
		if _, ok := disk[id]; !ok {
			t.Errorf("acknowledged %s is not on disk", id)
		}
	}
	t.Logf("reopened log serves %d records, the disk holds %d", len(served), len(disk))
}

// TestSyncEIOStore: the same failure under a key-value store. A Put with
// storage.Synced whose sync fails gets the error, and so does every write
// after it; the store reopened in the same process works and serves only
// values the disk holds, and every acknowledged one.
func TestSyncEIOStore(t *testing.T) {
	needCachestat(t)
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) { testSyncEIOStore(t, b) })
	}
}

func testSyncEIOStore(t *testing.T, backend string) {
	store := filepath.Join(durableDir(t), "store")
	d := newEIODisk(store, logkv.LogName)
	d.install(t)
	bk, err := pager.ParseBackend(backend)
	if err != nil {
		t.Fatal(err)
	}
	o := &logkv.Options{Backend: bk, SegmentSize: 1 << 20, Capacity: 16 << 20, GCDisabled: true}
	db, err := logkv.Open(store, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }() // the last handle
	const run, before, waiters = 0x5e10, 40, 4
	acked := map[string][]byte{}
	put := func(id recID, size int) error {
		return db.Put([]byte(kvKey(id, 0)), payload(id, size), storage.Synced)
	}
	// As in TestSyncEIO, the failed write lies past the first MiB.
	for k := range before {
		id := recID{run, 0, k}
		if err := db.Put([]byte(kvKey(id, 0)), payload(id, 32<<10+k), storage.NoSync); err != nil {
			t.Fatal(err)
		}
		acked[kvKey(id, 0)] = payload(id, 32<<10+k)
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	held, release := d.holdNext()
	first := make(chan error, 1)
	go func() { first <- put(recID{run, 1, 0}, 1000) }()
	<-held
	errs := make(chan error, waiters)
	for w := range waiters {
		go func() { errs <- put(recID{run, 2 + w, 0}, 6000+w) }()
	}
	faultsWait(t, "the waiters' puts", func() bool { return goroutinesIn("wal.(*Log).waitFor") == 1+waiters })
	d.failNext()
	release()
	if err := <-first; err != nil {
		t.Fatalf("the writer whose sync succeeded: %v", err)
	}
	acked[kvKey(recID{run, 1, 0}, 0)] = payload(recID{run, 1, 0}, 1000)
	for range waiters {
		if err := <-errs; !errors.Is(err, syscall.EIO) || !errors.Is(err, wal.ErrFailed) {
			t.Errorf("a synced Put waiting for the failed sync: %v, want wal.ErrFailed wrapping EIO", err)
		}
	}
	if n := d.failures(); n != 1 {
		t.Fatalf("%d syncs failed, want the one all waiters shared", n)
	}
	// Every write fails from now on, synced or not.
	if err := put(recID{run, 9, 0}, 100); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("synced Put after the failure: %v, want wal.ErrFailed", err)
	}
	if err := db.Put([]byte("nosync"), []byte("v"), storage.NoSync); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Put after the failure: %v, want wal.ErrFailed", err)
	}
	if err := db.Delete([]byte(kvKey(recID{run, 0, 0}, 0)), storage.Synced); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Delete after the failure: %v, want wal.ErrFailed", err)
	}
	var b storage.Batch
	b.Put([]byte("batch"), []byte("v"))
	if err := db.Apply(&b, storage.Synced); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Apply after the failure: %v, want wal.ErrFailed", err)
	}
	if err := db.Sync(); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Sync after the failure: %v, want wal.ErrFailed", err)
	}
	if err := db.Close(); !errors.Is(err, wal.ErrFailed) {
		t.Errorf("Close after the failure: %v, want wal.ErrFailed", err)
	}
	if d.staleCount() == 0 {
		t.Fatal("no page of the failed write is left that the cache shows and the disk lacks: the reopen below would prove nothing")
	}

	db, err = logkv.Open(store, o)
	if err != nil {
		t.Fatalf("reopen after the failure: %v", err)
	}
	rep := db.Report()
	t.Logf("reopen: index loaded %v (%v), %d entries replayed; %v", rep.IndexLoaded, rep.IndexError, rep.Replayed, rep.Log)
	served := storeContents(t, db, "the reopened store")
	for k, v := range acked {
		if !bytes.Equal(served[k], v) {
			t.Errorf("acknowledged key %s: %d bytes served after the reopen, want %d", k, len(served[k]), len(v))
		}
	}
	img := filepath.Join(durableDir(t), "disk")
	if err := d.image(store, img); err != nil {
		t.Fatal(err)
	}
	ondisk, err := logkv.Open(img, o)
	if err != nil {
		t.Fatalf("the store on disk after the reopen does not open: %v", err)
	}
	disk := storeContents(t, ondisk, "the store on disk")
	if err := ondisk.Close(); err != nil {
		t.Error(err)
	}
	for k, v := range served {
		if !bytes.Equal(disk[k], v) {
			t.Errorf("the reopened store serves key %s (%d bytes), the disk holds %d bytes of it", k, len(v), len(disk[k]))
		}
	}
	for k, v := range acked {
		if !bytes.Equal(disk[k], v) {
			t.Errorf("acknowledged key %s: %d bytes on disk, want %d", k, len(disk[k]), len(v))
		}
	}
	t.Logf("the reopened store serves %d keys, the disk holds %d", len(served), len(disk))
	// And it takes writes again.
	if err := put(recID{run, 10, 0}, 100); err != nil {
		t.Errorf("synced Put after the reopen: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("close after the reopen: %v", err)
	}
}

// storeContents reads every key of db and checks that each value is the
// one written to its key.
func storeContents(t *testing.T, db *logkv.DB, what string) map[string][]byte {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out := map[string][]byte{}
	for k, v := range storage.All(it) {
		id, _, ok := parseKVKey(string(k))
		if got, vok := parsePayload(v); !ok || !vok || got != id {
			t.Errorf("%s: key %q holds %d bytes never written to it", what, k, len(v))
		}
		out[string(k)] = bytes.Clone(v)
	}
	if err := it.Close(); err != nil {
		t.Errorf("%s: iterating: %v", what, err)
	}
	return out
}

// roMount bind-mounts src read-only on dst until the test ends, or skips
// the test with the reason it cannot.
func roMount(t *testing.T, src, dst string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a read-only bind mount needs root (and root ignores file modes, so a chmod is no substitute)")
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount %s on %s: %v", src, dst, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dst, 0); err != nil {
			t.Errorf("unmount %s: %v", dst, err)
			unix.Unmount(dst, unix.MNT_DETACH)
		}
	})
	if err := unix.Mount(src, dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("remount %s read-only: %v", dst, err)
	}
	if f, err := os.Create(filepath.Join(dst, "probe")); err == nil {
		f.Close()
		t.Skipf("%s takes writes after a read-only remount", dst)
	} else if !errors.Is(err, syscall.EROFS) {
		t.Skipf("probing the read-only mount %s: %v", dst, err)
	}
}

// TestReadOnlyMount: a log and a store on a read-only mount. Opening them
// for writing (or creating one) fails with an error that names the file;
// the log opened ReadOnly returns every record and refuses writes.
func TestReadOnlyMount(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	const run, n = 0x40, 200
	ctx := context.Background()
	for _, layout := range []wal.Layout{wal.Bounded, wal.Growing} {
		o := &wal.Options{Layout: layout, Capacity: 1 << 20, SegmentSize: 1 << 16}
		l, err := wal.Create(filepath.Join(src, fmt.Sprintf("%d.wal", layout)), o)
		if err != nil {
			t.Fatal(err)
		}
		for k := range n {
			if _, err := l.Append(ctx, payload(recID{run, int(layout), k}, minPayload+k*11)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db, err := logkv.Open(filepath.Join(src, "store"), &logkv.Options{SegmentSize: 1 << 16, Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for k := range n {
		id := recID{run, 9, k}
		if err := db.Put([]byte(kvKey(id, 0)), payload(id, minPayload+k), storage.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	roMount(t, src, dst)

	for _, layout := range []wal.Layout{wal.Bounded, wal.Growing} {
		path := filepath.Join(dst, fmt.Sprintf("%d.wal", layout))
		if _, err := wal.Open(path, nil); !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), path) {
			t.Errorf("opening %s for writing on a read-only mount: %v, want EROFS naming the file", path, err)
		}
		for _, b := range backends() {
			bk, _ := pager.ParseBackend(b)
			if bk == pager.Remap {
				continue // maps writable files only
			}
			l, err := wal.Open(path, &wal.Options{ReadOnly: true, Backend: bk})
			if err != nil {
				t.Errorf("opening %s read-only (%s) on a read-only mount: %v", path, b, err)
				continue
			}
			found, bad := readAll(l)
			for _, x := range bad {
				t.Errorf("%s read-only (%s): %s", path, b, x)
			}
			for k := range n {
				if _, ok := found[recID{run, int(layout), k}]; !ok {
					t.Errorf("%s read-only (%s): record %d of %d is missing", path, b, k, n)
				}
			}
			if _, err := l.Append(ctx, payload(recID{run, 99, 0}, minPayload)); !errors.Is(err, wal.ErrReadOnly) {
				t.Errorf("%s read-only (%s): Append: %v, want wal.ErrReadOnly", path, b, err)
			}
			if err := l.Close(); err != nil {
				t.Errorf("%s read-only (%s): close: %v", path, b, err)
			}
		}
	}
	path := filepath.Join(dst, "new.wal")
	if _, err := wal.Create(path, nil); !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), path) {
		t.Errorf("creating %s on a read-only mount: %v, want EROFS naming the file", path, err)
	}
	// The store has no read-only mode: it must refuse to open, cleanly.
	store := filepath.Join(dst, "store")
	if _, err := logkv.Open(store, nil); !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), store) {
		t.Errorf("opening the store %s on a read-only mount: %v, want EROFS naming it", store, err)
	}
	// Its log can be read as a log.
	l, err := wal.Open(filepath.Join(store, logkv.LogName), &wal.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("opening the store's log read-only on a read-only mount: %v", err)
	}
	defer l.Close()
	rd, err := l.NewReader(l.Checkpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	records := 0
	for range rd.All() {
		records++
	}
	if err := rd.Err(); err != nil || records == 0 {
		t.Errorf("reading the store's log on a read-only mount: %d records, %v", records, err)
	}
}
