package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// xnode is an element of a parsed SVG document.
type xnode struct {
	name string
	attr map[string]string
	text string // character data directly inside
	kids []*xnode
}

// parseSVG decodes the whole document with encoding/xml and returns its
// root element, failing the test on any syntax error.
func parseSVG(t *testing.T, doc []byte) *xnode {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var root *xnode
	var stack []*xnode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				n.attr[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					t.Fatal("two root elements")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if root == nil || root.name != "svg" || len(stack) != 0 {
		t.Fatalf("no complete svg root element:\n%s", doc)
	}
	return root
}

// all returns the elements under n (n included), depth first, for which
// keep is true.
func (n *xnode) all(keep func(*xnode) bool) []*xnode {
	var out []*xnode
	if keep(n) {
		out = append(out, n)
	}
	for _, k := range n.kids {
		out = append(out, k.all(keep)...)
	}
	return out
}

func (n *xnode) float(t *testing.T, attr string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr[attr], 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.name, attr, n.attr[attr], err)
	}
	return v
}

func hasClass(class string) func(*xnode) bool {
	return func(n *xnode) bool { return n.attr["class"] == class }
}

// title is the text of a bar's <title>.
func title(n *xnode) string {
	for _, k := range n.kids {
		if k.name == "title" {
			return k.text
		}
	}
	return ""
}

// chartGroups are fixed rows: two families, a failed and an unavailable
// pair, a system whose name needs escaping, a workload without latency
// and one whose baseline failed.
func chartGroups() []tableGroup {
	return []tableGroup{
		{workload: "wal-append-1k", baseline: "pebble", entries: []tableEntry{
			{system: "ringlog/remap", row: &row{OpsPerSec: 3000, P50us: 2, P99us: 40}},
			{system: "odd <&> \"sys\"", row: &row{OpsPerSec: 1500, P50us: 0.5, P99us: 3}},
			{system: "ringlog/copy", note: "FAILED (1 problem(s), see stderr)"},
			{system: "pebble", row: &row{OpsPerSec: 2000, P50us: 4, P99us: 2500}},
		}},
		{workload: "wal-replay-1k", baseline: "pebble", entries: []tableEntry{
			{system: "ringlog/remap", row: &row{OpsPerSec: 500}},
			{system: "pebble", row: &row{OpsPerSec: 1000}},
		}},
		{workload: "kv-scan", baseline: "pebble", entries: []tableEntry{
			{system: "ringlog/remap", row: &row{OpsPerSec: 7e6}},
			{system: "ringlog/mmap", note: "unavailable: not here"},
			{system: "pebble", row: &row{OpsPerSec: 1e6}},
		}},
		{workload: "kv-get-random", baseline: "pebble", entries: []tableEntry{
			{system: "ringlog/remap", row: &row{OpsPerSec: 5e5}},
			{system: "pebble", note: "FAILED (3 problem(s), see stderr)"},
		}},
	}
}

func TestSVGWellFormed(t *testing.T) {
	for name, doc := range map[string][]byte{
		"ratio": ratioSVG(chartGroups()), "latency": latencySVG(chartGroups()),
		"ratio, no rows": ratioSVG(nil), "latency, no rows": latencySVG(nil),
	} {
		t.Run(name, func(t *testing.T) {
			root := parseSVG(t, doc)
			if root.attr["width"] != "900" || root.float(t, "height") <= 0 {
				t.Errorf("size %q x %q", root.attr["width"], root.attr["height"])
			}
			if len(root.all(func(n *xnode) bool { return n.name == "text" })) == 0 {
				t.Error("no text")
			}
		})
	}
	if !bytes.Equal(ratioSVG(chartGroups()), ratioSVG(chartGroups())) || !bytes.Equal(latencySVG(chartGroups()), latencySVG(chartGroups())) {
		t.Error("two renderings of the same rows differ")
	}
}

// Text and attribute values come back from the XML decoder as written.
func TestSVGDocEscapes(t *testing.T) {
	const odd = `a <b> & "c" 'd'`
	d := newSVG(100, 50)
	d.start("g", "class", odd)
	d.text(1.005, 2, odd, "fill", "#000000")
	d.end()
	root := parseSVG(t, d.bytes())
	g := root.all(func(n *xnode) bool { return n.name == "g" })
	if len(g) != 1 || g[0].attr["class"] != odd {
		t.Fatalf("attribute: %v", g)
	}
	txt := g[0].all(func(n *xnode) bool { return n.name == "text" })
	if len(txt) != 1 || txt[0].text != odd || txt[0].attr["x"] != "1" || txt[0].attr["y"] != "2" {
		t.Errorf("text: %+v", txt)
	}
}

// Every bar of the ratio chart is as long as its ratio on its family's
// axis; failed and unavailable pairs, and a workload whose baseline has no
// row, have no bar; the dashed line is at 1.
func TestRatioBarsProportional(t *testing.T) {
	root := parseSVG(t, ratioSVG(chartGroups()))
	want := []map[string]float64{
		{ // wal
			"wal-append-1k / ringlog/remap": 1.5, "wal-append-1k / odd <&> \"sys\"": 0.75, "wal-append-1k / pebble": 1,
			"wal-replay-1k / ringlog/remap": 0.5, "wal-replay-1k / pebble": 1,
		},
		{"kv-scan / ringlog/remap": 7, "kv-scan / pebble": 1}, // kv
	}
	panels := root.all(hasClass("panel"))
	if len(panels) != len(want) {
		t.Fatalf("%d panels, want %d", len(panels), len(want))
	}
	for i, p := range panels {
		bars := p.all(hasClass("bar"))
		if len(bars) != len(want[i]) {
			t.Errorf("panel %d: %d bars, want %d", i, len(bars), len(want[i]))
		}
		x0 := -1.0
		scale := 0.0
		for _, b := range bars {
			name, _, _ := strings.Cut(title(b), ": ")
			v, ok := want[i][name]
			if !ok {
				t.Errorf("panel %d: unexpected bar %q", i, title(b))
				continue
			}
			x, w := b.float(t, "x"), b.float(t, "width")
			if x0 < 0 {
				x0, scale = x, w/v
			}
			if x != x0 {
				t.Errorf("%s starts at x=%v, the others at %v", name, x, x0)
			}
			if math.Abs(w-v*scale) > 0.02 {
				t.Errorf("%s: width %v for ratio %v, want %v (%v px per unit)", name, w, v, v*scale, scale)
			}
		}
		base := p.all(hasClass("baseline"))
		if len(base) != 1 {
			t.Errorf("panel %d: %d baseline lines, want 1", i, len(base))
		} else if x := base[0].float(t, "x1"); math.Abs(x-(x0+scale)) > 0.02 {
			t.Errorf("panel %d: baseline line at x=%v, want %v", i, x, x0+scale)
		}
		// The axis reaches past the longest bar.
		var maxTick float64
		for _, tk := range p.all(hasClass("tick")) {
			v, err := strconv.ParseFloat(tk.text, 64)
			if err != nil {
				t.Fatalf("tick %q: %v", tk.text, err)
			}
			maxTick = max(maxTick, v)
			if x := tk.float(t, "x"); math.Abs(x-(x0+v*scale)) > 0.02 {
				t.Errorf("panel %d: tick %v at x=%v, want %v", i, v, x, x0+v*scale)
			}
		}
		for _, v := range want[i] {
			if v > maxTick {
				t.Errorf("panel %d: ratio %v past the last tick %v", i, v, maxTick)
			}
		}
	}
}

// Names are in the charts as text, escaped in the document; failed and
// unavailable systems are not.
func TestSVGLabels(t *testing.T) {
	for name, doc := range map[string][]byte{"ratio": ratioSVG(chartGroups()), "latency": latencySVG(chartGroups())} {
		root := parseSVG(t, doc)
		texts := map[string]bool{}
		for _, n := range root.all(func(n *xnode) bool { return n.name == "text" }) {
			texts[n.text] = true
		}
		for _, s := range []string{"wal-append-1k", "ringlog/remap", "odd <&> \"sys\"", "pebble"} {
			if !texts[s] {
				t.Errorf("%s: no label %q in %v", name, s, texts)
			}
		}
		if !bytes.Contains(doc, []byte("odd &lt;&amp;&gt; &#34;sys&#34;")) {
			t.Errorf("%s: the name with <&>\" is not escaped:\n%s", name, doc)
		}
		for _, s := range []string{"ringlog/copy", "ringlog/mmap", "kv-get-random"} {
			if texts[s] {
				t.Errorf("%s: label %q of a pair without figures", name, s)
			}
		}
	}
	ratio := parseSVG(t, ratioSVG(chartGroups()))
	for s, n := range map[string]int{"1.50x": 1, "0.75x": 1, "7.00x": 1, "(baseline pebble)": 3} {
		if got := len(ratio.all(func(n *xnode) bool { return n.name == "text" && n.text == s })); got != n {
			t.Errorf("ratio: label %q %d times, want %d", s, got, n)
		}
	}
	lat := parseSVG(t, latencySVG(chartGroups()))
	if len(lat.all(func(n *xnode) bool { return n.name == "text" && n.text == "p50 4 µs · p99 2.5 ms" })) != 1 {
		t.Error("latency: no label of pebble's p50 and p99")
	}
	if texts := lat.all(func(n *xnode) bool { return n.name == "text" && strings.HasPrefix(n.text, "wal-replay") }); len(texts) != 0 {
		t.Error("latency: a workload without latency is drawn")
	}
}

// parseMicros reads a tick label of the latency axis back into µs.
func parseMicros(t *testing.T, s string) float64 {
	t.Helper()
	f, unit, ok := strings.Cut(s, " ")
	v, err := strconv.ParseFloat(f, 64)
	mult := map[string]float64{"µs": 1, "ms": 1e3, "s": 1e6}[unit]
	if !ok || err != nil || mult == 0 {
		t.Fatalf("tick label %q", s)
	}
	return v * mult
}

// The latency axis has a labelled tick per decade, from one at or below
// the smallest figure to one at or above the largest, at equal distances
// in increasing order; every bar is as long as the log of its value over
// the first tick.
func TestLatencyLogAxis(t *testing.T) {
	root := parseSVG(t, latencySVG(chartGroups()))
	var vals, xs []float64
	for _, tk := range root.all(hasClass("tick")) {
		v := parseMicros(t, tk.text)
		if n := len(vals); n > 0 && v == vals[n-1] {
			continue // the same tick below the plot
		}
		vals, xs = append(vals, v), append(xs, tk.float(t, "x"))
	}
	// Figures from 0.5 µs to 2.5 ms: ticks 0.1 µs .. 10 ms.
	wantVals := []float64{0.1, 1, 10, 100, 1e3, 1e4}
	if len(vals) != len(wantVals) {
		t.Fatalf("ticks %v, want %v", vals, wantVals)
	}
	for i := range vals {
		if math.Abs(vals[i]-wantVals[i]) > 1e-9*wantVals[i] {
			t.Errorf("tick %d: %v, want %v", i, vals[i], wantVals[i])
		}
		if i > 0 && xs[i] <= xs[i-1] {
			t.Errorf("tick %v at x=%v, not right of %v at %v", vals[i], xs[i], vals[i-1], xs[i-1])
		}
	}
	decade := xs[1] - xs[0]
	for i := 2; i < len(xs); i++ {
		if math.Abs(xs[i]-xs[i-1]-decade) > 0.02 {
			t.Errorf("decade %v..%v is %v px wide, the first %v", vals[i-1], vals[i], xs[i]-xs[i-1], decade)
		}
	}
	want := map[string]float64{
		"wal-append-1k / ringlog/remap: p50 2 µs": 2, "wal-append-1k / ringlog/remap: p99 40 µs": 40,
		"wal-append-1k / odd <&> \"sys\": p50 0.5 µs": 0.5, "wal-append-1k / odd <&> \"sys\": p99 3 µs": 3,
		"wal-append-1k / pebble: p50 4 µs": 4, "wal-append-1k / pebble: p99 2.5 ms": 2500,
	}
	bars := root.all(hasClass("bar"))
	if len(bars) != len(want) {
		t.Errorf("%d bars, want %d", len(bars), len(want))
	}
	for _, b := range bars {
		v, ok := want[title(b)]
		if !ok {
			t.Errorf("unexpected bar %q", title(b))
			continue
		}
		if x := b.float(t, "x"); x != xs[0] {
			t.Errorf("%s starts at %v, not at the first tick %v", title(b), x, xs[0])
		}
		if w, ww := b.float(t, "width"), math.Log10(v/vals[0])*decade; math.Abs(w-ww) > 0.02 {
			t.Errorf("%s: width %v, want %v", title(b), w, ww)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ span, want float64 }{{1, 0.2}, {1.2, 0.2}, {7, 1}, {35.8, 5}, {400, 50}, {0.03, 0.005}} {
		if got := niceStep(c.span, 8); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceStep(%v, 8) = %v, want %v", c.span, got, c.want)
		}
	}
	for us, want := range map[float64]string{0.1: "0.1 µs", 1: "1 µs", 12.345: "12.3 µs", 1000: "1 ms", 2500: "2.5 ms", 3.2e6: "3.2 s"} {
		if got := fmtMicros(us); got != want {
			t.Errorf("fmtMicros(%v) = %q, want %q", us, got, want)
		}
	}
}
