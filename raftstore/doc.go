// Package raftstore is a log and stable store for github.com/hashicorp/raft
// on the write-ahead log of package wal: a Store implements raft.LogStore,
// raft.StableStore and raft.MonotonicLogStore.
//
//	s, err := raftstore.Open(dir, nil)
//	...
//	r, err := raft.NewRaft(conf, fsm, s, s, snapshots, transport)
//
// # Design
//
// A store is a directory holding two files: the log (LogName), a wal in the
// growing layout, and the stable file (StableName).
//
// Every entry is one wal record. StoreLogs encodes its entries and appends
// them as one wal batch (AppendBatch), then waits until the batch is durable
// (WaitDurable): group commit, so calls from several goroutines share an
// fdatasync. A batch is atomic: after a crash recovery finds all of it or
// none. A batch of more than half a segment (Options.SegmentSize) does not
// fit one write of the log; it is appended as several batches in order, so
// a crash keeps a prefix of them, which raft accepts (it counts an entry as
// stored only once StoreLogs returned).
//
// The index is in memory: raft indices are dense, so the wal position of
// entry i is element i-first of a slice of positions, and FirstIndex and
// LastIndex are fields. GetLog reads the record at that position straight
// from the log's mapping, checks its header (position, type, length) and
// its CRC-32C as the wal's Reader would (see the record layout in the wal
// package doc), decodes it and copies Data and Extensions into one new
// allocation. Memory: 8 bytes per entry held.
//
// DeleteRange removes a prefix of the log (raft compacting after a
// snapshot), a suffix (a follower dropping entries that conflict with a new
// leader's), or everything (raft after restoring a snapshot, since the
// store is monotonic). The wal cannot drop records in the middle of a
// batch, and cutting the log back (wal TruncateBack) would lose the whole
// batch the cut falls in. So every DeleteRange appends a delete record
// naming its range and syncs it: when DeleteRange returns, the deletion is
// durable. Recovery replays the log from its checkpoint as the sequence of
// StoreLogs and DeleteRange calls it is, applying each delete record to
// the index, so entries appended after a delete record win over the
// deleted ones they replace. A prefix deletion then moves the log's
// checkpoint to the new first entry (wal TruncateFront), which frees the
// segments behind it; deleted suffixes keep their space until a later
// prefix deletion passes them. Every record from the checkpoint on is
// needed: live entries lie at increasing positions, and a deleted entry
// lying after the checkpoint is followed by the delete record that
// removed it.
//
// A new store appends one delete record of nothing (DeleteRange(0, 0): no
// entry has index 0) and syncs it, so that the log's first segment, which
// the wal writes with zeroes when it grows, reaches the disk while the
// store is created rather than under the first StoreLogs (about 0.1 s for
// a 64 MiB segment here). Each later segment the log grows by costs the
// StoreLogs that needs it the same.
//
// IsMonotonic reports true: the array index cannot hold a gap, so
// StoreLogs refuses entries that do not continue the last index
// (ErrNotNext), and raft removes every entry after restoring a snapshot
// rather than leave a gap, which costs one delete record and a checkpoint
// move.
//
// # Stable store
//
// Set, Get, SetUint64 and GetUint64 keep their values in memory and in the
// stable file, which holds them all and is replaced whole on every Set:
// written under a temporary name, synced, renamed over the old file, and
// the directory synced. A Set is durable when it returns; a crash leaves
// the old file or the new one. Raft sets few values (the current term, the
// last vote) rarely (at elections), so a rewrite of a small file costs
// less than the alternative of keeping them in the log, which would have
// to append them again before every TruncateFront that passes them.
//
// A key never set reads as nil (Get) and 0 (GetUint64) with no error, as
// raft.StableStore documents and raft's InmemStore and raft-wal do; raft
// also accepts the error "not found" that raft-boltdb returns.
// SetUint64 stores 8 little-endian bytes in the key space of Set.
//
// # Format
//
// Each record's payload (the wal frames it: length, position, epoch,
// CRC-32C) is one of:
//
//	entry
//	0  1  kind 1
//	1  1  flags: bit 0 AppendedAt is set
//	2  1  raft.LogType
//	   uvarint Index (not 0), uvarint Term,
//	   if bit 0: varint AppendedAt.Unix(), uvarint AppendedAt.Nanosecond(),
//	   uvarint len(Extensions), Extensions, then Data up to the end
//
//	delete record: DeleteRange(min, max) was applied
//	0  1  kind 2
//	   uvarint min, uvarint max (min <= max)
//
// AppendedAt keeps its instant, not its location or monotonic clock
// reading. The stable file:
//
//	0   4  magic "RSTB"
//	4   4  version 1
//	8   4  CRC-32C of the body
//	12  4  length of the body
//	16  n  body: pairs, each uvarint len(key), key, uvarint len(value), value
//
// All integers are little-endian. Bad bytes (a damaged record that the wal's
// checksum did not catch, a record that does not continue the index, a
// damaged stable file) are errors naming the file and the position or
// offset, wrapping ErrCorrupt; decoding never panics.
//
// # Durability
//
// StoreLogs, DeleteRange and Set are durable when they return nil, provided
// the storage honours fdatasync (see the wal package doc for the crash
// assumptions). After a failed write the store refuses writes (ErrFailed):
// what the log holds beyond its last sync is unknown. The wal takes a lock
// on its file: a second process cannot open the same store.
package raftstore
