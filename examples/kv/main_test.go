package main

import (
	"bytes"
	"testing"
)

// TestRun runs the example on every engine: both print the same session.
func TestRun(t *testing.T) {
	const want = `get fruit/banana = 2
get fruit/damson: not found
now: fruit/apple=100 fruit/banana=2 fruit/cherry=3
snapshot: fruit/apple=1 fruit/banana=2 fruit/cherry=3
all keys, backward: veg/leek veg/kale fruit/cherry fruit/banana fruit/apple
`
	const after = "after reopen: fruit/apple=100 fruit/banana=2 fruit/cherry=3 veg/kale=11 veg/leek=10\n"
	for _, engine := range []string{"ringlog", "pebble"} {
		t.Run(engine, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(&out, engine, t.TempDir()); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if !bytes.HasPrefix(out.Bytes(), []byte(want)) || !bytes.HasSuffix(out.Bytes(), []byte(after)) {
				t.Fatalf("output:\n%s\nwant it to start with:\n%s\nand end with:\n%s", got, want, after)
			}
			if !bytes.Contains(out.Bytes(), []byte(engine+" engine: 6 puts, 1 deletes, 1 batches")) && engine == "ringlog" {
				t.Fatalf("stats line missing:\n%s", got)
			}
		})
	}
}
