//go:build linux

package torture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
	"github.com/ringlog/ringlog/wal"
)

// The enospc suite. A small file system is mounted for the run: an ext4
// image (made with -m 0, so that root's reserve does not hide the limit)
// on a loop device, or, where that cannot be had, a tmpfs of the same size
// (a full tmpfs fails writes the same way; nothing here needs durability
// across a reboot). Each trial, on that file system:
//
//   - a log in the growing layout is created, a filler file takes all but a
//     few segments' worth of the free space, and AppendSync adds records
//     until one fails. The failure must be clear: it wraps ENOSPC (or says
//     the disk is full) and names the log's file; the log then refuses
//     writes (ErrFailed) until reopened. Reopened on the full disk, and
//     again after the filler is removed, the log must hold every
//     acknowledged record, intact and in order, and nothing never written;
//     with space freed it must take appends again, durably (AppendSync,
//     reopen, read back).
//   - the same with a key-value store (storage/logkv) of small segments:
//     synced puts of new keys and overwrites until one fails; every
//     acknowledged key holds its last acknowledged value after reopening
//     (the key of the failed put may hold the failed value instead), and
//     with space freed synced puts work again and survive a reopen.
//
// Counts: acked, the records and keys acknowledged; lost, those missing
// (or holding an older value) after a reopen, and writes refused after
// space was freed; corrupt, wrong bytes, records out of order or never
// written; undetected, a full disk that no write reported, or reported
// with an error that neither wraps ENOSPC nor names the file.

func init() {
	register(Suite{Name: "enospc", order: 4, Quick: 1, Full: 10, Writes: true, run: runENOSPC,
		Doc: "a small file system (loop-mounted ext4, or tmpfs) filled up: a growing log and a key-value store write synced until the disk is full; the error must be clear, every acknowledged write must survive reopening, and writes must work again once space is freed"})
}

// smallFSSize is the size of the file system the suite mounts.
const smallFSSize = 32 << 20

func runENOSPC(ctx context.Context, c *Config, dir string, trials int, r *Result) error {
	fs, note, err := mountSmallFS(dir, smallFSSize)
	if err != nil {
		r.Skipped = err.Error()
		c.logf("enospc: skipped: %v", err)
		return nil
	}
	defer func() {
		if err := fs.unmount(); err != nil {
			c.logf("enospc: %v", err)
		}
	}()
	if note != "" {
		r.Skipped = note
		c.logf("enospc: %s", note)
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x656e6f737063))
	for t := 0; t < trials && ctx.Err() == nil; t++ {
		if err := enospcWAL(ctx, c, fs.dir, rng, r); err != nil {
			return err
		}
		if err := enospcKV(ctx, c, fs.dir, rng, r); err != nil {
			return err
		}
		r.Trials++
		c.progress("enospc", t+1, trials)
	}
	return nil
}

// smallFS is a file system mounted for a suite.
type smallFS struct {
	dir   string // mount point
	image string // the ext4 image, "" for a tmpfs
	kind  string
}

// mountSmallFS mounts a file system of size bytes under base: an ext4
// image on a loop device if possible, else a tmpfs (note says why). An
// error says why neither could be had.
func mountSmallFS(base string, size int64) (fs *smallFS, note string, err error) {
	if os.Geteuid() != 0 {
		return nil, "", errors.New("mounting a small file system needs root")
	}
	mnt, err := os.MkdirTemp(base, "mnt-")
	if err != nil {
		return nil, "", err
	}
	fs = &smallFS{dir: mnt}
	extErr := fs.mountExt4(base, size)
	if extErr == nil {
		return fs, "", nil
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		os.Remove(mnt)
		return nil, "", fmt.Errorf("no small file system: ext4 image: %v; tmpfs: mount at %s: %v", extErr, mnt, err)
	}
	fs.kind = "tmpfs"
	return fs, fmt.Sprintf("ext4 image unavailable (%v); ran on a %d MiB tmpfs", extErr, size>>20), nil
}

// mountExt4 makes an ext4 image of size bytes in dir and mounts it on a
// loop device at fs.dir.
func (fs *smallFS) mountExt4(dir string, size int64) error {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "fs-*.img")
	if err != nil {
		return err
	}
	image := f.Name()
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = run(mkfs, "-q", "-F", "-m", "0", image)
	}
	if err == nil {
		err = run("mount", "-t", "ext4", "-o", "loop", image, fs.dir)
	}
	if err != nil {
		os.Remove(image)
		return err
	}
	fs.image, fs.kind = image, "ext4"
	return nil
}

// run runs a command, its output in the error if it fails.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// unmount unmounts the file system (lazily if it stays busy) and removes
// the mount point and the image.
func (fs *smallFS) unmount() error {
	var err error
	for i := range 10 {
		if err = unix.Unmount(fs.dir, 0); err == nil || errors.Is(err, unix.EINVAL) {
			err = nil
			break
		}
		time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
	}
	if err != nil {
		if derr := unix.Unmount(fs.dir, unix.MNT_DETACH); derr != nil {
			return fmt.Errorf("unmount %s: %v; lazily: %v", fs.dir, err, derr)
		}
	}
	os.Remove(fs.dir)
	if fs.image != "" {
		os.Remove(fs.image)
	}
	return nil
}

// fill creates a file that takes all but about slack bytes of the free
// space of the file system at dir, and returns its name.
func fill(dir string, slack int64) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "", fmt.Errorf("statfs %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	f, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The file's own metadata takes some space too: step down until the
	// allocation fits.
	for n := free - slack; n > 0; n -= 64 << 10 {
		err = unix.Fallocate(int(f.Fd()), 0, 0, n)
		if !errors.Is(err, unix.ENOSPC) {
			break
		}
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("filling %s: %w", dir, err)
	}
	return f.Name(), nil
}

// freeSpace is the space left for an unprivileged user at dir.
func freeSpace(dir string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// diskFullError says whether err reports a full disk clearly: it wraps
// ENOSPC or says so, and names the file.
func diskFullError(err error, file string) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	full := errors.Is(err, syscall.ENOSPC) || strings.Contains(s, "no space left") || strings.Contains(s, "disk full") || strings.Contains(s, "disk is full")
	return full && strings.Contains(s, file)
}

// enospcWAL is the log part of a trial.
func enospcWAL(ctx context.Context, c *Config, fsDir string, rng *rand.Rand, r *Result) error {
	dir, err := os.MkdirTemp(fsDir, "wal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bs := backends()
	seg := int64(64<<10) << rng.IntN(3)
	lc := logConfig{Backend: bs[rng.IntN(len(bs))], Growing: true, SegmentSize: seg, Capacity: 1024 * seg, Policy: "always"}
	o, err := lc.options()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "enospc.wal")
	l, err := wal.Create(path, o)
	if err != nil {
		return fmt.Errorf("create %s (%v): %w", path, lc, err)
	}
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	filler, err := fill(fsDir, seg+rng.Int64N(6*seg))
	if err != nil {
		return err
	}
	defer func() { os.Remove(filler) }()
	free := freeSpace(fsDir)
	what := fmt.Sprintf("enospc (log %v, %d bytes free)", lc, free)

	// Append until the disk is full; the bound is far past what fits.
	run := rng.Uint64()
	maxSize := min(8192, l.MaxRecordSize())
	acked, attempted := 0, 0
	var werr error
	for written := int64(0); written < 4*(free+4*seg) && ctx.Err() == nil; {
		size := minPayload + rng.IntN(maxSize-minPayload)
		attempted++
		if _, werr = l.AppendSync(ctx, payload(recID{run, 0, acked}, size)); werr != nil {
			break
		}
		acked++
		written += int64(wal.RecordSize(size))
	}
	if ctx.Err() != nil {
		return nil
	}
	r.Acked += int64(acked)
	switch {
	case werr == nil:
		r.Undetected++
		r.fail("%s: %d records appended and acknowledged, none failed", what, acked)
		return nil
	case !diskFullError(werr, path):
		r.Undetected++
		r.fail("%s: the append that failed after %d records says neither that the disk is full nor which file: %v", what, acked, werr)
	}
	// Documented: the log refuses writes until reopened.
	if _, err := l.AppendSync(ctx, payload(recID{run, 1, 0}, minPayload)); !errors.Is(err, wal.ErrFailed) {
		r.Undetected++
		r.fail("%s: an append after the failed one returned %v, want ErrFailed", what, err)
	}
	l.Close() // may fail: the log has failed
	l = nil

	// Reopened on the full disk, then with space freed: every acknowledged
	// record is there; the failed one may be.
	missing := map[int]bool{}
	check := func(when string) *wal.Log {
		l, err := wal.Open(path, o)
		if err != nil {
			if !diskFullError(err, path) {
				r.Corrupt++
				r.fail("%s: reopen %s: %v", what, when, err)
			} else {
				c.logf("%s: reopen %s: %v", what, when, err)
			}
			return nil
		}
		checkRun(l, run, acked, attempted, missing, fmt.Sprintf("%s, reopened %s", what, when), r)
		return l
	}
	if l := check("on the full disk"); l != nil {
		l.Close()
	}
	if err := os.Remove(filler); err != nil {
		return err
	}
	l = check("after freeing space")
	if l == nil {
		r.Lost += int64(acked - len(missing))
		r.fail("%s: the log does not open after space was freed", what)
		return nil
	}
	// Appends work again, durably.
	more := 1 + rng.IntN(8)
	took := 0
	for k := range more {
		if _, err := l.AppendSync(ctx, payload(recID{run, 2, k}, minPayload+rng.IntN(maxSize-minPayload))); err != nil {
			r.Lost += int64(more - k)
			r.fail("%s: append %d after freeing space: %v", what, k, err)
			break
		}
		took++
	}
	r.Acked += int64(took)
	err = l.Close()
	l = nil
	if err != nil {
		r.fail("%s: close after freeing space: %v", what, err)
	}
	l2, err := wal.Open(path, o)
	if err != nil {
		r.Lost += int64(acked - len(missing) + took)
		r.fail("%s: reopen after the appends that followed freeing space: %v", what, err)
		return nil
	}
	defer l2.Close()
	found := readChecked(l2, r, func(b string) { r.fail("%s: %s", what, b) })
	for k := range took {
		if _, ok := found[recID{run, 2, k}]; !ok {
			r.Lost++
			r.fail("%s: record %d, appended after freeing space, is missing after reopening", what, k)
		}
	}
	for k := range acked {
		if _, ok := found[recID{run, 0, k}]; !ok && !missing[k] {
			r.Lost++
			missing[k] = true
			r.fail("%s: acknowledged record %d is missing at the last reopen", what, k)
		}
	}
	return nil
}

// checkRun reads l and checks the records of run, writer 0: records 0 to
// acked-1 must be there (those missing are counted lost, once, and added
// to missing); none past attempted may be; every record must be intact
// and in order.
func checkRun(l *wal.Log, run uint64, acked, attempted int, missing map[int]bool, what string, r *Result) {
	found := readChecked(l, r, func(b string) { r.fail("%s: %s", what, b) })
	for id := range found {
		if id.run != run || id.w != 0 || id.k >= attempted {
			r.Corrupt++
			r.fail("%s: %s was never written", what, id)
		}
	}
	for k := range acked {
		if _, ok := found[recID{run, 0, k}]; !ok && !missing[k] {
			missing[k] = true
			r.Lost++
			r.fail("%s: acknowledged record %d is missing; %v", what, k, l.Report())
		}
	}
}

// enospcKV is the key-value part of a trial.
func enospcKV(ctx context.Context, c *Config, fsDir string, rng *rand.Rand, r *Result) error {
	dir, err := os.MkdirTemp(fsDir, "kv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bs := backends()
	seg := int64(64<<10) << rng.IntN(3)
	lc := logConfig{Backend: bs[rng.IntN(len(bs))], Growing: true, SegmentSize: seg, Capacity: 1024 * seg, Policy: "always"}
	o, err := kvOptions(lc)
	if err != nil {
		return err
	}
	db, err := logkv.Open(dir, o)
	if err != nil {
		return fmt.Errorf("open store %s (%v): %w", dir, lc, err)
	}
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	filler, err := fill(fsDir, seg+rng.Int64N(6*seg))
	if err != nil {
		return err
	}
	defer func() { os.Remove(filler) }()
	free := freeSpace(fsDir)
	what := fmt.Sprintf("enospc (store %v, %d bytes free)", lc, free)
	logPath := filepath.Join(dir, logkv.LogName)

	// Key n's value of version v: payload(run, n, v). A third of the puts
	// overwrite an earlier key (garbage for the cleaner).
	run := rng.Uint64()
	type version struct{ v, size int }
	acked := map[int]version{}
	failedKey, failed := -1, version{}
	next := 0
	var werr error
	for i, written := 0, int64(0); written < 4*(free+4*seg) && ctx.Err() == nil; i++ {
		n := next
		if i%3 == 2 {
			n = rng.IntN(next)
		} else {
			next++
		}
		ver := version{i, minPayload + rng.IntN(4096)}
		if werr = db.Put(enospcKey(run, n), payload(recID{run, n, ver.v}, ver.size), storage.Synced); werr != nil {
			failedKey, failed = n, ver
			break
		}
		acked[n] = ver
		written += int64(ver.size)
	}
	if ctx.Err() != nil {
		return nil
	}
	r.Acked += int64(len(acked))
	switch {
	case werr == nil:
		r.Undetected++
		r.fail("%s: %d keys written and acknowledged, no put failed", what, len(acked))
		return nil
	case !diskFullError(werr, logPath) && !diskFullError(werr, dir):
		r.Undetected++
		r.fail("%s: the put that failed after %d keys says neither that the disk is full nor which file: %v", what, len(acked), werr)
	}
	db.Close() // may fail: the store's log has failed
	db = nil

	lost := map[int]bool{}
	check := func(db *logkv.DB, when string) {
		for n, ver := range acked {
			v, err := db.Get(enospcKey(run, n), nil)
			switch {
			case err == nil && bytes.Equal(v, payload(recID{run, n, ver.v}, ver.size)):
			case err == nil && n == failedKey && bytes.Equal(v, payload(recID{run, n, failed.v}, failed.size)):
			case err == nil:
				r.Corrupt++
				if id, ok := parsePayload(v); !ok || id.run != run || id.w != n {
					r.fail("%s, reopened %s: key %d has a value never written to it (%d bytes)", what, when, n, len(v))
				} else if !lost[n] {
					// An older version of the key: the acknowledged put is lost.
					r.Corrupt--
					r.Lost++
					lost[n] = true
					r.fail("%s, reopened %s: key %d holds version %d, version %d was acknowledged", what, when, n, id.k, ver.v)
				}
			case errors.Is(err, storage.ErrNotFound):
				if !lost[n] {
					r.Lost++
					lost[n] = true
					r.fail("%s, reopened %s: acknowledged key %d is missing", what, when, n)
				}
			default:
				r.Corrupt++
				r.fail("%s, reopened %s: get key %d: %v", what, when, n, err)
			}
		}
		// No key or value that was never written.
		it, err := db.NewIter(nil)
		if err != nil {
			r.Corrupt++
			r.fail("%s, reopened %s: iterator: %v", what, when, err)
			return
		}
		for k, v := range storage.All(it) {
			var kr uint64
			var n int
			id, ok := parsePayload(v)
			if _, err := fmt.Sscanf(string(k), "e/%016x/%08d", &kr, &n); err != nil || kr != run || !ok || id.run != run || id.w != n || n >= next+8 {
				r.Corrupt++
				r.fail("%s, reopened %s: key %q (%d-byte value) was never written", what, when, k, len(v))
			}
		}
		if err := it.Close(); err != nil {
			r.Corrupt++
			r.fail("%s, reopened %s: iterating: %v", what, when, err)
		}
	}
	if db, err := logkv.Open(dir, o); err != nil {
		if !diskFullError(err, dir) {
			r.Corrupt++
			r.fail("%s: reopen on the full disk: %v", what, err)
		} else {
			c.logf("%s: reopen on the full disk: %v", what, err)
		}
	} else {
		check(db, "on the full disk")
		db.Close() // may fail: the index checkpoint does not fit
	}
	if err := os.Remove(filler); err != nil {
		return err
	}
	db, err = logkv.Open(dir, o)
	if err != nil {
		r.Lost += int64(len(acked) - len(lost))
		r.fail("%s: the store does not open after space was freed: %v", what, err)
		return nil
	}
	check(db, "after freeing space")
	// Writes work again, durably.
	more := 1 + rng.IntN(8)
	took := map[int]version{}
	for k := range more {
		n := next + k
		ver := version{0, minPayload + rng.IntN(4096)}
		if err := db.Put(enospcKey(run, n), payload(recID{run, n, 0}, ver.size), storage.Synced); err != nil {
			r.Lost += int64(more - k)
			r.fail("%s: put after freeing space: %v", what, err)
			break
		}
		took[n] = ver
	}
	r.Acked += int64(len(took))
	err = db.Close()
	db = nil
	if err != nil {
		r.fail("%s: close after freeing space: %v", what, err)
	}
	for n, ver := range took {
		acked[n] = ver
	}
	db, err = logkv.Open(dir, o)
	if err != nil {
		r.Lost += int64(len(acked) - len(lost))
		r.fail("%s: reopen after the puts that followed freeing space: %v", what, err)
		return nil
	}
	check(db, "after the puts that followed freeing space")
	return nil
}

func enospcKey(run uint64, n int) []byte { return fmt.Appendf(nil, "e/%016x/%08d", run, n) }
