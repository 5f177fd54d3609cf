//go:build linux

package torture

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
	"github.com/ringlog/ringlog/storage/logkv"
	"github.com/ringlog/ringlog/wal"
)

// The powerloss suite. Writers append to a log in this process (as the
// crash suite's child does) while every fdatasync and directory fsync the
// library makes goes through a hook (osfile.SetHooks) that snapshots what
// the sync covers: a file's whole content as it was when its sync began
// (whatever wrote it: pwrite or stores into a shared mapping, which share
// the page cache), a directory's entries when its fsync began. At a random
// moment the suite takes the files as they are (the page cache) and the
// acknowledgements made so far, and builds what a power cut at that moment
// could leave on disk:
//
//   - a directory holds the entries of its last fsync; an entry created,
//     replaced or removed since may or may not have reached the disk;
//   - a file holds the content of its last sync; each 4 KiB page changed
//     since is either not written back, written back, or torn (each
//     512-byte sector old or new); sectors past the synced size, or zero in
//     it (space never synced with data: a fresh or unwritten extent), may
//     also read as zeroes or garbage; a size change not synced may be lost.
//
// The log is recovered from that image (in another directory, default
// recovery mode) and checked as in the crash suite. Writing and syncing
// go on until the writers are stopped after the cut, so the hook sees the
// same interleavings as without it.
//
// The suite must be able to fail: with Config.skipSyncs (tests only) every
// sync is skipped and reported as done, and the suite counts lost records.

func init() {
	register(Suite{Name: "powerloss", order: 2, Quick: 500, Full: 10000, Writes: true, run: runPowerloss,
		Doc: "writers append while every sync is observed; at a random moment the files are replaced by what a power cut could leave (synced data kept; the rest kept, dropped, zeroed or torn per page and sector; unsynced directory entries lost) and recovered"})
}

// newPowerlossTrial makes a trial's directories under dir: live, where
// the writers write, and image, where the power cut's image goes, and
// watches the syncs under live until unhook; cleanup unhooks and removes
// both directories.
func newPowerlossTrial(dir string) (live, image string, st *plState, unhook, cleanup func(), err error) {
	live = filepath.Join(dir, "live")
	image = filepath.Join(dir, "image")
	os.RemoveAll(live)
	os.RemoveAll(image)
	if err := os.Mkdir(live, 0o755); err != nil {
		return "", "", nil, nil, nil, err
	}
	st = &plState{dir: live, files: map[uint64][]byte{}, entries: map[string]map[string]dirent{}}
	restore := osfile.SetHooks(&osfile.Hooks{File: st.fileSync, Dir: st.dirSync})
	var once sync.Once
	unhook = func() { once.Do(restore) }
	cleanup = func() {
		unhook()
		os.RemoveAll(live)
		os.RemoveAll(image)
	}
	return live, image, st, unhook, cleanup, nil
}

// plState is the hook's record of what is durable.
type plState struct {
	mu      sync.Mutex
	dir     string
	skip    atomic.Bool                  // every sync skipped (and reported done)
	files   map[uint64][]byte            // inode -> content at its last completed sync
	entries map[string]map[string]dirent // directory -> its entries at its last fsync
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// fileSync is the hook of osfile.Fdatasync.
func (s *plState) fileSync(f *os.File, sync func() error) error {
	if s.skip.Load() {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !within(s.dir, f.Name()) {
		return sync()
	}
	// What the sync covers: the content when it begins (read through
	// /proc so that a write-only descriptor does not matter).
	snap, rerr := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err := sync(); err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	s.mu.Lock()
	s.files[inodeOf(fi)] = snap
	s.mu.Unlock()
	return nil
}

// dirSync is the hook of osfile.SyncDir.
func (s *plState) dirSync(dir string, sync func() error) error {
	if s.skip.Load() {
		return nil
	}
	if !within(s.dir, dir) {
		return sync()
	}
	names, lerr := listDir(dir)
	if err := sync(); err != nil {
		return err
	}
	if lerr != nil {
		return lerr
	}
	s.mu.Lock()
	s.entries[dir] = names
	s.mu.Unlock()
	return nil
}

func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !filepath.IsAbs(rel) && (len(rel) < 3 || rel[:3] != "../")
}

// dirent is a directory entry: a regular file or a directory.
type dirent struct {
	ino uint64
	dir bool
}

// listDir lists the regular files and directories of dir.
func listDir(dir string) (map[string]dirent, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]dirent{}
	for _, de := range des {
		if !de.Type().IsRegular() && !de.IsDir() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out[de.Name()] = dirent{inodeOf(fi), de.IsDir()}
	}
	return out, nil
}

// cutImage is the state at the moment of the cut.
type cutImage struct {
	files   map[uint64][]byte            // synced contents
	entries map[string]map[string]dirent // synced directory entries
	now     map[string]map[string]dirent // directory entries now
	current map[uint64][]byte            // contents now (the page cache)
}

// cut takes the synced state, and the current state of the tree at root.
func (s *plState) cut(root string) (*cutImage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := &cutImage{files: map[uint64][]byte{}, entries: map[string]map[string]dirent{}, now: map[string]map[string]dirent{}, current: map[uint64][]byte{}}
	for ino, b := range s.files {
		im.files[ino] = b
	}
	for d, names := range s.entries {
		im.entries[d] = names
	}
	var walk func(d string) error
	walk = func(d string) error {
		names, err := listDir(d)
		if err != nil {
			return err
		}
		im.now[d] = names
		for name, e := range names {
			p := filepath.Join(d, name)
			if e.dir {
				if err := walk(p); err != nil && !os.IsNotExist(err) {
					return err
				}
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				continue // removed meanwhile: as if the cut came before it
			}
			im.current[e.ino] = b
		}
		return nil
	}
	return im, walk(root)
}

const (
	plPage   = 4096
	plSector = 512
)

// build writes into out what a power cut could leave of directory dir
// (and, recursively, of the directories in it).
func (im *cutImage) build(rng *rand.Rand, dir, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	synced, now := im.entries[dir], im.now[dir]
	names := map[string]bool{}
	for n := range synced {
		names[n] = true
	}
	for n := range now {
		names[n] = true
	}
	for name := range names {
		old, inOld := synced[name]
		cur, inNow := now[name]
		var e dirent
		switch {
		case inOld && inNow && old == cur:
			e = cur
		case rng.IntN(2) == 0: // the change of the entry reached the disk
			if !inNow {
				continue
			}
			e = cur
		default: // it did not
			if !inOld {
				continue
			}
			e = old
		}
		if e.dir {
			if err := im.build(rng, filepath.Join(dir, name), filepath.Join(out, name)); err != nil {
				return err
			}
			continue
		}
		b := mixPages(rng, im.files[e.ino], im.current[e.ino])
		if err := os.WriteFile(filepath.Join(out, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// mixPages is what a power cut could leave of a file whose synced content
// is old and whose cached content is cur.
func mixPages(rng *rand.Rand, old, cur []byte) []byte {
	size := len(old)
	if len(cur) != len(old) && rng.IntN(2) == 0 {
		size = len(cur) // the size change reached the disk
	}
	out := make([]byte, size)
	copy(out, old)
	at := func(b []byte, i int) []byte { // sector-sized window of b at i, zero-padded
		var s [plSector]byte
		if i < len(b) {
			copy(s[:], b[i:])
		}
		return s[:]
	}
	for p := 0; p < size; p += plPage {
		end := min(p+plPage, size)
		o, c := pad(old, p, end), pad(cur, p, end)
		if bytes.Equal(o, c) {
			continue
		}
		mode := rng.IntN(4)
		for s := p; s < end; s += plSector {
			se := min(s+plSector, end)
			osec, csec := at(old, s)[:se-s], at(cur, s)[:se-s]
			unsynced := s >= len(old) || allZero(osec) // nothing synced lives here
			var b []byte
			switch mode {
			case 0: // not written back
				b = osec
			case 1: // written back
				b = csec
			case 2: // torn
				if rng.IntN(2) == 0 {
					b = osec
				} else {
					b = csec
				}
			default: // torn, and never-synced space may read as zeroes or garbage
				switch {
				case unsynced && rng.IntN(3) == 0:
					b = make([]byte, se-s)
				case unsynced && rng.IntN(2) == 0:
					b = make([]byte, se-s)
					for i := range b {
						b[i] = byte(rng.Uint32())
					}
				case rng.IntN(2) == 0:
					b = osec
				default:
					b = csec
				}
			}
			copy(out[s:se], b)
		}
	}
	return out
}

// pad is b[from:to], zero-padded where b is shorter.
func pad(b []byte, from, to int) []byte {
	out := make([]byte, to-from)
	if from < len(b) {
		copy(out, b[from:min(to, len(b))])
	}
	return out
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func runPowerloss(ctx context.Context, c *Config, dir string, trials int, r *Result) error {
	rng := rand.New(rand.NewPCG(c.Seed, 0x706f776572))
	for t := 0; t < trials && ctx.Err() == nil; t++ {
		if err := powerlossTrial(ctx, c, dir, rng, r); err != nil {
			return err
		}
		r.Trials++
		c.progress("powerloss", t+1, trials)
	}
	return nil
}

func powerlossTrial(ctx context.Context, c *Config, dir string, rng *rand.Rand, r *Result) error {
	if rng.IntN(3) == 0 {
		return powerlossKVTrial(ctx, c, dir, rng, r)
	}
	lc := randomLogConfig(rng)
	live, image, st, restore, cleanup, err := newPowerlossTrial(dir)
	if err != nil {
		return err
	}
	defer cleanup()

	path := filepath.Join(live, "pl.wal")
	o, err := lc.options()
	if err != nil {
		return err
	}
	l, err := wal.Create(path, o)
	if err != nil {
		return fmt.Errorf("create (%v): %w", lc, err)
	}
	st.skip.Store(c.skipSyncs) // created durably, then no sync is real
	job := &crashJob{Path: path, Log: lc, Run: rng.Uint64(), Seed: rng.Uint64(), Writers: 1 + rng.IntN(4)}
	var (
		mu    sync.Mutex
		acked = map[recID]uint64{}
		floor uint64
		first = make(chan struct{})
		once  sync.Once
	)
	wctx, stop := context.WithCancel(ctx)
	werr := make(chan error, 1)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		werr <- writeWAL(wctx, l, job, func(pos uint64, ids ...recID) {
			mu.Lock()
			for _, id := range ids {
				acked[id] = pos
			}
			mu.Unlock()
			once.Do(func() { close(first) })
		}, func(to uint64) {
			mu.Lock()
			floor = max(floor, to)
			mu.Unlock()
		})
	}()
	// The cut: at a random moment after the first acknowledgement.
	select {
	case <-first:
	case <-wdone:
	case <-time.After(30 * time.Second):
	}
	time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
	mu.Lock() // no acknowledgement is recorded while the state is taken
	im, cerr := st.cut(live)
	promised := map[recID]uint64{}
	for id, p := range acked {
		if p >= floor {
			promised[id] = p
		}
	}
	cutFloor := floor
	mu.Unlock()
	stop()
	if err := <-werr; err != nil {
		l.Close()
		return fmt.Errorf("writers (%v): %w", lc, err)
	}
	l.Close()
	restore()
	if cerr != nil {
		return cerr
	}
	if err := im.build(rng, live, image); err != nil {
		return err
	}
	r.Acked += int64(len(promised))
	checkImage(c, filepath.Join(image, "pl.wal"), lc, promised, cutFloor, rng, r)
	return nil
}

// checkImage recovers the log of a power-cut image and checks the
// promised records.
func checkImage(c *Config, path string, lc logConfig, promised map[recID]uint64, floor uint64, rng *rand.Rand, r *Result) {
	o, _ := lc.options()
	if bs := backends(); rng.IntN(2) == 0 {
		o.Backend, _ = pager.ParseBackend(bs[rng.IntN(len(bs))]) // recovery on another backend
	}
	o.Recovery = recoveryModes[rng.IntN(len(recoveryModes))]
	l, err := wal.Open(path, o)
	if err != nil {
		r.Lost += int64(len(promised))
		r.fail("powerloss (%v, %v recovery): reopen: %v", lc, o.Recovery, err)
		c.logf("powerloss (%v, %v recovery): reopen: %v", lc, o.Recovery, err)
		return
	}
	defer reopenStrict(path, o, lc, r)
	defer l.Close()
	found := readChecked(l, r, func(b string) { r.fail("powerloss (%v): %s; %v", lc, b, l.Report()) })
	for id, p := range promised {
		if _, ok := found[id]; !ok {
			r.Lost++
			r.fail("powerloss (%v): acknowledged %s at position %d (truncated to %d) is missing; %v", lc, id, p, floor, l.Report())
		}
	}
}

// recoveryModes are the modes a crashed log may be opened in, each of which
// keeps every acknowledged record after a crash or a power cut (strict
// would refuse a torn tail: it is for logs closed cleanly).
var recoveryModes = []wal.RecoveryMode{wal.RecoverDefault, wal.RecoverDefault, wal.RecoverPointInTime, wal.RecoverSalvage}

// reopenStrict opens a log its last user closed cleanly in strict mode,
// which must find nothing to complain about.
func reopenStrict(path string, o *wal.Options, lc logConfig, r *Result) {
	so := *o
	so.Recovery = wal.RecoverStrict
	l, err := wal.Open(path, &so)
	if err != nil {
		r.Corrupt++
		r.fail("(%v) strict open after a clean close: %v", lc, err)
		return
	}
	if err := l.Close(); err != nil {
		r.Corrupt++
		r.fail("(%v) close after a strict open: %v", lc, err)
	}
}

// powerlossKVTrial is a powerloss trial over a key-value store
// (storage/logkv): the writers of the crash suite's store (crashKV), and
// half the time a first session closed cleanly (so the image also holds
// an index checkpoint) before the one the power cut ends.
func powerlossKVTrial(ctx context.Context, c *Config, dir string, rng *rand.Rand, r *Result) error {
	live, image, st, restore, cleanup, err := newPowerlossTrial(dir)
	if err != nil {
		return err
	}
	defer cleanup()
	bs := backends()
	lc := logConfig{Backend: bs[rng.IntN(len(bs))], Growing: true, SegmentSize: 1 << 18, Capacity: 64 << 18, Policy: "always"}
	o, err := kvOptions(lc)
	if err != nil {
		return err
	}
	store := filepath.Join(live, "store")
	var (
		mu    sync.Mutex
		lines []string
	)
	print := func(ls ...string) {
		mu.Lock()
		lines = append(lines, ls...)
		mu.Unlock()
	}
	session := func(d time.Duration, cut func() error) error {
		db, err := logkv.Open(store, o)
		if err != nil {
			return fmt.Errorf("open store (%v): %w", lc, err)
		}
		job := &crashJob{Path: store, Log: lc, Run: rng.Uint64(), Seed: rng.Uint64(), Writers: 1 + rng.IntN(4)}
		wctx, stop := context.WithCancel(ctx)
		werr := make(chan error, 1)
		go func() { werr <- writeKV(wctx, db, job, print) }()
		time.Sleep(d)
		var cerr error
		if cut != nil {
			cerr = cut()
		}
		stop()
		err = <-werr
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("store writers (%v): %w", lc, err)
		}
		return cerr
	}
	if rng.IntN(2) == 0 {
		if err := session(time.Duration(rng.IntN(10_000))*time.Microsecond, nil); err != nil {
			return err
		}
	}
	st.skip.Store(c.skipSyncs)
	var (
		im       *cutImage
		cutLines []string
	)
	err = session(time.Duration(1000+rng.IntN(20_000))*time.Microsecond, func() error {
		mu.Lock() // no acknowledgement is recorded while the state is taken
		defer mu.Unlock()
		var err error
		im, err = st.cut(live)
		cutLines = slices.Clone(lines)
		return err
	})
	if err != nil {
		return err
	}
	restore()
	if err := im.build(rng, live, image); err != nil {
		return err
	}
	keys := map[string]*kvKeyState{}
	acks, err := applyKVLines(keys, cutLines)
	if err != nil {
		return err
	}
	r.Acked += int64(acks)
	checkKV(c, filepath.Join(image, "store"), lc, keys, r)
	return nil
}
