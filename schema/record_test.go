package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

var (
	unitA = uuid.MustParse("0190f000-0000-7000-8000-00000000000a")
	unitB = uuid.MustParse("0190f000-0000-7000-8000-00000000000b")
	dev   = uuid.MustParse("0190f000-0000-7000-8000-0000000000d1")
	staff = uuid.MustParse("0190f000-0000-7000-8000-0000000000f1")
)

func header(t *testing.T) schema.Header {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return schema.Header{ID: id, UnitID: unitA, DeviceID: dev, StaffID: staff, OccurredAt: now.Add(-time.Hour)}
}

func code(t *testing.T, seed byte) schema.ClientCode {
	t.Helper()
	c, err := schema.NewClientCode(bytes.NewReader([]byte{seed, seed + 1, seed + 2, seed + 3, seed + 4}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// validRecords returns one valid record of every kind.
func validRecords(t *testing.T) map[schema.Kind]schema.Record {
	contact := uuid.Must(uuid.NewV7())
	return map[schema.Kind]schema.Record{
		schema.KindClient: &schema.Client{Header: header(t), Code: code(t, 1), Gender: schema.GenderWoman, BirthYear: 1998},
		schema.KindContact: &schema.Contact{Header: header(t), ClientCode: code(t, 1), Gender: schema.GenderWoman,
			AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380", Substance: schema.SubstanceOpioids},
		schema.KindSyringeExchange: &schema.SyringeExchange{Header: header(t), ContactID: contact, SyringesOut: 20, NeedlesOut: 40,
			SyringesReturned: 15, Supplies: schema.Supplies{schema.SupplySwabs: 20, schema.SupplySharpsContainer: 1}},
		schema.KindNaloxone: &schema.NaloxoneHandout{Header: header(t), ContactID: contact, Doses: 2, TrainingGiven: true, Reason: schema.NaloxoneFirstKit},
		schema.KindReversal: &schema.Reversal{Header: header(t), NaloxoneUsed: true, DosesUsed: 2, EMSCalled: true, Outcome: schema.OutcomeHospital},
		schema.KindReferral: &schema.Referral{Header: header(t), ContactID: contact, Service: schema.ServiceOpioidSubstitution, ToUnitID: unitB, Status: schema.StatusSent},
		schema.KindInfectionTest: &schema.InfectionTest{Header: header(t), ContactID: contact, ClientCode: code(t, 1),
			Test: schema.TestHCVAntibody, Outcome: schema.TestSampleSent, Result: schema.ResultPending},
		schema.KindVaccination:  &schema.Vaccination{Header: header(t), ContactID: contact, Vaccine: schema.VaccineHepB, Dose: 3},
		schema.KindDeath:        &schema.Death{Header: header(t), ClientCode: code(t, 1), Source: schema.DeathStaffTold},
		schema.KindOrganisation: &schema.Organisation{ID: uuid.Must(uuid.NewV7()), OrgKind: schema.OrgRegion, Name: "Region Jämtland Härjedalen", RegionCode: "23", Active: true},
		schema.KindUnit:         &schema.Unit{ID: unitA, OrgID: uuid.Must(uuid.NewV7()), Name: "Sprututbytet Östersund", AreaCode: "2380", Active: true},
		schema.KindStaff:        &schema.Staff{ID: staff, UnitID: unitA, Role: schema.RoleNurse, Active: true},
		schema.KindService:      &schema.Service{ID: uuid.Must(uuid.NewV7()), UnitID: unitB, Category: schema.ServiceOpioidSubstitution, Active: true},
	}
}

func TestValidRecords(t *testing.T) {
	rs := validRecords(t)
	for _, k := range append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...) {
		r, ok := rs[k]
		if !ok {
			t.Fatalf("no valid %s in the test table", k)
		}
		if err := r.Validate(now); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

func TestInvalidRecords(t *testing.T) {
	tests := []struct {
		name  string
		kind  schema.Kind
		edit  func(r schema.Record)
		field string
		rule  schema.Rule
	}{
		{"missing id", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).ID = uuid.Nil }, "id", schema.RuleRequired},
		{"uuid v4 id", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).ID = uuid.New() }, "id", schema.RuleIDVersion},
		{"missing unit", schema.KindNaloxone, func(r schema.Record) { r.(*schema.NaloxoneHandout).UnitID = uuid.Nil }, "unit_id", schema.RuleRequired},
		{"missing time", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).OccurredAt = time.Time{} }, "occurred_at", schema.RuleRequired},
		{"time in 2000", schema.KindContact, func(r schema.Record) {
			r.(*schema.Contact).OccurredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		}, "occurred_at", schema.RuleTime},
		{"time next week", schema.KindSyringeExchange, func(r schema.Record) {
			r.(*schema.SyringeExchange).OccurredAt = now.Add(7 * 24 * time.Hour)
		}, "occurred_at", schema.RuleTime},
		{"unknown gender", schema.KindClient, func(r schema.Record) { r.(*schema.Client).Gender = "female" }, "gender", schema.RuleEnum},
		{"malformed client code", schema.KindClient, func(r schema.Record) { r.(*schema.Client).Code = "ABCD-EFGH-J" }, "code", schema.RuleClientCode},
		{"birth year and band", schema.KindClient, func(r schema.Record) { r.(*schema.Client).AgeBand = schema.Age25to29 }, "age_band", schema.RuleExclusive},
		{"birth year too late", schema.KindClient, func(r schema.Record) { r.(*schema.Client).BirthYear = 2024 }, "birth_year", schema.RuleRange},
		{"birth year 1850", schema.KindClient, func(r schema.Record) { r.(*schema.Client).BirthYear = 1850 }, "birth_year", schema.RuleRange},
		{"missing setting", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).Setting = "" }, "setting", schema.RuleRequired},
		{"unknown setting", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).Setting = "park" }, "setting", schema.RuleEnum},
		{"area code letters", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).AreaCode = "23a0" }, "area_code", schema.RuleFormat},
		{"area code short", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).AreaCode = "238" }, "area_code", schema.RuleFormat},
		{"unknown substance", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).Substance = "heroin" }, "substance", schema.RuleEnum},
		{"bad contact code", schema.KindContact, func(r schema.Record) { r.(*schema.Contact).ClientCode = "Anna Svensson" }, "client_code", schema.RuleClientCode},
		{"negative syringes", schema.KindSyringeExchange, func(r schema.Record) { r.(*schema.SyringeExchange).SyringesOut = -1 }, "syringes_out", schema.RuleRange},
		{"too many needles", schema.KindSyringeExchange, func(r schema.Record) { r.(*schema.SyringeExchange).NeedlesOut = 50000 }, "needles_out", schema.RuleRange},
		{"negative returns", schema.KindSyringeExchange, func(r schema.Record) { r.(*schema.SyringeExchange).SyringesReturned = -3 }, "syringes_returned", schema.RuleRange},
		{"unknown supply", schema.KindSyringeExchange, func(r schema.Record) {
			r.(*schema.SyringeExchange).Supplies["spoons"] = 2
		}, "supplies", schema.RuleEnum},
		{"negative supply", schema.KindSyringeExchange, func(r schema.Record) {
			r.(*schema.SyringeExchange).Supplies[schema.SupplyFilters] = -2
		}, "supplies.filters", schema.RuleRange},
		{"empty exchange", schema.KindSyringeExchange, func(r schema.Record) {
			s := r.(*schema.SyringeExchange)
			s.SyringesOut, s.NeedlesOut, s.SyringesReturned, s.Supplies = 0, 0, 0, nil
		}, "syringes_out", schema.RuleEmpty},
		{"exchange without contact", schema.KindSyringeExchange, func(r schema.Record) { r.(*schema.SyringeExchange).ContactID = uuid.Nil }, "contact_id", schema.RuleRequired},
		{"zero doses", schema.KindNaloxone, func(r schema.Record) { r.(*schema.NaloxoneHandout).Doses = 0 }, "doses", schema.RuleRange},
		{"negative doses", schema.KindNaloxone, func(r schema.Record) { r.(*schema.NaloxoneHandout).Doses = -2 }, "doses", schema.RuleRange},
		{"unknown reason", schema.KindNaloxone, func(r schema.Record) { r.(*schema.NaloxoneHandout).Reason = "because" }, "reason", schema.RuleEnum},
		{"doses without naloxone", schema.KindReversal, func(r schema.Record) { r.(*schema.Reversal).NaloxoneUsed = false }, "doses_used", schema.RuleConsistency},
		{"missing outcome", schema.KindReversal, func(r schema.Record) { r.(*schema.Reversal).Outcome = "" }, "outcome", schema.RuleRequired},
		{"referral to own unit", schema.KindReferral, func(r schema.Record) { r.(*schema.Referral).ToUnitID = unitA }, "to_unit_id", schema.RuleSameUnit},
		{"referral without receiver", schema.KindReferral, func(r schema.Record) { r.(*schema.Referral).ToUnitID = uuid.Nil }, "to_unit_id", schema.RuleRequired},
		{"unknown service", schema.KindReferral, func(r schema.Record) { r.(*schema.Referral).Service = "church" }, "service", schema.RuleEnum},
		{"unknown status", schema.KindReferral, func(r schema.Record) { r.(*schema.Referral).Status = "lost" }, "status", schema.RuleEnum},
		{"negative reopen", schema.KindReferral, func(r schema.Record) { r.(*schema.Referral).Reopened = -1 }, "reopened", schema.RuleRange},
		{"test without contact", schema.KindInfectionTest, func(r schema.Record) { r.(*schema.InfectionTest).ContactID = uuid.Nil }, "contact_id", schema.RuleRequired},
		{"unknown test", schema.KindInfectionTest, func(r schema.Record) { r.(*schema.InfectionTest).Test = "hepatitis" }, "test", schema.RuleEnum},
		{"unknown test outcome", schema.KindInfectionTest, func(r schema.Record) { r.(*schema.InfectionTest).Outcome = "offered" }, "outcome", schema.RuleEnum},
		{"unknown test result", schema.KindInfectionTest, func(r schema.Record) { r.(*schema.InfectionTest).Result = "positive" }, "result", schema.RuleEnum},
		{"performed test without result", schema.KindInfectionTest, func(r schema.Record) { r.(*schema.InfectionTest).Result = "" }, "result", schema.RuleRequired},
		{"declined test with result", schema.KindInfectionTest, func(r schema.Record) {
			r.(*schema.InfectionTest).Outcome = schema.TestDeclined
		}, "result", schema.RuleConsistency},
		{"bad test client code", schema.KindInfectionTest, func(r schema.Record) { r.(*schema.InfectionTest).ClientCode = "1985-01-01" }, "client_code", schema.RuleClientCode},
		{"unknown vaccine", schema.KindVaccination, func(r schema.Record) { r.(*schema.Vaccination).Vaccine = "hpv" }, "vaccine", schema.RuleEnum},
		{"dose zero", schema.KindVaccination, func(r schema.Record) { r.(*schema.Vaccination).Dose = 0 }, "dose", schema.RuleRange},
		{"hepatitis B dose 5", schema.KindVaccination, func(r schema.Record) { r.(*schema.Vaccination).Dose = 5 }, "dose", schema.RuleRange},
		{"hepatitis A dose 3", schema.KindVaccination, func(r schema.Record) { r.(*schema.Vaccination).Vaccine = schema.VaccineHepA }, "dose", schema.RuleRange},
		{"death without client code", schema.KindDeath, func(r schema.Record) { r.(*schema.Death).ClientCode = "" }, "client_code", schema.RuleRequired},
		{"unknown death source", schema.KindDeath, func(r schema.Record) { r.(*schema.Death).Source = "rumour" }, "source", schema.RuleEnum},
		{"death in the future", schema.KindDeath, func(r schema.Record) { r.(*schema.Death).OccurredAt = now.Add(72 * time.Hour) }, "occurred_at", schema.RuleTime},
		{"org region code", schema.KindOrganisation, func(r schema.Record) { r.(*schema.Organisation).RegionCode = "Z" }, "region_code", schema.RuleFormat},
		{"org kind", schema.KindOrganisation, func(r schema.Record) { r.(*schema.Organisation).OrgKind = "company" }, "org_kind", schema.RuleEnum},
		{"unit name control chars", schema.KindUnit, func(r schema.Record) { r.(*schema.Unit).Name = "Team\x00A" }, "name", schema.RuleFormat},
		{"unit name too long", schema.KindUnit, func(r schema.Record) { r.(*schema.Unit).Name = strings.Repeat("å", 121) }, "name", schema.RuleFormat},
		{"staff role", schema.KindStaff, func(r schema.Record) { r.(*schema.Staff).Role = "doctor" }, "role", schema.RuleEnum},
		{"service category", schema.KindService, func(r schema.Record) { r.(*schema.Service).Category = "" }, "category", schema.RuleRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRecords(t)[tt.kind]
			tt.edit(r)
			err := r.Validate(now)
			var fe *schema.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if !errors.Is(err, schema.ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if fe.Field != tt.field || fe.Rule != tt.rule || fe.Kind != tt.kind {
				t.Errorf("got %s.%s %s (%v), want %s.%s %s", fe.Kind, fe.Field, fe.Rule, err, tt.kind, tt.field, tt.rule)
			}
			if fe.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

// TestNoFreeText holds the privacy rule by construction: the only text
// fields of the whole model are the names of organisations and units and
// the four-digit area codes; every other field is a code, number, flag,
// time or id.
func TestNoFreeText(t *testing.T) {
	allowed := map[string]bool{
		"organisations.name": true, "organisations.region_code": true,
		"units.name": true, "units.area_code": true, "contacts.area_code": true,
	}
	forbidden := []string{"name", "first", "last", "personnummer", "ssn", "note", "comment", "description", "text"}
	for _, k := range append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...) {
		fs, ok := schema.FieldsOf(k)
		if !ok {
			t.Fatalf("no fields for %s", k)
		}
		for _, f := range fs {
			key := string(k) + "." + f.Name
			if f.Type == schema.TypeText && !allowed[key] {
				t.Errorf("%s is free text", key)
			}
			if schema.IsFieldKind(k) {
				for _, bad := range forbidden {
					if strings.Contains(f.Name, bad) {
						t.Errorf("field record column %s looks like personal data", key)
					}
				}
			}
		}
	}
}

// TestFieldJSON round-trips every record through the field codec, as the
// sync engine does, and checks that wire decoding rejects wrong types.
func TestFieldJSON(t *testing.T) {
	for k, r := range validRecords(t) {
		out := map[string]json.RawMessage{}
		for _, f := range r.Fields() {
			b, err := f.MarshalJSON()
			if err != nil {
				t.Fatalf("%s.%s: %v", k, f.Name, err)
			}
			out[f.Name] = b
		}
		back, _ := schema.New(k)
		for _, f := range back.Fields() {
			if err := f.UnmarshalJSON(out[f.Name]); err != nil {
				t.Fatalf("%s.%s: %v", k, f.Name, err)
			}
		}
		want, _ := json.Marshal(r)
		got, _ := json.Marshal(back)
		if !bytes.Equal(want, got) {
			t.Errorf("%s round trip:\n got %s\nwant %s", k, got, want)
		}
	}

	c := &schema.Contact{}
	byName := map[string]schema.Field{}
	for _, f := range c.Fields() {
		byName[f.Name] = f
	}
	bad := []struct{ field, json string }{
		{"id", `"not-a-uuid"`}, {"id", `42`}, {"id", `null`},
		{"occurred_at", `"yesterday"`}, {"occurred_at", `1700000000`},
		{"voided", `"true"`}, {"voided", `1`},
		{"gender", `7`}, {"setting", `null`},
	}
	for _, b := range bad {
		err := byName[b.field].UnmarshalJSON([]byte(b.json))
		var fe *schema.FieldError
		if !errors.As(err, &fe) || fe.Field != b.field {
			t.Errorf("%s = %s: got %v, want a field error", b.field, b.json, err)
		}
	}
	n := &schema.NaloxoneHandout{}
	for _, f := range n.Fields() {
		if f.Name != "doses" {
			continue
		}
		for _, s := range []string{`2.5`, `"2"`, `1e12`, `true`} {
			if err := f.UnmarshalJSON([]byte(s)); err == nil {
				t.Errorf("doses = %s accepted", s)
			}
		}
		if err := f.UnmarshalJSON([]byte(`3`)); err != nil || n.Doses != 3 {
			t.Errorf("doses = 3: %v, %d", err, n.Doses)
		}
	}
}

func TestEnumerations(t *testing.T) {
	names := map[string]bool{}
	for _, e := range schema.Enumerations() {
		names[e.Name] = true
		for _, o := range e.Options {
			if o.Code == "" || o.SV == "" || o.EN == "" {
				t.Errorf("%s: option %+v lacks a code or a label", e.Name, o)
			}
			if !e.Has(o.Code) {
				t.Errorf("%s: Has(%q) is false", e.Name, o.Code)
			}
		}
	}
	for _, want := range []string{"gender", "age_band", "setting", "supply", "naloxone_reason", "reversal_outcome",
		"service_category", "referral_status", "substance"} {
		if !names[want] {
			t.Errorf("enumeration %s missing", want)
		}
	}
	if got := schema.ServiceCategoryEnum.Label("opioid_substitution", schema.Swedish); got != "LARO" {
		t.Errorf("Swedish label of opioid_substitution = %q", got)
	}
	if got := schema.GenderEnum.Label("woman", schema.English); got != "Woman" {
		t.Errorf("English label of woman = %q", got)
	}
}

func TestAgeBandOf(t *testing.T) {
	tests := []struct {
		born, year int
		want       schema.AgeBand
	}{
		{2010, 2026, schema.AgeUnder18}, {2008, 2026, schema.Age18to24}, {2002, 2026, schema.Age18to24},
		{2001, 2026, schema.Age25to29}, {1997, 2026, schema.Age25to29}, {1996, 2026, schema.Age30to39},
		{1980, 2026, schema.Age40to49}, {1962, 2026, schema.Age50to64}, {1961, 2026, schema.Age65Plus},
	}
	for _, tt := range tests {
		if got := schema.AgeBandOf(tt.born, tt.year); got != tt.want {
			t.Errorf("AgeBandOf(%d, %d) = %s, want %s", tt.born, tt.year, got, tt.want)
		}
	}
}

func TestReferralStatusRank(t *testing.T) {
	order := []schema.ReferralStatus{schema.StatusSent, schema.StatusReceived, schema.StatusDeclined, schema.StatusAttended, schema.StatusClosed}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() >= order[i].Rank() {
			t.Errorf("%s does not come before %s", order[i-1], order[i])
		}
	}
	if schema.StatusDeclined.Rank() != schema.StatusNotReached.Rank() {
		t.Error("declined and not reached should share a rank")
	}
	if schema.ReferralStatus("lost").Rank() != -1 {
		t.Error("unknown status has a rank")
	}
	for _, c := range schema.ReferralStatusEnum.Codes() {
		if schema.ReferralStatus(c).Rank() < 0 {
			t.Errorf("status %s has no rank", c)
		}
	}
}

// FuzzEachMember holds the fast object scanner to encoding/json: whatever
// it accepts, encoding/json accepts with the same members, and it accepts
// every object encoding/json accepts whose text is valid UTF-8. ObjectEnd
// accepts the same objects.
func FuzzEachMember(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":"x\"y","c":{"d":[1,2]},"e":null,"f":true,"g":-2.5e3}`))
	f.Add([]byte(` { } `))
	f.Add([]byte(`{"a":1,}`))
	f.Add([]byte(`{"a" 1}`))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{"a":"\x"}`))
	f.Add([]byte(`{"a":"\u12"}`))
	f.Add([]byte(`{"a":"\u12g4","b":"\u00e5"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]string{}
		err := schema.EachMember(data, func(k string, v []byte) error {
			got[k] = string(v)
			return nil
		})
		// ObjectEnd reads the same objects, the end of one where it is.
		p := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
		end, oerr := schema.ObjectEnd(data, p, math.MaxInt)
		if whole := oerr == nil && len(bytes.TrimLeft(data[end:], " \t\r\n")) == 0; whole != (err == nil) {
			t.Fatalf("%q: EachMember %v, ObjectEnd %d, %v", data, err, end, oerr)
		}
		var want map[string]json.RawMessage
		jerr := json.Unmarshal(data, &want)
		if err == nil {
			if jerr != nil || want == nil {
				t.Fatalf("EachMember accepted %q, encoding/json: %v", data, jerr)
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d members, encoding/json %d", data, len(got), len(want))
			}
			for k, v := range want {
				if got[k] != string(v) {
					t.Fatalf("%q: member %q is %q, encoding/json %q", data, k, got[k], v)
				}
			}
			return
		}
		if jerr == nil && want != nil && utf8.Valid(data) {
			t.Fatalf("EachMember refused %q: %v", data, err)
		}
	})
}

// TestAppendFields holds AppendFields to Fields for every kind, within
// MaxFields, and a valid record's check to no allocation: the server
// checks every record pushed to it.
func TestAppendFields(t *testing.T) {
	rs := validRecords(t)
	for _, k := range append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...) {
		r := rs[k]
		want := r.Fields()
		if len(want) > schema.MaxFields {
			t.Errorf("%s has %d fields, MaxFields is %d", k, len(want), schema.MaxFields)
		}
		var buf [schema.MaxFields]schema.Field
		got := schema.AppendFields(buf[:0], r)
		if len(got) != len(want) {
			t.Fatalf("%s: %d fields appended, Fields has %d", k, len(got), len(want))
		}
		for i := range want {
			if got[i].Name != want[i].Name || got[i].Type != want[i].Type || !got[i].SameValue(want[i]) {
				t.Errorf("%s: field %d is %s, Fields has %s", k, i, got[i].Name, want[i].Name)
			}
		}
		if n := testing.AllocsPerRun(10, func() { r.Validate(now) }); n != 0 && k != schema.KindSyringeExchange {
			t.Errorf("%s: Validate allocates %.0f times", k, n)
		}
	}
	// An exchange's supplies are a map: checking them allocates nothing
	// either, without them.
	ex := rs[schema.KindSyringeExchange].(*schema.SyringeExchange)
	ex.Supplies = nil
	if n := testing.AllocsPerRun(10, func() { ex.Validate(now) }); n != 0 {
		t.Errorf("syringe exchange: Validate allocates %.0f times", n)
	}
}

// TestObjectEnd checks that ObjectEnd finds the end of what
// EachMemberBytes accepts within a larger text, and refuses the rest and
// nesting past its depth.
func TestObjectEnd(t *testing.T) {
	for _, tt := range []struct {
		obj   string
		depth int
		ok    bool
	}{
		{`{}`, 1, true},
		{`{ }`, 1, true},
		{`{"a":1,"b":"x\"y","c":{"d":[1,2]},"e":null,"f":true,"g":-2.5e3}`, 3, true},
		{`{"a":1,"b":"x\"y","c":{"d":[1,2]},"e":null,"f":true,"g":-2.5e3}`, 2, false},
		{`{"c":{"d":[1,2]}}`, 100, true},
		{`{"é":"å"}`, 1, true},
		{`{"a":1,}`, 100, false},
		{`{"a" 1}`, 100, false},
		{`{"a":01}`, 100, false},
		{`{"a":"\x"}`, 100, false},
		{`{"a":"` + "\x01" + `"}`, 100, false},
		{`{"a` + "\xff" + `":1}`, 100, false},
		{`{"a":{"b":1]}`, 100, false},
		{`{"a":1,`, 100, false},
	} {
		for _, around := range [][2]string{{"", ""}, {`[`, `,1]`}, {`{"fields":`, `}`}} {
			data := []byte(around[0] + tt.obj + around[1])
			end, err := schema.ObjectEnd(data, len(around[0]), tt.depth)
			if (err == nil) != tt.ok || tt.ok && end != len(around[0])+len(tt.obj) {
				t.Errorf("ObjectEnd(%q, %d) = %d, %v; want ok %v", data, tt.depth, end, err, tt.ok)
			}
			if tt.depth == 100 && tt.ok != (schema.EachMemberBytes([]byte(tt.obj), func(_, _ []byte) error { return nil }) == nil) {
				t.Errorf("ObjectEnd and EachMemberBytes differ on %q", tt.obj)
			}
		}
	}
}

// TestStringBytes checks the reading of strings, which goes eight bytes at
// a time, with a quote, a backslash or a control character at every place
// of strings up to 24 bytes long.
func TestStringBytes(t *testing.T) {
	for n := 0; n <= 24; n++ {
		for at := 0; at < n; at++ {
			for _, c := range []byte{'"', '\\', 0x01, 0x1f, '\n', 0x7f, 0x80, 0xff, ' ', '!', '#', '[', ']', '~'} {
				s := bytes.Repeat([]byte("a"), n)
				s[at] = c
				for _, key := range []bool{false, true} {
					data := []byte(`{"k":"` + string(s) + `"}`)
					if key {
						data = []byte(`{"` + string(s) + `":1}`)
					}
					var m map[string]json.RawMessage
					jerr := json.Unmarshal(data, &m)
					err := schema.EachMemberBytes(data, func(_, _ []byte) error { return nil })
					if err == nil && jerr != nil || err != nil && jerr == nil && utf8.Valid(data) {
						t.Errorf("%q: EachMemberBytes %v, encoding/json %v", data, err, jerr)
					}
				}
			}
		}
	}
}
