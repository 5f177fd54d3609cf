// Package pager maps pages of one file into one contiguous range of virtual
// memory, in any order, and rearranges them without copying a byte.
//
// A View reserves a range of address space (PROT_NONE, private, anonymous,
// no swap reservation) and puts file pages at view pages on request. The
// same file page may sit at several view pages (aliasing: a store through
// one is seen through the others), and pages may sit in any order:
//
//	file   | F0 | F1 | F2 | F3 | F4 | F5 |
//	          \    \              |
//	view   | F4 | F0 | F1 | -- | F0 | F1 |     Map(0, F4, 1 page)
//	                                          Map(1, F0, 2 pages)
//	                                          Map(4, F0, 2 pages) aliases 1-2
//	                                          view page 3 is PROT_NONE
//
// This is what the layers above build on: the ring package maps its data
// area twice back to back, so a record that wraps past the end of the file
// is still one []byte; a growing log splices 64 KiB-aligned segments of one
// file into one logical range and drops or reuses segments by changing
// mappings instead of rewriting data.
//
// # Backends
//
// Three backends implement the same View, chosen by Options.Backend:
//
//   - Remap maps the file over the view and rearranges pages already mapped
//     with remap_file_pages(2). Since Linux 4.0 the kernel emulates that call
//     with an mmap(MAP_FIXED) of the same file over the range, so its cost is
//     that of an mmap; it needs a file opened read-write and identical
//     mapping flags across the range, so never madvise or mprotect part of a
//     view. Linux only (absent under gVisor).
//   - Mmap places one MAP_FIXED|MAP_SHARED mapping per contiguous run, always
//     inside the view's own reservation. Linux, macOS and FreeBSD.
//   - Copy keeps the view in Go heap memory, filled with pread when pages
//     are mapped and written back with pwrite on WriteBack. It runs
//     everywhere, is seen by the race detector, and is the baseline that
//     shows what mapping saves. It has no aliasing: two view pages of one
//     file page are two copies, kept coherent only by WriteBack and Reload.
//
// Auto (the default) probes once per process, Remap then Mmap then Copy,
// and takes the first that works; a read-only view never takes Remap.
// View.Backend reports the choice and Probe reports why a backend was
// passed over. Building with the tag ringlog_portable leaves the mapped
// backends out, so the portable path is tested on Linux too.
//
// The mapping granularity is os.Getpagesize(). On-disk layouts built on the
// pager align to Alignment (64 KiB, the largest common page size), so files
// move between 4 KiB x86-64, 16 KiB Apple Silicon and 64 KiB arm64 kernels.
//
// # Mappings budget
//
// Every run of view pages that cannot merge with its neighbours is one
// kernel mapping (VMA). At vm.max_map_count (65530 by default) mmap fails
// with ENOMEM and the Go runtime dies on its next heap growth, so the
// package counts the mappings its views create, merges contiguous runs,
// and refuses an operation with ErrMappingBudget once the process-wide
// count would pass a limit set well below max_map_count (a quarter of it by
// default; see SetMappingLimit).
//
// If a MAP_FIXED or remap call fails, the kernel may have unmapped the
// range first and left a hole that the Go runtime could take. The view then
// re-reserves what it can with MAP_FIXED_NOREPLACE (never a plain MAP_FIXED
// into a hole), reads back what the kernel kept, and marks any page it
// cannot prove is its own as lost: later operations on it fail with
// ErrPoisoned and Close leaves it alone. The view always knows what is
// mapped where. One case stays ambiguous: a page the kernel shows as
// anonymous, PROT_NONE and without swap reservation is taken back as the
// view's own reservation (the Go runtime's reservations differ: they
// reserve swap), so another view's reservation landing in that very hole
// in the same instant would be mistaken for it. Naming reservations
// (PR_SET_VMA_ANON_NAME) would tell them apart; the kernels measured here
// do not have it.
//
// # Lifetimes of slices
//
// Bytes returns a slice of the view itself. It stays valid until the pages
// under it are unmapped or re-spliced, or the view is closed; after that an
// access reads other bytes or faults, and a fault outside a guard kills the
// process. The pager does not track slices: the layers above pin what their
// readers hold and never change mappings under them. In builds with the
// invariants tag, pages given back by Unmap on the Copy backend are
// overwritten with a poison pattern, so a dangling slice shows up in tests;
// on the mapped backends unmapped pages are PROT_NONE and fault at once.
//
// # Faults (SIGBUS)
//
// Touching a mapped page beyond the end of the file, a page the file system
// cannot allocate (a sparse file on a full disk) or a page whose read fails
// raises SIGBUS. Map refuses file ranges past the end of the file as it last
// saw it (so preallocate first, see the osfile package; the size is read
// again only when a range goes past it, since an fstat costs as much as a
// splice), Check reads the size afresh and reports a file that has shrunk
// under its mapping, and the view's own accesses (ReadAt, WriteAt)
// run under debug.SetPanicOnFault and return a *FaultError naming the file
// and offset. Callers run their own code over views under the same
// protection with Guard.
//
// What remains fatal: a goroutine that touches a slice of a view outside
// Guard while the file is truncated by another process (or the disk fails)
// gets an unrecoverable fault. This is the trade-off every memory-mapped
// store makes (LMDB and bbolt document the same); ringlog keeps the window
// small by preallocating, checking sizes on open, and offering Guard.
//
// # Concurrency
//
// A View is safe for concurrent use. Map, Unmap and Close exclude each
// other and the view's own reads; Bytes slices are plain memory and are
// read or written without any lock, so callers order their own accesses
// against Map and Unmap.
package pager
