package ringlogprom_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	ringlogprom "github.com/ringlog/ringlog/prometheus"
	"github.com/ringlog/ringlog/wal"
)

// A log's metrics in a registry, as a /metrics handler would serve them.
func ExampleNewWALCollector() {
	dir, err := os.MkdirTemp("", "ringlogprom-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	l, err := wal.Create(filepath.Join(dir, "orders.wal"), &wal.Options{Capacity: 1 << 20})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	for i := range 3 {
		if _, err := l.AppendSync(context.Background(), fmt.Appendf(nil, "order %d", i)); err != nil {
			panic(err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(ringlogprom.NewWALCollector(l, &ringlogprom.Options{
		ConstLabels: prometheus.Labels{"log": "orders"},
	}))
	// What a scrape would show of three of the metrics.
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "ringlog_wal_appends_total", "ringlog_wal_failed", "ringlog_wal_recovery_cut":
			m := mf.GetMetric()[0]
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			fmt.Printf("%s{%s=%q} %v\n", mf.GetName(), m.GetLabel()[0].GetName(), m.GetLabel()[0].GetValue(), v)
		}
	}
	// Output:
	// ringlog_wal_appends_total{log="orders"} 3
	// ringlog_wal_failed{log="orders"} 0
	// ringlog_wal_recovery_cut{log="orders"} 0
}
