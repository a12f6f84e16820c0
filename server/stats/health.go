package stats

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/brygga/brygga/schema"
)

// The indicators of infection testing, hepatitis vaccination and deaths.
// They are counted from the record tables themselves, which have indexes
// on when things happened (migration 0018): these records are few beside
// contacts, and the rollups are left to the indicators of every contact.
//
// A test counts in the period, unit, gender and age band of its contact
// (tests of a voided contact count nowhere): offered, every test; declined
// or performed, by its outcome; reactive, a performed test whose result is
// reactive; linked to care, a reactive test followed by a referral to an
// infection clinic whose status reached attended (attended or closed),
// made at the test's contact or, for the test's client code, within
// LinkageWindow after the test. A vaccination counts one dose of its
// vaccine; the third dose of hepatitis B or of the combined vaccine
// (schema.HepBSeriesDose) counts a completed series. A death counts once
// per client code, by the earliest report of it that is not voided: in the
// period of its date, in the reporting unit, with the client's gender and
// age band where the client was registered (not stated otherwise).
const (
	VaccineDoses        Indicator = "vaccine_doses"
	HepBSeriesCompleted Indicator = "hepatitis_b_series_completed"
	DeathsKnown         Indicator = "deaths_known"
)

// LinkageWindow is how long after a reactive test a referral of the same
// client code to an infection clinic links the test to care.
const LinkageWindow = 90 * 24 * time.Hour

// TestsOffered is the indicator of tests of a kind offered: declined and
// performed.
func TestsOffered(t schema.TestKind) Indicator { return Indicator("tests_offered." + string(t)) }

// TestsDeclined is the indicator of tests of a kind offered and declined.
func TestsDeclined(t schema.TestKind) Indicator { return Indicator("tests_declined." + string(t)) }

// TestsPerformed is the indicator of tests of a kind performed, as a rapid
// test or a sample sent.
func TestsPerformed(t schema.TestKind) Indicator { return Indicator("tests_performed." + string(t)) }

// TestsReactive is the indicator of performed tests of a kind whose result
// is reactive.
func TestsReactive(t schema.TestKind) Indicator { return Indicator("tests_reactive." + string(t)) }

// TestsLinked is the indicator of reactive tests of a kind linked to care.
func TestsLinked(t schema.TestKind) Indicator { return Indicator("tests_linked_to_care." + string(t)) }

// VaccineDosesOf is the indicator of doses of one vaccine.
func VaccineDosesOf(v schema.Vaccine) Indicator { return Indicator("vaccine_doses." + string(v)) }

// testKinds are the tests, in their enumeration's order.
var testKinds = func() []schema.TestKind {
	var out []schema.TestKind
	for _, c := range schema.TestKindEnum.Codes() {
		out = append(out, schema.TestKind(c))
	}
	return out
}()

// testFamily returns the indicators of one test in their order: offered,
// declined, performed, reactive, linked to care. Offered is the sum of
// declined and performed; reactive is at most performed, linked at most
// reactive (boundOf).
func testFamily(t schema.TestKind) []Indicator {
	return []Indicator{TestsOffered(t), TestsDeclined(t), TestsPerformed(t), TestsReactive(t), TestsLinked(t)}
}

// vaccineFamily returns the indicators of vaccination: the doses, the
// doses of each vaccine, which add up to them, and the completed
// hepatitis B series, at most the doses.
func vaccineFamily() []Indicator {
	out := []Indicator{VaccineDoses}
	for _, c := range schema.VaccineEnum.Codes() {
		out = append(out, VaccineDosesOf(schema.Vaccine(c)))
	}
	return append(out, HepBSeriesCompleted)
}

// healthIndicators lists the indicators of this file in report order.
var healthIndicators = func() []Indicator {
	var out []Indicator
	for _, t := range testKinds {
		out = append(out, testFamily(t)...)
	}
	out = append(out, vaccineFamily()...)
	out = append(out, deathFamily()...)
	return append(out, deathSums...)
}()

// healthFamilies are the audit's families of the indicators of this file
// (see auditFamilies): one per test, vaccination, deaths with the bands
// of their last contact. The follow-up's sums are magnitudes, protected
// by their own rule.
func healthFamilies() [][]Indicator {
	var out [][]Indicator
	for _, t := range testKinds {
		out = append(out, testFamily(t))
	}
	return append(out, vaccineFamily(), deathFamily())
}

// boundOf returns, for a member of an audit family that is not part of
// the family's sum, the member it is at most: unique clients and
// referrals attended the family's first; a test's reactive results its
// performed tests, and those linked to care its reactive ones; completed
// hepatitis B series the vaccine doses. ok is false for a member of the
// sum.
func boundOf(fam []Indicator, ind Indicator) (int, bool) {
	var by Indicator
	switch {
	case ind == UniqueClients || ind == ReferralsAttended || ind == HepBSeriesCompleted:
		by = fam[0]
	default:
		for _, t := range testKinds {
			switch ind {
			case TestsReactive(t):
				by = TestsPerformed(t)
			case TestsLinked(t):
				by = TestsReactive(t)
			}
		}
	}
	if by == "" {
		return 0, false
	}
	for i, m := range fam {
		if m == by {
			return i, true
		}
	}
	return 0, false
}

// healthFact is one record as these indicators count it.
type healthFact struct {
	at                         int64
	unit, gender, age, setting string
	inds                       []Indicator // the counts it adds 1 to
	amounts                    []amount    // the sums it adds to
	key                        uint32      // the record's key, if read with keys
}

// amount is a record's contribution to a sum.
type amount struct {
	ind Indicator
	v   int64
}

// readHealth returns the live tests, vaccinations and deaths that happened
// in [from, to), read in tx, with the indicators each counts in and, if
// keys, their record keys. A death's follow-up counts the records of the
// units inScope accepts (nil: every unit).
func readHealth(ctx context.Context, tx dbTx, from, to int64, keys bool, inScope func(unit string) bool) ([]healthFact, error) {
	keyCol := func(kind, id string) (string, string) {
		if !keys {
			return "0", ""
		}
		return "COALESCE(k.key, 0)", fmt.Sprintf(" LEFT JOIN record_keys k ON k.kind = '%s' AND k.id = %s", kind, id)
	}
	var out []healthFact
	read := func(what, query string, each func(r *sql.Rows) error) error {
		return eachRow(ctx, tx, what, query, []any{from, to}, each)
	}
	type reactive struct {
		fact          int
		contact, code string
		test          schema.TestKind
	}
	var reactives []reactive
	kc, kj := keyCol("infection_tests", "t.id")
	err := read("tests", `SELECT t.occurred_at, t.unit_id, c.gender, c.age_band, c.setting, t.contact_id,
		COALESCE(t.client_code, c.client_code, ''), t.test, t.outcome, COALESCE(t.result, ''), `+kc+`
		FROM infection_tests t JOIN contacts c ON c.id = t.contact_id`+kj+`
		WHERE t.voided = 0 AND c.voided = 0 AND t.occurred_at >= ? AND t.occurred_at < ?`, func(r *sql.Rows) error {
		var f healthFact
		var contact, code, test, outcome, result string
		var key int64
		if err := r.Scan(&f.at, &f.unit, &f.gender, &f.age, &f.setting, &contact, &code, &test, &outcome, &result, &key); err != nil {
			return err
		}
		t := schema.TestKind(test)
		f.key = uint32(key)
		f.inds = []Indicator{TestsOffered(t)}
		switch {
		case schema.TestOutcome(outcome).Performed():
			f.inds = append(f.inds, TestsPerformed(t))
			if schema.TestResult(result) == schema.ResultReactive {
				f.inds = append(f.inds, TestsReactive(t))
				reactives = append(reactives, reactive{len(out), contact, code, t})
			}
		default:
			f.inds = append(f.inds, TestsDeclined(t))
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(reactives) > 0 {
		linked, err := readLinkage(ctx, tx)
		if err != nil {
			return nil, err
		}
		for _, r := range reactives {
			f := &out[r.fact]
			if linked.links(r.contact, r.code, f.at) {
				f.inds = append(f.inds, TestsLinked(r.test))
			}
		}
	}
	kc, kj = keyCol("vaccinations", "v.id")
	err = read("vaccinations", `SELECT v.occurred_at, v.unit_id, c.gender, c.age_band, c.setting, v.vaccine, v.dose, `+kc+`
		FROM vaccinations v JOIN contacts c ON c.id = v.contact_id`+kj+`
		WHERE v.voided = 0 AND c.voided = 0 AND v.occurred_at >= ? AND v.occurred_at < ?`, func(r *sql.Rows) error {
		var f healthFact
		var vaccine string
		var dose, key int64
		if err := r.Scan(&f.at, &f.unit, &f.gender, &f.age, &f.setting, &vaccine, &dose, &key); err != nil {
			return err
		}
		v := schema.Vaccine(vaccine)
		f.key = uint32(key)
		f.inds = []Indicator{VaccineDoses, VaccineDosesOf(v)}
		if v.CoversHepB() && dose == schema.HepBSeriesDose {
			f.inds = append(f.inds, HepBSeriesCompleted)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A death's gender and age band are the client's, where the code was
	// registered: the first registration that is not voided; a death is in
	// no setting.
	kc, kj = keyCol("deaths", "d.id")
	var deaths []death
	err = read("deaths", `SELECT d.occurred_at, d.unit_id, d.client_code, COALESCE(cl.gender, 'not_stated'), COALESCE(cl.birth_year, 0),
		COALESCE(cl.age_band, 'not_stated'), `+kc+`
		FROM deaths d LEFT JOIN clients cl ON cl.id = (SELECT id FROM clients WHERE code = d.client_code AND voided = 0
			ORDER BY occurred_at, id LIMIT 1)`+kj+`
		WHERE d.voided = 0 AND d.occurred_at >= ? AND d.occurred_at < ?
		AND d.id = (SELECT id FROM deaths e WHERE e.client_code = d.client_code AND e.voided = 0 ORDER BY e.occurred_at, e.id LIMIT 1)`,
		func(r *sql.Rows) error {
			f := healthFact{setting: NoSetting}
			var code string
			var birth, key int64
			if err := r.Scan(&f.at, &f.unit, &code, &f.gender, &birth, &f.age, &key); err != nil {
				return err
			}
			deaths = append(deaths, death{len(out), code, f.at})
			if birth != 0 {
				f.age = string(schema.AgeBandOf(int(birth), time.UnixMilli(f.at).In(zone).Year()))
			}
			f.key = uint32(key)
			f.inds = []Indicator{DeathsKnown}
			out = append(out, f)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if err := followUp(ctx, tx, out, deaths, inScope); err != nil {
		return nil, err
	}
	return out, nil
}

// eachRow runs query with args in tx and calls each with every row; an
// error says what was read.
func eachRow(ctx context.Context, tx dbTx, what, query string, args []any, each func(r *sql.Rows) error) error {
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

// linkage holds the referrals to an infection clinic that reached
// attended: the contacts they were made at, and the times they were made
// for each client code.
type linkage struct {
	contacts map[string]bool
	codes    map[string][]int64
}

// readLinkage reads every live referral to an infection clinic whose
// status reached attended, in tx.
func readLinkage(ctx context.Context, tx dbTx) (*linkage, error) {
	l := &linkage{contacts: map[string]bool{}, codes: map[string][]int64{}}
	err := eachRow(ctx, tx, "linkage", `SELECT COALESCE(CAST(f.contact_id AS TEXT), ''), COALESCE(f.client_code, c.client_code, ''), f.occurred_at
		FROM referrals f LEFT JOIN contacts c ON c.id = f.contact_id
		WHERE f.voided = 0 AND COALESCE(c.voided, 0) = 0 AND f.service = ? AND f.status IN (?, ?)`,
		[]any{string(schema.ServiceInfectionClinic), string(schema.StatusAttended), string(schema.StatusClosed)}, func(r *sql.Rows) error {
			var contact, code string
			var at int64
			if err := r.Scan(&contact, &code, &at); err != nil {
				return err
			}
			if contact != "" {
				l.contacts[contact] = true
			}
			if code != "" {
				l.codes[code] = append(l.codes[code], at)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// links reports whether a reactive test at the contact, of the client
// code, at the Unix millisecond at, is linked to care.
func (l *linkage) links(contact, code string, at int64) bool {
	if l.contacts[contact] {
		return true
	}
	if code == "" {
		return false
	}
	for _, r := range l.codes[code] {
		if r >= at && r < at+LinkageWindow.Milliseconds() {
			return true
		}
	}
	return false
}

// addHealth counts the indicators of this file into t for q, read in tx.
func addHealth(ctx context.Context, tx dbTx, t *tally, q Query) error {
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	// A death's follow-up counts only the query's own units' records: a
	// manager sees what their organisation knows, nothing of another's.
	inScope := func(unit string) bool { _, ok := t.units[unit]; return ok }
	facts, err := readHealth(ctx, tx, q.From.UnixMilli(), q.To.UnixMilli(), false, inScope)
	if err != nil {
		return err
	}
	for _, f := range facts {
		t.add(q.Period.key(time.UnixMilli(f.at).In(loc)), f.unit, f.gender, f.age, f.setting, func(a *acc) {
			for _, i := range f.inds {
				a.values[i]++
			}
			for _, m := range f.amounts {
				a.values[m.ind] += m.v
			}
		})
	}
	return nil
}
