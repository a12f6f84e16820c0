package stats

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/brygga/brygga/schema"
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
// Indicators that add up (the referrals to each service add up to the
// referrals, in every row) are suppressed jointly too. writer and reader
// are used as by Compute.
func BuildReport(ctx context.Context, writer, reader *sql.DB, q Query, k int64) (*Report, error) {
	if k < 1 {
		k = DefaultK
	}
	rep := &Report{From: q.From, To: q.To, Period: q.Period, By: q.By, K: k, Rows: []Row{}}
	switch q.By {
	case ByUnit, ByMunicipality, ByOrganisation:
		return rep, spatial(ctx, writer, reader, q, rep)
	}
	r, err := Compute(ctx, writer, reader, q)
	if err != nil {
		return nil, err
	}
	total := len(r.Groups)
	var lines []Line
	if q.By != ByTotal {
		parts := make([]int, len(r.Groups))
		for i := range r.Groups {
			parts[i] = i
		}
		lines = []Line{{Parts: parts, Sum: total}}
	}
	for _, p := range r.Periods {
		rows := make([]Row, len(r.Groups)+1)
		for i, g := range r.Groups {
			rows[i] = Row{Period: p, Group: g.Key, Label: g.Label, Indicators: map[Indicator]Cell{}}
		}
		rows[total] = Row{Period: p, Group: TotalGroup, Label: "Total", Indicators: map[Indicator]Cell{}}
		values := func(ind Indicator) []int64 {
			vs := make([]int64, total+1)
			for i, g := range r.Groups {
				vs[i] = r.Value(p, g.Key, ind)
			}
			vs[total] = r.Value(p, "", ind)
			return vs
		}
		for ind, hidden := range suppressAll(values, lines, k) {
			vs := values(ind)
			for i := range vs {
				rows[i].Indicators[ind] = cell(vs[i], hidden[i])
			}
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	return rep, nil
}

// sums lists the sums between indicators that hold in every row of a
// report: the first indicator of each is the sum of the others. A referral
// is made to exactly one service category, so the referrals to the
// categories add up to the referrals. No other indicator is the sum of
// others: referrals attended are at most the referrals, unique clients at
// most the contacts and handouts at most the doses, bounds rather than
// sums; syringes, needles, returns and reversals are counted independently.
var sums = func() [][]Indicator {
	refs := []Indicator{Referrals}
	for _, c := range schema.ServiceCategoryEnum.Codes() {
		refs = append(refs, ReferralsTo(schema.ServiceCategory(c)))
	}
	return [][]Indicator{refs}
}()

// suppressAll suppresses every indicator of one period and returns the
// hidden cells of each. values returns an indicator's cells, the period's
// total last, in the same order for every indicator; lines are the sums
// between the cells of one indicator. The indicators of a sum in sums are
// suppressed together, with a line of the sum in every row.
func suppressAll(values func(Indicator) []int64, lines []Line, k int64) map[Indicator][]bool {
	out := map[Indicator][]bool{}
	for _, ind := range Indicators {
		if _, ok := out[ind]; ok {
			continue
		}
		family := []Indicator{ind}
		for _, sum := range sums {
			if slices.Contains(sum, ind) {
				family = sum
			}
		}
		var vs []int64
		var all []Line
		var shared []bool
		n := 0
		for _, fi := range family {
			v := values(fi)
			n = len(v)
			off := len(vs)
			vs = append(vs, v...)
			for _, l := range lines {
				all = append(all, l.shift(off))
			}
			sh := make([]bool, n)
			sh[n-1] = true
			shared = append(shared, sh...)
		}
		if len(family) > 1 {
			for c := range n {
				l := Line{Sum: c}
				for f := 1; f < len(family); f++ {
					l.Parts = append(l.Parts, f*n+c)
				}
				all = append(all, l)
			}
		}
		hidden := Suppress(vs, all, shared, k)
		for f, fi := range family {
			out[fi] = hidden[f*n : (f+1)*n]
		}
	}
	return out
}

func cell(v int64, hidden bool) Cell {
	if hidden {
		return Cell{Suppressed: true}
	}
	return Cell{Value: &v}
}

// spatial builds a unit, municipality or organisation report, suppressing
// over all three nested breakdowns at once.
func spatial(ctx context.Context, writer, reader *sql.DB, q Query, rep *Report) error {
	var rs [3]*Result
	for i, by := range []Dim{ByUnit, ByMunicipality, ByOrganisation} {
		qq := q
		qq.By = by
		r, err := Compute(ctx, writer, reader, qq)
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
		values := func(ind Indicator) []int64 {
			vs := make([]int64, total+1)
			for _, r := range []struct {
				res *Result
				idx map[string]int
			}{{units, ui}, {munis, mi}, {orgs, oi}} {
				for key, i := range r.idx {
					vs[i] = r.res.Value(p, key, ind)
				}
			}
			vs[total] = units.Value(p, "", ind)
			return vs
		}
		for ind, hidden := range suppressAll(values, lines, rep.K) {
			vs := values(ind)
			for i, g := range pub.Groups {
				j := pubIndex[g.Key]
				rows[i].Indicators[ind] = cell(vs[j], hidden[j])
			}
			rows[len(pub.Groups)].Indicators[ind] = cell(vs[total], hidden[total])
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
