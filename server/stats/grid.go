package stats

import (
	"context"
	"fmt"
	"time"
)

// The publication grid: the whole calendar periods, in zone, that the
// authority's reports cover, and the fragments they are made of (the days
// an ISO week shares with a month), the finest counts a reader of the
// reports can reason about.

// span is a period of the grid: its key and its days [first, end).
type span struct {
	kind       Period
	key        string
	year       int // the calendar year; for a week, the ISO year
	first, end int64
	parts      []int // the time units it is the sum of
}

// isoWeekStart returns the Monday of ISO week 1 of the ISO year y.
func isoWeekStart(y int) int64 {
	jan4 := civil(y, time.January, 4)
	return weekGrain.bucket(jan4)
}

// grid lists the time units of the publication of the calendar years
// [from, to] and the ISO years [fromISO, toISO]: fragments first, then
// weeks, months, quarters and years, each period with the units it sums.
type grid struct {
	units     []span
	fragments int            // units[:fragments] are the fragments
	byKey     map[string]int // a period's key to its unit
	dayUnit   map[int64]int  // a day to its fragment
	firstDay  int64
	endDay    int64
}

func newGrid(from, to, fromISO, toISO int) *grid {
	g := &grid{byKey: map[string]int{}, dayUnit: map[int64]int{}}
	g.firstDay = min(civil(from, time.January, 1), isoWeekStart(fromISO))
	g.endDay = max(civil(to+1, time.January, 1), isoWeekStart(toISO+1))
	// Fragments: runs of days in one week and one month.
	type wm struct{ w, m int64 }
	frag := map[wm]int{}
	for d := g.firstDay; d < g.endDay; d++ {
		key := wm{weekGrain.bucket(d), monthGrain.bucket(d)}
		i, ok := frag[key]
		if !ok {
			i = len(g.units)
			frag[key] = i
			g.units = append(g.units, span{key: fmt.Sprintf("%s/%s", Week.key(date(d)), Month.key(date(d))), first: d, end: d + 1})
		}
		g.units[i].end = d + 1
		g.dayUnit[d] = i
	}
	g.fragments = len(g.units)
	add := func(s span) int {
		i := len(g.units)
		g.units = append(g.units, s)
		g.byKey[s.key] = i
		return i
	}
	fragsOf := func(first, end int64) []int {
		var out []int
		for d := first; d < end; d++ {
			f := g.dayUnit[d]
			if len(out) == 0 || out[len(out)-1] != f {
				out = append(out, f)
			}
		}
		return out
	}
	for y := fromISO; y <= toISO; y++ {
		for w := isoWeekStart(y); w < isoWeekStart(y+1); w += 7 {
			add(span{kind: Week, key: Week.key(date(w)), year: y, first: w, end: w + 7, parts: fragsOf(w, w+7)})
		}
	}
	for y := from; y <= to; y++ {
		var quarters []int
		for q := 0; q < 4; q++ {
			var months []int
			for m := 1; m <= 3; m++ {
				first := civil(y, time.Month(q*3+m), 1)
				end := monthGrain.next(first)
				months = append(months, add(span{kind: Month, key: Month.key(date(first)), year: y, first: first, end: end, parts: fragsOf(first, end)}))
			}
			first := civil(y, time.Month(q*3+1), 1)
			quarters = append(quarters, add(span{kind: Quarter, key: Quarter.key(date(first)), year: y, first: first,
				end: civil(y, time.Month(q*3+4), 1), parts: months}))
		}
		add(span{kind: Year, key: Year.key(date(civil(y, 1, 1))), year: y, first: civil(y, 1, 1), end: civil(y+1, 1, 1), parts: quarters})
	}
	return g
}

// periods returns the units of the periods of kind p in year y, in order.
func (g *grid) periods(p Period, y int) []int {
	var out []int
	for i := g.fragments; i < len(g.units); i++ {
		if u := g.units[i]; u.kind == p && u.year == y {
			out = append(out, i)
		}
	}
	return out
}

// isoYear returns the ISO year of the first of January of the calendar
// year y: y, or y-1 when the day lies in the last week of the year before.
func isoYear(y int) int {
	iy, _ := time.Date(y, time.January, 1, 12, 0, 0, 0, time.UTC).ISOWeek()
	return iy
}

// device is what the status of periods needs of a device not revoked.
type device struct{ enrolled, synced int64 }

// readDevices reads the devices not revoked: when each was enrolled and
// last synced (pushed or pulled).
func readDevices(ctx context.Context, tx dbTx) ([]device, error) {
	rows, err := tx.QueryContext(ctx, tx.d.devices)
	if err != nil {
		return nil, fmt.Errorf("stats: publication: devices: %w", err)
	}
	defer rows.Close()
	var devs []device
	for rows.Next() {
		var d device
		if err := rows.Scan(&d.enrolled, &d.synced); err != nil {
			return nil, fmt.Errorf("stats: publication: devices: %w", err)
		}
		devs = append(devs, d)
	}
	return devs, rows.Err()
}

// status returns, per time unit, whether it is final: it has ended and
// every device enrolled before its end and not revoked has synced since.
func (g *grid) status(devs []device, now time.Time) []bool {
	nowMs := now.UnixMilli()
	final := make([]bool, len(g.units))
	for i, u := range g.units {
		end := dayStart(u.end)
		if end > nowMs {
			continue
		}
		final[i] = true
		for _, d := range devs {
			if d.enrolled < end && d.synced < end {
				final[i] = false
				break
			}
		}
	}
	return final
}
