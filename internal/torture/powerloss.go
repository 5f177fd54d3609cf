//go:build linux

package torture

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringlog/ringlog/internal/osfile"
	"github.com/ringlog/ringlog/pager"
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

// plState is the hook's record of what is durable.
type plState struct {
	mu      sync.Mutex
	dir     string
	skip    atomic.Bool                  // every sync skipped (and reported done)
	files   map[uint64][]byte            // inode -> content at its last completed sync
	entries map[string]map[string]uint64 // directory -> name -> inode at its last fsync
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

// listDir maps the regular files of dir to their inodes.
func listDir(dir string) (map[string]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out[de.Name()] = inodeOf(fi)
	}
	return out, nil
}

// cutImage is the state at the moment of the cut.
type cutImage struct {
	files   map[uint64][]byte            // synced contents
	entries map[string]map[string]uint64 // synced directory entries
	now     map[string]map[string]uint64 // directory entries now
	current map[uint64][]byte            // contents now (the page cache)
}

// cut takes the synced and current state of the directories dirs.
func (s *plState) cut(dirs ...string) (*cutImage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := &cutImage{files: map[uint64][]byte{}, entries: map[string]map[string]uint64{}, now: map[string]map[string]uint64{}, current: map[uint64][]byte{}}
	for ino, b := range s.files {
		im.files[ino] = b
	}
	for d, names := range s.entries {
		im.entries[d] = names
	}
	for _, d := range dirs {
		names, err := listDir(d)
		if err != nil {
			return nil, err
		}
		im.now[d] = names
		for name, ino := range names {
			b, err := os.ReadFile(filepath.Join(d, name))
			if err != nil {
				continue // removed meanwhile: as if the cut came before it
			}
			im.current[ino] = b
		}
	}
	return im, nil
}

const (
	plPage   = 4096
	plSector = 512
)

// build writes into out what a power cut could leave of directory dir.
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
		var ino uint64
		switch {
		case inOld && inNow && old == cur:
			ino = cur
		case rng.IntN(2) == 0: // the change of the entry reached the disk
			if !inNow {
				continue
			}
			ino = cur
		default: // it did not
			if !inOld {
				continue
			}
			ino = old
		}
		b := mixPages(rng, im.files[ino], im.current[ino])
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
	lc := randomLogConfig(rng)
	live := filepath.Join(dir, "live")
	image := filepath.Join(dir, "image")
	os.RemoveAll(live)
	os.RemoveAll(image)
	defer os.RemoveAll(live)
	defer os.RemoveAll(image)
	if err := os.Mkdir(live, 0o755); err != nil {
		return err
	}
	st := &plState{dir: live, files: map[uint64][]byte{}, entries: map[string]map[string]uint64{}}
	restore := osfile.SetHooks(&osfile.Hooks{File: st.fileSync, Dir: st.dirSync})
	defer restore()

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
	go func() {
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
	l, err := wal.Open(path, o)
	if err != nil {
		r.Lost += int64(len(promised))
		r.fail("powerloss (%v): reopen: %v", lc, err)
		c.logf("powerloss (%v): reopen: %v", lc, err)
		return
	}
	defer l.Close()
	found, bad := readAll(l)
	r.Corrupt += int64(len(bad))
	for _, b := range bad {
		r.fail("powerloss (%v): %s; %v", lc, b, l.Report())
	}
	for id, p := range promised {
		if _, ok := found[id]; !ok {
			r.Lost++
			r.fail("powerloss (%v): acknowledged %s at position %d (truncated to %d) is missing; %v", lc, id, p, floor, l.Report())
		}
	}
}
