package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// attackZone is the zone the API cuts days in.
var attackZone = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic(err)
	}
	return loc
}()

// dayNumber numbers a calendar date: days since 1970-01-01.
func dayNumber(y int, m time.Month, d int) int {
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// dayDate returns the date of a day number, as midnight UTC.
func dayDate(day int) time.Time { return time.Unix(int64(day)*86400, 0).UTC() }

// attackRegion is a served region with records synced through the API, and the
// test's own count of them: what the attacker tries to learn.
type attackRegion struct {
	srv  *server.Server
	base string
	now  time.Time
	// first and end bound the days records fall on: [first, end).
	first, end int
	orgs       []uuid.UUID
	units      []attackRegionUnit
	// facts are the records counted, one a record.
	facts []attackFact
	// authority and manager log in as the regional authority and as the
	// manager of orgs[0].
	authority, manager string
}

type attackRegionUnit struct {
	id, org, staff uuid.UUID
	area           string
}

// attackFact is one counted record: the kind of figure it adds one to, when
// (day number, Stockholm) and where, and its client's gender and age band.
type attackFact struct {
	indicator   string // contacts, referrals, naloxone_handouts, referrals.<service>
	day         int
	unit        int
	gender, age string
}

// attackSpan is the days of a region's records: sixteen months across a
// new year for the full attack, four and a half months of one year under
// -short. Both take in month and quarter ends and ISO weeks across them.
func attackSpan(short bool) (first, end int, now time.Time) {
	if short {
		return dayNumber(2026, 1, 12), dayNumber(2026, 6, 1), time.Date(2026, 6, 20, 10, 0, 0, 0, time.UTC)
	}
	return dayNumber(2025, 10, 1), dayNumber(2027, 2, 1), time.Date(2027, 2, 20, 10, 0, 0, 0, time.UTC)
}

// newAttackRegion serves a region of three organisations, six units in four
// municipalities, with about rate contacts a unit a day over its span, and
// their referrals and naloxone: counts small enough that every breakdown
// of every period kind has cells of 1 to 4. Genders and age bands are
// skewed as in the field, so some are always rare. Besides the random
// contacts, every month's last and first day, and so every quarter's and
// year's, has a contact of a rare gender and age band at one unit.
func newAttackRegion(t *testing.T, seed uint64, short bool) *attackRegion {
	t.Helper()
	ctx := context.Background()
	first, end, now := attackSpan(short)
	r := &attackRegion{first: first, end: end, now: now}
	srv, err := server.Open(ctx, server.Config{DBPath: testDB(t), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown(ctx)
		srv.Close()
	})
	r.srv, r.base = srv, "http://"+ln.Addr().String()

	names := []string{"Östersunds kommun", "Krokoms kommun", "Region Jämtland Härjedalen"}
	kinds := []schema.OrgKind{schema.OrgMunicipality, schema.OrgMunicipality, schema.OrgRegion}
	for i, n := range names {
		o, err := srv.AddOrganisation(ctx, kinds[i], n, "23")
		if err != nil {
			t.Fatal(err)
		}
		r.orgs = append(r.orgs, o.ID)
	}
	for i, u := range []struct {
		org  int
		area string
	}{{0, "2380"}, {0, "2380"}, {1, "2309"}, {2, "2380"}, {2, "2321"}, {2, "2361"}} {
		unit, err := srv.AddUnit(ctx, r.orgs[u.org], "Enhet "+string(rune('A'+i)), u.area, schema.ServiceAddictionClinic)
		if err != nil {
			t.Fatal(err)
		}
		st, err := srv.AddStaff(ctx, unit.ID, schema.RoleNurse)
		if err != nil {
			t.Fatal(err)
		}
		r.units = append(r.units, attackRegionUnit{id: unit.ID, org: r.orgs[u.org], staff: st.ID, area: u.area})
	}
	r.authority = attackLogin(t, srv, r.base, "uppfoljning", server.RoleAuthority, r.orgs[2], uuid.Nil)
	r.manager = attackLogin(t, srv, r.base, "chef.ostersund", server.RoleManager, r.orgs[0], uuid.Nil)

	rng := rand.New(rand.NewPCG(seed, 11))
	genders := attackWeights{{"woman", 35}, {"man", 55}, {"other", 4}, {"not_stated", 6}}
	ages := attackWeights{{"under_18", 2}, {"18_24", 14}, {"25_29", 20}, {"30_39", 30}, {"40_49", 18}, {"50_64", 12}, {"65_plus", 2}, {"not_stated", 2}}
	services := attackWeights{{"addiction_clinic", 30}, {"social_services", 25}, {"infection_clinic", 15}, {"opioid_substitution", 10},
		{"youth_clinic", 5}, {"housing", 8}, {"dental", 4}, {"psychiatry", 3}}
	recs := make([][]schema.Record, len(r.units))
	contact := func(day, unit int, gender, age string) {
		u := r.units[unit]
		d := dayDate(day)
		at := time.Date(d.Year(), d.Month(), d.Day(), 8+rng.IntN(12), rng.IntN(60), 0, 0, attackZone)
		h := func() schema.Header {
			return schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, StaffID: u.staff, OccurredAt: at}
		}
		c := &schema.Contact{Header: h(), Gender: schema.Gender(gender), AgeBand: schema.AgeBand(age), Setting: schema.SettingStreet, AreaCode: u.area}
		recs[unit] = append(recs[unit], c)
		r.facts = append(r.facts, attackFact{"contacts", day, unit, gender, age})
		if rng.IntN(4) == 0 {
			s := services.pick(rng)
			to := r.units[(unit+1+rng.IntN(len(r.units)-1))%len(r.units)]
			recs[unit] = append(recs[unit], &schema.Referral{Header: h(), ContactID: c.ID, Service: schema.ServiceCategory(s),
				ToUnitID: to.id, Status: schema.StatusSent})
			r.facts = append(r.facts, attackFact{"referrals", day, unit, gender, age}, attackFact{"referrals." + s, day, unit, gender, age})
		}
		if rng.IntN(6) == 0 {
			recs[unit] = append(recs[unit], &schema.NaloxoneHandout{Header: h(), ContactID: c.ID, Doses: 1 + rng.IntN(2), Reason: schema.NaloxoneFirstKit})
			r.facts = append(r.facts, attackFact{"naloxone_handouts", day, unit, gender, age})
		}
	}
	rate := 0.35
	for day := first; day < end; day++ {
		for unit := range r.units {
			// A Poisson count of mean rate, as a sum of Bernoulli trials.
			for range 4 {
				if rng.Float64() < rate/4 {
					contact(day, unit, genders.pick(rng), ages.pick(rng))
				}
			}
		}
		if d := dayDate(day); d.Day() == 1 && day > first {
			u := rng.IntN(len(r.units))
			contact(day-1, u, "other", "65_plus")
			contact(day, u, "not_stated", "under_18")
		}
	}
	for i, u := range r.units {
		attackPush(t, srv, r.base, r.now, u.id, u.staff, recs[i])
	}
	return r
}

// attackWeights is a distribution of codes.
type attackWeights []struct {
	code   string
	weight int
}

func (w attackWeights) pick(rng *rand.Rand) string {
	total := 0
	for _, c := range w {
		total += c.weight
	}
	n := rng.IntN(total)
	for _, c := range w {
		if n < c.weight {
			return c.code
		}
		n -= c.weight
	}
	return w[len(w)-1].code
}

// attackLogin adds a user and returns an access token of theirs.
func attackLogin(t *testing.T, srv *server.Server, base, username string, role server.Role, org, unit uuid.UUID) string {
	t.Helper()
	const password = "ett långt lösenord"
	if _, err := srv.AddUser(context.Background(), username, password, role, org, unit); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	resp, err := http.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("login %s: status %d %v", username, resp.StatusCode, err)
	}
	return out.AccessToken
}

// attackPush enrols a device of unit and pushes recs through the sync
// endpoint, a full batch at a time, and fails unless every one is applied.
func attackPush(t *testing.T, srv *server.Server, base string, now time.Time, unit, staff uuid.UUID, recs []schema.Record) {
	t.Helper()
	ctx := context.Background()
	code, err := srv.NewEnrolCode(ctx, unit, "test")
	if err != nil {
		t.Fatal(err)
	}
	e, err := enrolIn(ctx, t, srv, code.Code, newKey(t), now)
	if err != nil {
		t.Fatal(err)
	}
	clock := hlc.NewClock(nil, 0)
	seq := int64(0)
	for start := 0; start < len(recs); start += wire.MaxMutations {
		req := wire.PushRequest{Versions: wire.Current(), Clock: clock.Now()}
		for _, rec := range recs[start:min(start+wire.MaxMutations, len(recs))] {
			h := schema.HeaderOf(rec)
			h.UnitID, h.DeviceID, h.StaffID = unit, e.DeviceID, staff
			obj := map[string]json.RawMessage{}
			for _, f := range rec.Fields() {
				obj[f.Name], _ = f.MarshalJSON()
			}
			fields, _ := json.Marshal(obj)
			seq++
			req.Mutations = append(req.Mutations, wire.Mutation{Seq: seq, Kind: rec.Kind(), ID: rec.RecordID(), Version: clock.Now(), Fields: fields})
		}
		body, _ := json.Marshal(req)
		hr, _ := http.NewRequest("POST", base+"/v1/sync/push", bytes.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", "Bearer "+e.AccessToken)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		var pr wire.PushResponse
		err = json.NewDecoder(resp.Body).Decode(&pr)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("push: status %d %v", resp.StatusCode, err)
		}
		for _, res := range pr.Results {
			if res.Status != wire.Applied {
				t.Fatalf("push: %+v %v", res, res.Error)
			}
		}
	}
}

// attackGet fetches path with token and decodes JSON into out, or returns the
// body raw if out is a *[]byte. It returns the status.
func attackGet(t *testing.T, base, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode
	}
	if b, ok := out.(*[]byte); ok {
		*b = buf.Bytes()
		return resp.StatusCode
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, strings.TrimSpace(buf.String())[:min(200, buf.Len())])
	}
	return resp.StatusCode
}
