package server_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// TestStatsBySetting asks a manager's statistics by setting over HTTP and
// checks the figures of each setting against the records pushed: a
// contact's exchanges, naloxone and referrals count where the contact took
// place, a voided contact nowhere, and a referral without a contact in the
// group "none". The authority's reports do not offer the breakdown.
func TestStatsBySetting(t *testing.T) {
	r := startReportRegion(t)
	unit, staff := r.units[0], r.staff[0]
	manager := attackLogin(t, r.srv, r.base, "chef.setting", server.RoleManager, uuid.Nil, unit.ID)
	now := time.Now().UTC().Truncate(time.Millisecond)
	h := func(ago time.Duration) schema.Header {
		return schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-ago)}
	}
	contact := func(s schema.Setting, voided bool) *schema.Contact {
		c := &schema.Contact{Header: h(time.Hour), Gender: schema.GenderWoman, AgeBand: schema.Age30to39, Setting: s, AreaCode: unit.AreaCode}
		c.Voided = voided
		return c
	}
	var recs []schema.Record
	for range 3 {
		recs = append(recs, contact(schema.SettingStreet, false))
	}
	site1, site2 := contact(schema.SettingFixedSite, false), contact(schema.SettingFixedSite, false)
	van := contact(schema.SettingMobileUnit, false)
	gone := contact(schema.SettingShelter, true)
	recs = append(recs, site1, site2, van, gone,
		&schema.SyringeExchange{Header: h(time.Hour), ContactID: site1.ID, SyringesOut: 10, NeedlesOut: 12, SyringesReturned: 7},
		&schema.SyringeExchange{Header: h(time.Hour), ContactID: gone.ID, SyringesOut: 50},
		&schema.NaloxoneHandout{Header: h(time.Hour), ContactID: van.ID, Doses: 2, Reason: schema.NaloxoneFirstKit},
		&schema.Referral{Header: h(time.Hour), ContactID: van.ID, Service: schema.ServiceHousing, ToUnitID: r.units[1].ID, Status: schema.StatusSent},
		&schema.Referral{Header: h(time.Hour), Service: schema.ServiceAddictionClinic, ToUnitID: r.units[1].ID, Status: schema.StatusSent},
		&schema.Reversal{Header: h(time.Hour), NaloxoneUsed: true, DosesUsed: 1, Outcome: schema.OutcomeRecovered})
	pushRecords(t, r.srv, r.base, unit.ID, staff.ID, func(uuid.UUID) []schema.Record { return recs })

	today := now.In(stockholmZone)
	q := url.Values{"by": {"setting"}, "period": {"year"},
		"from": {today.AddDate(0, 0, -2).Format("2006-01-02")}, "to": {today.Format("2006-01-02")}}
	var st struct {
		By   string `json:"by"`
		Rows []struct {
			Period     string           `json:"period"`
			Group      string           `json:"group"`
			Label      string           `json:"label"`
			Indicators map[string]int64 `json:"indicators"`
		} `json:"rows"`
	}
	if code := attackGet(t, r.base, "/v1/stats?"+q.Encode(), manager, &st); code != 200 {
		t.Fatalf("stats by setting: %d", code)
	}
	if st.By != "setting" {
		t.Errorf("by %q", st.By)
	}
	got := map[string]map[string]int64{} // group, indicator: summed over the periods
	labels := map[string]string{}
	for _, row := range st.Rows {
		if got[row.Group] == nil {
			got[row.Group] = map[string]int64{}
		}
		for ind, v := range row.Indicators {
			got[row.Group][ind] += v
		}
		labels[row.Group] = row.Label
	}
	want := map[string]map[string]int64{
		"street":      {"contacts": 3, "syringes_out": 0, "referrals": 0},
		"fixed_site":  {"contacts": 2, "syringes_out": 10, "needles_out": 12, "syringes_returned": 7},
		"mobile_unit": {"contacts": 1, "naloxone_doses": 2, "naloxone_handouts": 1, "referrals": 1, "referrals.housing": 1},
		"none":        {"contacts": 0, "referrals": 1, "referrals.addiction_clinic": 1, "reversals": 1},
		"total":       {"contacts": 6, "syringes_out": 10, "naloxone_doses": 2, "referrals": 2, "reversals": 1},
	}
	for g, inds := range want {
		if got[g] == nil {
			t.Errorf("no group %q in %v", g, labels)
			continue
		}
		for ind, v := range inds {
			if got[g][ind] != v {
				t.Errorf("%s %s = %d, want %d", g, ind, got[g][ind], v)
			}
		}
	}
	if _, ok := got["shelter"]; ok {
		t.Errorf("the voided contact's setting is a group: %v", got["shelter"])
	}
	if len(got) != len(want) {
		t.Errorf("groups %v, want those of %v", labels, want)
	}
	if labels["fixed_site"] != "Fixed site" || labels["none"] != "Not linked to a contact" {
		t.Errorf("labels %v", labels)
	}

	// The authority's reports stay on their grid: no setting there.
	if code, body := r.get(t, "/v1/reports/indicators?by=setting"); code != 400 {
		t.Errorf("a report by setting: %d %s", code, body)
	}
}
