// Package ring makes a file a durable virtual ring buffer: its data area is
// mapped twice, back to back, so any span of up to the capacity, at any
// position, is one contiguous []byte, also when it wraps past the end of
// the file.
//
// # Layout
//
// The format may still change until the reliability suites pass against
// it; the version field guards every change. All integers little-endian.
//
//	file offset
//	0       header copy A (4 KiB, even sequence numbers)
//	4096    header copy B (4 KiB, odd sequence numbers)
//	8192    reserved
//	12288   consumer slots, 128 bytes each (416 slots)
//	65536   data area: C bytes, C a multiple of 64 KiB
//
//	header copy (checksummed; the valid copy with the higher sequence wins)
//	0    8  magic "RINGLOG\x00"
//	8    4  format version (1)
//	12   4  header copy size (4096)
//	16   8  sequence: bumped by every header write
//	24   8  capacity C
//	32   8  data offset (65536)
//	40   4  layout alignment (65536)
//	44   4  flags (0)
//	48   8  head: bytes committed, all synced, when the copy was written
//	56   8  tail: oldest byte retained when the copy was written
//	64   4  user data length (at most 1024)
//	72   n  user data (for the layer above)
//	4092 4  CRC-32C (Castagnoli) of bytes 0..4091
//
//	live file (path + ".live": live state shared by every process using
//	the ring, reset by a producer's open, never synced; a page of the ring
//	file stored into on every commit would make each fdatasync write it
//	too, which measured about 3x slower syncs here)
//	0    8  committed position (head)
//	8    8  synced position
//	16   8  registration generation: bumped when consumers or pins come or go
//	24  16  reserved for cross-process wakeups
//	40   8  producer's handle token, 0 if none
//	48   8  token of the handle registering a slot (a lock)
//	56   8  how far the producer may write before it looks at the slots again
//
//	consumer slot
//	0    4  state: 0 free, 1 being registered, 2 registered
//	4    4  flags: 1 lossy, 2 detached (overrun)
//	8    8  acknowledged position
//	16   8  lossy consumers: maximum lag
//	24   4  waiting for data
//	28   4  pid of the attached process, 0 if none
//	32   1  name length (1..63)
//	33  63  name (UTF-8; names starting "$pin-" are pins of read-only handles)
//	96   4  CRC-32C of name length and name
//	104  8  token of the attached handle, 0 if none
//
// A token is pid<<32 | a random number, one per open handle: it tells two
// handles of one process apart, and a dead process's attachments from
// live ones (pids may be reused: a reused pid keeps a dead attachment
// looking alive until that process exits too; RemoveConsumer then frees it).
//
// Everything is aligned to 64 KiB so a ring moves between kernels with 4,
// 16 and 64 KiB pages. The data area is written with zeroes at creation,
// not only allocated: overwriting written blocks later needs no extent
// conversion, so each fdatasync avoids a journal commit. The file is built
// under a temporary name, synced, renamed into place, and the directory
// synced.
//
// Crash assumptions: a 4 KiB aligned write may tear, so the header is kept
// twice and written alternately, each copy checksummed; a torn or corrupt
// copy falls back to the other (Ring.Info says so), both bad is an error
// naming the file. Sync writes data, fdatasyncs, then writes the header and
// fdatasyncs again, so a header never describes data that is not on disk.
//
// # Positions
//
// Positions are monotonic uint64 byte offsets; position p lives at data
// offset p mod C. Head is the end of committed bytes, Tail the oldest byte
// still retained. The producer may use the space up to Tail + C.
//
// # Producing
//
// One producer at a time (a second producer process gets ErrLocked; a
// second reservation in this process gets ErrReserved). Two paths:
//
//   - Reserve(ctx, n) hands out n bytes of the mapping at the head as one
//     slice; fill it and Commit (or Cancel). Nothing is appended until
//     Commit: a ctx that ends while Reserve waits for space, or a Cancel,
//     leaves the ring exactly as it was.
//   - Write(ctx, p) appends p with pwrite (at most two calls, split at the
//     wrap); Writer stages small appends in a buffer and writes one large
//     pwrite per buffer.
//
// Which to use was decided by BenchmarkWritePath (bench_test.go): 1 KiB
// records, a 64 MiB ring written round and round after one untimed lap.
// Medians of 5 runs of
//
//	go test -run XXX -bench WritePath -benchtime 262144x -count 5 ./ring
//
// on Linux 6.18, x86-64, 2 cores, ext4 on a virtual disk and tmpfs:
//
//	                           mapped (Reserve)  staged (Writer, 1 MiB)
//	ext4, fdatasync every MiB      131 MB/s          559 MB/s
//	ext4, no sync                 1839 MB/s         2793 MB/s
//	tmpfs, fdatasync every MiB   12330 MB/s         7218 MB/s
//	tmpfs, no sync               12598 MB/s         7660 MB/s
//
// Stores into a shared file mapping fault once per page each time
// writeback has cleaned the page (ext4 write-protects clean pages to track
// dirtying), so on a real file system the staged path is 1.5x faster
// without syncs and 4.3x faster with them: it is the producer path for
// durable files, and the wal uses it. On tmpfs, where pages are never
// cleaned, stores into the mapping skip a copy and win by 1.6 to 1.7x:
// Reserve/Commit stays for in-memory rings and consumers of transient
// data.
//
// # Consumers and lifetimes
//
// A Consumer is named and has a durable acknowledged position in its own
// slot. Peek returns every committed byte it has not released as one slice
// of the mapping; Release acknowledges bytes. The producer never overwrites
// what a retaining consumer has not released, nor what a Pin holds: it
// waits (Reserve, Write) or returns ErrFull (TryReserve, TryWrite). So a
// slice from Peek stays valid until the consumer releases past it or is
// closed; a slice from Slice stays valid while the caller's Pin or
// consumer holds its range. With no consumers and no pins nothing is
// retained and the producer reuses space freely.
//
// A lossy consumer (ConsumerOptions.Lossy) never holds the producer back:
// when the producer is about to overwrite its unreleased bytes, or it lags
// more than its MaxLag, it is marked detached first, and its next call
// returns ErrOverrun. The bytes of slices it still holds may have changed
// under it; a Release that returns nil certifies that the released bytes
// were intact when read (the mark is set before any overwrite).
//
// # Closing
//
// Close waits for producer and consumer calls in progress; calls that wait
// (Reserve, Write, Wait) are woken and return ErrClosed. It refuses with
// ErrReserved while a reservation is outstanding. Head and Synced keep
// answering after Close; other calls return ErrClosed. Calls other than
// the waiting ones must not run concurrently with Close.
//
// # Other processes
//
// Another process opens the ring with Options.ReadOnly: the data area is
// mapped read-only; the header region (live page and slots) is mapped
// shared and writable (and so is the live file), because registering,
// acknowledging and pinning are writes, each to the handle's own slot (a
// Pin of a read-only handle is a slot too, so the producer sees it). It
// sees
// the head through the live page while a producer has the ring open, and
// the header's head otherwise (live words left by a dead producer may
// point past data that never reached the disk).
//
// A registration in another process races the producer's look at the
// slots: the producer publishes how far it may write before looking
// again, then checks the registration generation; a registration bumps
// the generation, then reads that limit and starts no earlier than
// limit - C. Either the producer sees the registration, or the
// registration starts where the producer's writes cannot reach.
//
// Waiting (Consumer.Wait, WaitHead) in another process sleeps on a futex
// on a sequence word of the live file, which the producer bumps and wakes
// on every commit and sync, but only while the live file's waiter count
// is not zero: saying "I am waiting" is that count, not a flag in the
// waiter's slot, because the producer looks at it on every commit and one
// load is cheaper than reading every slot. A waiter that dies while
// counted costs the producer a futex wake per commit until it next opens
// the ring (which zeroes the count); waits time out every 50ms, so a
// wakeup is never lost for longer. Where futexes are missing waiters poll
// with backoff.
//
// On the Copy backend (no mappings) the ring mirrors wrapped bytes into
// both copies itself, committed bytes reach the file (and other processes)
// on SyncData, Sync, Close, or when the producer waits for space, and a
// read-only reader rereads the pages it is about to return.
package ring
