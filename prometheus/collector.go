package ringlogprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
	"github.com/ringlog/ringlog/wal"
)

// Options configure a collector. nil means none.
type Options struct {
	// ConstLabels are added to every metric of the collector: to tell
	// two logs or stores of one process apart, for example
	// {"log": "orders"}.
	ConstLabels prometheus.Labels
}

// syncBuckets are the upper bounds of the sync duration histogram, in
// seconds: 2^i µs for the buckets package wal keeps (the last of its
// buckets, everything slower, is only in +Inf). A wal bucket counts
// durations strictly below its bound; Prometheus reads "at most", which
// differs only for a sync that took exactly a power of two microseconds.
var syncBuckets = func() []float64 {
	var b []float64
	for i := 0; i < 23; i++ {
		b = append(b, float64(uint64(1)<<i)*1e-6)
	}
	return b
}()

// metric is one metric a collector reports.
type metric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newMetric(name, help string, typ prometheus.ValueType, o *Options, labels ...string) metric {
	var cl prometheus.Labels
	if o != nil {
		cl = o.ConstLabels
	}
	return metric{prometheus.NewDesc(name, help, labels, cl), typ}
}

func (m metric) send(ch chan<- prometheus.Metric, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// WALCollector reports the metrics of a log. It implements
// prometheus.Collector.
type WALCollector struct {
	l *wal.Log

	appends, bytes, writes, syncs, syncedRecords metric
	syncDuration                                 *prometheus.Desc
	written, durable, checkpoint, failed         metric
	consumerLag, consumerAcked, consumerDetached metric
	recRecords, recCut, recDroppedRecords        metric
	recDroppedBytes, recRewritten, recSkipped    metric
}

// NewWALCollector returns a collector of l's metrics (see the package
// doc). Register it with a prometheus.Registerer; unregister it before
// closing l.
func NewWALCollector(l *wal.Log, opts *Options) *WALCollector {
	c, g := prometheus.CounterValue, prometheus.GaugeValue
	return &WALCollector{
		l:                 l,
		appends:           newMetric("ringlog_wal_appends_total", "Records appended to the log (batch members each count).", c, opts),
		bytes:             newMetric("ringlog_wal_appended_bytes_total", "Bytes appended to the log, record framing included.", c, opts),
		writes:            newMetric("ringlog_wal_writes_total", "Writes (pwrites) of staged records.", c, opts),
		syncs:             newMetric("ringlog_wal_syncs_total", "Syncs (fdatasync) of the log.", c, opts),
		syncedRecords:     newMetric("ringlog_wal_synced_records_total", "Records the syncs made durable (per sync: group commit).", c, opts),
		syncDuration:      newMetric("ringlog_wal_sync_duration_seconds", "Durations of the log's syncs (fdatasync).", 0, opts).desc, // a histogram: the value type is unused
		written:           newMetric("ringlog_wal_written_position_bytes", "Position of the end of the records handed to the operating system.", g, opts),
		durable:           newMetric("ringlog_wal_durable_position_bytes", "Position of the end of the records known to be durable.", g, opts),
		checkpoint:        newMetric("ringlog_wal_checkpoint_position_bytes", "Position where the log starts (records before it were truncated).", g, opts),
		failed:            newMetric("ringlog_wal_failed", "1 once a write or sync failed and the log refuses writes.", g, opts),
		consumerLag:       newMetric("ringlog_wal_consumer_lag_bytes", "Bytes of the log after a consumer's acknowledged position.", g, opts, "consumer"),
		consumerAcked:     newMetric("ringlog_wal_consumer_acked_position_bytes", "A consumer's acknowledged position.", g, opts, "consumer"),
		consumerDetached:  newMetric("ringlog_wal_consumer_detached", "1 if a lossy consumer was overrun and detached.", g, opts, "consumer"),
		recRecords:        newMetric("ringlog_wal_recovery_records", "Data records recovery found at the last open.", g, opts),
		recCut:            newMetric("ringlog_wal_recovery_cut", "1 if recovery at the last open shortened the log.", g, opts),
		recDroppedRecords: newMetric("ringlog_wal_recovery_dropped_records", "Complete records dropped with recovery's cut at the last open.", g, opts),
		recDroppedBytes:   newMetric("ringlog_wal_recovery_dropped_bytes", "Bytes dropped with recovery's cut at the last open.", g, opts),
		recRewritten:      newMetric("ringlog_wal_recovery_rewritten_bytes", "Bytes after the last proven sync that the last open wrote again.", g, opts),
		recSkipped:        newMetric("ringlog_wal_recovery_skipped_ranges", "Damaged ranges salvage skipped at the last open.", g, opts),
	}
}

func (c *WALCollector) metrics() []metric {
	return []metric{c.appends, c.bytes, c.writes, c.syncs, c.syncedRecords,
		c.written, c.durable, c.checkpoint, c.failed,
		c.consumerLag, c.consumerAcked, c.consumerDetached,
		c.recRecords, c.recCut, c.recDroppedRecords, c.recDroppedBytes, c.recRewritten, c.recSkipped}
}

// Describe sends the descriptors of every metric the collector reports.
func (c *WALCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics() {
		ch <- m.desc
	}
	ch <- c.syncDuration
}

// Collect takes a snapshot of the log's metrics and sends it.
func (c *WALCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.l.Metrics()
	c.appends.send(ch, float64(m.Appends))
	c.bytes.send(ch, float64(m.Bytes))
	c.writes.send(ch, float64(m.Writes))
	c.syncs.send(ch, float64(m.Syncs))
	c.syncedRecords.send(ch, float64(m.SyncedRecords))
	ch <- syncHistogram(c.syncDuration, m)

	c.written.send(ch, float64(c.l.Written()))
	c.durable.send(ch, float64(c.l.Durable()))
	c.checkpoint.send(ch, float64(c.l.Checkpoint()))
	c.failed.send(ch, b2f(c.l.Err() != nil))
	for _, ci := range m.Consumers {
		c.consumerLag.send(ch, float64(ci.Lag), ci.Name)
		c.consumerAcked.send(ch, float64(ci.Acked), ci.Name)
		c.consumerDetached.send(ch, b2f(ci.Detached), ci.Name)
	}

	r := c.l.Report()
	c.recRecords.send(ch, float64(r.Records))
	c.recCut.send(ch, b2f(r.Cut()))
	c.recDroppedRecords.send(ch, float64(r.DroppedRecords))
	c.recDroppedBytes.send(ch, float64(r.DroppedBytes))
	c.recRewritten.send(ch, float64(r.Rewritten))
	c.recSkipped.send(ch, float64(len(r.Skipped)))
}

// syncHistogram turns the wal's sync latency buckets into a cumulative
// Prometheus histogram.
func syncHistogram(d *prometheus.Desc, m wal.Metrics) prometheus.Metric {
	buckets := make(map[float64]uint64, len(syncBuckets))
	var count uint64
	for _, b := range m.SyncLatency {
		count += b.Count
	}
	for _, le := range syncBuckets {
		var n uint64
		for _, b := range m.SyncLatency {
			if b.Below != 0 && b.Below.Seconds() <= le*(1+1e-9) {
				n += b.Count
			}
		}
		buckets[le] = n
	}
	return prometheus.MustNewConstHistogram(d, count, m.SyncTime.Seconds(), buckets)
}

// EngineCollector reports the metrics of a key-value store. It implements
// prometheus.Collector.
type EngineCollector struct {
	e   storage.Engine
	db  *logkv.DB     // the native engine, or nil
	log *WALCollector // its log's metrics, or nil

	keys, live, disk, index                  metric
	puts, deletes, gets, batches             metric
	gcRuns, gcCopied                         metric
	segments, gcFailed, indexLoaded, replays metric
}

// NewEngineCollector returns a collector of e's metrics (see the package
// doc). The const label engine names the engine (Stats().Engine). For the
// native engine (*logkv.DB) it also reports the engine's own figures and
// its log's metrics. Register it with a prometheus.Registerer; unregister
// it before closing e.
func NewEngineCollector(e storage.Engine, opts *Options) *EngineCollector {
	o := Options{ConstLabels: prometheus.Labels{"engine": e.Stats().Engine}}
	if opts != nil {
		for k, v := range opts.ConstLabels {
			o.ConstLabels[k] = v
		}
	}
	c, g := prometheus.CounterValue, prometheus.GaugeValue
	ec := &EngineCollector{
		e:        e,
		keys:     newMetric("ringlog_kv_keys", "Live keys in the store.", g, &o),
		live:     newMetric("ringlog_kv_live_bytes", "Size of the store's live keys and values.", g, &o),
		disk:     newMetric("ringlog_kv_disk_bytes", "Disk space the store's files take.", g, &o),
		index:    newMetric("ringlog_kv_index_bytes", "Memory the store's in-memory index takes (pebble: memtables and caches in use).", g, &o),
		puts:     newMetric("ringlog_kv_puts_total", "Puts since the store was opened.", c, &o),
		deletes:  newMetric("ringlog_kv_deletes_total", "Deletes since the store was opened.", c, &o),
		gets:     newMetric("ringlog_kv_gets_total", "Gets since the store was opened.", c, &o),
		batches:  newMetric("ringlog_kv_batches_total", "Batches applied since the store was opened.", c, &o),
		gcRuns:   newMetric("ringlog_kv_gc_runs_total", "Passes of the cleaner (pebble: compactions) since the store was opened.", c, &o),
		gcCopied: newMetric("ringlog_kv_gc_copied_bytes_total", "Bytes the cleaner copied (pebble: compactions wrote) since the store was opened.", c, &o),
	}
	if db, ok := e.(*logkv.DB); ok {
		ec.db = db
		ec.log = NewWALCollector(db.Log(), &o) // with the engine label too
		ec.segments = newMetric("ringlog_kv_log_segments", "Segments of log between the cleaner's position and the head.", g, &o)
		ec.gcFailed = newMetric("ringlog_kv_gc_failed", "1 while the cleaner's last pass failed.", g, &o)
		ec.indexLoaded = newMetric("ringlog_kv_open_index_loaded", "1 if the last open loaded the index checkpoint instead of replaying the whole log.", g, &o)
		ec.replays = newMetric("ringlog_kv_open_replayed_records", "Log records the last open replayed into the index.", g, &o)
	}
	return ec
}

func (c *EngineCollector) metrics() []metric {
	ms := []metric{c.keys, c.live, c.disk, c.index, c.puts, c.deletes, c.gets, c.batches, c.gcRuns, c.gcCopied}
	if c.db != nil {
		ms = append(ms, c.segments, c.gcFailed, c.indexLoaded, c.replays)
	}
	return ms
}

// Describe sends the descriptors of every metric the collector reports.
func (c *EngineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics() {
		ch <- m.desc
	}
	if c.log != nil {
		c.log.Describe(ch)
	}
}

// Collect takes a snapshot of the store's counters and sends it. Fields
// the engine does not know (-1) are left out.
func (c *EngineCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.e.Stats()
	for _, f := range []struct {
		m metric
		v int64
	}{
		{c.keys, s.Keys}, {c.live, s.LiveBytes}, {c.disk, s.DiskBytes}, {c.index, s.IndexBytes},
		{c.puts, s.Puts}, {c.deletes, s.Deletes}, {c.gets, s.Gets}, {c.batches, s.Batches},
		{c.gcRuns, s.GCRuns}, {c.gcCopied, s.GCBytesCopied},
	} {
		if f.v >= 0 {
			f.m.send(ch, float64(f.v))
		}
	}
	if c.db == nil {
		return
	}
	c.segments.send(ch, float64(len(c.db.Segments())))
	c.gcFailed.send(ch, b2f(c.db.GCError() != nil))
	r := c.db.Report()
	c.indexLoaded.send(ch, b2f(r.IndexLoaded))
	c.replays.send(ch, float64(r.Replayed))
	c.log.Collect(ch)
}

var (
	_ prometheus.Collector = (*WALCollector)(nil)
	_ prometheus.Collector = (*EngineCollector)(nil)
)
