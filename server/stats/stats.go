// Package stats computes the indicators of outreach work from the synced
// records, exactly as devices recorded them (voided records out,
// corrections in), and the aggregate reports that leave an organisation,
// with small numbers suppressed.
//
// The record tables have no indexes on when things happened, which would
// slow every push. Queries cut in Europe/Stockholm, the API's zone, are
// counted from rollups instead, which this package owns and Refresh keeps
// up to date from the records changed since it last ran; queries in other
// zones are counted from the records themselves.
package stats

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// Indicator names a figure.
type Indicator string

// The indicators. Syringes, needles and naloxone are counted in pieces and
// doses; contacts are visits, not people; unique clients are distinct
// client codes among the contacts; referrals attended are those whose
// status reached attended: attended or closed, since a referral is closed
// only from attended (schema.ReferralStatus.Closes, enforced by every
// write).
const (
	Contacts          Indicator = "contacts"
	UniqueClients     Indicator = "unique_clients"
	SyringesOut       Indicator = "syringes_out"
	NeedlesOut        Indicator = "needles_out"
	SyringesReturned  Indicator = "syringes_returned"
	NaloxoneDoses     Indicator = "naloxone_doses"
	NaloxoneHandouts  Indicator = "naloxone_handouts"
	Reversals         Indicator = "reversals"
	Referrals         Indicator = "referrals"
	ReferralsAttended Indicator = "referrals_attended"
)

// ReferralsTo is the indicator of referrals made to one service category.
func ReferralsTo(s schema.ServiceCategory) Indicator { return Indicator("referrals." + string(s)) }

// Indicators lists every indicator in report order.
var Indicators = func() []Indicator {
	is := []Indicator{Contacts, UniqueClients, SyringesOut, NeedlesOut, SyringesReturned, NaloxoneDoses, NaloxoneHandouts, Reversals, Referrals, ReferralsAttended}
	for _, c := range schema.ServiceCategoryEnum.Codes() {
		is = append(is, ReferralsTo(schema.ServiceCategory(c)))
	}
	return append(is, healthIndicators...)
}()

// Additive reports whether an indicator's groups add up to its total;
// unique clients do not (one client may visit two units).
func (i Indicator) Additive() bool { return i != UniqueClients }

// Period is the length of the buckets figures are counted in.
type Period string

// Periods.
const (
	Week    Period = "week"
	Month   Period = "month"
	Quarter Period = "quarter"
	Year    Period = "year"
	// Whole counts the whole of a query's range as one period, keyed
	// "whole": the only way to count unique clients over a range that is
	// not one calendar period. It is not a publication period: Valid
	// reports false for it, and the API does not offer it.
	Whole Period = "whole"
)

// Valid reports whether p is a period.
func (p Period) Valid() bool { return p == Week || p == Month || p == Quarter || p == Year }

// key returns the bucket of t: 2026-W11, 2026-03, 2026-Q1, 2026.
func (p Period) key(t time.Time) string {
	switch p {
	case Week:
		y, w := t.ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	case Quarter:
		return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
	case Year:
		return fmt.Sprintf("%d", t.Year())
	case Whole:
		return string(Whole)
	}
	return t.Format("2006-01")
}

// Dim is what figures are broken down by.
type Dim string

// Breakdowns. A unit's municipality is the area code of the unit. The
// setting is where a contact took place (schema.SettingEnum); the records
// that depend on a contact take its setting, and reversals and referrals
// without a contact are in the group NoSetting.
const (
	ByTotal        Dim = ""
	ByUnit         Dim = "unit"
	ByMunicipality Dim = "municipality"
	ByOrganisation Dim = "organisation"
	ByGender       Dim = "gender"
	ByAgeBand      Dim = "age_band"
	BySetting      Dim = "setting"
)

// NoSetting is the group, by setting, of the reversals and referrals
// recorded without a contact.
const NoSetting = "none"

// Valid reports whether d is a breakdown Compute counts.
func (d Dim) Valid() bool {
	switch d {
	case ByTotal, ByUnit, ByMunicipality, ByOrganisation, ByGender, ByAgeBand, BySetting:
		return true
	}
	return false
}

// Published reports whether d is a breakdown of the authority's
// publication: every valid breakdown but the setting, which stays in the
// managers' own statistics.
func (d Dim) Published() bool { return d.Valid() && d != BySetting }

// Query selects what to count.
type Query struct {
	// From and To bound occurred_at: From <= t < To.
	From, To time.Time
	Period   Period
	By       Dim
	// Orgs limits the count to the units of these organisations; nil
	// counts the whole region.
	Orgs []uuid.UUID
	// Units, if not empty, limits the count further to these units.
	Units []uuid.UUID
	// Location is the time zone periods are cut in; nil means UTC.
	// Europe/Stockholm is counted from the rollups, any other zone from
	// the records.
	Location *time.Location
}

// Group is one value of the breakdown.
type Group struct {
	Key   string `json:"key"`
	Label string `json:"label"`
}

// Key addresses a figure: an indicator in a period and group; the group
// "" is the period's total.
type Key struct {
	Period    string
	Group     string
	Indicator Indicator
}

// Result holds the figures of a query.
type Result struct {
	Query   Query
	Periods []string
	Groups  []Group
	// Units maps each unit in the result to its municipality, for the
	// relations between a by-unit and a by-municipality report.
	UnitMunicipality map[string]string
	// UnitOrganisation maps each unit in the result to its organisation.
	UnitOrganisation map[string]string
	Values           map[Key]int64
}

// Value returns a figure, 0 where nothing was counted.
func (r *Result) Value(period, group string, i Indicator) int64 {
	return r.Values[Key{period, group, i}]
}

type unitInfo struct {
	org, area, name string
}

type acc struct {
	values  map[Indicator]int64
	clients map[string]bool
}

// tally gathers the figures of a query, record by record or rollup row by
// row: a period and group exists once anything of a unit of the query is
// counted in it, and an indicator once a record it counts is.
type tally struct {
	q        Query
	units    map[string]unitInfo
	orgNames map[string]string
	res      *Result
	cells    map[[2]string]*acc // period, group
	periods  map[string]bool
	groups   map[string]string
	keys     [][2]string
}

// newTally reads the units and organisations of q in tx.
func newTally(ctx context.Context, tx dbTx, q Query) (*tally, error) {
	t := &tally{q: q, units: map[string]unitInfo{}, orgNames: map[string]string{},
		res:   &Result{Query: q, Values: map[Key]int64{}, UnitMunicipality: map[string]string{}, UnitOrganisation: map[string]string{}},
		cells: map[[2]string]*acc{}, periods: map[string]bool{}, groups: map[string]string{}, keys: make([][2]string, 2)}
	rows, err := tx.QueryContext(ctx, `SELECT u.id, u.org_id, u.area_code, u.name, o.name FROM units u JOIN organisations o ON o.id = u.org_id`)
	if err != nil {
		return nil, fmt.Errorf("stats: units: %w", err)
	}
	defer rows.Close()
	orgs := map[string]bool{}
	for _, o := range q.Orgs {
		orgs[o.String()] = true
	}
	units := map[string]bool{}
	for _, u := range q.Units {
		units[u.String()] = true
	}
	for rows.Next() {
		var id string
		var u unitInfo
		var orgName string
		if err := rows.Scan(&id, &u.org, &u.area, &u.name, &orgName); err != nil {
			return nil, fmt.Errorf("stats: units: %w", err)
		}
		if (len(orgs) == 0 || orgs[u.org]) && (len(units) == 0 || units[id]) {
			t.units[id] = u
			t.orgNames[u.org] = orgName
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: units: %w", err)
	}
	return t, nil
}

// add counts into period p the records of unit with gender, age band and
// setting that f counts; units outside the query count nowhere.
func (t *tally) add(p, unit, gender, age, setting string, f func(a *acc)) {
	u, ok := t.units[unit]
	if !ok {
		return
	}
	t.periods[p] = true
	t.res.UnitMunicipality[unit] = u.area
	t.res.UnitOrganisation[unit] = u.org
	var g, label string
	switch t.q.By {
	case ByUnit:
		g, label = unit, u.name
	case ByMunicipality:
		g, label = u.area, u.area
	case ByOrganisation:
		g, label = u.org, t.orgNames[u.org]
	case ByGender:
		g, label = gender, schema.GenderEnum.Label(gender, schema.English)
	case ByAgeBand:
		g, label = age, schema.AgeBandEnum.Label(age, schema.English)
	case BySetting:
		g, label = setting, SettingLabel(setting, schema.English)
	}
	keys := append(t.keys[:0], [2]string{p, ""}, [2]string{p, g})
	if t.q.By == ByTotal {
		keys = keys[:1]
	}
	for _, key := range keys {
		a := t.cells[key]
		if a == nil {
			a = &acc{values: map[Indicator]int64{}, clients: map[string]bool{}}
			t.cells[key] = a
		}
		f(a)
	}
	if t.q.By != ByTotal {
		t.groups[g] = label
	}
}

// result returns the figures gathered, periods and groups in order.
func (t *tally) result() *Result {
	res := t.res
	for key, a := range t.cells {
		for i, v := range a.values {
			res.Values[Key{key[0], key[1], i}] = v
		}
		if len(a.clients) > 0 {
			res.Values[Key{key[0], key[1], UniqueClients}] = int64(len(a.clients))
		}
	}
	for p := range t.periods {
		res.Periods = append(res.Periods, p)
	}
	sort.Strings(res.Periods)
	for g, label := range t.groups {
		res.Groups = append(res.Groups, Group{Key: g, Label: label})
	}
	sort.Slice(res.Groups, func(i, j int) bool {
		if res.Groups[i].Label != res.Groups[j].Label {
			return res.Groups[i].Label < res.Groups[j].Label
		}
		return res.Groups[i].Key < res.Groups[j].Key
	})
	return res
}

func (q Query) check() error {
	if !q.Period.Valid() && q.Period != Whole {
		return fmt.Errorf("stats: unknown period %q", q.Period)
	}
	if !q.By.Valid() {
		return fmt.Errorf("stats: unknown breakdown %q", q.By)
	}
	return nil
}

// Compute counts the indicators of q in db: voided records out,
// corrections in. A query cut in Europe/Stockholm, as the API's are, is
// counted from the rollups, which Compute first brings up to date with the
// records through Refresh if they lag behind; it reads them from the
// reader in one transaction. A query in any other zone is counted from the
// records themselves, read from the reader in one transaction, and never
// uses the writer. The figures are the same either way. It is safe for
// concurrent use.
func Compute(ctx context.Context, db DB, q Query) (*Result, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if !rolledUp(q.Location) {
		return scan(ctx, db, q)
	}
	tx, err := db.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer func() { tx.Rollback() }()
	fresh, err := upToDate(ctx, tx)
	if err != nil {
		return nil, err
	}
	if !fresh {
		tx.Rollback()
		if err := Refresh(ctx, db); err != nil {
			return nil, err
		}
		if tx, err = db.read(ctx); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
	}
	return fromRollups(ctx, tx, q)
}

// scan counts the indicators of q from the record tables of db's reader,
// read in full in one transaction.
func scan(ctx context.Context, db DB, q Query) (*Result, error) {
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	tx, err := db.read(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	t, err := newTally(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	add := func(at int64, unit, gender, age, setting string, f func(a *acc)) {
		t.add(q.Period.key(time.UnixMilli(at).In(loc)), unit, gender, age, setting, f)
	}

	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	read := func(query string, each func(r *sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, query, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var at int64
	var unit, gender, age, setting string
	err = read(`SELECT occurred_at, unit_id, gender, age_band, setting, COALESCE(client_code, '') FROM contacts
		WHERE voided = 0 AND occurred_at >= ? AND occurred_at < ?`, func(r *sql.Rows) error {
		var code string
		if err := r.Scan(&at, &unit, &gender, &age, &setting, &code); err != nil {
			return err
		}
		add(at, unit, gender, age, setting, func(a *acc) {
			a.values[Contacts]++
			if code != "" {
				a.clients[code] = true
			}
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: contacts: %w", err)
	}
	var n1, n2, n3 int64
	err = read(`SELECT x.occurred_at, x.unit_id, c.gender, c.age_band, c.setting, x.syringes_out, x.needles_out, x.syringes_returned
		FROM syringe_exchanges x JOIN contacts c ON c.id = x.contact_id
		WHERE x.voided = 0 AND c.voided = 0 AND x.occurred_at >= ? AND x.occurred_at < ?`, func(r *sql.Rows) error {
		if err := r.Scan(&at, &unit, &gender, &age, &setting, &n1, &n2, &n3); err != nil {
			return err
		}
		add(at, unit, gender, age, setting, func(a *acc) {
			a.values[SyringesOut] += n1
			a.values[NeedlesOut] += n2
			a.values[SyringesReturned] += n3
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: exchanges: %w", err)
	}
	err = read(`SELECT n.occurred_at, n.unit_id, c.gender, c.age_band, c.setting, n.doses
		FROM naloxone_handouts n JOIN contacts c ON c.id = n.contact_id
		WHERE n.voided = 0 AND c.voided = 0 AND n.occurred_at >= ? AND n.occurred_at < ?`, func(r *sql.Rows) error {
		if err := r.Scan(&at, &unit, &gender, &age, &setting, &n1); err != nil {
			return err
		}
		add(at, unit, gender, age, setting, func(a *acc) {
			a.values[NaloxoneDoses] += n1
			a.values[NaloxoneHandouts]++
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: naloxone: %w", err)
	}
	err = read(`SELECT r.occurred_at, r.unit_id, COALESCE(c.gender, 'not_stated'), COALESCE(c.age_band, 'not_stated'),
		COALESCE(c.setting, 'none')
		FROM reversals r LEFT JOIN contacts c ON c.id = r.contact_id
		WHERE r.voided = 0 AND COALESCE(c.voided, 0) = 0 AND r.occurred_at >= ? AND r.occurred_at < ?`, func(r *sql.Rows) error {
		if err := r.Scan(&at, &unit, &gender, &age, &setting); err != nil {
			return err
		}
		add(at, unit, gender, age, setting, func(a *acc) { a.values[Reversals]++ })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: reversals: %w", err)
	}
	var service, status string
	err = read(`SELECT f.occurred_at, f.unit_id, COALESCE(c.gender, 'not_stated'), COALESCE(c.age_band, 'not_stated'),
		COALESCE(c.setting, 'none'), f.service, f.status
		FROM referrals f LEFT JOIN contacts c ON c.id = f.contact_id
		WHERE f.voided = 0 AND COALESCE(c.voided, 0) = 0 AND f.occurred_at >= ? AND f.occurred_at < ?`, func(r *sql.Rows) error {
		if err := r.Scan(&at, &unit, &gender, &age, &setting, &service, &status); err != nil {
			return err
		}
		add(at, unit, gender, age, setting, func(a *acc) {
			a.values[Referrals]++
			a.values[ReferralsTo(schema.ServiceCategory(service))]++
			if status == string(schema.StatusAttended) || status == string(schema.StatusClosed) {
				a.values[ReferralsAttended]++
			}
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: referrals: %w", err)
	}
	if err := addHealth(ctx, tx, t, q); err != nil {
		return nil, err
	}
	return t.result(), nil
}

// SettingLabel returns the label in lang of a group of the breakdown by
// setting: a setting's, or for NoSetting "not linked to a contact".
func SettingLabel(code string, lang schema.Lang) string {
	if code == NoSetting {
		if lang == schema.Swedish {
			return "Ej kopplad till en kontakt"
		}
		return "Not linked to a contact"
	}
	return schema.SettingEnum.Label(code, lang)
}
