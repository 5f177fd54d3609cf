// Package ringlogprom exports ringlog's metrics to Prometheus: a collector
// for a write-ahead log (package wal) and one for a key-value store
// (package storage, with more for the native engine, package
// storage/logkv).
//
// It is a module of its own (github.com/ringlog/ringlog/prometheus), so
// that programs that use ringlog without Prometheus do not depend on the
// Prometheus client. In this repository its go.mod points at the root
// module with a replace directive (../); a program outside it requires
// both modules at versions of the same release.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(ringlogprom.NewWALCollector(log, nil))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Each scrape takes one snapshot (wal.Log.Metrics, storage.Engine.Stats)
// and reports it: the collectors keep no state of their own and cost
// nothing between scrapes. Unregister a collector before closing what it
// reads.
//
// # Metrics of a log (NewWALCollector)
//
// Counters, since the log was opened:
//
//	ringlog_wal_appends_total            records appended (batch members each count)
//	ringlog_wal_appended_bytes_total     bytes appended, record framing included
//	ringlog_wal_writes_total             writes (pwrites) of staged records
//	ringlog_wal_syncs_total              fdatasyncs
//	ringlog_wal_synced_records_total     records those syncs made durable; divided by
//	                                     syncs: records per sync (group commit)
//
// A histogram, since the log was opened:
//
//	ringlog_wal_sync_duration_seconds    fdatasync durations (buckets at powers of
//	                                     two from 1µs to about 4s)
//
// Gauges:
//
//	ringlog_wal_written_position_bytes     end of the records handed to the OS
//	ringlog_wal_durable_position_bytes     end of the records known to be durable
//	ringlog_wal_checkpoint_position_bytes  start of the log (TruncateFront moves it)
//	ringlog_wal_failed                     1 once a write or sync failed and the log
//	                                       refuses writes (see wal.Log.Err)
//	ringlog_wal_consumer_lag_bytes{consumer}         bytes after a consumer's
//	                                                 acknowledged position
//	ringlog_wal_consumer_acked_position_bytes{consumer}
//	ringlog_wal_consumer_detached{consumer}          1 if a lossy consumer was
//	                                                 overrun
//
// What recovery did at the last open (wal.Report), as gauges:
//
//	ringlog_wal_recovery_records           data records found
//	ringlog_wal_recovery_cut               1 if recovery shortened the log
//	ringlog_wal_recovery_dropped_records   records dropped with the cut
//	ringlog_wal_recovery_dropped_bytes
//	ringlog_wal_recovery_rewritten_bytes   bytes after the last proven sync written again
//	ringlog_wal_recovery_skipped_ranges    damaged ranges salvage skipped
//
// # Metrics of a store (NewEngineCollector)
//
// From storage.Stats, with a const label engine="ringlog" or "pebble"
// (fields an engine does not know are left out):
//
//	ringlog_kv_keys                   live keys (gauge)
//	ringlog_kv_live_bytes             size of live keys and values (gauge)
//	ringlog_kv_disk_bytes             disk space of the store's files (gauge)
//	ringlog_kv_index_bytes            memory of the in-memory index (gauge)
//	ringlog_kv_puts_total, ringlog_kv_deletes_total, ringlog_kv_gets_total,
//	ringlog_kv_batches_total          calls since open (counters)
//	ringlog_kv_gc_runs_total          cleaner passes (compactions for pebble)
//	ringlog_kv_gc_copied_bytes_total  bytes the cleaner copied
//
// For the native engine (*logkv.DB) also:
//
//	ringlog_kv_log_segments           segments of log between the cleaner and the head
//	ringlog_kv_gc_failed              1 while the cleaner's last pass failed
//	ringlog_kv_open_index_loaded      1 if the last open loaded the index checkpoint
//	ringlog_kv_open_replayed_records  log records the last open replayed
//
// and every ringlog_wal_ metric of the store's log, with the same const
// labels (engine included).
//
// Positions are byte offsets in the log; they only grow, except when
// TruncateBack or recovery cuts the log back.
package ringlogprom
