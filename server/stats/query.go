package stats

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/brygga/brygga/schema"
)

// piece is a stretch of a query's time counted in one go, within one of
// its periods: a rollup bucket, or, without a grain, the part [lo, hi) of a
// day in Unix milliseconds, counted from the facts.
type piece struct {
	grain  grain
	bucket int64
	lo, hi int64
	period string
}

// pieces cuts [from, to) into the parts of days at its ends and whole
// buckets between, each within one of p's periods: in each, the whole
// months, then the whole ISO weeks, then days.
func pieces(p Period, from, to int64) []piece {
	if to <= from {
		return nil
	}
	var out []piece
	d0, d1 := dayOf(from), dayOf(to)
	if from > dayStart(d0) {
		out = append(out, piece{lo: from, hi: min(dayStart(d0+1), to), period: p.key(date(d0))})
		d0++
	}
	if d1 >= d0 {
		if s := dayStart(d1); to > s {
			out = append(out, piece{lo: s, hi: to, period: p.key(date(d1))})
		}
	}
	for d := d0; d < d1; {
		first, end := p.span(d)
		end = min(end, d1)
		out = months(out, d, end, p.key(date(first)))
		d = end
	}
	return out
}

// months appends the pieces of the whole days [a, b) of one period: its
// whole months, and weeks and days around them.
func months(out []piece, a, b int64, period string) []piece {
	m := monthGrain.bucket(a)
	if m < a {
		m = monthGrain.next(m)
	}
	if monthGrain.next(m) > b {
		return weeks(out, a, b, period)
	}
	out = weeks(out, a, m, period)
	for ; monthGrain.next(m) <= b; m = monthGrain.next(m) {
		out = append(out, piece{grain: monthGrain, bucket: m, period: period})
	}
	return weeks(out, m, b, period)
}

// weeks appends the pieces of the whole days [a, b): whole ISO weeks, and
// days around them.
func weeks(out []piece, a, b int64, period string) []piece {
	w := weekGrain.bucket(a)
	if w < a {
		w += 7
	}
	if w+7 > b {
		w = b
	}
	for d := a; d < w; d++ {
		out = append(out, piece{grain: dayGrain, bucket: d, period: period})
	}
	for ; w+7 <= b; w += 7 {
		out = append(out, piece{grain: weekGrain, bucket: w, period: period})
	}
	for d := w; d < b; d++ {
		out = append(out, piece{grain: dayGrain, bucket: d, period: period})
	}
	return out
}

// run is a range [first, last] of consecutive buckets of a grain.
type run struct{ first, last int64 }

// runs returns the buckets as ranges of consecutive ones.
func runs(g grain, buckets map[int64]string) []run {
	bs := make([]int64, 0, len(buckets))
	for b := range buckets {
		bs = append(bs, b)
	}
	slices.Sort(bs)
	var out []run
	for _, b := range bs {
		if n := len(out); n > 0 && g.next(out[n-1].last) == b {
			out[n-1].last = b
			continue
		}
		out = append(out, run{b, b})
	}
	return out
}

// fromRollups counts the indicators of q, a query in zone, from the
// rollups, read in tx.
func fromRollups(ctx context.Context, tx dbTx, q Query) (*Result, error) {
	t, err := newTally(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	buckets := map[grain]map[int64]string{} // the period of each bucket
	var parts []piece
	for _, p := range pieces(q.Period, q.From.UnixMilli(), q.To.UnixMilli()) {
		if p.grain == "" {
			parts = append(parts, p)
			continue
		}
		if buckets[p.grain] == nil {
			buckets[p.grain] = map[int64]string{}
		}
		buckets[p.grain][p.bucket] = p.period
	}
	services := map[string]Indicator{}
	for _, c := range schema.ServiceCategoryEnum.Codes() {
		services[c] = ReferralsTo(schema.ServiceCategory(c))
	}
	service := func(s string) Indicator {
		i, ok := services[s]
		if !ok {
			i = ReferralsTo(schema.ServiceCategory(s))
			services[s] = i
		}
		return i
	}
	read := func(what, query string, args []any, each func(r *sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("stats: %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return fmt.Errorf("stats: %s: %w", what, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("stats: %s: %w", what, err)
		}
		return nil
	}
	// The rollups are read summed over what the breakdown does not need:
	// gender, age band or setting only by gender, age band or setting
	// (municipalities and organisations follow from the units).
	var dim string
	switch q.By {
	case ByGender:
		dim = "gender"
	case ByAgeBand:
		dim = "age_band"
	case BySetting:
		dim = "setting"
	}
	selectDim, groupDim := "''", ""
	if dim != "" {
		selectDim, groupDim = dim, ", "+dim
	}
	var bucket int64
	var unit, value string
	add := func(p string, f func(a *acc)) {
		switch q.By {
		case ByGender:
			t.add(p, unit, value, "", "", f)
		case ByAgeBand:
			t.add(p, unit, "", value, "", f)
		case BySetting:
			t.add(p, unit, "", "", value, f)
		default:
			t.add(p, unit, "", "", "", f)
		}
	}
	cellsSQL := fmt.Sprintf(`SELECT bucket, unit_id, %s, sum(contacts), sum(exchanges), sum(syringes_out), sum(needles_out),
		sum(syringes_returned), sum(handouts), sum(naloxone_doses), sum(reversals), sum(referrals), sum(attended)
		FROM stats_cells WHERE grain = ? AND bucket BETWEEN ? AND ? GROUP BY bucket, unit_id%s`, selectDim, groupDim)
	servicesSQL := fmt.Sprintf(`SELECT bucket, unit_id, %s, service, sum(referrals)
		FROM stats_services WHERE grain = ? AND bucket BETWEEN ? AND ? GROUP BY bucket, unit_id, service%s`, selectDim, groupDim)
	clientsSQL := fmt.Sprintf(`SELECT bucket, unit_id, %s, client_code
		FROM stats_clients WHERE grain = ? AND bucket BETWEEN ? AND ? GROUP BY bucket, unit_id, client_code%s`, selectDim, groupDim)
	for _, g := range grains {
		if len(buckets[g]) == 0 {
			continue
		}
		periods := buckets[g]
		for _, r := range runs(g, periods) {
			args := []any{string(g), r.first, r.last}
			var c counts
			err := read("cells", cellsSQL, args, func(rows *sql.Rows) error {
				if err := rows.Scan(&bucket, &unit, &value, &c.contacts, &c.exchanges, &c.syringesOut, &c.needlesOut,
					&c.syringesReturned, &c.handouts, &c.doses, &c.reversals, &c.referrals, &c.attended); err != nil {
					return err
				}
				if p, ok := periods[bucket]; ok {
					add(p, c.into)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			var s string
			var n int64
			err = read("services", servicesSQL, args, func(rows *sql.Rows) error {
				if err := rows.Scan(&bucket, &unit, &value, &s, &n); err != nil {
					return err
				}
				if p, ok := periods[bucket]; ok {
					i := service(s)
					add(p, func(a *acc) { a.values[i] += n })
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			err = read("clients", clientsSQL, args, func(rows *sql.Rows) error {
				if err := rows.Scan(&bucket, &unit, &value, &s); err != nil {
					return err
				}
				if p, ok := periods[bucket]; ok {
					add(p, func(a *acc) { a.clients[s] = true })
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	for _, p := range parts {
		err := read("facts", `SELECT kind, unit_id, gender, age_band, setting, COALESCE(client_code, ''), syringes_out, needles_out,
			syringes_returned, doses, COALESCE(service, ''), attended
			FROM stats_facts WHERE live = 1 AND at >= ? AND at < ?`, []any{p.lo, p.hi}, func(rows *sql.Rows) error {
			f := fact{live: true}
			if err := rows.Scan(&f.kind, &f.unit, &f.gender, &f.age, &f.setting, &f.code, &f.syringesOut, &f.needlesOut,
				&f.syringesReturned, &f.doses, &f.service, &f.attended); err != nil {
				return err
			}
			c := f.counts()
			t.add(p.period, f.unit, f.gender, f.age, f.setting, func(a *acc) {
				c.into(a)
				if f.kind == schema.KindReferral {
					a.values[service(f.service)]++
				}
				if f.code != "" {
					a.clients[f.code] = true
				}
			})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := addHealth(ctx, tx, t, q); err != nil {
		return nil, err
	}
	return t.result(), nil
}
