package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// svgDoc builds an SVG document. Elements are written in the order of the
// calls and attributes in the order given, numbers with at most two
// decimals, so the same calls always give the same bytes. Text and
// attribute values are escaped.
type svgDoc struct {
	buf  bytes.Buffer
	open []string // elements started and not yet ended, innermost last
}

// newSVG starts a document of the given size in pixels, on a white
// background (GitHub shows an SVG on its page colour, dark or light).
func newSVG(width, height float64) *svgDoc {
	d := &svgDoc{}
	d.buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	d.start("svg", "xmlns", "http://www.w3.org/2000/svg",
		"width", num(width), "height", num(height),
		"viewBox", "0 0 "+num(width)+" "+num(height),
		"font-family", "Helvetica, Arial, sans-serif", "font-size", num(chartFont))
	d.empty("rect", "width", num(width), "height", num(height), "fill", "#ffffff")
	return d
}

// tag writes the start of an element; attrs are name, value pairs.
func (d *svgDoc) tag(name string, attrs []string, end string) {
	if len(attrs)%2 != 0 {
		panic("svg: odd attribute list for " + name)
	}
	d.buf.WriteString(strings.Repeat(" ", len(d.open)))
	d.buf.WriteString("<" + name)
	for i := 0; i < len(attrs); i += 2 {
		d.buf.WriteString(" " + attrs[i] + `="`)
		xml.EscapeText(&d.buf, []byte(attrs[i+1])) // writes to a bytes.Buffer: no error
		d.buf.WriteString(`"`)
	}
	d.buf.WriteString(end)
}

// start begins an element that end closes.
func (d *svgDoc) start(name string, attrs ...string) {
	d.tag(name, attrs, ">\n")
	d.open = append(d.open, name)
}

// end closes the innermost element start began.
func (d *svgDoc) end() {
	name := d.open[len(d.open)-1]
	d.open = d.open[:len(d.open)-1]
	d.buf.WriteString(strings.Repeat(" ", len(d.open)) + "</" + name + ">\n")
}

// empty writes an element without content.
func (d *svgDoc) empty(name string, attrs ...string) { d.tag(name, attrs, "/>\n") }

// elem writes an element whose content is the text s.
func (d *svgDoc) elem(name, s string, attrs ...string) {
	d.tag(name, attrs, ">")
	xml.EscapeText(&d.buf, []byte(s))
	d.buf.WriteString("</" + name + ">\n")
}

// text writes s at (x, y), y being the baseline; attrs are added.
func (d *svgDoc) text(x, y float64, s string, attrs ...string) {
	d.elem("text", s, append([]string{"x", num(x), "y", num(y)}, attrs...)...)
}

// line writes a line from (x1, y1) to (x2, y2); attrs are added.
func (d *svgDoc) line(x1, y1, x2, y2 float64, attrs ...string) {
	d.empty("line", append([]string{"x1", num(x1), "y1", num(y1), "x2", num(x2), "y2", num(y2)}, attrs...)...)
}

// bytes ends every open element and returns the document.
func (d *svgDoc) bytes() []byte {
	for len(d.open) > 0 {
		d.end()
	}
	return d.buf.Bytes()
}

// num formats a coordinate or size: rounded to 0.01, no trailing zeros.
func num(x float64) string {
	x = math.Round(x*100) / 100
	if x == 0 {
		x = 0 // no "-0"
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// Chart layout, in pixels. Widths of text are estimated: chartCharW is a
// generous average advance of a chartFont-pixel sans-serif character.
const (
	chartWidth  = 900
	chartFont   = 12
	chartCharW  = 7
	chartPad    = 12 // outer margin
	chartIndent = 16 // system labels, under their workload's name
	chartHeadH  = 20 // a workload's name
	chartRowH   = 18 // one system's bar
	chartBarH   = 12
	chartGap    = 8 // after a workload's bars
)

// textWidth estimates the width of s in pixels.
func textWidth(s string) float64 { return float64(len([]rune(s))) * chartCharW }

// boldWidth estimates the width of s in pixels, in bold.
func boldWidth(s string) float64 { return float64(len([]rune(s))) * (chartCharW + 1) }

// halo are the attributes of a value written over grid lines: a white
// outline under the glyphs keeps it legible.
var halo = []string{"font-size", "11", "stroke", "#ffffff", "stroke-width", "3", "paint-order", "stroke"}

// systemColors are given to systems in order of first appearance, the same
// in every chart of a report (Okabe and Ito's colour-blind-safe palette,
// yellow left out: it does not show on white).
var systemColors = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#999999"}

// colorMap gives each system of groups its colour.
func colorMap(groups []tableGroup) map[string]string {
	m := map[string]string{}
	for _, g := range groups {
		for _, e := range g.entries {
			if _, ok := m[e.system]; !ok {
				m[e.system] = systemColors[len(m)%len(systemColors)]
			}
		}
	}
	return m
}

// chartBar is one bar: a system of a workload and its value.
type chartBar struct {
	system string
	value  float64 // ratio to the baseline; p50 in µs in the latency chart
	value2 float64 // p99 in µs in the latency chart
}

// chartGroup is a workload's bars.
type chartGroup struct {
	workload string
	note     string // after the name (the baseline)
	bars     []chartBar
}

// ratioBars returns, for each workload whose baseline has a row, the ratio
// of every system's ops/s to the baseline's. Failed and not-run pairs have
// no row and so no bar.
func ratioBars(groups []tableGroup) []chartGroup {
	var out []chartGroup
	for _, g := range groups {
		base := g.baseOps()
		if base <= 0 {
			continue
		}
		cg := chartGroup{workload: g.workload, note: "baseline " + g.baseline}
		for _, e := range g.entries {
			if e.row != nil && e.row.OpsPerSec > 0 {
				cg.bars = append(cg.bars, chartBar{system: e.system, value: e.row.OpsPerSec / base})
			}
		}
		out = append(out, cg)
	}
	return out
}

// latencyBars returns, for each workload that reports per-operation
// latency, every system's p50 and p99.
func latencyBars(groups []tableGroup) []chartGroup {
	var out []chartGroup
	for _, g := range groups {
		cg := chartGroup{workload: g.workload}
		for _, e := range g.entries {
			if e.row != nil && e.row.P50us > 0 && e.row.P99us > 0 {
				cg.bars = append(cg.bars, chartBar{system: e.system, value: e.row.P50us, value2: e.row.P99us})
			}
		}
		if len(cg.bars) > 0 {
			out = append(out, cg)
		}
	}
	return out
}

// chartLayout places the workloads' names and bars one under the other.
type chartLayout struct {
	labelW float64 // x where the plot starts
	top    float64 // y of the first workload's name
	height float64 // of the bars' area
}

// labelWidth is where the plot starts: right of every system's label.
func labelWidth(cgs []chartGroup) float64 {
	w := 120.0
	for _, cg := range cgs {
		for _, b := range cg.bars {
			w = max(w, chartPad+chartIndent+textWidth(b.system)+8)
		}
	}
	return min(w, chartWidth/3)
}

func layoutGroups(cgs []chartGroup, labelW, top float64) chartLayout {
	l := chartLayout{labelW: labelW, top: top}
	for _, cg := range cgs {
		l.height += chartHeadH + float64(len(cg.bars))*chartRowH + chartGap
	}
	return l
}

// drawGroups draws each workload's name and, for each bar, the system's
// label; bar draws the bar itself at row y (the top of the bar).
func drawGroups(d *svgDoc, cgs []chartGroup, l chartLayout, bar func(cg chartGroup, b chartBar, y float64)) {
	y := l.top
	for _, cg := range cgs {
		d.start("g", "class", "workload")
		d.text(chartPad, y+14, cg.workload, "font-weight", "bold")
		if cg.note != "" {
			d.text(chartPad+boldWidth(cg.workload)+8, y+14, "("+cg.note+")", "fill", "#666666", "font-size", "11")
		}
		y += chartHeadH
		for _, b := range cg.bars {
			top := y + (chartRowH-chartBarH)/2
			d.text(chartPad+chartIndent, top+chartBarH-2, b.system)
			bar(cg, b, top)
			y += chartRowH
		}
		y += chartGap
		d.end()
	}
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that divides
// span into at most about n intervals.
func niceStep(span float64, n int) float64 {
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// fmtTick prints an axis value without trailing zeros.
func fmtTick(x float64) string {
	return strconv.FormatFloat(math.Round(x*1e6)/1e6, 'f', -1, 64)
}

// ratioSVG draws, for each workload, a horizontal bar per system of its
// ops/s over the baseline's, with the value at the end of each bar. The
// workloads of a family (pager, wal, kv, ...) share a panel with one linear
// axis from 0, so that a family with ratios in the tens does not flatten
// another's near 1; a dashed line marks 1, the baseline.
func ratioSVG(groups []tableGroup) []byte {
	cgs := ratioBars(groups)
	colors := colorMap(groups)
	const (
		valueW   = 60 // right of the plot, for the value of the longest bar
		axisH    = 22 // a panel's tick labels
		panelGap = 14
	)
	var panels [][]chartGroup
	for i, cg := range cgs {
		if i == 0 || family(cg.workload) != family(cgs[i-1].workload) {
			panels = append(panels, nil)
		}
		panels[len(panels)-1] = append(panels[len(panels)-1], cg)
	}
	labelW := labelWidth(cgs)
	const top = 58.0
	height := top
	for _, p := range panels {
		height += axisH + layoutGroups(p, labelW, 0).height + panelGap
	}
	height += 8 // bottom margin
	d := newSVG(chartWidth, height)
	d.text(chartPad, 22, "ops/s relative to the workload's baseline system (dashed line: 1 = the baseline)", "font-size", "14", "font-weight", "bold")
	d.text(chartPad, 40, "Each family of workloads has its own axis. Failed and not-run pairs are left out.", "font-size", "11", "fill", "#555555")
	if len(cgs) == 0 {
		d.text(chartPad, 62, "no workload has a result for its baseline system")
		return d.bytes()
	}
	x0, x1 := labelW, float64(chartWidth-chartPad-valueW)
	y := top
	for _, p := range panels {
		maxV := 1.0
		for _, cg := range p {
			for _, b := range cg.bars {
				maxV = max(maxV, b.value)
			}
		}
		step := niceStep(maxV, 8)
		axisMax := math.Ceil(maxV/step-1e-9) * step
		scale := (x1 - x0) / axisMax
		l := layoutGroups(p, labelW, y+axisH)
		plotTop, plotBottom := y+axisH-4, l.top+l.height-chartGap+2
		d.start("g", "class", "panel")
		d.start("g", "class", "axis", "font-size", "11", "fill", "#444444")
		for i := 0; float64(i)*step <= axisMax+step*1e-9; i++ {
			v := float64(i) * step
			x := x0 + v*scale
			d.line(x, plotTop, x, plotBottom, "stroke", "#e4e4e4")
			d.text(x, plotTop-6, fmtTick(v), "class", "tick", "text-anchor", "middle")
		}
		d.line(x0, plotTop, x1, plotTop, "stroke", "#bbbbbb")
		d.end()
		drawGroups(d, p, l, func(cg chartGroup, b chartBar, y float64) {
			w := b.value * scale
			d.start("rect", "class", "bar", "x", num(x0), "y", num(y), "width", num(w), "height", num(chartBarH), "fill", colors[b.system])
			d.elem("title", fmt.Sprintf("%s / %s: %.2fx", cg.workload, b.system, b.value))
			d.end()
			d.text(x0+w+4, y+chartBarH-2, fmt.Sprintf("%.2fx", b.value), halo...)
		})
		x := x0 + scale
		d.line(x, plotTop, x, plotBottom, "class", "baseline", "stroke", "#222222", "stroke-width", "1.5", "stroke-dasharray", "5 3")
		d.end()
		y = l.top + l.height + panelGap
	}
	return d.bytes()
}

// fmtMicros prints a duration given in µs with a unit that keeps the
// number short: "0.5 µs", "20 µs", "1.5 ms", "2 s".
func fmtMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmtTick(sig3(us/1e6)) + " s"
	case us >= 1e3:
		return fmtTick(sig3(us/1e3)) + " ms"
	}
	return fmtTick(sig3(us)) + " µs"
}

// sig3 rounds x to three significant digits.
func sig3(x float64) float64 {
	if x == 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(math.Abs(x)))-2)
	return math.Round(x/p) * p
}

// latencySVG draws, for each workload that reports per-operation latency,
// a bar per system on a logarithmic axis: dark to p50, light to p99, both
// figures at the end of the bar. The axis spans whole decades, each
// labelled, with unlabelled lines at 2 and 5 times each.
func latencySVG(groups []tableGroup) []byte {
	cgs := latencyBars(groups)
	colors := colorMap(groups)
	const valueW = 190 // right of the plot, for "p50 123 µs · p99 4.56 ms"
	l := layoutGroups(cgs, labelWidth(cgs), 80)
	height := l.top + l.height + 30
	d := newSVG(chartWidth, height)
	d.text(chartPad, 22, "per-operation latency: p50 (dark) and p99 (light), log scale", "font-size", "14", "font-weight", "bold")
	d.text(chartPad, 40, "Workloads that measure the latency of each operation. Failed and not-run pairs are left out.", "font-size", "11", "fill", "#555555")
	if len(cgs) == 0 {
		d.text(chartPad, 62, "no workload reports per-operation latency")
		return d.bytes()
	}
	lo, hi := math.Inf(1), 0.0
	for _, cg := range cgs {
		for _, b := range cg.bars {
			lo, hi = min(lo, b.value, b.value2), max(hi, b.value, b.value2)
		}
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	x0, x1 := l.labelW, float64(chartWidth-chartPad-valueW)
	xOf := func(v float64) float64 { return x0 + (math.Log10(v)-dlo)/(dhi-dlo)*(x1-x0) }
	plotTop, plotBottom := l.top-6, l.top+l.height
	d.start("g", "class", "axis", "font-size", "11", "fill", "#444444")
	for dec := dlo; dec <= dhi; dec++ {
		v := math.Pow(10, dec)
		x := xOf(v)
		d.line(x, plotTop, x, plotBottom, "stroke", "#cccccc")
		for _, y := range []float64{plotTop - 6, plotBottom + 16} {
			d.text(x, y, fmtMicros(v), "class", "tick", "text-anchor", "middle")
		}
		if dec < dhi {
			for _, m := range []float64{2, 5} {
				x := xOf(m * v)
				d.line(x, plotTop, x, plotBottom, "stroke", "#ececec")
			}
		}
	}
	d.end()
	drawGroups(d, cgs, l, func(cg chartGroup, b chartBar, y float64) {
		c := colors[b.system]
		w99, w50 := xOf(b.value2)-x0, xOf(b.value)-x0
		d.start("rect", "class", "bar", "x", num(x0), "y", num(y), "width", num(w99), "height", num(chartBarH), "fill", c, "fill-opacity", "0.35")
		d.elem("title", fmt.Sprintf("%s / %s: p99 %s", cg.workload, b.system, fmtMicros(b.value2)))
		d.end()
		d.start("rect", "class", "bar", "x", num(x0), "y", num(y), "width", num(w50), "height", num(chartBarH), "fill", c)
		d.elem("title", fmt.Sprintf("%s / %s: p50 %s", cg.workload, b.system, fmtMicros(b.value)))
		d.end()
		d.text(x0+w99+4, y+chartBarH-2, "p50 "+fmtMicros(b.value)+" · p99 "+fmtMicros(b.value2), halo...)
	})
	return d.bytes()
}
