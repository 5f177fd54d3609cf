package pager

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ringlog/ringlog/internal/logtest"
)

func TestAutoFallbackLogged(t *testing.T) {
	Available(Remap) // run the probe, then pretend it found no remap
	saved := probe.errs
	t.Cleanup(func() { probe.errs = saved })
	probe.errs[Remap] = errors.New("remap refused by the test")

	lg, rec := logtest.New(slog.LevelInfo)
	f := makeFile(t, 1)
	v, err := New(f, PageSize, &Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	want := Mmap
	if Available(Mmap) != nil {
		want = Copy
	}
	if v.Backend() != want {
		t.Fatalf("auto without remap chose %v, want %v", v.Backend(), want)
	}
	lines := rec.Records(t)
	if len(lines) != 1 {
		t.Fatalf("got %d log records, want 1: %s", len(lines), rec.String())
	}
	l := lines[0]
	if l["level"] != "INFO" || l["msg"] != "pager: auto backend fell back" || l["file"] != f.Name() || l["backend"] != want.String() {
		t.Fatalf("fallback record = %v", l)
	}
	if r, _ := l["remap_unavailable"].(string); !strings.Contains(r, "remap refused by the test") {
		t.Fatalf("fallback record gives no reason for passing over remap: %v", l)
	}

	// Auto on the backend it prefers logs nothing; neither does a nil
	// logger, nor an explicit backend.
	if saved[Remap] == nil {
		probe.errs[Remap] = nil
		rec.Reset()
		v2, err := New(f, PageSize, &Options{Logger: lg})
		if err != nil {
			t.Fatal(err)
		}
		v2.Close()
		if v2.Backend() != Remap || rec.String() != "" {
			t.Fatalf("auto on remap: backend %v, logged %q", v2.Backend(), rec.String())
		}
		probe.errs[Remap] = errors.New("remap refused by the test")
	}
	rec.Reset()
	v3, err := New(f, PageSize, &Options{Backend: Copy, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	v3.Close()
	v4, err := New(f, PageSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	v4.Close()
	if rec.String() != "" {
		t.Fatalf("explicit backend logged %q", rec.String())
	}
}
