package ringlogprom_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	ringlogprom "github.com/ringlog/ringlog/prometheus"
	"github.com/ringlog/ringlog/storage"
	"github.com/ringlog/ringlog/storage/logkv"
	"github.com/ringlog/ringlog/wal"
)

// gather registers c in a registry of its own, checks that the result
// passes the Prometheus linter, and returns the metric families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// expectTypes checks the type of each named family.
func expectTypes(t *testing.T, mfs map[string]*dto.MetricFamily, want map[string]dto.MetricType) {
	t.Helper()
	for name, typ := range want {
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("no metric %s", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s is a %v, want a %v", name, mf.GetType(), typ)
		}
	}
}

func TestWALCollector(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal")
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	var pos []uint64
	for i := range 10 {
		p, err := l.AppendSync(ctx, []byte(strings.Repeat(fmt.Sprint(i), 100)))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	c, err := l.Consumer("indexer", &wal.ConsumerOptions{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 4 {
		if !c.Next() {
			t.Fatal(c.Err())
		}
	}
	acked := c.Position()
	if err := c.Ack(acked); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFront(pos[2]); err != nil {
		t.Fatal(err)
	}
	end := l.Written()
	col := ringlogprom.NewWALCollector(l, &ringlogprom.Options{ConstLabels: prometheus.Labels{"log": "orders"}})
	want := fmt.Sprintf(`
# HELP ringlog_wal_appends_total Records appended to the log (batch members each count).
# TYPE ringlog_wal_appends_total counter
ringlog_wal_appends_total{log="orders"} 10
# HELP ringlog_wal_appended_bytes_total Bytes appended to the log, record framing included.
# TYPE ringlog_wal_appended_bytes_total counter
ringlog_wal_appended_bytes_total{log="orders"} %d
# HELP ringlog_wal_consumer_lag_bytes Bytes of the log after a consumer's acknowledged position.
# TYPE ringlog_wal_consumer_lag_bytes gauge
ringlog_wal_consumer_lag_bytes{consumer="indexer",log="orders"} %d
# HELP ringlog_wal_consumer_acked_position_bytes A consumer's acknowledged position.
# TYPE ringlog_wal_consumer_acked_position_bytes gauge
ringlog_wal_consumer_acked_position_bytes{consumer="indexer",log="orders"} %d
# HELP ringlog_wal_consumer_detached 1 if a lossy consumer was overrun and detached.
# TYPE ringlog_wal_consumer_detached gauge
ringlog_wal_consumer_detached{consumer="indexer",log="orders"} 0
# HELP ringlog_wal_checkpoint_position_bytes Position where the log starts (records before it were truncated).
# TYPE ringlog_wal_checkpoint_position_bytes gauge
ringlog_wal_checkpoint_position_bytes{log="orders"} %d
# HELP ringlog_wal_written_position_bytes Position of the end of the records handed to the operating system.
# TYPE ringlog_wal_written_position_bytes gauge
ringlog_wal_written_position_bytes{log="orders"} %d
# HELP ringlog_wal_durable_position_bytes Position of the end of the records known to be durable.
# TYPE ringlog_wal_durable_position_bytes gauge
ringlog_wal_durable_position_bytes{log="orders"} %d
# HELP ringlog_wal_failed 1 once a write or sync failed and the log refuses writes.
# TYPE ringlog_wal_failed gauge
ringlog_wal_failed{log="orders"} 0
# HELP ringlog_wal_recovery_cut 1 if recovery at the last open shortened the log.
# TYPE ringlog_wal_recovery_cut gauge
ringlog_wal_recovery_cut{log="orders"} 0
`, 10*wal.RecordSize(100), end-acked, acked, pos[2], end, end)
	if err := testutil.CollectAndCompare(col, strings.NewReader(want),
		"ringlog_wal_appends_total", "ringlog_wal_appended_bytes_total", "ringlog_wal_consumer_lag_bytes",
		"ringlog_wal_consumer_acked_position_bytes", "ringlog_wal_consumer_detached", "ringlog_wal_checkpoint_position_bytes",
		"ringlog_wal_written_position_bytes", "ringlog_wal_durable_position_bytes", "ringlog_wal_failed", "ringlog_wal_recovery_cut"); err != nil {
		t.Fatal(err)
	}

	mfs := gather(t, col)
	expectTypes(t, mfs, map[string]dto.MetricType{
		"ringlog_wal_appends_total":             dto.MetricType_COUNTER,
		"ringlog_wal_appended_bytes_total":      dto.MetricType_COUNTER,
		"ringlog_wal_writes_total":              dto.MetricType_COUNTER,
		"ringlog_wal_syncs_total":               dto.MetricType_COUNTER,
		"ringlog_wal_synced_records_total":      dto.MetricType_COUNTER,
		"ringlog_wal_sync_duration_seconds":     dto.MetricType_HISTOGRAM,
		"ringlog_wal_written_position_bytes":    dto.MetricType_GAUGE,
		"ringlog_wal_consumer_lag_bytes":        dto.MetricType_GAUGE,
		"ringlog_wal_recovery_records":          dto.MetricType_GAUGE,
		"ringlog_wal_recovery_dropped_bytes":    dto.MetricType_GAUGE,
		"ringlog_wal_recovery_rewritten_bytes":  dto.MetricType_GAUGE,
		"ringlog_wal_recovery_skipped_ranges":   dto.MetricType_GAUGE,
		"ringlog_wal_recovery_dropped_records":  dto.MetricType_GAUGE,
		"ringlog_wal_checkpoint_position_bytes": dto.MetricType_GAUGE,
	})
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if !hasLabel(m, "log", "orders") {
				t.Errorf("%s lacks the const label: %v", name, m.GetLabel())
			}
		}
	}
	// The histogram holds every sync, cumulatively, and their total time.
	m := l.Metrics()
	h := mfs["ringlog_wal_sync_duration_seconds"].GetMetric()[0].GetHistogram()
	if m.Syncs < 10 || h.GetSampleCount() != m.Syncs || math.Abs(h.GetSampleSum()-m.SyncTime.Seconds()) > 1e-9 {
		t.Fatalf("histogram: %d syncs, %v s; metrics: %d syncs, %v", h.GetSampleCount(), h.GetSampleSum(), m.Syncs, m.SyncTime)
	}
	var prev uint64
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > m.Syncs {
			t.Fatalf("bucket le=%v holds %d after %d (of %d syncs)", b.GetUpperBound(), b.GetCumulativeCount(), prev, m.Syncs)
		}
		prev = b.GetCumulativeCount()
	}
	if len(h.GetBucket()) != 23 || h.GetBucket()[0].GetUpperBound() != 1e-6 {
		t.Fatalf("buckets: %v", h.GetBucket())
	}
	// The wal's own buckets, placed where they belong.
	for _, b := range m.SyncLatency {
		if b.Below == 0 {
			continue
		}
		var atOrBelow uint64
		for _, lb := range m.SyncLatency {
			if lb.Below != 0 && lb.Below <= b.Below {
				atOrBelow += lb.Count
			}
		}
		for _, hb := range h.GetBucket() {
			if math.Abs(hb.GetUpperBound()-b.Below.Seconds()) < 1e-12 && hb.GetCumulativeCount() != atOrBelow {
				t.Fatalf("bucket le=%v holds %d, the wal counts %d syncs below it", hb.GetUpperBound(), hb.GetCumulativeCount(), atOrBelow)
			}
		}
	}
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name && lp.GetValue() == value {
			return true
		}
	}
	return false
}

// TestWALCollectorRecovery: what recovery cut at open is reported.
func TestWALCollectorRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal")
	l, err := wal.Create(path, &wal.Options{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 5 {
		if last, err = l.AppendSync(context.Background(), []byte(strings.Repeat(fmt.Sprint(i), 100))); err != nil {
			t.Fatal(err)
		}
	}
	off := l.FileOffset(last) + wal.HeaderSize + 10
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xEE}, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if l, err = wal.Open(path, &wal.Options{Recovery: wal.RecoverPointInTime}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if r := l.Report(); !r.Cut() || r.CutAt != last || r.Records != 4 {
		t.Fatalf("recovery: %v", r)
	}
	want := `
# HELP ringlog_wal_recovery_cut 1 if recovery at the last open shortened the log.
# TYPE ringlog_wal_recovery_cut gauge
ringlog_wal_recovery_cut 1
# HELP ringlog_wal_recovery_records Data records recovery found at the last open.
# TYPE ringlog_wal_recovery_records gauge
ringlog_wal_recovery_records 4
`
	col := ringlogprom.NewWALCollector(l, nil)
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "ringlog_wal_recovery_cut", "ringlog_wal_recovery_records"); err != nil {
		t.Fatal(err)
	}
	gather(t, col)
}

func TestEngineCollector(t *testing.T) {
	dir := t.TempDir()
	o := &logkv.Options{SegmentSize: 256 << 10, GCRatio: 1.25, GCDisabled: true}
	db, err := logkv.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) []byte { return fmt.Appendf(nil, "key-%05d", i) }
	for i := 1000; i < 1200; i++ { // written once: the cleaner copies them
		if err := db.Put(key(i), make([]byte, 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 8 {
		for i := range 1000 {
			if err := db.Put(key(i), make([]byte, 100), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 10 {
		if err := db.Delete(key(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var b storage.Batch
	b.Put([]byte("a"), []byte("1"))
	b.Delete(key(20))
	if err := db.Apply(&b, storage.Synced); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := db.Get(key(100+i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.GC(); err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	if st.GCRuns == 0 || st.GCBytesCopied == 0 {
		t.Fatalf("the cleaner did not run: %+v", st)
	}
	col := ringlogprom.NewEngineCollector(db, &ringlogprom.Options{ConstLabels: prometheus.Labels{"store": "main"}})
	want := fmt.Sprintf(`
# HELP ringlog_kv_puts_total Puts since the store was opened.
# TYPE ringlog_kv_puts_total counter
ringlog_kv_puts_total{engine="ringlog",store="main"} 8200
# HELP ringlog_kv_deletes_total Deletes since the store was opened.
# TYPE ringlog_kv_deletes_total counter
ringlog_kv_deletes_total{engine="ringlog",store="main"} 10
# HELP ringlog_kv_batches_total Batches applied since the store was opened.
# TYPE ringlog_kv_batches_total counter
ringlog_kv_batches_total{engine="ringlog",store="main"} 1
# HELP ringlog_kv_gets_total Gets since the store was opened.
# TYPE ringlog_kv_gets_total counter
ringlog_kv_gets_total{engine="ringlog",store="main"} 5
# HELP ringlog_kv_keys Live keys in the store.
# TYPE ringlog_kv_keys gauge
ringlog_kv_keys{engine="ringlog",store="main"} 1190
# HELP ringlog_kv_gc_runs_total Passes of the cleaner (pebble: compactions) since the store was opened.
# TYPE ringlog_kv_gc_runs_total counter
ringlog_kv_gc_runs_total{engine="ringlog",store="main"} %d
# HELP ringlog_kv_gc_copied_bytes_total Bytes the cleaner copied (pebble: compactions wrote) since the store was opened.
# TYPE ringlog_kv_gc_copied_bytes_total counter
ringlog_kv_gc_copied_bytes_total{engine="ringlog",store="main"} %d
# HELP ringlog_kv_gc_failed 1 while the cleaner's last pass failed.
# TYPE ringlog_kv_gc_failed gauge
ringlog_kv_gc_failed{engine="ringlog",store="main"} 0
# HELP ringlog_kv_open_index_loaded 1 if the last open loaded the index checkpoint instead of replaying the whole log.
# TYPE ringlog_kv_open_index_loaded gauge
ringlog_kv_open_index_loaded{engine="ringlog",store="main"} 0
# HELP ringlog_kv_log_segments Segments of log between the cleaner's position and the head.
# TYPE ringlog_kv_log_segments gauge
ringlog_kv_log_segments{engine="ringlog",store="main"} %d
`, st.GCRuns, st.GCBytesCopied, len(db.Segments()))
	if err := testutil.CollectAndCompare(col, strings.NewReader(want),
		"ringlog_kv_puts_total", "ringlog_kv_deletes_total", "ringlog_kv_batches_total", "ringlog_kv_gets_total", "ringlog_kv_keys",
		"ringlog_kv_gc_runs_total", "ringlog_kv_gc_copied_bytes_total", "ringlog_kv_gc_failed", "ringlog_kv_open_index_loaded",
		"ringlog_kv_log_segments"); err != nil {
		t.Fatal(err)
	}
	mfs := gather(t, col)
	expectTypes(t, mfs, map[string]dto.MetricType{
		"ringlog_kv_live_bytes":            dto.MetricType_GAUGE,
		"ringlog_kv_disk_bytes":            dto.MetricType_GAUGE,
		"ringlog_kv_index_bytes":           dto.MetricType_GAUGE,
		"ringlog_kv_open_replayed_records": dto.MetricType_GAUGE,
		"ringlog_wal_appends_total":        dto.MetricType_COUNTER, // the store's log
		"ringlog_wal_syncs_total":          dto.MetricType_COUNTER,
	})
	if v := mfs["ringlog_kv_live_bytes"].GetMetric()[0].GetGauge().GetValue(); v != float64(st.LiveBytes) || v == 0 {
		t.Errorf("live bytes %v, Stats says %d", v, st.LiveBytes)
	}
	if v := mfs["ringlog_wal_appends_total"].GetMetric()[0].GetCounter().GetValue(); v != float64(db.Log().Metrics().Appends) || v == 0 {
		t.Errorf("the log's appends: %v", v)
	}
	// The store's log metrics carry the store's const labels.
	labels := map[string]string{}
	for _, lp := range mfs["ringlog_wal_appends_total"].GetMetric()[0].GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	if labels["engine"] != "ringlog" || labels["store"] != "main" {
		t.Errorf("the log's metrics have labels %v, want engine=ringlog and store=main", labels)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = logkv.Open(dir, o); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	col = ringlogprom.NewEngineCollector(db, nil)
	want = `
# HELP ringlog_kv_open_index_loaded 1 if the last open loaded the index checkpoint instead of replaying the whole log.
# TYPE ringlog_kv_open_index_loaded gauge
ringlog_kv_open_index_loaded{engine="ringlog"} 1
# HELP ringlog_kv_keys Live keys in the store.
# TYPE ringlog_kv_keys gauge
ringlog_kv_keys{engine="ringlog"} 1190
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "ringlog_kv_open_index_loaded", "ringlog_kv_keys"); err != nil {
		t.Fatal(err)
	}
}

// otherEngine is an engine that knows only some of its figures.
type otherEngine struct{ storage.Engine }

func (otherEngine) Stats() storage.Stats {
	return storage.Stats{Engine: "other", Keys: 7, LiveBytes: -1, DiskBytes: -1, IndexBytes: -1,
		Puts: 3, Deletes: -1, Gets: -1, Batches: -1, GCRuns: -1, GCBytesCopied: -1}
}

// TestEngineCollectorUnknownFields: fields an engine does not know (-1)
// are left out, not reported as -1.
func TestEngineCollectorUnknownFields(t *testing.T) {
	col := ringlogprom.NewEngineCollector(otherEngine{}, nil)
	want := `
# HELP ringlog_kv_keys Live keys in the store.
# TYPE ringlog_kv_keys gauge
ringlog_kv_keys{engine="other"} 7
# HELP ringlog_kv_puts_total Puts since the store was opened.
# TYPE ringlog_kv_puts_total counter
ringlog_kv_puts_total{engine="other"} 3
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	gather(t, col)
}
