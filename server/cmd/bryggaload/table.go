package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
)

// target is what a figure, or its ratio to its baseline, should reach.
type target struct {
	// Op is one of ">=", "<=", "<" and "=".
	Op    string
	Limit float64
	// OnRatio judges the ratio to the baseline instead of the figure.
	OnRatio bool
}

// met reports whether v reaches the target.
func (t *target) met(v float64) bool {
	switch t.Op {
	case ">=":
		return v >= t.Limit
	case "<=":
		return v <= t.Limit
	case "<":
		return v < t.Limit
	case "=":
		return v == t.Limit
	}
	return false
}

// String returns the target as the table shows it.
func (t *target) String(unit string) string {
	if t.OnRatio {
		return "ratio " + t.Op + " " + formatValue(t.Limit)
	}
	return t.Op + " " + formatValue(t.Limit) + " " + unit
}

// metric is one figure of one run.
type metric struct {
	Scenario string
	Figure   string
	Unit     string
	Value    float64
	// Base is the key (scenario/figure) of the figure the ratio is taken
	// to, or empty.
	Base   string
	Target *target
	// Max aggregates the runs by their maximum instead of their median,
	// for counts of errors.
	Max bool
}

// key identifies a figure across runs.
func (m *metric) key() string { return m.Scenario + "/" + m.Figure }

// recorder collects the figures of one run.
type recorder struct {
	metrics []metric
}

// add records a figure.
func (r *recorder) add(m metric) { r.metrics = append(r.metrics, m) }

// value returns the figure with key k of the run.
func (r *recorder) value(k string) (float64, bool) {
	for i := range r.metrics {
		if r.metrics[i].key() == k {
			return r.metrics[i].Value, true
		}
	}
	return 0, false
}

// row is one line of the table: a figure aggregated over the runs.
type row struct {
	metric
	baseline    float64
	hasBaseline bool
	ratio       float64
	hasRatio    bool
}

// aggregate takes the median of every figure over the runs, and the median
// of the ratios each run gives.
func aggregate(runs []*recorder) []row {
	var rows []row
	seen := map[string]bool{}
	for _, run := range runs {
		for _, m := range run.metrics {
			if seen[m.key()] {
				continue
			}
			seen[m.key()] = true
			var values, bases, ratios []float64
			for _, r := range runs {
				v, ok := r.value(m.key())
				if !ok {
					continue
				}
				values = append(values, v)
				if m.Base == "" {
					continue
				}
				if b, ok := r.value(m.Base); ok {
					bases = append(bases, b)
					if b != 0 {
						ratios = append(ratios, v/b)
					}
				}
			}
			out := row{metric: m}
			if m.Max {
				out.Value = slices.Max(values)
			} else {
				out.Value = median(values)
			}
			if len(bases) > 0 {
				out.baseline, out.hasBaseline = median(bases), true
			}
			if len(ratios) > 0 {
				out.ratio, out.hasRatio = median(ratios), true
			}
			rows = append(rows, out)
		}
	}
	return rows
}

// median returns the median of vs; it does not change vs.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// printTable prints the rows as a table, its cells separated by at least
// two spaces (no cell holds two spaces in a row).
func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tunit\tvalue\tbaseline\tratio\ttarget\tmet?")
	for _, r := range rows {
		base, ratio, tgt, met := "-", "-", "-", "-"
		if r.hasBaseline {
			base = formatValue(r.baseline)
		}
		if r.hasRatio {
			ratio = strconv.FormatFloat(r.ratio, 'f', 3, 64)
		}
		if r.Target != nil {
			tgt = r.Target.String(r.Unit)
			v, ok := r.Value, true
			if r.Target.OnRatio {
				v, ok = r.ratio, r.hasRatio
			}
			switch {
			case !ok:
				met = "no baseline"
			case r.Target.met(v):
				met = "met"
			default:
				met = "missed"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Figure, r.Unit, formatValue(r.Value), base, ratio, tgt, met)
	}
	tw.Flush()
}

// formatValue prints a figure with as many digits as matter.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "NaN"
	case a >= 1000 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
