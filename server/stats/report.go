package stats

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Cell is a figure of a report: its value, or nothing if suppressed.
type Cell struct {
	Value      *int64 `json:"value"`
	Suppressed bool   `json:"suppressed"`
}

// Row is one group of a report in one period; the group "total" is the
// period's total.
type Row struct {
	Period     string             `json:"period"`
	Group      string             `json:"group"`
	Label      string             `json:"label"`
	Indicators map[Indicator]Cell `json:"indicators"`
}

// Report is an aggregate report with disclosure control.
type Report struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Period Period    `json:"period"`
	By     Dim       `json:"by"`
	K      int64     `json:"k"`
	Rows   []Row     `json:"rows"`
}

// TotalGroup is the group of a period's total row.
const TotalGroup = "total"

// BuildReport computes q and suppresses small numbers with Suppress. The
// unit, municipality and organisation breakdowns nest (units lie in one
// municipality and one organisation), so their suppression is computed
// jointly: a cell hidden in one of them cannot be recovered from another.
func BuildReport(ctx context.Context, db *sql.DB, q Query, k int64) (*Report, error) {
	if k < 1 {
		k = DefaultK
	}
	rep := &Report{From: q.From, To: q.To, Period: q.Period, By: q.By, K: k, Rows: []Row{}}
	switch q.By {
	case ByUnit, ByMunicipality, ByOrganisation:
		return rep, spatial(ctx, db, q, rep)
	}
	r, err := Compute(ctx, db, q)
	if err != nil {
		return nil, err
	}
	for _, p := range r.Periods {
		rows := make([]Row, len(r.Groups)+1)
		for i, g := range r.Groups {
			rows[i] = Row{Period: p, Group: g.Key, Label: g.Label, Indicators: map[Indicator]Cell{}}
		}
		rows[len(r.Groups)] = Row{Period: p, Group: TotalGroup, Label: "Total", Indicators: map[Indicator]Cell{}}
		for _, ind := range Indicators {
			values := make([]int64, len(r.Groups)+1)
			parts := make([]int, len(r.Groups))
			for i, g := range r.Groups {
				values[i] = r.Value(p, g.Key, ind)
				parts[i] = i
			}
			total := len(r.Groups)
			values[total] = r.Value(p, "", ind)
			shared := make([]bool, len(values))
			shared[total] = true
			var lines []Line
			if q.By != ByTotal {
				lines = []Line{{Parts: parts, Sum: total}}
			}
			hidden := Suppress(values, lines, shared, k)
			for i := range values {
				rows[i].Indicators[ind] = cell(values[i], hidden[i])
			}
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	return rep, nil
}

func cell(v int64, hidden bool) Cell {
	if hidden {
		return Cell{Suppressed: true}
	}
	return Cell{Value: &v}
}

// spatial builds a unit, municipality or organisation report, suppressing
// over all three nested breakdowns at once.
func spatial(ctx context.Context, db *sql.DB, q Query, rep *Report) error {
	var rs [3]*Result
	for i, by := range []Dim{ByUnit, ByMunicipality, ByOrganisation} {
		qq := q
		qq.By = by
		r, err := Compute(ctx, db, qq)
		if err != nil {
			return err
		}
		rs[i] = r
	}
	units, munis, orgs := rs[0], rs[1], rs[2]
	index := func(r *Result, base int) map[string]int {
		m := map[string]int{}
		for i, g := range r.Groups {
			m[g.Key] = base + i
		}
		return m
	}
	ui := index(units, 0)
	mi := index(munis, len(units.Groups))
	oi := index(orgs, len(units.Groups)+len(munis.Groups))
	total := len(units.Groups) + len(munis.Groups) + len(orgs.Groups)

	var lines []Line
	byMuni, byOrg := map[int][]int{}, map[int][]int{}
	var allUnits, allMunis, allOrgs []int
	for _, g := range units.Groups {
		u := ui[g.Key]
		allUnits = append(allUnits, u)
		byMuni[mi[units.UnitMunicipality[g.Key]]] = append(byMuni[mi[units.UnitMunicipality[g.Key]]], u)
		byOrg[oi[units.UnitOrganisation[g.Key]]] = append(byOrg[oi[units.UnitOrganisation[g.Key]]], u)
	}
	for _, g := range munis.Groups {
		allMunis = append(allMunis, mi[g.Key])
		lines = append(lines, Line{Parts: byMuni[mi[g.Key]], Sum: mi[g.Key]})
	}
	for _, g := range orgs.Groups {
		allOrgs = append(allOrgs, oi[g.Key])
		lines = append(lines, Line{Parts: byOrg[oi[g.Key]], Sum: oi[g.Key]})
	}
	lines = append(lines, Line{Parts: allUnits, Sum: total}, Line{Parts: allMunis, Sum: total}, Line{Parts: allOrgs, Sum: total})

	pub := map[Dim]*Result{ByUnit: units, ByMunicipality: munis, ByOrganisation: orgs}[q.By]
	pubIndex := map[Dim]map[string]int{ByUnit: ui, ByMunicipality: mi, ByOrganisation: oi}[q.By]
	for _, p := range units.Periods {
		rows := make([]Row, len(pub.Groups)+1)
		for i, g := range pub.Groups {
			rows[i] = Row{Period: p, Group: g.Key, Label: g.Label, Indicators: map[Indicator]Cell{}}
		}
		rows[len(pub.Groups)] = Row{Period: p, Group: TotalGroup, Label: "Total", Indicators: map[Indicator]Cell{}}
		for _, ind := range Indicators {
			values := make([]int64, total+1)
			for _, r := range []struct {
				res *Result
				idx map[string]int
			}{{units, ui}, {munis, mi}, {orgs, oi}} {
				for key, i := range r.idx {
					values[i] = r.res.Value(p, key, ind)
				}
			}
			values[total] = units.Value(p, "", ind)
			shared := make([]bool, len(values))
			shared[total] = true
			hidden := Suppress(values, lines, shared, rep.K)
			for i, g := range pub.Groups {
				j := pubIndex[g.Key]
				rows[i].Indicators[ind] = cell(values[j], hidden[j])
			}
			rows[len(pub.Groups)].Indicators[ind] = cell(values[total], hidden[total])
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	return nil
}

// WriteCSV writes the report in long form, one figure a line:
// period, by, group, label, indicator, value, suppressed. A suppressed
// figure has an empty value and suppressed=true.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"period", "by", "group", "label", "indicator", "value", "suppressed"})
	by := string(r.By)
	if by == "" {
		by = "total"
	}
	for _, row := range r.Rows {
		for _, ind := range Indicators {
			c := row.Indicators[ind]
			v := ""
			if c.Value != nil {
				v = strconv.FormatInt(*c.Value, 10)
			}
			if err := cw.Write([]string{row.Period, by, row.Group, row.Label, string(ind), v, strconv.FormatBool(c.Suppressed)}); err != nil {
				return fmt.Errorf("report csv: %w", err)
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
