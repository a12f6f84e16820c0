package server

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/brygga/brygga/schema"
)

// The charts are inline SVG drawn on the server, each with a title and a
// description for screen readers (role="img", aria-labelledby) and the
// same figures in a table beside it. The series' colours have a contrast
// of at least 4.5:1 with the white background (WCAG 2.1, 1.4.11 asks 3:1).
var seriesColours = []string{"#1f6f8b", "#a44a00"}

// series is one row of figures of a column chart.
type series struct {
	Name   string
	Values []int64
}

// niceMax rounds max up to 1, 2 or 5 times a power of ten, for the axis.
func niceMax(max int64) int64 {
	if max <= 0 {
		return 1
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= max {
				return m * p
			}
		}
	}
}

// ticks returns the values an axis up to top, a niceMax, is marked at:
// evenly spaced whole numbers from 0, at most six of them.
func ticks(top int64) []int64 {
	n := int64(1)
	for _, d := range []int64{5, 4, 2} {
		if top%d == 0 {
			n = d
			break
		}
	}
	out := make([]int64, 0, n+1)
	for i := int64(0); i <= n; i++ {
		out = append(out, top*i/n)
	}
	return out
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// columnChart draws series of counts per period as grouped columns with a
// y axis, the periods' labels under them and, where there is room, each
// column's value above it.
func columnChart(id, title, desc string, labels []string, ss []series, l schema.Lang) template.HTML {
	const width, left, top, plotH, right = 760, 56, 16, 200, 10
	n := len(labels)
	if n == 0 {
		n = 1
	}
	var most int64
	for _, s := range ss {
		for _, v := range s.Values {
			most = maxInt(most, v)
		}
	}
	top2 := niceMax(most)
	slot := float64(width-left-right) / float64(n)
	barW := (slot * 0.8) / float64(len(ss))
	longest := 0
	for _, label := range labels {
		longest = max(longest, len([]rune(label)))
	}
	every := 1 // label every nth period so that labels do not overlap
	for slot*float64(every) < 7*float64(longest)+12 {
		every++
	}
	showValues := barW >= 22
	height := top + plotH + 40 + 22*((len(ss)+1)/2)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc"><title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`,
		id, width, height, id, id, id, esc(title), id, esc(desc))
	y := func(v int64) float64 { return float64(top) + float64(plotH)*(1-float64(v)/float64(top2)) }
	for _, v := range ticks(top2) { // the axis: its ticks and gridlines
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c9d1d6" stroke-width="1"/><text x="%d" y="%.1f" text-anchor="end" class="axis">%s</text>`,
			left, width-right, y(v), y(v), left-6, y(v)+4, formatInt(v, l))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#1d2a33"/>`, left, left, top, top+plotH)
	for i, label := range labels {
		x0 := float64(left) + slot*float64(i) + slot*0.1
		for j, s := range ss {
			v := int64(0)
			if i < len(s.Values) {
				v = s.Values[i]
			}
			x := x0 + barW*float64(j)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>`,
				x, y(v), barW-1, float64(top+plotH)-y(v), seriesColours[j%len(seriesColours)], esc(label), esc(s.Name), formatInt(v, l))
			if showValues && v > 0 { // a zero reads from the axis and the table
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="value">%s</text>`, x+barW/2, y(v)-3, formatInt(v, l))
			}
		}
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" class="axis">%s</text>`, float64(left)+slot*(float64(i)+0.5), top+plotH+16, esc(label))
		}
	}
	for j, s := range ss { // the legend
		lx, ly := left+360*(j%2), top+plotH+34+22*(j/2)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`,
			lx, ly, seriesColours[j%len(seriesColours)], lx+18, ly+11, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// bar is one group's count in a breakdown chart.
type bar struct {
	label string
	v     int64
}

// barsChart draws a breakdown's counts as horizontal bars along an x axis
// with ticks and gridlines, each bar with its value after it, inside
// the drawing however long the longest bar. Labels are escaped: unit names
// are an administrator's text.
func barsChart(id, title string, bars []bar, l schema.Lang) template.HTML {
	const width, labelW, valueW, axisH = 760, 240, 90, 22
	var most int64
	for _, g := range bars {
		most = maxInt(most, g.v)
	}
	top := niceMax(most)
	plotW := width - labelW - valueW
	plotH := 24*len(bars) + 8
	if len(bars) == 0 {
		plotH = 30
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart bars" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title"><title id="%s-title">%s</title>`,
		id, width, plotH+axisH, id, id, esc(title))
	for _, v := range ticks(top) { // the axis: its ticks and gridlines
		x := float64(labelW) + float64(plotW)*float64(v)/float64(top)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="0" y2="%d" stroke="#c9d1d6" stroke-width="1"/><text x="%.1f" y="%d" text-anchor="middle" class="axis">%s</text>`,
			x, x, plotH, x, plotH+15, formatInt(v, l))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="0" y2="%d" stroke="#1d2a33"/><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#1d2a33"/>`,
		labelW, labelW, plotH, labelW, labelW+plotW, plotH, plotH)
	for i, g := range bars {
		y := 4 + i*24
		w := int(float64(plotW) * float64(g.v) / float64(top))
		label := esc(g.label)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text><rect x="%d" y="%d" width="%d" height="18" fill="%s"><title>%s: %s</title></rect><text x="%d" y="%d" class="value">%s</text>`,
			labelW-8, y+13, label, labelW, y, w, seriesColours[0], label, formatInt(g.v, l), labelW+w+6, y+13, formatInt(g.v, l))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
