// Package wal is a write-ahead log on a durable ring (package ring): many
// goroutines append records, one flusher writes them with large pwrites and
// group-commits the syncs, readers get every record as one slice of the
// mapping, and recovery tells a torn tail from damage to synced data.
//
// # Format
//
// The format may still change until the reliability suites pass against
// it; the versions in the ring header and in the log metadata guard every
// change. A log is a ring file (see package ring for the header, consumer
// slots and data area); the log's own state lives in the ring header's user
// data, and its records in the data area. All integers are little-endian;
// every record starts at a multiple of 8.
//
//	log metadata (ring header user data, checksummed with the header)
//	0   4  magic "RWAL"
//	4   4  log format version (2)
//	8   8  checkpoint: recovery and reading start here (a record boundary)
//	16  4  epoch: records at or after the epoch start carry it
//	20  4  maximum record payload
//	24  8  epoch start
//	32  8  clean end: where the log ended at its last clean Close
//	40  4  flags: bit 0 "clean" (cleared while the log is open)
//	44  4  zero
//
//	record
//	0   4  CRC-32C (Castagnoli) of bytes 4 .. 24+length
//	4   4  payload length
//	8   8  position of the record: where its first byte is in the log
//	16  4  epoch
//	20  1  type: 1 data, 2 sync marker, 3 skip (0 is invalid)
//	21  1  flags: bit 0 "more": a batch member with members after it;
//	       bit 1 "cont": a batch member after the first; bit 2 "epoch
//	       start" (sync markers): the first record written in its epoch
//	22  2  zero
//	24  n  payload, then zeroes up to a multiple of 8
//
// A record is valid at position p only if it names p and an epoch allowed
// there, and its checksum holds. So bytes from an earlier lap of the ring
// (another position), from a suffix cut by recovery or truncation (an
// older epoch), or zeroed space (type 0) never read as a record.
//
// Every write of staged records starts with a sync marker whose 8-byte
// payload is the position up to which the log was durable when the write
// was made. Readers skip markers. Recovery uses them to prove that data
// was synced: damage before a proven position is damage to synced data,
// damage after it may be a write a crash cut short.
//
// A batch (AppendBatch) is a run of data records, all but the last flagged
// "more", all but the first "cont"; recovery keeps a batch only if its
// last member is intact, and TruncateBack cuts before a batch, never
// inside.
//
// Salvage covers damaged bytes with a skip record so the chain of records
// goes on; readers skip it.
//
// # Writing and durability
//
// Append copies the record into a staging buffer under a short lock and
// returns its position. A flusher goroutine writes the buffer with one
// pwrite (the staged path, chosen by measurement: see package ring) while
// the next appends gather in a second buffer, and syncs (fdatasync) when a
// caller waits for durability or the policy says so. One fdatasync releases
// every waiter whose record it covers: group commit. Metrics reports
// records per sync.
//
// Policies: SyncAlways (every Append waits until its record is durable),
// SyncInterval (a background sync every interval; Append returns once the
// record is staged), SyncNever (the operating system decides, except for
// Sync, AppendSync, AppendBatchSync and Close). Flush hands everything
// appended to the operating system: it survives a crash of the process,
// not of the machine.
//
// A record acknowledged as durable (AppendSync returned nil, or Append
// under SyncAlways, or a Sync that returned nil after it) is never lost
// by a crash of the process or the machine, provided the storage honours
// fdatasync. After a failed write or sync the log refuses writes
// (ErrFailed) and every waiter of that sync gets the error: Linux may have
// marked the unwritten pages clean, so nothing after the last good sync
// can be promised (and it is never recorded as durable). Because a later
// process cannot know a sync failed, every open writes the bytes after
// the last proven sync again and syncs them before accepting appends, so a
// page the kernel dropped cannot leave a hole under later records.
//
// Crash assumptions: a write of a 4 KiB aligned block may tear (the ring
// header is kept twice); file data may reach the disk in any order between
// syncs; fdatasync makes everything written before it durable. The file is
// created under a temporary name, synced, linked into place and the
// directory synced.
//
// # Layouts and space
//
// Options.Layout picks one of two layouts of the same Log:
//
//   - Bounded (the default): a preallocated file of fixed capacity whose
//     space is reused once it is behind the checkpoint (TruncateFront) and
//     every reader's pin, like a circular redo log.
//   - Growing: the file starts empty and grows by segments (64 MiB by
//     default, 64 KiB-aligned) as the log holds more; segments behind the
//     checkpoint and every pin are reused, moved between the slots of one
//     reserved view by remapping, never copied. Capacity is the size of
//     that reserved view (4 GiB by default): the most the log may hold
//     at once. A write of staged records, and so a batch or a record, is
//     at most a segment.
//
// When the log holds all it may (the bounded file is full, or the growing
// log's live records fill its reserved view, less the part of a segment
// the checkpoint sits in), appends wait for space: the flusher waits, the
// staging buffer fills, Append waits with its context. TruncateFront makes
// room. The reserved view cannot grow after Create: a log that needs to
// hold more at once is created with a larger Capacity (it is address space,
// not memory: only the view's page table costs memory, 8 bytes per 4 KiB).
//
// # Reading
//
// A Reader returns each record as a slice of the log's mapping: no copy,
// any size up to the maximum, also across the wrap of the ring. The slice
// is valid until the reader's next call; the reader pins the log from its
// current record on, so the flusher never reuses that space meanwhile.
// Checksums are always verified. Readers take no lock a writer waits on.
//
// # Recovery
//
// Open scans from the checkpoint, following the chain of records, and
// decides where the log ends according to the RecoveryMode; Report says
// what it did. Every corruption error names the file and the offset.
// With Options.Replay the scan hands every record it keeps to the caller
// in the same pass that verifies it: a storage engine's startup replay
// costs one read of the log.
//
// The scan reads with 256 KiB preads into a reused buffer, not through the
// mapping, by measurement: on the virtual machine this was built on, the
// first pass over a fresh mapping of a 256 MiB file whose pages were in
// the page cache took 94-117 ms (2 MiB-aligned or not), the second pass
// 9-10 ms, while 1 MiB preads into a reused buffer ran at 14.5 GB/s
// (go test -bench Read ./pager), about 18 ms for the same bytes. Readers
// use the long-lived mapping; a fresh one pays about 1.5 µs per page
// once.
// After recovery the log starts a new epoch at its end, so nothing that
// lies past the end (a torn write, a dropped suffix) can ever be read as a
// record of the new epoch, even when new records of the same sizes land
// exactly where old ones were.
//
// # Truncation
//
// TruncateFront(pos) moves the checkpoint: the records before it are no
// longer part of the log, and their space is reused once no reader pins
// it and every consumer acknowledged it (in the growing layout whole
// segments are recycled, remapped, never copied).
//
// TruncateBack(pos) drops the records from pos on: it starts a new epoch
// at pos and makes it durable before anything else is written, so the
// dropped records never come back, whatever lands on their bytes and
// wherever a crash strikes. A reader (in this or another process) that
// had read past pos learns it on its next record with ErrTruncated: the
// first record of every epoch is flagged, so a change of epoch anywhere
// else says the log was cut back under the reader. The same holds when a
// writer's recovery cuts a torn tail a reader of another process had
// already read.
package wal
