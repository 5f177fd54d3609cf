package logkv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/tidwall/btree"

	"github.com/ringlog/ringlog/internal/osfile"
)

// The index checkpoint: the index written to a file at Close (and by
// WriteIndex), so that Open loads it and replays only the log written
// after it instead of the whole log.
//
//	0   8  magic "RLKVIDX\x00"
//	8   4  version (1)
//	12  4  zero
//	16  8  upTo: the index holds every entry written before this position
//	24  8  count of items
//	32  .  items in key order: key length (uvarint), key, entry position
//	       (8 bytes), entry length (uvarint)
//	.   4  CRC-32C of every byte before it
//
// Open uses it only if it is whole (checksum, count, order), describes no
// more log than the log holds (upTo at most the log's end) and no log the
// cleaner has freed since (upTo at least the log's checkpoint: the cleaner
// drops deletes, so an index older than a truncation could bring deleted
// keys back). Otherwise it replays the whole log; Report says which.
const (
	IndexName    = "index"
	indexMagic   = "RLKVIDX\x00"
	indexVersion = 1
	indexHeader  = 32
)

var errIndex = errors.New("index checkpoint unusable")

// WriteIndex writes the index checkpoint now (Close does too): every
// write so far is synced first, then the index is written to a temporary
// file, synced and renamed into place.
func (db *DB) WriteIndex() error {
	if err := db.Sync(); err != nil {
		return err
	}
	db.mu.Lock()
	if db.mu.closed {
		db.mu.Unlock()
		return db.errClosed("write index of")
	}
	tree, upTo := db.mu.tree.Copy(), db.mu.end
	db.mu.Unlock()
	return db.writeIndex(tree, upTo)
}

func (db *DB) writeIndex(tree *btree.BTreeG[item], upTo uint64) (err error) {
	db.index.write.Lock() // one writer of the temporary file at a time
	defer db.index.write.Unlock()
	defer db.logIndexWrite(time.Now(), tree.Len(), upTo, &err)
	if upTo > db.log.Durable() {
		if err := db.log.WaitDurable(context.Background(), upTo); err != nil {
			return fmt.Errorf("logkv: write index of %s: %w", db.dir, err)
		}
	}
	tmp := filepath.Join(db.dir, IndexName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("logkv: write index of %s: %w", db.dir, err)
	}
	defer os.Remove(tmp) // after the rename: nothing
	h := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	var hdr [indexHeader]byte
	copy(hdr[:], indexMagic)
	le := binary.LittleEndian
	le.PutUint32(hdr[8:], indexVersion)
	le.PutUint64(hdr[16:], upTo)
	le.PutUint64(hdr[24:], uint64(tree.Len()))
	w.Write(hdr[:])
	var b []byte
	tree.Scan(func(it item) bool {
		b = binary.AppendUvarint(b[:0], uint64(len(it.key)))
		b = append(b, it.key...)
		b = le.AppendUint64(b, it.pos)
		b = binary.AppendUvarint(b, uint64(it.n))
		w.Write(b)
		return true
	})
	err = w.Flush()
	if err == nil {
		_, err = f.Write(le.AppendUint32(nil, h.Sum32()))
	}
	if err == nil {
		err = osfile.Fdatasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The rename and the record of what the file holds go together:
		// the cleaner, checking the record, must never remove a new file
		// for the staleness of the one it replaced.
		db.index.Lock()
		err = os.Rename(tmp, filepath.Join(db.dir, IndexName))
		if err == nil {
			db.index.upTo, db.index.there = upTo, true
		}
		db.index.Unlock()
	}
	if err == nil && indexAfterRename != nil {
		indexAfterRename(db)
	}
	if err == nil {
		err = osfile.SyncDir(db.dir)
	}
	if err != nil {
		return fmt.Errorf("logkv: write index of %s: %w", db.dir, err)
	}
	db.dropStaleIndex(db.log.Checkpoint()) // the cleaner may have freed past upTo meanwhile
	return nil
}

// indexAfterRename, if set (by tests), runs in writeIndex between the
// rename and the directory sync: the window in which the cleaner may
// judge the new file by the old one's position.
var indexAfterRename func(db *DB)

// dropStaleIndex removes the index checkpoint once the log's front has
// moved past its upTo: Open would refuse it (it cannot tell which keys
// the freed part of the log deleted), so it only takes disk space, as
// much as a tenth of the store or more. The removal is not synced: if a
// crash undoes it, Open finds a checkpoint it refuses, as it would have
// before the removal. A removal that fails leaves the file for the next
// attempt (the next truncation, Close, or Open).
func (db *DB) dropStaleIndex(front uint64) {
	db.index.Lock()
	defer db.index.Unlock()
	if !db.index.there || db.index.upTo >= front {
		return
	}
	if err := os.Remove(filepath.Join(db.dir, IndexName)); err == nil || errors.Is(err, os.ErrNotExist) {
		db.index.there = false
	}
}

// loadIndex reads the index checkpoint into db's (empty) index and
// returns the position it holds the log up to.
func (db *DB) loadIndex() (uint64, error) {
	path := filepath.Join(db.dir, IndexName)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	bad := func(off int, why string) error {
		return fmt.Errorf("logkv: %s at offset %d: %s: %w", path, off, why, errIndex)
	}
	le := binary.LittleEndian
	if len(data) < indexHeader+4 || string(data[:8]) != indexMagic {
		return 0, bad(0, "not an index checkpoint")
	}
	if v := le.Uint32(data[8:]); v != indexVersion {
		return 0, bad(8, fmt.Sprintf("version %d", v))
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), le.Uint32(data[len(data)-4:]); got != want {
		return 0, bad(len(body), "checksum mismatch")
	}
	upTo, count := le.Uint64(data[16:]), le.Uint64(data[24:])
	if count > uint64(len(body)) {
		return 0, bad(24, "count larger than the file")
	}
	// The keys stay where they were read: items point into the file's
	// buffer (one allocation, never written again), with no copy.
	keys := unsafe.String(unsafe.SliceData(body[indexHeader:]), len(body)-indexHeader)
	t := db.mu.tree
	off := indexHeader
	var prev item
	poss := make([]uint64, 0, min(count, uint64(len(body))/10))
	for i := uint64(0); i < count; i++ {
		kl, n := binary.Uvarint(body[off:])
		if n <= 0 || kl > uint64(len(body)-off-n) {
			return 0, bad(off, "item cut short")
		}
		ks := off + n
		off = ks + int(kl)
		if len(body)-off < 8 {
			return 0, bad(off, "item cut short")
		}
		pos := le.Uint64(body[off:])
		el, n2 := binary.Uvarint(body[off+8:])
		if n2 <= 0 || el > uint64(maxRecord) {
			return 0, bad(off, "bad entry length")
		}
		off += 8 + n2
		key := keys[ks-indexHeader : ks-indexHeader+int(kl)]
		it := item{pre: prefix(body[ks : ks+int(kl)]), key: key, pos: pos, n: uint32(el)}
		if i > 0 && !less(prev, it) {
			return 0, bad(ks, "keys out of order")
		}
		if pos+el > upTo {
			return 0, bad(off, "an entry past the end the index claims")
		}
		t.Load(it)
		// Live bytes now; the live bits in one pass at the end.
		db.mu.live += int64(it.n)
		db.mu.liveKV += int64(len(key) + valueLen(it))
		db.mu.segs.at(pos).bytes += int64(it.n)
		poss = append(poss, pos)
		prev = it
	}
	if off != len(body) {
		return 0, bad(off, "bytes after the last item")
	}
	db.mu.segs.addBulk(poss)
	db.index.upTo, db.index.there = upTo, true
	return upTo, nil
}
