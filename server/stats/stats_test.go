package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

var now = time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)

type unitDef struct {
	id, org uuid.UUID
	area    string
	staff   uuid.UUID
	device  uuid.UUID
}

// dataset is a region with synced records, and the test's own model of
// what every record finally says.
type dataset struct {
	store    *backend   // the first of backends
	backends []*backend // the servers every push goes to, alike
	units    []unitDef
	contacts map[uuid.UUID]*schema.Contact
	exch     map[uuid.UUID]*schema.SyringeExchange
	nalox    map[uuid.UUID]*schema.NaloxoneHandout
	revs     map[uuid.UUID]*schema.Reversal
	refs     map[uuid.UUID]*schema.Referral
	// walks holds each referral's statuses in the order they were
	// written, the first at its creation.
	walks map[uuid.UUID][]schema.ReferralStatus
	// The records in the order they were made, to pick from.
	contactList []*schema.Contact
	exchList    []*schema.SyringeExchange
	naloxList   []*schema.NaloxoneHandout
	revList     []*schema.Reversal
	refList     []*schema.Referral

	codes   []schema.ClientCode
	clock   *hlc.Clock
	seqs    map[uuid.UUID]int64 // each device's last mutation number
	pending map[uuid.UUID][]wire.Mutation
}

func fields(rec schema.Record, only ...string) json.RawMessage {
	obj := map[string]json.RawMessage{}
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	for _, f := range rec.Fields() {
		if len(only) == 0 || want[f.Name] {
			obj[f.Name], _ = f.MarshalJSON()
		}
	}
	b, _ := json.Marshal(obj)
	return b
}

// queue adds a device's write of rec (its fields only, or all) to the
// next push.
func (d *dataset) queue(u unitDef, rec schema.Record, only ...string) {
	d.seqs[u.device]++
	d.pending[u.device] = append(d.pending[u.device], wire.Mutation{Seq: d.seqs[u.device], Kind: rec.Kind(), ID: rec.RecordID(),
		Version: d.clock.Now(), Fields: fields(rec, only...)})
}

// push pushes the queued writes to every backend, device by device, and
// fails unless every one is applied.
func (d *dataset) push(t testing.TB) {
	ctx := context.Background()
	for _, b := range d.backends {
		for dev, ms := range d.pending {
			for i := 0; i < len(ms); i += 1000 {
				resp, err := b.sync.Push(ctx, dev, &wire.PushRequest{Versions: wire.Current(), Mutations: ms[i:min(i+1000, len(ms))]})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range resp.Results {
					if r.Status != wire.Applied {
						t.Fatalf("%s: mutation %d: %s %v", b.name, r.Seq, r.Status, r.Error)
					}
				}
			}
		}
	}
	clear(d.pending)
}

// newDataset makes n contacts with their exchanges, naloxone, reversals
// and referrals over 2026, then corrects and voids some of them, all
// through the sync engine's push.
func newDataset(t testing.TB, seed uint64, n int) *dataset {
	return newDatasetOn(t, []engine{sqliteEngine}, seed, n)
}

// newDatasetOn makes newDataset's dataset on a server of each engine.
func newDatasetOn(t testing.TB, engines []engine, seed uint64, n int) *dataset {
	return newRegionOn(t, engines, seed, n, 3, []regionUnit{{0, "2380"}, {0, "2380"}, {1, "2309"}, {2, "2380"}, {2, "2321"}})
}

// regionUnit is a unit of a region: its organisation, by number, and its
// municipality.
type regionUnit struct {
	org  int
	area string
}

// newRegion makes a dataset as newDataset does, in a region of orgs
// organisations and the units given.
func newRegion(t testing.TB, seed uint64, n, orgCount int, units []regionUnit) *dataset {
	return newRegionOn(t, []engine{sqliteEngine}, seed, n, orgCount, units)
}

// newRegionOn makes newRegion's dataset on a server of each engine.
func newRegionOn(t testing.TB, engines []engine, seed uint64, n, orgCount int, units []regionUnit) *dataset {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	d := &dataset{contacts: map[uuid.UUID]*schema.Contact{}, exch: map[uuid.UUID]*schema.SyringeExchange{},
		nalox: map[uuid.UUID]*schema.NaloxoneHandout{}, revs: map[uuid.UUID]*schema.Reversal{}, refs: map[uuid.UUID]*schema.Referral{},
		walks: map[uuid.UUID][]schema.ReferralStatus{}, clock: hlc.NewClock(func() time.Time { return now }, 0),
		seqs: map[uuid.UUID]int64{}, pending: map[uuid.UUID][]wire.Mutation{}}
	for _, e := range engines {
		d.backends = append(d.backends, e.open(t))
	}
	d.store = d.backends[0]
	orgs := []*schema.Organisation{
		{ID: uuid.Must(uuid.NewV7()), OrgKind: schema.OrgMunicipality, Name: "Östersunds kommun", RegionCode: "23", Active: true},
		{ID: uuid.Must(uuid.NewV7()), OrgKind: schema.OrgMunicipality, Name: "Krokoms kommun", RegionCode: "23", Active: true},
		{ID: uuid.Must(uuid.NewV7()), OrgKind: schema.OrgRegion, Name: "Region Jämtland Härjedalen", RegionCode: "23", Active: true},
	}
	for i := len(orgs); i < orgCount; i++ {
		orgs = append(orgs, &schema.Organisation{ID: uuid.Must(uuid.NewV7()), OrgKind: schema.OrgNGO, Name: fmt.Sprintf("Förening %d", i), RegionCode: "23", Active: true})
	}
	orgs = orgs[:orgCount]
	var refs []schema.Record
	for _, o := range orgs {
		refs = append(refs, o)
	}
	for i, u := range units {
		def := unitDef{id: uuid.Must(uuid.NewV7()), org: orgs[u.org].ID, area: u.area, staff: uuid.Must(uuid.NewV7()), device: uuid.Must(uuid.NewV7())}
		d.units = append(d.units, def)
		refs = append(refs, &schema.Unit{ID: def.id, OrgID: def.org, Name: fmt.Sprintf("Enhet %d", i), AreaCode: u.area, Active: true},
			&schema.Staff{ID: def.staff, UnitID: def.id, Role: schema.RoleNurse, Active: true})
	}
	for _, b := range d.backends {
		if err := b.sync.PutReference(ctx, refs...); err != nil {
			t.Fatal(err)
		}
		for _, u := range d.units {
			b.enrol(t, u.device, u.id)
		}
	}
	d.codes = make([]schema.ClientCode, 12)
	for i := range d.codes {
		d.codes[i], _ = schema.NewClientCode(rngReader{rng})
	}
	for range n {
		d.visit(rng)
	}
	// Corrections and voids, as devices send them later, in the order the
	// records were made so that a seed always gives the same data.
	for _, c := range d.contactList {
		u := d.unit(c.UnitID)
		switch rng.IntN(10) {
		case 0:
			c.Voided = true
			d.queue(u, c, "voided")
		case 1:
			c.Gender = schema.GenderOther
			d.queue(u, c, "gender")
		}
	}
	for _, x := range d.exchList {
		if rng.IntN(10) == 0 {
			x.SyringesOut += 5
			d.queue(d.unit(x.UnitID), x, "syringes_out")
		} else if rng.IntN(15) == 0 {
			x.Voided = true
			d.queue(d.unit(x.UnitID), x, "voided")
		}
	}
	d.push(t)
	return d
}

// visit queues a contact at a random time of 2026 with, now and then, an
// exchange, naloxone, a reversal and a referral.
func (d *dataset) visit(rng *rand.Rand) {
	genders, ages := schema.GenderEnum.Codes(), schema.AgeBandEnum.Codes()
	services := schema.ServiceCategoryEnum.Codes()
	u := d.units[rng.IntN(len(d.units))]
	at := randomTime(rng)
	h := func() schema.Header {
		return schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: u.id, DeviceID: u.device, StaffID: u.staff, OccurredAt: at}
	}
	c := &schema.Contact{Header: h(), Gender: schema.Gender(genders[rng.IntN(len(genders))]), AgeBand: schema.AgeBand(ages[rng.IntN(len(ages))]),
		AreaCode: u.area}
	c.Setting = settingOf(c) // no random number drawn: each seed keeps giving the same records
	if rng.IntN(3) > 0 {
		c.ClientCode = d.codes[rng.IntN(len(d.codes))]
	}
	d.contacts[c.ID] = c
	d.contactList = append(d.contactList, c)
	d.queue(u, c)
	if rng.IntN(2) == 0 {
		x := &schema.SyringeExchange{Header: h(), ContactID: c.ID, SyringesOut: rng.IntN(40), NeedlesOut: rng.IntN(40), SyringesReturned: 1 + rng.IntN(30)}
		d.exch[x.ID] = x
		d.exchList = append(d.exchList, x)
		d.queue(u, x)
	}
	if rng.IntN(5) == 0 {
		x := &schema.NaloxoneHandout{Header: h(), ContactID: c.ID, Doses: 1 + rng.IntN(4), Reason: schema.NaloxoneFirstKit}
		d.nalox[x.ID] = x
		d.naloxList = append(d.naloxList, x)
		d.queue(u, x)
	}
	if rng.IntN(12) == 0 {
		x := &schema.Reversal{Header: h(), NaloxoneUsed: true, DosesUsed: 1, Outcome: schema.OutcomeRecovered}
		if rng.IntN(2) == 0 {
			x.ContactID = c.ID
		}
		d.revs[x.ID] = x
		d.revList = append(d.revList, x)
		d.queue(u, x)
	}
	if rng.IntN(6) == 0 {
		other := d.units[(indexOf(d.units, u)+1+rng.IntN(len(d.units)-1))%len(d.units)]
		walk := lifecycle(rng)
		x := &schema.Referral{Header: h(), Service: schema.ServiceCategory(services[rng.IntN(len(services))]), ToUnitID: other.id,
			Status: walk[0]}
		if rng.IntN(2) == 0 {
			x.ContactID = c.ID
		}
		d.refs[x.ID] = x
		d.refList = append(d.refList, x)
		d.walks[x.ID] = walk
		d.queue(u, x)
		for _, st := range walk[1:] {
			x.Status = st
			d.queue(u, x, "status", "reopened")
		}
	}
}

// settingOf returns a setting for c that follows from its gender and age
// band, so that a contact's setting changes when they do.
func settingOf(c *schema.Contact) schema.Setting {
	settings := schema.SettingEnum.Codes()
	n := len(c.Gender) + 3*len(c.AgeBand)
	return schema.Setting(settings[n%len(settings)])
}

// randomTime returns a time in the first 360 days of 2026 (UTC).
func randomTime(rng *rand.Rand) time.Time {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return start.Add(time.Duration(rng.Int64N(int64(360 * 24 * time.Hour)))).Truncate(time.Millisecond)
}

// mutate pushes about n more writes as devices send them: new visits, and
// corrections, voids and un-voids of every kind of record, moves to other
// days and months, new client codes, genders, age bands and settings of
// contacts (which their exchanges and handouts take on), and referrals
// moving on to attended.
func (d *dataset) mutate(t testing.TB, rng *rand.Rand, n int) {
	genders, ages := schema.GenderEnum.Codes(), schema.AgeBandEnum.Codes()
	services := schema.ServiceCategoryEnum.Codes()
	queued := func() int {
		m := 0
		for _, ms := range d.pending {
			m += len(ms)
		}
		return m
	}
	for queued() < n {
		switch rng.IntN(12) {
		case 0, 1:
			d.visit(rng)
		case 2:
			c := d.contactList[rng.IntN(len(d.contactList))]
			c.Voided = !c.Voided
			d.queue(d.unit(c.UnitID), c, "voided")
		case 3:
			c := d.contactList[rng.IntN(len(d.contactList))]
			if rng.IntN(3) == 0 { // where it took place, alone
				settings := schema.SettingEnum.Codes()
				c.Setting = schema.Setting(settings[rng.IntN(len(settings))])
				d.queue(d.unit(c.UnitID), c, "setting")
				continue
			}
			c.Gender = schema.Gender(genders[rng.IntN(len(genders))])
			c.AgeBand = schema.AgeBand(ages[rng.IntN(len(ages))])
			c.Setting = settingOf(c)
			d.queue(d.unit(c.UnitID), c, "gender", "age_band", "setting")
		case 4:
			c := d.contactList[rng.IntN(len(d.contactList))]
			c.ClientCode = d.codes[rng.IntN(len(d.codes))]
			d.queue(d.unit(c.UnitID), c, "client_code")
		case 5:
			c := d.contactList[rng.IntN(len(d.contactList))]
			c.OccurredAt = randomTime(rng)
			d.queue(d.unit(c.UnitID), c, "occurred_at")
		case 6:
			if len(d.exchList) == 0 {
				continue
			}
			x := d.exchList[rng.IntN(len(d.exchList))]
			switch rng.IntN(3) {
			case 0:
				x.SyringesOut, x.SyringesReturned = rng.IntN(40), 1+rng.IntN(30)
				d.queue(d.unit(x.UnitID), x, "syringes_out", "syringes_returned")
			case 1:
				x.Voided = !x.Voided
				d.queue(d.unit(x.UnitID), x, "voided")
			case 2:
				x.OccurredAt = randomTime(rng)
				d.queue(d.unit(x.UnitID), x, "occurred_at")
			}
		case 7:
			if len(d.naloxList) == 0 {
				continue
			}
			x := d.naloxList[rng.IntN(len(d.naloxList))]
			if rng.IntN(2) == 0 {
				x.Doses = 1 + rng.IntN(4)
				d.queue(d.unit(x.UnitID), x, "doses")
			} else {
				x.Voided = !x.Voided
				d.queue(d.unit(x.UnitID), x, "voided")
			}
		case 8:
			if len(d.revList) == 0 {
				continue
			}
			x := d.revList[rng.IntN(len(d.revList))]
			x.Voided = !x.Voided
			d.queue(d.unit(x.UnitID), x, "voided")
		case 9:
			if len(d.refList) == 0 {
				continue
			}
			x := d.refList[rng.IntN(len(d.refList))]
			if rng.IntN(2) == 0 {
				x.Voided = !x.Voided
				d.queue(d.unit(x.UnitID), x, "voided")
			} else {
				x.Service = schema.ServiceCategory(services[rng.IntN(len(services))])
				d.queue(d.unit(x.UnitID), x, "service")
			}
		case 10:
			if len(d.refList) == 0 {
				continue
			}
			x := d.refList[rng.IntN(len(d.refList))]
			walk := d.walks[x.ID]
			if next := nextStatuses(walk[len(walk)-1]); len(next) > 0 {
				x.Status = next[rng.IntN(len(next))]
				d.walks[x.ID] = append(walk, x.Status)
				d.queue(d.unit(x.UnitID), x, "status", "reopened")
			}
		case 11:
			if len(d.exchList) == 0 {
				continue
			}
			// An exchange's contact voided: the exchange drops out with
			// it, and comes back if it is un-voided.
			x := d.exchList[rng.IntN(len(d.exchList))]
			c := d.contacts[x.ContactID]
			c.Voided = true
			d.queue(d.unit(c.UnitID), c, "voided")
		}
	}
	d.push(t)
}

// lifecycle returns the statuses a referral goes through: any status but
// closed when it is recorded, then now and then one of higher rank, closed
// only after attended, which is all a status may be followed by without a
// reopening.
func lifecycle(rng *rand.Rand) []schema.ReferralStatus {
	statuses := schema.ReferralStatusEnum.Codes()
	first := schema.ReferralStatus(statuses[rng.IntN(len(statuses)-1)])
	walk := []schema.ReferralStatus{first}
	for rng.IntN(3) > 0 {
		next := nextStatuses(walk[len(walk)-1])
		if len(next) == 0 {
			break
		}
		walk = append(walk, next[rng.IntN(len(next))])
	}
	return walk
}

// nextStatuses returns the statuses that may follow cur without a
// reopening: those of higher rank, closed only after attended.
func nextStatuses(cur schema.ReferralStatus) []schema.ReferralStatus {
	var next []schema.ReferralStatus
	for _, c := range schema.ReferralStatusEnum.Codes() {
		if s := schema.ReferralStatus(c); s.Rank() > cur.Rank() && (s != schema.StatusClosed || cur.Closes()) {
			next = append(next, s)
		}
	}
	return next
}

// reachedAttended reports whether a referral that went through walk
// reached attended.
func reachedAttended(walk []schema.ReferralStatus) bool {
	return slices.Contains(walk, schema.StatusAttended)
}

type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.UintN(256))
	}
	return len(p), nil
}

func indexOf(us []unitDef, u unitDef) int {
	for i := range us {
		if us[i].id == u.id {
			return i
		}
	}
	return -1
}

func (d *dataset) unit(id uuid.UUID) unitDef {
	for _, u := range d.units {
		if u.id == id {
			return u
		}
	}
	panic("no unit")
}

// expect computes the indicators from the test's model, independently of
// the package.
func (d *dataset) expect(q stats.Query) map[stats.Key]int64 {
	out := map[stats.Key]int64{}
	clients := map[stats.Key]map[schema.ClientCode]bool{}
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	bucket := func(t time.Time) string {
		t = t.In(loc)
		switch q.Period {
		case stats.Week:
			y, w := t.ISOWeek()
			return fmt.Sprintf("%d-W%02d", y, w)
		case stats.Quarter:
			return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())+2)/3)
		case stats.Year:
			return fmt.Sprint(t.Year())
		}
		return fmt.Sprintf("%d-%02d", t.Year(), int(t.Month()))
	}
	group := func(unit uuid.UUID, c *schema.Contact) string {
		u := d.unit(unit)
		g, a, s := "not_stated", "not_stated", stats.NoSetting
		if c != nil {
			g, a, s = string(c.Gender), string(c.AgeBand), string(c.Setting)
		}
		switch q.By {
		case stats.ByUnit:
			return u.id.String()
		case stats.ByMunicipality:
			return u.area
		case stats.ByOrganisation:
			return u.org.String()
		case stats.ByGender:
			return g
		case stats.ByAgeBand:
			return a
		case stats.BySetting:
			return s
		}
		return ""
	}
	count := func(at time.Time, unit uuid.UUID, c *schema.Contact, ind stats.Indicator, v int64) {
		if at.Before(q.From) || !at.Before(q.To) {
			return
		}
		p := bucket(at)
		out[stats.Key{Period: p, Group: "", Indicator: ind}] += v
		if q.By != stats.ByTotal {
			out[stats.Key{Period: p, Group: group(unit, c), Indicator: ind}] += v
		}
	}
	for _, c := range d.contacts {
		if c.Voided {
			continue
		}
		count(c.OccurredAt, c.UnitID, c, stats.Contacts, 1)
		if c.ClientCode != "" {
			for _, g := range []string{"", group(c.UnitID, c)} {
				if g != "" && q.By == stats.ByTotal || c.OccurredAt.Before(q.From) || !c.OccurredAt.Before(q.To) {
					continue
				}
				k := stats.Key{Period: bucket(c.OccurredAt), Group: g, Indicator: stats.UniqueClients}
				if clients[k] == nil {
					clients[k] = map[schema.ClientCode]bool{}
				}
				clients[k][c.ClientCode] = true
			}
		}
	}
	live := func(id uuid.UUID) *schema.Contact {
		if c := d.contacts[id]; c != nil && !c.Voided {
			return c
		}
		return nil
	}
	for _, x := range d.exch {
		if c := live(x.ContactID); c != nil && !x.Voided {
			count(x.OccurredAt, x.UnitID, c, stats.SyringesOut, int64(x.SyringesOut))
			count(x.OccurredAt, x.UnitID, c, stats.NeedlesOut, int64(x.NeedlesOut))
			count(x.OccurredAt, x.UnitID, c, stats.SyringesReturned, int64(x.SyringesReturned))
		}
	}
	for _, x := range d.nalox {
		if c := live(x.ContactID); c != nil && !x.Voided {
			count(x.OccurredAt, x.UnitID, c, stats.NaloxoneDoses, int64(x.Doses))
			count(x.OccurredAt, x.UnitID, c, stats.NaloxoneHandouts, 1)
		}
	}
	for _, x := range d.revs {
		c := live(x.ContactID)
		if x.Voided || x.ContactID != uuid.Nil && c == nil {
			continue
		}
		count(x.OccurredAt, x.UnitID, c, stats.Reversals, 1)
	}
	for _, x := range d.refs {
		c := live(x.ContactID)
		if x.Voided || x.ContactID != uuid.Nil && c == nil {
			continue
		}
		count(x.OccurredAt, x.UnitID, c, stats.Referrals, 1)
		count(x.OccurredAt, x.UnitID, c, stats.ReferralsTo(x.Service), 1)
		if reachedAttended(d.walks[x.ID]) {
			count(x.OccurredAt, x.UnitID, c, stats.ReferralsAttended, 1)
		}
	}
	for k, set := range clients {
		out[k] = int64(len(set))
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// stockholm is the zone the API cuts periods in.
var stockholm = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic(err)
	}
	return loc
}()

// zones are the zones the tests cut periods in: UTC, counted from the
// records themselves, and Europe/Stockholm, the API's, counted from the
// rollups.
var zones = []*time.Location{nil, stockholm}

func zoneName(loc *time.Location) string {
	if loc == nil {
		return "UTC"
	}
	return loc.String()
}

// compute computes q as the server does.
func (d *dataset) compute(t testing.TB, q stats.Query) *stats.Result {
	t.Helper()
	r, err := stats.Compute(context.Background(), d.store.db, q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// check compares the figures of got, the result of q, with the model's.
func (d *dataset) check(t testing.TB, q stats.Query, got *stats.Result) {
	t.Helper()
	want := d.expect(q)
	gotValues := map[stats.Key]int64{}
	for k, v := range got.Values {
		if v != 0 {
			gotValues[k] = v
		}
	}
	name := fmt.Sprintf("%s by %q in %s", q.Period, q.By, zoneName(q.Location))
	if len(gotValues) != len(want) {
		t.Errorf("%s: %d figures, want %d", name, len(gotValues), len(want))
	}
	bad := 0
	for k, v := range want {
		if gotValues[k] != v {
			if bad++; bad <= 10 {
				t.Errorf("%s: %+v = %d, want %d", name, k, gotValues[k], v)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d figures differ", name, bad)
	}
}

func TestIndicators(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { testIndicators(t, newDatasetOn(t, []engine{e}, 1, 1500)) })
	}
}

func testIndicators(t *testing.T, d *dataset) {
	for _, loc := range zones {
		for _, p := range []stats.Period{stats.Week, stats.Month, stats.Quarter, stats.Year} {
			for _, by := range []stats.Dim{stats.ByTotal, stats.ByUnit, stats.ByMunicipality, stats.ByOrganisation, stats.ByGender, stats.ByAgeBand, stats.BySetting} {
				q := stats.Query{From: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Period: p, By: by,
					Location: loc}
				d.check(t, q, d.compute(t, q))
			}
		}
	}
}

// TestReferralsAttended follows referrals along their lifecycle as the
// units move them on, one referral a month, and checks that referrals
// attended count a referral if and only if it reached attended. Closing a
// referral that was not attended is refused, so that a closed referral is
// known to have been attended.
func TestReferralsAttended(t *testing.T) {
	const (
		sent       = schema.StatusSent
		received   = schema.StatusReceived
		declined   = schema.StatusDeclined
		notReached = schema.StatusNotReached
		attended   = schema.StatusAttended
		closed     = schema.StatusClosed
	)
	walks := []struct {
		statuses []schema.ReferralStatus
		refused  bool // the last step is refused
	}{
		{[]schema.ReferralStatus{sent, received, attended}, false},
		{[]schema.ReferralStatus{sent, received, attended, closed}, false},
		{[]schema.ReferralStatus{sent, received, declined, closed}, true},
		{[]schema.ReferralStatus{sent, notReached, closed}, true},
		{[]schema.ReferralStatus{sent, closed}, true},
		{[]schema.ReferralStatus{sent, received, declined, attended}, false},
		{[]schema.ReferralStatus{sent, received, notReached}, false},
		{[]schema.ReferralStatus{attended}, false},
		{[]schema.ReferralStatus{closed}, true},
		{[]schema.ReferralStatus{sent, received, notReached, attended, closed}, false},
	}
	ctx := context.Background()
	d := newDataset(t, 1, 0)
	from, to := d.units[0], d.units[2]
	clock := hlc.NewClock(func() time.Time { return now }, 0)
	seqs := map[uuid.UUID]int64{}
	push := func(u unitDef, rec schema.Record, only ...string) wire.Result {
		seqs[u.device]++
		m := wire.Mutation{Seq: seqs[u.device], Kind: rec.Kind(), ID: rec.RecordID(), Version: clock.Now(), Fields: fields(rec, only...)}
		resp, err := d.store.sync.Push(ctx, u.device, &wire.PushRequest{Versions: wire.Current(), Mutations: []wire.Mutation{m}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Results[0]
	}
	ids := make([]uuid.UUID, len(walks))
	held := make([]bool, len(walks)) // whether the server holds the referral
	for i, w := range walks {
		at := time.Date(2026, time.Month(i+1), 15, 10, 0, 0, 0, time.UTC)
		x := &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: from.id, DeviceID: from.device, StaffID: from.staff, OccurredAt: at},
			Service: schema.ServiceHousing, ToUnitID: to.id, Status: w.statuses[0]}
		ids[i] = x.ID
		for j, st := range w.statuses {
			x.Status = st
			var r wire.Result
			if j == 0 {
				r = push(from, x)
			} else {
				r = push(to, x, "status", "reopened") // moved on by the receiving unit
			}
			last := j == len(w.statuses)-1
			switch {
			case last && w.refused:
				if r.Status != wire.Rejected || r.Error == nil || r.Error.Rule != schema.RuleTransition || r.Error.Field != "status" {
					t.Errorf("%v: closing got %s %v, want rejected with rule transition", w.statuses, r.Status, r.Error)
				}
			case r.Status != wire.Applied:
				t.Fatalf("%v: step %s: %s %v", w.statuses, st, r.Status, r.Error)
			default:
				held[i] = true
			}
		}
	}
	for _, loc := range zones {
		r := d.compute(t, stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Period: stats.Month, Location: loc})
		for i, w := range walks {
			month := fmt.Sprintf("2026-%02d", i+1)
			applied := w.statuses
			if w.refused {
				applied = applied[:len(applied)-1]
			}
			if !held[i] {
				if n := r.Value(month, "", stats.Referrals); n != 0 {
					t.Errorf("%v: a refused referral is counted", w.statuses)
				}
				continue
			}
			row, err := d.store.sync.Get(ctx, schema.KindReferral, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			if got := row.Record.(*schema.Referral).Status; got != applied[len(applied)-1] {
				t.Fatalf("%v: the record says %s, want %s", w.statuses, got, applied[len(applied)-1])
			}
			want := int64(0)
			if reachedAttended(applied) {
				want = 1
			}
			if got := r.Value(month, "", stats.ReferralsAttended); got != want {
				t.Errorf("%v: referrals attended = %d, want %d", w.statuses, got, want)
			}
			if n := r.Value(month, "", stats.Referrals); n != 1 {
				t.Errorf("%v: referrals = %d, want 1", w.statuses, n)
			}
		}
	}
}

// benchEvents returns the number of contacts benchmarks make:
// BRYGGA_BENCH_EVENTS, 20,000 by default.
func benchEvents() int {
	n := 20000
	if s := os.Getenv("BRYGGA_BENCH_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	return n
}

// BenchmarkIndicatorsYear computes a year's indicators over the records of
// benchEvents contacts with their exchanges, naloxone, reversals and
// referrals, as the API serves them: cut in Europe/Stockholm, counted from
// the rollups, each request checking first that they are up to date (they
// are: the one build, after the records arrived, is not measured but
// logged). calendar is 2026 by month (from=2026-01-01&to=2026-12-31);
// rolling is the API's default, the twelve months to a day in December,
// by unit, with part months at both ends; full_count is the calendar query
// cut in UTC, which Compute counts from the records, as every query was
// counted before the rollups; by_age_band and by_setting are the calendar
// query by the age band and by the setting of the contacts.
func BenchmarkIndicatorsYear(b *testing.B) {
	ctx := context.Background()
	d := newDataset(b, 1, benchEvents())
	start := time.Now()
	if err := stats.Refresh(ctx, d.store.db); err != nil {
		b.Fatal(err)
	}
	b.Logf("rollups of %d contacts built in %v", len(d.contacts), time.Since(start).Round(time.Millisecond))
	for _, c := range []struct {
		name string
		q    stats.Query
	}{
		{"calendar", stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, stockholm), To: time.Date(2027, 1, 1, 0, 0, 0, 0, stockholm),
			Period: stats.Month, Location: stockholm}},
		{"rolling", stats.Query{From: time.Date(2025, 12, 17, 0, 0, 0, 0, stockholm), To: time.Date(2026, 12, 17, 0, 0, 0, 0, stockholm),
			Period: stats.Month, By: stats.ByUnit, Location: stockholm}},
		{"full_count", stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			Period: stats.Month}},
		{"by_age_band", stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, stockholm), To: time.Date(2027, 1, 1, 0, 0, 0, 0, stockholm),
			Period: stats.Month, By: stats.ByAgeBand, Location: stockholm}},
		{"by_setting", stats.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, stockholm), To: time.Date(2027, 1, 1, 0, 0, 0, 0, stockholm),
			Period: stats.Month, By: stats.BySetting, Location: stockholm}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := stats.Compute(ctx, d.store.db, c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRefresh measures a refresh of the rollups after 1000 more
// mutations pushed to the records of benchEvents contacts: new visits,
// corrections and voids, of contacts too, which their exchanges and
// handouts follow. The pushes are not measured; push-ns/op is what they
// took, for comparison.
func BenchmarkRefresh(b *testing.B) {
	ctx := context.Background()
	d := newDataset(b, 1, benchEvents())
	if err := stats.Refresh(ctx, d.store.db); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 7))
	var pushing time.Duration
	for b.Loop() {
		b.StopTimer()
		start := time.Now()
		d.mutate(b, rng, 1000)
		pushing += time.Since(start)
		b.StartTimer()
		if err := stats.Refresh(ctx, d.store.db); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(pushing.Nanoseconds())/float64(b.N), "push-ns/op")
}
