package server_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// insiderTablet is a device a manager enrolled for a unit of their own,
// through the API, to record what they like.
type insiderTablet struct {
	base, token string
	unit, staff uuid.UUID
	device      uuid.UUID
	area        string
	clock       *hlc.Clock
	seq         int64
}

func enrolInsider(t *testing.T, r *attackRegion, u attackRegionUnit) *insiderTablet {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"unit_id": u.id.String()})
	req, _ := http.NewRequest("POST", r.base+"/v1/devices/enroll-codes", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.manager)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var code struct {
		Code string `json:"code"`
	}
	json.NewDecoder(resp.Body).Decode(&code)
	resp.Body.Close()
	priv := newKey(t)
	proof, err := server.SignEnrolProof(priv, code.Code, r.now)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(map[string]string{"code": code.Code, "proof": proof,
		"public_key": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))})
	resp, err = http.Post(r.base+"/v1/devices/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		AccessToken string    `json:"access_token"`
		DeviceID    uuid.UUID `json:"device_id"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if e.AccessToken == "" {
		t.Fatalf("the manager could not enrol a tablet: %d", resp.StatusCode)
	}
	return &insiderTablet{base: r.base, token: e.AccessToken, unit: u.id, staff: u.staff, device: e.DeviceID, area: u.area, clock: hlc.NewClock(nil, 0)}
}

// push sends records (or their fields only) and fails unless each is
// applied.
func (d *insiderTablet) push(t *testing.T, recs []schema.Record, only map[string]bool) {
	t.Helper()
	req := wire.PushRequest{Versions: wire.Current(), Clock: d.clock.Now()}
	for _, rec := range recs {
		obj := map[string]json.RawMessage{}
		for _, f := range rec.Fields() {
			if only == nil || only[f.Name] {
				obj[f.Name], _ = f.MarshalJSON()
			}
		}
		fields, _ := json.Marshal(obj)
		d.seq++
		req.Mutations = append(req.Mutations, wire.Mutation{Seq: d.seq, Kind: rec.Kind(), ID: rec.RecordID(), Version: d.clock.Now(), Fields: fields})
	}
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequest("POST", d.base+"/v1/sync/push", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr wire.PushResponse
	json.NewDecoder(resp.Body).Decode(&pr)
	for _, res := range pr.Results {
		if res.Status != wire.Applied {
			t.Fatalf("insider push: %+v %v", res, res.Error)
		}
	}
}

func (d *insiderTablet) contact(at time.Time, gender string) *schema.Contact {
	return &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: d.unit, DeviceID: d.device, StaffID: d.staff, OccurredAt: at},
		Gender: schema.Gender(gender), AgeBand: schema.Age30to39, Setting: schema.SettingStreet, AreaCode: d.area}
}

// TestDisclosureRecordingInsider: a manager who can record on a tablet of
// their own unit, and reads the region's reports, adds records of their
// own to a past month, one at a time, voiding each before the next. Each
// new record changes the records of the month's cells; were a cell's noise
// drawn from its records' key, every pull would show a new draw of a true
// count the manager knows up to the other organisations' part, and the
// draws' preimages would intersect down to that part. A cell's noise is
// fixed when it is first published, so every pull shows the same draw
// moved by the manager's own change; the other organisations' part must
// not be pinned, and the bounds must hold the truth.
//
// It makes 30 draws under -short and 60 otherwise;
// BRYGGA_ATTACK_DRAWS sets another number, and BRYGGA_ATTACK_SEEDS a
// comma-separated list of the regions' seeds (3 by default).
func TestDisclosureRecordingInsider(t *testing.T) {
	draws := 60
	if testing.Short() {
		draws = 30
	}
	if v := os.Getenv("BRYGGA_ATTACK_DRAWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BRYGGA_ATTACK_DRAWS=%q: want a positive number", v)
		}
		draws = n
	}
	seeds := []uint64{3}
	if v := os.Getenv("BRYGGA_ATTACK_SEEDS"); v != "" {
		seeds = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("BRYGGA_ATTACK_SEEDS=%q: want numbers", v)
			}
			seeds = append(seeds, n)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) { recordingInsider(t, seed, draws) })
	}
}

func recordingInsider(t *testing.T, seed uint64, maxDraws int) {
	r := newAttackRegion(t, seed, true)
	own := r.orgs[0]
	var ownUnit attackRegionUnit
	for _, u := range r.units {
		if u.org == own {
			ownUnit = u
			break
		}
	}
	// The target: a month's gender cell whose other organisations' part
	// is from 1 to k-1. The manager knows their own part exactly; the
	// test takes the month with the smallest non-zero others' part of
	// "other".
	others := map[string]int{}
	mine := map[string]int{}
	for _, f := range r.facts {
		if f.indicator != "contacts" || f.gender != "other" {
			continue
		}
		m := dayDate(f.day).Format("2006-01")
		if r.units[f.unit].org == own {
			mine[m]++
		} else {
			others[m]++
		}
	}
	month := ""
	for m, n := range others {
		if n >= 1 && n < disclosureK && (month == "" || m < month) {
			month = m
		}
	}
	if month == "" {
		t.Fatal("the region has no month with a small count of gender other in the other organisations")
	}
	a, _, _ := periodDays(month)
	at := time.Date(dayDate(a).Year(), dayDate(a).Month(), 10, 12, 0, 0, 0, attackZone)
	tab := enrolInsider(t, r, ownUnit)
	// Enough records of their own that the cell is above k+1, where the
	// table's noise is five-valued.
	base := make([]schema.Record, disclosureK+3)
	for i := range base {
		base[i] = tab.contact(at, "other")
	}
	tab.push(t, base, nil)
	known := float64(mine[month] + len(base) + 1)
	lo, hi := 0.0, solverInf
	draws := 0
	var seen []int64
	status, revised := "", 0
	year := strconv.Itoa(dayDate(a).Year())
	for ; draws < maxDraws && hi > lo; draws++ {
		c := tab.contact(at, "other")
		tab.push(t, []schema.Record{c}, nil)
		var rep struct {
			Rows []struct {
				Period     string `json:"period"`
				Status     string `json:"status"`
				Group      string `json:"group"`
				Indicators map[string]struct {
					Value    *int64 `json:"value"`
					Withheld bool   `json:"withheld"`
					Revised  bool   `json:"revised"`
				} `json:"indicators"`
			} `json:"rows"`
		}
		q := url.Values{"year": {year}, "period": {"month"}, "by": {"gender"}}
		if st := attackGet(t, r.base, "/v1/reports/indicators?"+q.Encode(), r.authority, &rep); st != 200 {
			t.Fatalf("report: %d", st)
		}
		for _, row := range rep.Rows {
			if row.Period != month || row.Group != "other" {
				continue
			}
			status = row.Status
			if row.Indicators["contacts"].Revised {
				revised++
			}
			if c := row.Indicators["contacts"]; c.Value != nil {
				seen = append(seen, *c.Value)
				plo, phi := preimage(*c.Value, disclosureK)
				lo, hi = max(lo, plo-known), min(hi, phi-known)
			}
		}
		c.Voided = true
		tab.push(t, []schema.Record{c}, nil)
	}
	truth := float64(others[month])
	t.Logf("published: %v (own part %g); the month is %s, the cell revised in %d of %d pulls", seen, known, status, revised, draws)
	t.Logf("%s gender=other, other organisations' part %g: after %d draws the insider knows it is in [%g, %g]", month, truth, draws, lo, hi)
	if lo > truth || hi < truth {
		t.Errorf("the bounds exclude the truth")
	}
	if lo == hi {
		t.Errorf("pinned: %s gender=other in the other organisations is %g, learnt by a manager from %d reports each after one record of their own was added and voided", month, truth, draws)
	}
}

// TestDisclosureSteppingInsider: a manager steps a cell's count up with
// records of their own, one at a time from their organisation's part
// upwards, pulling the report after each, then voids them one at a time,
// pulling again: every count of the cell from their part to k+8 above it,
// each seen twice, across the month's publications. The cell is a past
// month's gender "other", whose other organisations' part is from 1 to
// k-1. From the sequence of values the manager must not be able to tell
// the others' part: for every key of the key space, the parts that key
// gives the same sequence for are collected, and there must be more than
// one, the truth among them.
func TestDisclosureSteppingInsider(t *testing.T) {
	r := newAttackRegion(t, 3, true)
	own := r.orgs[0]
	var ownUnit attackRegionUnit
	for _, u := range r.units {
		if u.org == own {
			ownUnit = u
			break
		}
	}
	others, mine := map[string]int{}, map[string]int{}
	for _, f := range r.facts {
		if f.indicator != "contacts" || f.gender != "other" {
			continue
		}
		m := dayDate(f.day).Format("2006-01")
		if r.units[f.unit].org == own {
			mine[m]++
		} else {
			others[m]++
		}
	}
	month := ""
	for m, n := range others {
		if n >= 1 && n < disclosureK && (month == "" || m < month) {
			month = m
		}
	}
	if month == "" {
		t.Fatal("the region has no month with a small count of gender other in the other organisations")
	}
	a, _, _ := periodDays(month)
	at := time.Date(dayDate(a).Year(), dayDate(a).Month(), 10, 12, 0, 0, 0, attackZone)
	year := strconv.Itoa(dayDate(a).Year())
	tab := enrolInsider(t, r, ownUnit)
	read := func() *int64 {
		var rep struct {
			Rows []struct {
				Period     string `json:"period"`
				Group      string `json:"group"`
				Indicators map[string]struct {
					Value *int64 `json:"value"`
				} `json:"indicators"`
			} `json:"rows"`
		}
		q := url.Values{"year": {year}, "period": {"month"}, "by": {"gender"}}
		if st := attackGet(t, r.base, "/v1/reports/indicators?"+q.Encode(), r.authority, &rep); st != 200 {
			t.Fatalf("report: %d", st)
		}
		for _, row := range rep.Rows {
			if row.Period == month && row.Group == "other" {
				return row.Indicators["contacts"].Value
			}
		}
		t.Fatalf("no row %s other", month)
		return nil
	}
	type seen struct{ own, value int64 }
	var obs []seen
	look := func(own int64) {
		if v := read(); v != nil {
			obs = append(obs, seen{own, *v})
		}
	}
	steps := disclosureK + 8
	var added []*schema.Contact
	look(int64(mine[month]))
	for i := range steps {
		c := tab.contact(at, "other")
		tab.push(t, []schema.Record{c}, nil)
		added = append(added, c)
		look(int64(mine[month] + i + 1))
	}
	for i := len(added) - 1; i >= 0; i-- {
		added[i].Voided = true
		tab.push(t, []schema.Record{added[i]}, nil)
		look(int64(mine[month] + i))
	}
	// Every key of the key space, by millionths (each behaves as every
	// key of its millionth): which parts give the sequence seen.
	parts := map[int64]bool{}
	for pm := range 1_000_000 {
		key := uint32((uint64(pm)<<32 + 999_999) / 1_000_000)
		for x := int64(0); x <= disclosureK+6; x++ {
			fits := true
			for _, o := range obs {
				if stats.Perturb(x+o.own, key, disclosureK) != o.value {
					fits = false
					break
				}
			}
			if fits {
				parts[x] = true
			}
		}
	}
	truth := int64(others[month])
	t.Logf("%s gender=other: %d values seen (%v); the others' part is %d, and the sequence fits the parts %v", month, len(obs), obs, truth, parts)
	if !parts[truth] {
		t.Errorf("the truth %d does not fit what was published", truth)
	}
	if len(parts) < 2 {
		t.Errorf("pinned: the others' part of %s gender=other is %d, learnt by a manager stepping the cell with records of their own", month, truth)
	}
}
