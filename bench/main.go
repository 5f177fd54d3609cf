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
// -report DIR writes, after the run, results.json (the rows, exactly as
// -json writes them), run.json (the machine, the command, the date, and
// every pair in table order, a pair without a row with the reason why),
// results.md (the machine and the command, then a Markdown table per family
// of workloads: ops/s, MB/s, p50, p99, ratio to the baseline, memory) and
// two charts: ratio.svg (per workload, each system's ops/s over the
// baseline's, one linear axis per family) and latency.svg (p50 and p99 on a
// log axis, for the workloads that measure per-operation latency). Failed
// and not-run pairs are listed as such in results.md and left out of the
// charts. With -from FILE nothing runs: the directory is rendered from the
// results file of an earlier run; run.json beside FILE, if it describes
// FILE's rows, gives the machine, the command and the pairs without a row.
//
//	go run ./bench -quick -report out/
//	go run ./bench -report out/ -from out/results.json
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
