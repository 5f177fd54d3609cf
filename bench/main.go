// Command bench runs every workload on every system, interleaved and
// repeated, and reports the median of the repeats per (workload, system).
//
//	go run ./bench -quick              # 3 repeats, small sizes
//	go run ./bench                     # 5 repeats, full sizes
//	go run ./bench -quick -json out.json -workloads '^pager-' -systems 'remap|copy'
//
// Each run of a workload on a system is a child process (the bench
// re-executes its own binary), so heaps, page tables, caches and memory
// figures of one system never mix with another's. Repeats are interleaved:
// repeat r runs every selected workload on every system before repeat r+1
// starts, and the order of the systems rotates from one repeat to the next so
// that no system always runs first.
//
// The table on stdout has one row per (workload, system): ops/s and MB/s
// (MB = 10^6 bytes), per-operation latency p50 and p99 in microseconds where
// the workload has a natural operation, and the child's resident anonymous
// and file-backed memory (RssAnon and RssFile from /proc/self/status, read
// at the end of the timed work while its data is still live). Every figure
// is the median over the repeats, each taken independently. The ratio column
// compares ops/s with the baseline system of the workload. A system a
// workload leaves out on purpose (pebble in the wal-tail-latency workloads:
// it has no tailing API) has a line saying why in place of figures.
//
// -json FILE writes the same rows as a JSON array of objects with the fields
// workload, system, ops_per_sec, mb_per_sec, p50_us, p99_us, rss_anon_mb,
// rss_file_mb, n, bytes, fs and runs, plus fields a workload adds itself
// (open_ms of kv-reopen, space_amp and gc_runs of kv-overwrite-gc,
// records_per_sync of wal-sync-8w, ...), which only the JSON has.
//
// The kv-* workloads (kv-put-nosync, kv-put-sync-8w, kv-get-random, kv-scan,
// kv-reopen, kv-overwrite-gc) run key-value stores through the
// storage.Engine interface: on the ringlog/* systems the ringlog engine
// (storage/logkv) on that pager backend, on pebble the pebble engine
// (storage/pebblekv) with the settings its users run it with. -list lists
// every workload with what it does.
//
// Data lives in a fresh directory that is removed at the end: under -dir if
// given, otherwise under the system's temporary directory, or /var/tmp or
// the current directory when that is tmpfs. Durable workloads refuse to run
// on tmpfs, where fdatasync does nothing.
//
// The bench exits non-zero if any run failed (an error, a panic, or data
// read back that differs from what was written); the other runs still
// happen and are reported.
package main

import (
	"os"
)

func main() {
	if spec, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(spec))
	}
	os.Exit(parentMain(os.Args[1:], os.Stdout, os.Stderr))
}
