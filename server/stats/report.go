package stats

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// TotalGroup is the group of a period's total row.
const TotalGroup = "total"

// Status says whether a period's figures can still change.
type Status string

// Statuses.
const (
	// Final: the period has ended and every tablet of the region has
	// synced since.
	Final Status = "final"
	// Provisional: the period has not ended, or a tablet has not synced
	// since it did.
	Provisional Status = "provisional"
)

// Cell is a figure of a report: its published value, or nothing if
// withheld.
type Cell struct {
	Value    *int64 `json:"value"`
	Withheld bool   `json:"withheld"`
	// Revised: records that arrived after the period was first published
	// final changed the figure.
	Revised bool `json:"revised"`
}

// Row is one group of a report in one period; the group "total" is the
// period's total.
type Row struct {
	Period     string             `json:"period"`
	Status     Status             `json:"status"`
	Group      string             `json:"group"`
	Label      string             `json:"label"`
	Indicators map[Indicator]Cell `json:"indicators"`
	// ReturnRate is published syringes returned over published syringes
	// out.
	ReturnRate *float64 `json:"return_rate"`
	// AttendedShare is published referrals attended over published
	// referrals.
	AttendedShare *float64 `json:"attended_share"`
}

// ReportPeriod is a period of a report.
type ReportPeriod struct {
	Key      string `json:"key"`
	FirstDay string `json:"first_day"`
	LastDay  string `json:"last_day"`
	Status   Status `json:"status"`
}

// Report is one table of the publication: every period of a kind in a
// year, by one breakdown, every group listed.
type Report struct {
	Year   int    `json:"year"`
	Period Period `json:"period"`
	By     Dim    `json:"by"`
	K      int64  `json:"k"`
	Method string `json:"method"`
	// Stale says the records have changed since the publication it is
	// read from was built, and the build of the current one is under way:
	// ask again shortly for the current figures.
	Stale   bool           `json:"stale"`
	Groups  []Group        `json:"groups"`
	Periods []ReportPeriod `json:"periods"`
	Rows    []Row          `json:"rows"`
}

// Years returns the first and last calendar year the publication covers.
func (p *Publication) Years() (int, int) {
	first, last := 0, 0
	for _, u := range p.grid.units {
		if u.kind == Year {
			if first == 0 {
				first = u.year
			}
			last = u.year
		}
	}
	return first, last
}

// Report returns the table of the periods of kind period in year, by by;
// for weeks, year is the ISO year. A year before the first with records
// is a table of zeros (its sums withheld, as sums of no records are).
func (p *Publication) Report(period Period, year int, by Dim) *Report {
	rep := &Report{Year: year, Period: period, By: by, K: p.K, Method: "cell-key", Stale: p.Stale, Groups: []Group{}, Periods: []ReportPeriod{}, Rows: []Row{}}
	var gs []int
	if by != ByTotal {
		for g := p.dims[by][0]; g < p.dims[by][1]; g++ {
			gs = append(gs, g)
			rep.Groups = append(rep.Groups, Group{Key: p.groups[g].key, Label: p.groups[g].label})
		}
	}
	gs = append(gs, 0)
	grid, final := p.grid, p.final
	ts := grid.periods(period, year)
	empty := len(ts) == 0
	if empty {
		grid = newGrid(year, year, year, year)
		final = grid.status(p.devices, p.now)
		ts = grid.periods(period, year)
	}
	for _, t := range ts {
		u := grid.units[t]
		st := Provisional
		if final[t] {
			st = Final
		}
		rep.Periods = append(rep.Periods, ReportPeriod{Key: u.key, FirstDay: date(u.first).Format("2006-01-02"),
			LastDay: date(u.end - 1).Format("2006-01-02"), Status: st})
		for _, g := range gs {
			gr := p.groups[g]
			row := Row{Period: u.key, Status: st, Group: gr.key, Label: gr.label, Indicators: make(map[Indicator]Cell, len(Indicators))}
			i := p.cell(t, g)
			for _, ind := range Indicators {
				var c Cell
				switch tab := p.cells[ind]; {
				case empty:
					zero := int64(0)
					c.Withheld = kindOf(ind) == magnitudeKind
					if !c.Withheld {
						c.Value = &zero
					}
				default:
					c = Cell{Withheld: tab.withheld[i], Revised: tab.revised[i]}
					if !c.Withheld {
						v := tab.value[i]
						c.Value = &v
					}
				}
				row.Indicators[ind] = c
			}
			row.ReturnRate = ratio(row.Indicators[SyringesReturned], row.Indicators[SyringesOut])
			row.AttendedShare = ratio(row.Indicators[ReferralsAttended], row.Indicators[Referrals])
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep
}

// ratio returns a over b, both published, or nil.
func ratio(a, b Cell) *float64 {
	if a.Value == nil || b.Value == nil || *b.Value == 0 {
		return nil
	}
	r := float64(*a.Value) / float64(*b.Value)
	return &r
}

// WriteCSV writes the report in long form, one figure a line:
// period, status, by, group, label, indicator, value, withheld, revised.
// A withheld figure has an empty value; the rates follow the indicators of
// each row as return_rate and attended_share.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"period", "status", "by", "group", "label", "indicator", "value", "withheld", "revised"})
	by := string(r.By)
	if by == "" {
		by = "total"
	}
	for _, row := range r.Rows {
		line := func(ind, v string, withheld, revised bool) error {
			return cw.Write([]string{row.Period, string(row.Status), by, row.Group, row.Label, ind, v,
				strconv.FormatBool(withheld), strconv.FormatBool(revised)})
		}
		for _, ind := range Indicators {
			c := row.Indicators[ind]
			v := ""
			if c.Value != nil {
				v = strconv.FormatInt(*c.Value, 10)
			}
			if err := line(string(ind), v, c.Withheld, c.Revised); err != nil {
				return fmt.Errorf("report csv: %w", err)
			}
		}
		for _, rate := range []struct {
			name string
			v    *float64
		}{{"return_rate", row.ReturnRate}, {"attended_share", row.AttendedShare}} {
			v := ""
			if rate.v != nil {
				v = strconv.FormatFloat(*rate.v, 'g', -1, 64)
			}
			if err := line(rate.name, v, rate.v == nil, false); err != nil {
				return fmt.Errorf("report csv: %w", err)
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// current reports whether p still holds for the records in db as of
// now: no record changed, the rollups are up to date, the current year is
// the same and every period's status is the same.
func (p *Publication) current(ctx context.Context, db DB, now time.Time) (bool, error) {
	if _, last := p.Years(); last != now.In(zone).Year() {
		return false, nil
	}
	tx, err := db.read(ctx)
	if err != nil {
		return false, fmt.Errorf("stats: publication: %w", err)
	}
	defer tx.Rollback()
	if fresh, err := upToDate(ctx, tx); err != nil || !fresh {
		return false, err
	}
	seq, err := changeSeq(ctx, tx)
	if err != nil || seq != p.Seq {
		return false, err
	}
	devs, err := readDevices(ctx, tx)
	if err != nil {
		return false, err
	}
	return slices.Equal(p.grid.status(devs, now), p.final), nil
}
