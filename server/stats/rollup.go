package stats

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // the rollups' zone, whatever the host has installed

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// The rollups (schema/migrations/0006_server_stats.sql, with the setting
// since 0015_server_stats_setting.sql; on PostgreSQL server/pgstore's
// migration 0006) hold, per record,
// its contribution (a fact), and the sums of the facts by day, ISO week
// and month, unit, gender, age band and setting: the additive indicators with the
// number of records behind them, the referrals by service, and the client
// codes met. Days are cut in one zone, the API's. A query sums whole
// months, weeks and days from them, and the parts of a day at its ends
// from the facts; unique clients are the distinct codes of the same
// buckets.

// zoneName is the time zone the rollups cut days in.
const zoneName = "Europe/Stockholm"

// zone is the location of zoneName. time/tzdata is linked in, so it loads
// on any host.
var zone = func() *time.Location {
	loc, err := time.LoadLocation(zoneName)
	if err != nil {
		panic("stats: " + err.Error())
	}
	return loc
}()

// rollupVersion numbers what the rollups hold and how. A refresh that finds
// rollups of another version, or of another zone, rebuilds them.
const rollupVersion = 2

// rolledUp reports whether queries cut in loc are counted from the
// rollups.
func rolledUp(loc *time.Location) bool {
	return loc != nil && loc.String() == zoneName
}

// dayOf returns the number of the day, in zone, of the Unix millisecond ms:
// days since 1970-01-01.
func dayOf(ms int64) int64 {
	y, m, d := time.UnixMilli(ms).In(zone).Date()
	return civil(y, m, d)
}

// civil returns the number of a date.
func civil(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// date returns the date of a day number, as midnight UTC.
func date(day int64) time.Time { return time.Unix(day*86400, 0).UTC() }

// dayStart returns the Unix millisecond at which a day begins in zone.
func dayStart(day int64) int64 {
	t := date(day)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, zone).UnixMilli()
}

// grain is the length of a rollup bucket.
type grain string

// Grains.
const (
	dayGrain   grain = "day"
	weekGrain  grain = "week"
	monthGrain grain = "month"
)

var grains = [...]grain{dayGrain, weekGrain, monthGrain}

// bucket returns the first day of g's bucket holding day.
func (g grain) bucket(day int64) int64 {
	switch g {
	case weekGrain:
		return day - ((day+3)%7+7)%7 // 1970-01-01 was a Thursday
	case monthGrain:
		t := date(day)
		return civil(t.Year(), t.Month(), 1)
	}
	return day
}

// next returns the first day of the bucket after the one beginning on b.
func (g grain) next(b int64) int64 {
	switch g {
	case weekGrain:
		return b + 7
	case monthGrain:
		t := date(b)
		return civil(t.Year(), t.Month()+1, 1)
	}
	return b + 1
}

// span returns the days [first, end) of p's bucket holding day.
func (p Period) span(day int64) (int64, int64) {
	const wholeDays = 1 << 20 // past any query's range: queries span at most ten years
	t := date(day)
	switch p {
	case Week:
		w := weekGrain.bucket(day)
		return w, w + 7
	case Quarter:
		m := time.Month((int(t.Month())-1)/3*3 + 1)
		return civil(t.Year(), m, 1), civil(t.Year(), m+3, 1)
	case Year:
		return civil(t.Year(), 1, 1), civil(t.Year()+1, 1, 1)
	case Whole:
		return day - wholeDays, day + wholeDays
	}
	m := monthGrain.bucket(day)
	return m, monthGrain.next(m)
}

// counts are the additive figures of records, with the number of records
// of each kind behind them.
type counts struct {
	contacts, exchanges, syringesOut, needlesOut, syringesReturned int64
	handouts, doses, reversals, referrals, attended                int64
}

func (c *counts) add(o *counts, sign int64) {
	c.contacts += sign * o.contacts
	c.exchanges += sign * o.exchanges
	c.syringesOut += sign * o.syringesOut
	c.needlesOut += sign * o.needlesOut
	c.syringesReturned += sign * o.syringesReturned
	c.handouts += sign * o.handouts
	c.doses += sign * o.doses
	c.reversals += sign * o.reversals
	c.referrals += sign * o.referrals
	c.attended += sign * o.attended
}

func (c *counts) zero() bool { return *c == counts{} }

// negative reports whether c takes anything away.
func (c *counts) negative() bool {
	return c.contacts < 0 || c.exchanges < 0 || c.syringesOut < 0 || c.needlesOut < 0 || c.syringesReturned < 0 ||
		c.handouts < 0 || c.doses < 0 || c.reversals < 0 || c.referrals < 0 || c.attended < 0
}

// into counts c into a: an indicator exists once a record of its kind is
// counted, as when records are counted one by one.
func (c *counts) into(a *acc) {
	if c.contacts > 0 {
		a.values[Contacts] += c.contacts
	}
	if c.exchanges > 0 {
		a.values[SyringesOut] += c.syringesOut
		a.values[NeedlesOut] += c.needlesOut
		a.values[SyringesReturned] += c.syringesReturned
	}
	if c.handouts > 0 {
		a.values[NaloxoneDoses] += c.doses
		a.values[NaloxoneHandouts] += c.handouts
	}
	if c.reversals > 0 {
		a.values[Reversals] += c.reversals
	}
	if c.referrals > 0 {
		a.values[Referrals] += c.referrals
	}
	if c.attended > 0 {
		a.values[ReferralsAttended] += c.attended
	}
}

// fact is a record's contribution, as stats_facts holds it.
type fact struct {
	kind                                      schema.Kind
	contact                                   string // the contact it takes gender and age from
	live                                      bool
	at                                        int64
	unit, gender, age, setting                string
	code                                      string // a contact's client code
	syringesOut, needlesOut, syringesReturned int64
	doses                                     int64
	service                                   string // a referral's
	attended                                  bool
}

// counts returns what f adds to the additive figures.
func (f *fact) counts() counts {
	var c counts
	switch f.kind {
	case schema.KindContact:
		c.contacts = 1
	case schema.KindSyringeExchange:
		c.exchanges, c.syringesOut, c.needlesOut, c.syringesReturned = 1, f.syringesOut, f.needlesOut, f.syringesReturned
	case schema.KindNaloxone:
		c.handouts, c.doses = 1, f.doses
	case schema.KindReversal:
		c.reversals = 1
	case schema.KindReferral:
		c.referrals = 1
		if f.attended {
			c.attended = 1
		}
	}
	return c
}

// shapesDependents reports whether f, a contact's new fact, changes what
// the records depending on the contact count, from old: whether they count
// at all, and their gender, age band and setting.
func (f *fact) shapesDependents(old *fact) bool {
	return old == nil || old.live != f.live || old.gender != f.gender || old.age != f.age || old.setting != f.setting
}

// factColumns are the columns a record's fact is read from, in the order
// scanFact reads them; x is the record, c its contact (for the kinds that
// have one, LEFT JOINed). They count a record as the full count does:
// voided records out, exchanges and handouts only with a live contact,
// reversals and referrals unless their contact is voided, gender, age
// band and setting from the contact, or not stated and NoSetting ('none',
// as the full count and migration 0015 spell it too) without one.
var factColumns = map[schema.Kind]string{
	schema.KindContact: `x.id, '', x.voided = 0, x.occurred_at, x.unit_id, x.gender, x.age_band, x.setting,
		COALESCE(x.client_code, ''), 0, 0, 0, 0, '', 0`,
	schema.KindSyringeExchange: `x.id, x.contact_id, x.voided = 0 AND c.id IS NOT NULL AND c.voided = 0, x.occurred_at, x.unit_id,
		COALESCE(c.gender, 'not_stated'), COALESCE(c.age_band, 'not_stated'), COALESCE(c.setting, 'none'), '', x.syringes_out, x.needles_out, x.syringes_returned, 0, '', 0`,
	schema.KindNaloxone: `x.id, x.contact_id, x.voided = 0 AND c.id IS NOT NULL AND c.voided = 0, x.occurred_at, x.unit_id,
		COALESCE(c.gender, 'not_stated'), COALESCE(c.age_band, 'not_stated'), COALESCE(c.setting, 'none'), '', 0, 0, 0, x.doses, '', 0`,
	schema.KindReversal: `x.id, COALESCE(CAST(x.contact_id AS TEXT), ''), x.voided = 0 AND COALESCE(c.voided, 0) = 0, x.occurred_at, x.unit_id,
		COALESCE(c.gender, 'not_stated'), COALESCE(c.age_band, 'not_stated'), COALESCE(c.setting, 'none'), '', 0, 0, 0, 0, '', 0`,
	schema.KindReferral: `x.id, COALESCE(CAST(x.contact_id AS TEXT), ''), x.voided = 0 AND COALESCE(c.voided, 0) = 0, x.occurred_at, x.unit_id,
		COALESCE(c.gender, 'not_stated'), COALESCE(c.age_band, 'not_stated'), COALESCE(c.setting, 'none'), '', 0, 0, 0, 0, x.service,
		x.status IN ('attended', 'closed')`,
}

// factKinds are the kinds counted, contacts first: the others depend on
// them.
var factKinds = []schema.Kind{schema.KindContact, schema.KindSyringeExchange, schema.KindNaloxone, schema.KindReversal, schema.KindReferral}

// factQuery returns the query in d of k's facts: with where "all", of every
// record; "since", of those changed after a sequence number (its
// argument); "id", of the one with an id (its argument); "page", of the
// pageSize first by id after an id (its argument).
func factQuery(d *Dialect, k schema.Kind, where string) string {
	join := ` LEFT JOIN contacts c ON c.id = x.contact_id`
	if k == schema.KindContact {
		join = ""
	}
	switch where {
	case "since":
		return d.unitWalk(string(k)) + fmt.Sprintf(`SELECT %[2]s FROM u CROSS JOIN %[1]s x%[3]s WHERE x.unit_id = u.id AND x.seq > ?`,
			k, factColumns[k], join)
	case "id":
		return fmt.Sprintf(`SELECT %s FROM %s x%s WHERE x.id = ?`, factColumns[k], k, join)
	case "page":
		return fmt.Sprintf(`SELECT %s FROM %s x%s WHERE x.id > ? ORDER BY x.id LIMIT %d`, factColumns[k], k, join, pageSize)
	}
	return fmt.Sprintf(`SELECT %s FROM %s x%s`, factColumns[k], k, join)
}

type scanner interface{ Scan(dest ...any) error }

// scanFact reads a record's id and fact from the columns of factColumns.
func scanFact(k schema.Kind, r scanner) (string, *fact, error) {
	f := &fact{kind: k}
	var id string
	err := r.Scan(&id, &f.contact, &f.live, &f.at, &f.unit, &f.gender, &f.age, &f.setting, &f.code,
		&f.syringesOut, &f.needlesOut, &f.syringesReturned, &f.doses, &f.service, &f.attended)
	return id, f, err
}

// upToDate reports whether the rollups are built, in zone and this
// version, and include every change in tx's snapshot.
func upToDate(ctx context.Context, tx dbTx) (bool, error) {
	st, ok, err := readState(ctx, tx)
	if err != nil || !ok {
		return false, err
	}
	head, err := changeSeq(ctx, tx)
	if err != nil {
		return false, err
	}
	return st.current() && st.seq == head, nil
}

// state is the row of stats_state.
type state struct {
	seq     int64
	zone    string
	version int
}

func (s state) current() bool { return s.zone == zoneName && s.version == rollupVersion }

func readState(ctx context.Context, tx dbTx) (state, bool, error) {
	var s state
	err := tx.QueryRowContext(ctx, `SELECT seq, zone, version FROM stats_state WHERE id = 1`).Scan(&s.seq, &s.zone, &s.version)
	if err == sql.ErrNoRows {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("stats: state: %w", err)
	}
	return s, true, nil
}

// changeSeq returns the server's last change sequence number.
func changeSeq(ctx context.Context, tx dbTx) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, tx.d.changeSeq).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stats: change_seq: %w", err)
	}
	return seq, nil
}

// Refresh brings the rollups of db up to date with the records, in one
// transaction on its writer: it takes out the old contribution of every
// record changed since the last refresh and puts in the new one, and does
// the same for the exchanges, handouts, reversals and referrals of every
// contact whose voiding, gender or age band changed. It rebuilds the
// rollups from all records when they were never built, were emptied, or
// are of another zone or version. The transaction re-reads how far the
// rollups are once it holds the write lock (SQLite's one writer, or on
// PostgreSQL an advisory lock that the refreshes of every server process
// take), so that concurrent refreshes do the work once. The writer must
// not be in use by the caller's own transaction. It is safe for
// concurrent use, also by several processes on one database.
func Refresh(ctx context.Context, db DB) error {
	tx, err := db.write(ctx)
	if err != nil {
		return fmt.Errorf("stats: refresh: %w", err)
	}
	defer tx.Rollback()
	if err := tx.lock(ctx, refreshLock); err != nil {
		return fmt.Errorf("stats: refresh: %w", err)
	}
	st, ok, err := readState(ctx, tx)
	if err != nil {
		return err
	}
	head, err := changeSeq(ctx, tx)
	if err != nil {
		return err
	}
	rebuild := !ok || !st.current()
	if !rebuild && st.seq == head {
		return nil
	}
	r, err := newRefresher(ctx, tx, rebuild)
	if err != nil {
		return err
	}
	defer r.close()
	if rebuild {
		err = r.rebuild(ctx)
	} else {
		err = r.since(ctx, st.seq)
	}
	if err == nil {
		err = r.flush(ctx)
	}
	if err != nil {
		return fmt.Errorf("stats: refresh: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO stats_state (id, seq, zone, version) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, zone = excluded.zone, version = excluded.version`,
		head, zoneName, rollupVersion); err != nil {
		return fmt.Errorf("stats: refresh: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("stats: refresh: %w", err)
	}
	return nil
}

// cellKey addresses a row of the rollup tables.
type cellKey struct {
	grain                      grain
	bucket                     int64
	unit, gender, age, setting string
}

type serviceKey struct {
	cellKey
	service string
}

type clientKey struct {
	cellKey
	code string
}

// refresher applies changed facts to the rollups of one transaction. It
// gathers the changes of the rollup rows in memory and writes them in
// flush, each row once.
type refresher struct {
	tx       dbTx
	fresh    bool // the rollups were emptied: no record has a fact
	stmts    map[string]*sql.Stmt
	cells    map[cellKey]*counts
	services map[serviceKey]int64
	clients  map[clientKey]int64
	// facts are the facts not yet written, where the dialect writes
	// several rows a statement: each writes those of its records.
	facts [][]any
	// olds are the facts stored of the records each has read, where the
	// dialect reads several a statement (readOld).
	olds map[string]*fact
	// batched holds the statements of refreshSQL that write several
	// rows, by name and number of rows.
	batched map[string]map[int]*sql.Stmt
}

// flushAt is how many rollup rows a refresher gathers before it writes
// them, bounding its memory in a rebuild.
const flushAt = 200_000

// pageSize is how many records a rebuild reads at a time where the
// dialect does not stream.
var pageSize = 10_000

var refreshSQL = map[string]string{
	"getFact": `SELECT contact_id, live, at, unit_id, gender, age_band, setting, client_code,
		syringes_out, needles_out, syringes_returned, doses, service, attended
		FROM stats_facts WHERE kind = ? AND id = ?`,
	"putFact": `INSERT INTO stats_facts (kind, id, contact_id, live, at, unit_id, gender, age_band, setting, client_code,
		syringes_out, needles_out, syringes_returned, doses, service, attended)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET contact_id = excluded.contact_id, live = excluded.live, at = excluded.at,
		unit_id = excluded.unit_id, gender = excluded.gender, age_band = excluded.age_band, setting = excluded.setting,
		client_code = excluded.client_code,
		syringes_out = excluded.syringes_out, needles_out = excluded.needles_out, syringes_returned = excluded.syringes_returned,
		doses = excluded.doses, service = excluded.service, attended = excluded.attended`,
	"deleteFact": `DELETE FROM stats_facts WHERE kind = ? AND id = ?`,
	"dependents": `SELECT kind, id FROM stats_facts WHERE contact_id = ?`,
	"addCell": `INSERT INTO stats_cells (grain, bucket, unit_id, gender, age_band, setting, contacts, exchanges, syringes_out,
		needles_out, syringes_returned, handouts, naloxone_doses, reversals, referrals, attended)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (grain, bucket, unit_id, gender, age_band, setting) DO UPDATE SET
		contacts = stats_cells.contacts + excluded.contacts, exchanges = stats_cells.exchanges + excluded.exchanges,
		syringes_out = stats_cells.syringes_out + excluded.syringes_out, needles_out = stats_cells.needles_out + excluded.needles_out,
		syringes_returned = stats_cells.syringes_returned + excluded.syringes_returned, handouts = stats_cells.handouts + excluded.handouts,
		naloxone_doses = stats_cells.naloxone_doses + excluded.naloxone_doses, reversals = stats_cells.reversals + excluded.reversals,
		referrals = stats_cells.referrals + excluded.referrals, attended = stats_cells.attended + excluded.attended`,
	"dropCell": `DELETE FROM stats_cells WHERE grain = ? AND bucket = ? AND unit_id = ? AND gender = ? AND age_band = ?
		AND setting = ? AND contacts = 0 AND exchanges = 0 AND handouts = 0 AND reversals = 0 AND referrals = 0`,
	"takeCell": `UPDATE stats_cells SET contacts = contacts + ?, exchanges = exchanges + ?, syringes_out = syringes_out + ?,
		needles_out = needles_out + ?, syringes_returned = syringes_returned + ?, handouts = handouts + ?,
		naloxone_doses = naloxone_doses + ?, reversals = reversals + ?, referrals = referrals + ?, attended = attended + ?
		WHERE grain = ? AND bucket = ? AND unit_id = ? AND gender = ? AND age_band = ? AND setting = ?`,
	"addService": `INSERT INTO stats_services (grain, bucket, unit_id, gender, age_band, setting, service, referrals)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (grain, bucket, unit_id, service, gender, age_band, setting) DO UPDATE SET referrals = stats_services.referrals + excluded.referrals`,
	"takeService": `UPDATE stats_services SET referrals = referrals + ?
		WHERE grain = ? AND bucket = ? AND unit_id = ? AND gender = ? AND age_band = ? AND setting = ? AND service = ?`,
	"dropService": `DELETE FROM stats_services WHERE grain = ? AND bucket = ? AND unit_id = ? AND gender = ? AND age_band = ?
		AND setting = ? AND service = ? AND referrals = 0`,
	"addClient": `INSERT INTO stats_clients (grain, bucket, unit_id, gender, age_band, setting, client_code, contacts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (grain, bucket, unit_id, client_code, gender, age_band, setting) DO UPDATE SET contacts = stats_clients.contacts + excluded.contacts`,
	"takeClient": `UPDATE stats_clients SET contacts = contacts + ?
		WHERE grain = ? AND bucket = ? AND unit_id = ? AND gender = ? AND age_band = ? AND setting = ? AND client_code = ?`,
	"dropClient": `DELETE FROM stats_clients WHERE grain = ? AND bucket = ? AND unit_id = ? AND gender = ? AND age_band = ?
		AND setting = ? AND client_code = ? AND contacts = 0`,
}

// newRefresher prepares the refresh of tx; with empty, it empties the
// rollups first.
func newRefresher(ctx context.Context, tx dbTx, empty bool) (*refresher, error) {
	if empty {
		for _, t := range []string{"stats_facts", "stats_cells", "stats_services", "stats_clients"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
				return nil, fmt.Errorf("stats: refresh: empty %s: %w", t, err)
			}
		}
	}
	r := &refresher{tx: tx, fresh: empty, stmts: map[string]*sql.Stmt{}}
	r.reset()
	for name, q := range refreshSQL {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("stats: refresh: prepare %s: %w", name, err)
		}
		r.stmts[name] = st
	}
	return r, nil
}

func (r *refresher) reset() {
	r.cells, r.services, r.clients = map[cellKey]*counts{}, map[serviceKey]int64{}, map[clientKey]int64{}
}

func (r *refresher) close() {
	for _, st := range r.stmts {
		st.Close()
	}
	for _, sts := range r.batched {
		for _, st := range sts {
			st.Close()
		}
	}
}

// rebuild puts in the facts of every record: all at once where the
// dialect streams, else page by page.
func (r *refresher) rebuild(ctx context.Context) error {
	for _, k := range factKinds {
		if r.tx.d.streams {
			if _, err := r.each(ctx, k, factQuery(r.tx.d, k, "all"), nil, nil); err != nil {
				return err
			}
			continue
		}
		for after := uuid.Nil.String(); after != ""; {
			var err error
			if after, err = r.each(ctx, k, factQuery(r.tx.d, k, "page"), []any{after}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// since brings up to date the facts of the records changed after seq, and
// those of the records depending on a contact whose change shapes them.
func (r *refresher) since(ctx context.Context, seq int64) error {
	var shaping []string // contacts whose change shapes their dependents
	if _, err := r.each(ctx, schema.KindContact, factQuery(r.tx.d, schema.KindContact, "since"), []any{seq}, func(id string) {
		shaping = append(shaping, id)
	}); err != nil {
		return err
	}
	done := map[string]bool{}
	for _, k := range factKinds[1:] {
		if _, err := r.each(ctx, k, factQuery(r.tx.d, k, "since"), []any{seq}, func(id string) { done[string(k)+"/"+id] = true }); err != nil {
			return err
		}
	}
	type rec struct {
		kind schema.Kind
		id   string
	}
	var deps []rec
	for _, c := range shaping {
		rows, err := r.stmts["dependents"].QueryContext(ctx, c)
		if err != nil {
			return fmt.Errorf("dependents of %s: %w", c, err)
		}
		for rows.Next() {
			var d rec
			if err := rows.Scan(&d.kind, &d.id); err != nil {
				rows.Close()
				return fmt.Errorf("dependents of %s: %w", c, err)
			}
			if !done[string(d.kind)+"/"+d.id] {
				done[string(d.kind)+"/"+d.id] = true
				deps = append(deps, d)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("dependents of %s: %w", c, err)
		}
	}
	byID := map[schema.Kind]*sql.Stmt{}
	defer func() {
		for _, st := range byID {
			st.Close()
		}
	}()
	for _, d := range deps {
		st := byID[d.kind]
		if st == nil {
			var err error
			if st, err = r.tx.PrepareContext(ctx, factQuery(r.tx.d, d.kind, "id")); err != nil {
				return fmt.Errorf("%s: %w", d.kind, err)
			}
			byID[d.kind] = st
		}
		_, f, err := scanFact(d.kind, st.QueryRowContext(ctx, d.id))
		if err == sql.ErrNoRows {
			f = nil // records are never deleted; should one be, it counts no more
		} else if err != nil {
			return fmt.Errorf("%s %s: %w", d.kind, d.id, err)
		}
		if _, err := r.update(ctx, d.kind, d.id, f); err != nil {
			return err
		}
	}
	return nil
}

// each updates the fact of every record of kind k that query returns,
// with args, and calls seen, unless nil, with each one's id; for contacts,
// only with those whose change shapes their dependents. It returns the id
// of the last record if query returned pageSize of them, else "". Where
// the dialect does not stream, it reads all the rows before it updates.
func (r *refresher) each(ctx context.Context, k schema.Kind, query string, args []any, seen func(id string)) (string, error) {
	rows, err := r.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", k, err)
	}
	defer rows.Close()
	type read struct {
		id string
		f  *fact
	}
	var held []read
	n, last := 0, ""
	apply := func(id string, f *fact) error {
		shapes, err := r.update(ctx, k, id, f)
		if err != nil {
			return err
		}
		if seen != nil && (k != schema.KindContact || shapes) {
			seen(id)
		}
		return nil
	}
	for rows.Next() {
		id, f, err := scanFact(k, rows)
		if err != nil {
			return "", fmt.Errorf("%s: %w", k, err)
		}
		n, last = n+1, id
		if !r.tx.d.streams {
			held = append(held, read{id, f})
			continue
		}
		if err := apply(id, f); err != nil {
			return "", err
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", k, err)
	}
	rows.Close()
	if len(held) > 0 {
		ids := make([]string, len(held))
		for i, h := range held {
			ids[i] = h.id
		}
		if err := r.readOld(ctx, k, ids); err != nil {
			return "", err
		}
	}
	for _, h := range held {
		if err := apply(h.id, h.f); err != nil {
			return "", err
		}
	}
	if err := r.writeFacts(ctx); err != nil {
		return "", err
	}
	if n < pageSize {
		last = ""
	}
	return last, nil
}

// update replaces the fact of the record of kind k with id by f (nil for
// none) and gathers the difference. It reports whether the change shapes
// the record's dependents, if it is a contact.
func (r *refresher) update(ctx context.Context, k schema.Kind, id string, f *fact) (bool, error) {
	var old *fact
	_, batched := r.olds[id]
	switch {
	case batched:
		old = r.olds[id]
		delete(r.olds, id)
	case !r.fresh:
		o, err := scanOld(k, r.stmts["getFact"].QueryRowContext(ctx, string(k), id))
		switch {
		case err == nil:
			old = o
		case err != sql.ErrNoRows:
			return false, fmt.Errorf("fact of %s %s: %w", k, id, err)
		}
	}
	switch {
	case f == nil && old == nil:
		return false, nil
	case f != nil && old != nil && *f == *old:
		return false, nil
	case f == nil:
		if _, err := r.stmts["deleteFact"].ExecContext(ctx, string(k), id); err != nil {
			return false, fmt.Errorf("fact of %s %s: %w", k, id, err)
		}
	default:
		row := []any{string(k), id, orNull(f.contact), flag(f.live), f.at, f.unit, f.gender, f.age, f.setting,
			orNull(f.code), f.syringesOut, f.needlesOut, f.syringesReturned, f.doses, orNull(f.service), flag(f.attended)}
		if (r.fresh || batched) && r.tx.d.batch > 1 {
			// each meets a record once: its fact goes in by the batch.
			if r.facts = append(r.facts, row); len(r.facts) >= r.tx.d.batch {
				if err := r.writeFacts(ctx); err != nil {
					return false, err
				}
			}
		} else if _, err := r.stmts["putFact"].ExecContext(ctx, row...); err != nil {
			return false, fmt.Errorf("fact of %s %s: %w", k, id, err)
		}
	}
	r.gather(old, -1)
	r.gather(f, 1)
	if len(r.cells)+len(r.services)+len(r.clients) >= flushAt {
		if err := r.flush(ctx); err != nil {
			return false, err
		}
	}
	return f == nil || f.shapesDependents(old), nil
}

// gather adds f's contribution, times sign, to the rollup rows' changes.
func (r *refresher) gather(f *fact, sign int64) {
	if f == nil || !f.live {
		return
	}
	c := f.counts()
	day := dayOf(f.at)
	for _, g := range grains {
		key := cellKey{g, g.bucket(day), f.unit, f.gender, f.age, f.setting}
		d := r.cells[key]
		if d == nil {
			d = &counts{}
			r.cells[key] = d
		}
		d.add(&c, sign)
		if f.kind == schema.KindReferral {
			r.services[serviceKey{key, f.service}] += sign
		}
		if f.kind == schema.KindContact && f.code != "" {
			r.clients[clientKey{key, f.code}] += sign
		}
	}
}

// scanOld reads a fact as stats_facts holds it, after the columns dest
// (the id, when several are read).
func scanOld(k schema.Kind, r scanner, dest ...any) (*fact, error) {
	o := &fact{kind: k}
	var code, service, contact sql.NullString
	err := r.Scan(append(dest, &contact, &o.live, &o.at, &o.unit, &o.gender, &o.age, &o.setting, &code,
		&o.syringesOut, &o.needlesOut, &o.syringesReturned, &o.doses, &service, &o.attended)...)
	o.contact, o.code, o.service = contact.String, code.String, service.String
	return o, err
}

// readOld reads into r.olds the facts stored of the records of kind k
// with ids, the dialect's batch at a time, where the batch is above 1 and
// the rollups were not emptied: nil for a record without one. update
// takes a record's from there.
func (r *refresher) readOld(ctx context.Context, k schema.Kind, ids []string) error {
	batch := r.tx.d.batch
	if batch <= 1 || r.fresh {
		return nil
	}
	if r.olds == nil {
		r.olds = map[string]*fact{}
	}
	for i := 0; i < len(ids); i += batch {
		chunk := ids[i:min(i+batch, len(ids))]
		args := []any{string(k)}
		for _, id := range chunk {
			args = append(args, id)
			r.olds[id] = nil
		}
		rows, err := r.tx.QueryContext(ctx, `SELECT id, contact_id, live, at, unit_id, gender, age_band, setting, client_code,
			syringes_out, needles_out, syringes_returned, doses, service, attended
			FROM stats_facts WHERE kind = ? AND id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return fmt.Errorf("facts of %s: %w", k, err)
		}
		for rows.Next() {
			var id string
			o, err := scanOld(k, rows, &id)
			if err != nil {
				rows.Close()
				return fmt.Errorf("facts of %s: %w", k, err)
			}
			r.olds[id] = o
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("facts of %s: %w", k, err)
		}
	}
	return nil
}

// writeFacts writes the facts gathered in r.facts.
func (r *refresher) writeFacts(ctx context.Context) error {
	if err := r.execRows(ctx, "putFact", r.facts); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	r.facts = r.facts[:0]
	return nil
}

// execRows runs refreshSQL's statement name, which inserts one row, for
// every row of rows: one row a statement where the dialect's batch is 1,
// else up to batch rows a statement, its VALUES row repeated. The rows'
// keys must differ.
func (r *refresher) execRows(ctx context.Context, name string, rows [][]any) error {
	batch := r.tx.d.batch
	if batch <= 1 {
		for _, row := range rows {
			if _, err := r.stmts[name].ExecContext(ctx, row...); err != nil {
				return err
			}
		}
		return nil
	}
	var args []any
	for i := 0; i < len(rows); i += batch {
		chunk := rows[i:min(i+batch, len(rows))]
		st := r.batched[name][len(chunk)]
		if st == nil {
			q := refreshSQL[name]
			start := strings.Index(q, "VALUES (") + len("VALUES ")
			end := start + strings.Index(q[start:], ")") + 1
			values := q[start:end] + strings.Repeat(", "+q[start:end], len(chunk)-1)
			var err error
			if st, err = r.tx.PrepareContext(ctx, q[:start]+values+q[end:]); err != nil {
				return err
			}
			if r.batched == nil {
				r.batched = map[string]map[int]*sql.Stmt{}
			}
			if r.batched[name] == nil {
				r.batched[name] = map[int]*sql.Stmt{}
			}
			r.batched[name][len(chunk)] = st
		}
		args = args[:0]
		for _, row := range chunk {
			args = append(args, row...)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the gathered changes of the rollup rows, dropping rows no
// record counts in any more. A change that only adds is an upsert; one
// that takes away updates the row it takes from (SQLite checks an upsert's
// row against the constraints before it finds the row to update), and
// would insert a row with a negative count, which the constraints refuse,
// if the row were missing: that would be rollups out of step with their
// facts.
func (r *refresher) flush(ctx context.Context) error {
	// take runs update with args and, if no row matched, insert.
	take := func(update, insert string, args, insertArgs []any) error {
		res, err := r.stmts[update].ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		_, err = r.stmts[insert].ExecContext(ctx, insertArgs...)
		return err
	}
	// The rows that are only added to go in by the dialect's batch.
	batch := r.tx.d.batch > 1
	var cells, services, clients [][]any
	for k, d := range r.cells {
		if d.zero() {
			continue
		}
		key := []any{string(k.grain), k.bucket, k.unit, k.gender, k.age, k.setting}
		vals := []any{d.contacts, d.exchanges, d.syringesOut, d.needlesOut, d.syringesReturned, d.handouts, d.doses, d.reversals, d.referrals, d.attended}
		var err error
		if d.negative() {
			if err = take("takeCell", "addCell", append(vals, key...), append(key, vals...)); err == nil {
				_, err = r.stmts["dropCell"].ExecContext(ctx, key...)
			}
		} else if batch {
			cells = append(cells, append(key, vals...))
		} else {
			_, err = r.stmts["addCell"].ExecContext(ctx, append(key, vals...)...)
		}
		if err != nil {
			return fmt.Errorf("cell %v: %w", k, err)
		}
	}
	for k, n := range r.services {
		key := []any{string(k.grain), k.bucket, k.unit, k.gender, k.age, k.setting, k.service}
		var err error
		switch {
		case n < 0:
			if err = take("takeService", "addService", append([]any{n}, key...), append(key, n)); err == nil {
				_, err = r.stmts["dropService"].ExecContext(ctx, key...)
			}
		case n > 0 && batch:
			services = append(services, append(key, n))
		case n > 0:
			_, err = r.stmts["addService"].ExecContext(ctx, append(key, n)...)
		}
		if err != nil {
			return fmt.Errorf("service %v: %w", k, err)
		}
	}
	for k, n := range r.clients {
		key := []any{string(k.grain), k.bucket, k.unit, k.gender, k.age, k.setting, k.code}
		var err error
		switch {
		case n < 0:
			if err = take("takeClient", "addClient", append([]any{n}, key...), append(key, n)); err == nil {
				_, err = r.stmts["dropClient"].ExecContext(ctx, key...)
			}
		case n > 0 && batch:
			clients = append(clients, append(key, n))
		case n > 0:
			_, err = r.stmts["addClient"].ExecContext(ctx, append(key, n)...)
		}
		if err != nil {
			return fmt.Errorf("client %v: %w", k, err)
		}
	}
	for _, w := range []struct {
		name string
		rows [][]any
	}{{"addCell", cells}, {"addService", services}, {"addClient", clients}} {
		if err := r.execRows(ctx, w.name, w.rows); err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
	}
	if err := r.writeFacts(ctx); err != nil {
		return err
	}
	r.reset()
	return nil
}
