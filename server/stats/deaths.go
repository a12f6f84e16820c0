package stats

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/brygga/brygga/schema"
)

// The drug-death follow-up: for each death counted (DeathsKnown), what the
// client had in the 12 months up to and including the date of death,
// counted in the death's cell (the period of its date, the reporting unit,
// the client's gender and age band): the band of days since the client's
// last contact, a count that adds up to the deaths; and four sums, the
// contacts, naloxone doses handed out, referrals made and referrals that
// reached attended. The sums are magnitudes (docs/REPORTS.md): published
// only when at least k deaths contribute to them.
const (
	DeathsPriorContacts          Indicator = "deaths_prior_contacts"
	DeathsPriorNaloxoneDoses     Indicator = "deaths_prior_naloxone_doses"
	DeathsPriorReferrals         Indicator = "deaths_prior_referrals"
	DeathsPriorReferralsAttended Indicator = "deaths_prior_referrals_attended"
)

// followUpMonths is how far before a death the follow-up looks.
const followUpMonths = 12

// lastContactBands are the bands of days from a client's last contact to
// the date of death, the last for no contact in the 12 months before: each
// is the band's code and its highest day.
var lastContactBands = []struct {
	code string
	max  int
}{{"0_7", 7}, {"8_30", 30}, {"31_90", 90}, {"over_90", 366}, {"none", -1}}

// DeathsLastContact is the indicator of deaths whose last contact was in
// the band with the code: 0_7, 8_30, 31_90, over_90 (days before the date
// of death, up to 12 months) or none (no contact in the 12 months before).
func DeathsLastContact(band string) Indicator { return Indicator("deaths_last_contact." + band) }

// deathFamily returns the indicators of deaths that the audit reasons
// over: the deaths, the sum of the bands of the last contact.
func deathFamily() []Indicator {
	out := []Indicator{DeathsKnown}
	for _, b := range lastContactBands {
		out = append(out, DeathsLastContact(b.code))
	}
	return out
}

// deathSums are the follow-up's sums.
var deathSums = []Indicator{DeathsPriorContacts, DeathsPriorNaloxoneDoses, DeathsPriorReferrals, DeathsPriorReferralsAttended}

// isHealthMagnitude reports whether i is one of the follow-up's sums.
func isHealthMagnitude(i Indicator) bool {
	for _, s := range deathSums {
		if i == s {
			return true
		}
	}
	return false
}

// death is a death counted, as the follow-up reads it.
type death struct {
	fact int // its index among the facts
	code string
	at   int64 // the date of death, midnight in zone
}

// followUp adds to each death's fact its band of the last contact and its
// sums, from the client code's records in the 12 months before, of the
// units that inScope accepts (nil: every unit), read in tx.
func followUp(ctx context.Context, tx dbTx, facts []healthFact, deaths []death, inScope func(unit string) bool) error {
	if len(deaths) == 0 {
		return nil
	}
	byCode := map[string][]int{}
	codes := make([]any, 0, len(deaths))
	for i, d := range deaths {
		if _, ok := byCode[d.code]; !ok {
			codes = append(codes, d.code)
		}
		byCode[d.code] = append(byCode[d.code], i)
	}
	type window struct{ from, to int64 }
	win := make([]window, len(deaths))
	for i, d := range deaths {
		day := time.UnixMilli(d.at).In(zone)
		y, m, dd := day.Date()
		start := time.Date(y, m, dd, 0, 0, 0, 0, zone)
		win[i] = window{start.AddDate(0, -followUpMonths, 0).UnixMilli(), start.AddDate(0, 0, 1).UnixMilli()}
	}
	last := make([]int64, len(deaths))
	sums := make([][4]int64, len(deaths))
	// each calls f with every death of code whose window holds at, when
	// unit is in scope.
	each := func(code, unit string, at int64, f func(i int)) {
		if inScope != nil && !inScope(unit) {
			return
		}
		for _, i := range byCode[code] {
			if at >= win[i].from && at < win[i].to {
				f(i)
			}
		}
	}
	in := "(?" + strings.Repeat(", ?", len(codes)-1) + ")"
	read := func(what, query string, scan func(r *sql.Rows) error) error {
		return eachRow(ctx, tx, "follow-up "+what, query, codes, scan)
	}
	var code, unit, status string
	var at, n int64
	err := read("contacts", `SELECT client_code, unit_id, occurred_at FROM contacts WHERE voided = 0 AND client_code IN `+in, func(r *sql.Rows) error {
		if err := r.Scan(&code, &unit, &at); err != nil {
			return err
		}
		each(code, unit, at, func(i int) {
			sums[i][0]++
			last[i] = max(last[i], at)
		})
		return nil
	})
	if err != nil {
		return err
	}
	err = read("naloxone", `SELECT c.client_code, n.unit_id, n.occurred_at, n.doses FROM naloxone_handouts n JOIN contacts c ON c.id = n.contact_id
		WHERE n.voided = 0 AND c.voided = 0 AND c.client_code IN `+in, func(r *sql.Rows) error {
		if err := r.Scan(&code, &unit, &at, &n); err != nil {
			return err
		}
		each(code, unit, at, func(i int) { sums[i][1] += n })
		return nil
	})
	if err != nil {
		return err
	}
	err = read("referrals", `SELECT COALESCE(f.client_code, c.client_code), f.unit_id, f.occurred_at, f.status
		FROM referrals f LEFT JOIN contacts c ON c.id = f.contact_id
		WHERE f.voided = 0 AND COALESCE(c.voided, 0) = 0 AND COALESCE(f.client_code, c.client_code) IN `+in, func(r *sql.Rows) error {
		if err := r.Scan(&code, &unit, &at, &status); err != nil {
			return err
		}
		each(code, unit, at, func(i int) {
			sums[i][2]++
			if schema.ReferralStatus(status).Closes() {
				sums[i][3]++
			}
		})
		return nil
	})
	if err != nil {
		return err
	}
	for i, d := range deaths {
		f := &facts[d.fact]
		band := lastContactBands[len(lastContactBands)-1].code
		if last[i] != 0 {
			days := int(dayOf(d.at) - dayOf(last[i]))
			for _, b := range lastContactBands {
				if days <= b.max {
					band = b.code
					break
				}
			}
		}
		f.inds = append(f.inds, DeathsLastContact(band))
		for j, ind := range deathSums {
			if sums[i][j] > 0 {
				f.amounts = append(f.amounts, amount{ind, sums[i][j]})
			}
		}
	}
	return nil
}
