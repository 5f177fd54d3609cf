package wal

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"

	"github.com/ringlog/ringlog/pager"
)

// growingCrashImage writes a growing log whose records all lie in its
// first segment (the next slot holds no segment yet): n records synced,
// then more records whose write begins with a sync marker proving the
// first n durable. It returns the file as a crash leaves it, the
// positions of the records, and the log's file offset function's values
// for them.
func growingCrashImage(t *testing.T, b pager.Backend, clean bool) (path string, pos []uint64, off []int64) {
	t.Helper()
	l, path := createLog(t, b, Options{Layout: Growing, SegmentSize: 64 << 10, Capacity: 4 * 64 << 10, Sync: SyncNever})
	l.batchForTest = true
	ctx := context.Background()
	for i := range 6 {
		p, err := l.Append(ctx, rec(i, 100))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
		if i == 3 {
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range pos {
		off = append(off, l.FileOffset(p))
	}
	if clean {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return path, pos, off
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pos, off
}

func flipAt(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Recovery looks past a stop for sync markers (proof that the damage lies
// in synced data) and, in salvage, for the next intact record. In the
// growing layout that search must cover the last segment of the log too,
// although the slot after it holds no segment yet.
func TestRecoverySearchesLastSegment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		// A crash: records 0-3 synced, 4-5 written after them. Damage in
		// record 1 lies in data the marker before record 4 proves
		// durable: the default mode must refuse to open.
		path, pos, off := growingCrashImage(t, b, false)
		flipAt(t, path, off[1]+HeaderSize+10)
		if l, err := Open(path, &Options{Backend: b}); err == nil {
			rep := l.Report()
			l.Close()
			t.Fatalf("default recovery opened a log with damage in synced data: %v", rep)
		} else if !IsCorruption(err) {
			t.Fatalf("default recovery: %v", err)
		}
		// Salvage skips the damaged record and keeps the others.
		l, err := Open(path, &Options{Backend: b, Recovery: RecoverSalvage})
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(l.Report().SalvageCopy)
		got, _ := readAll(t, l)
		rep := l.Report()
		l.Close()
		if len(got) != len(pos)-1 || got[0] != pos[0] || got[1] != pos[2] || len(rep.Skipped) != 1 {
			t.Fatalf("salvage kept records at %v of %v; %v", got, pos, rep)
		}
	})
}

// A stop inside data proven durable (the records zeroed, or overwritten by
// bytes that name no record) loses synced records, even when nothing
// after it parses: point-in-time and salvage must report the cut, and the
// default mode must refuse to open.
func TestRecoveryReportsCutOfSyncedData(t *testing.T) {
	for _, layout := range []Layout{Bounded, Growing} {
		t.Run(layout.String(), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b pager.Backend) {
				for _, mode := range []RecoveryMode{RecoverDefault, RecoverPointInTime, RecoverSalvage} {
					l, path := createLog(t, b, Options{Layout: layout, SegmentSize: 64 << 10, Capacity: 4 * 64 << 10})
					var pos []uint64
					for i := range 5 {
						p, err := l.AppendSync(context.Background(), rec(i, 100))
						if err != nil {
							t.Fatal(err)
						}
						pos = append(pos, p)
					}
					from, end := l.FileOffset(pos[2]), l.FileOffset(l.Written())
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					f, err := os.OpenFile(path, os.O_RDWR, 0)
					if err != nil {
						t.Fatal(err)
					}
					f.WriteAt(make([]byte, end-from), from)
					f.Close()
					l, err = Open(path, &Options{Backend: b, Recovery: mode})
					if mode == RecoverDefault {
						if !IsCorruption(err) {
							t.Fatalf("%v: %v", mode, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%v: %v", mode, err)
					}
					rep := l.Report()
					got, _ := readAll(t, l)
					l.Close()
					os.Remove(rep.SalvageCopy)
					if len(got) != 2 || !rep.Cut() || rep.CutAt != pos[2] {
						t.Fatalf("%v: kept %v of %v, report: %v", mode, got, pos, rep)
					}
				}
			})
		})
	}
}

// Salvage keeps the intact members of a batch it broke and covers the
// damaged one with a skip record; the salvaged log must open again in the
// default mode with the same records (the skip ends the broken batch).
func TestSalvagedBrokenBatchReopens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		for member := range 3 {
			l, path := createLog(t, b, Options{})
			ctx := context.Background()
			if _, err := l.AppendSync(ctx, rec(0, 100)); err != nil {
				t.Fatal(err)
			}
			p, err := l.AppendBatchSync(ctx, [][]byte{rec(1, 100), rec(2, 100), rec(3, 100)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.AppendSync(ctx, rec(4, 100)); err != nil {
				t.Fatal(err)
			}
			off := l.FileOffset(p + uint64(member*recordSize(100)) + HeaderSize + 40)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			flipAt(t, path, off)
			l, err = Open(path, &Options{Backend: b, Recovery: RecoverSalvage})
			if err != nil {
				t.Fatal(err)
			}
			salvaged, _ := readAll(t, l)
			os.Remove(l.Report().SalvageCopy)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if len(salvaged) != 4 {
				t.Fatalf("member %d damaged: salvage kept %v", member, salvaged)
			}
			l, err = Open(path, &Options{Backend: b})
			if err != nil {
				t.Fatalf("member %d damaged: reopening the salvaged log: %v", member, err)
			}
			got, _ := readAll(t, l)
			rep := l.Report()
			l.Close()
			if !slices.Equal(got, salvaged) || rep.Cut() {
				t.Fatalf("member %d damaged: salvage kept %v, the reopened log has %v; %v", member, salvaged, got, rep)
			}
		}
	})
}

// The checkpoint's consumer slot (ring package) carries no checksum on its
// position and flags. Damage there must not decide what the log retains:
// recovery puts the consumer at the checkpoint the header records, so the
// log opens, reads from its checkpoint and keeps retaining it.
func TestCheckpointSlotDamage(t *testing.T) {
	const (
		slotsOff = 12288
		slotSize = 128
	)
	for _, c := range []struct {
		name      string
		off, mask int // byte of the slot, bits flipped
	}{
		{"position bit 3", 8, 1 << 3},
		{"position bit 9", 9, 1 << 1},
		{"position bit 40", 13, 1},
		{"lossy", 4, 1},
		{"detached", 4, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, path := createLog(t, pager.Copy, Options{Capacity: 64 << 10})
			var pos []uint64
			for i := range 5 {
				p, err := l.AppendSync(context.Background(), rec(i, 100))
				if err != nil {
					t.Fatal(err)
				}
				pos = append(pos, p)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			img, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for i := 0; slotsOff+(i+1)*slotSize <= 64<<10; i++ {
				s := img[slotsOff+i*slotSize:][:slotSize]
				if s[0] == 2 && int(s[32]) == len(checkpointName) && string(s[33:33+len(checkpointName)]) == checkpointName {
					s[c.off] ^= byte(c.mask)
					found = true
				}
			}
			if !found {
				t.Fatal("no checkpoint slot in the file")
			}
			if err := os.WriteFile(path, img, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, mode := range []RecoveryMode{RecoverDefault, RecoverStrict} {
				l, err := Open(path, &Options{Backend: pager.Copy, Recovery: mode})
				if err != nil {
					t.Fatalf("%v: %v", mode, err)
				}
				got, _ := readAll(t, l)
				cp, detached := l.cp.Position(), l.cp.Detached()
				l.Close()
				if !slices.Equal(got, pos) || cp != 0 || detached {
					t.Fatalf("%v: read %v of %v; checkpoint consumer at %d (detached %v)", mode, got, pos, cp, detached)
				}
			}
		})
	}
}

// Salvage copies the file as it was given, before anything in it changes:
// also before the ring's open repairs a damaged consumer slot.
func TestSalvageCopyIsTheInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		l, path := createLog(t, b, Options{Capacity: 64 << 10})
		for i := range 3 {
			if _, err := l.AppendSync(context.Background(), rec(i, 100)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		img, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img[12288+32] ^= 1 // the name length of the first slot: a damaged registration
		if err := os.WriteFile(path, img, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err = Open(path, &Options{Backend: b, Recovery: RecoverSalvage})
		if err != nil {
			t.Fatal(err)
		}
		rep := l.Report()
		l.Close()
		cp, err := os.ReadFile(rep.SalvageCopy)
		if err != nil || !bytes.Equal(cp, img) {
			t.Fatalf("the salvage copy %s (%v) is not the file salvage was given", rep.SalvageCopy, err)
		}
	})
}

// Salvage covers a damaged range longer than the largest record with
// several skip records, each one a record the log can read: the salvaged
// log opens again with every record after the damage.
func TestSalvageLongDamage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b pager.Backend) {
		l, path := createLog(t, b, Options{Capacity: 64 << 10, MaxRecordSize: 512})
		var pos []uint64
		for i := range 40 {
			p, err := l.AppendSync(context.Background(), rec(i, 100))
			if err != nil {
				t.Fatal(err)
			}
			pos = append(pos, p)
		}
		from, to := l.FileOffset(pos[5]), l.FileOffset(pos[30])
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(make([]byte, to-from), from) // 25 records, far more than 512 bytes
		f.Close()
		l, err = Open(path, &Options{Backend: b, Recovery: RecoverSalvage})
		if err != nil {
			t.Fatal(err)
		}
		salvaged, _ := readAll(t, l)
		os.Remove(l.Report().SalvageCopy)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(pos[:5]), pos[30:]...)
		if !slices.Equal(salvaged, want) {
			t.Fatalf("salvage kept %v, want %v", salvaged, want)
		}
		l, err = Open(path, &Options{Backend: b})
		if err != nil {
			t.Fatalf("reopening the salvaged log: %v", err)
		}
		got, _ := readAll(t, l)
		l.Close()
		if !slices.Equal(got, want) {
			t.Fatalf("the salvaged log holds %v, want %v", got, want)
		}
	})
}
