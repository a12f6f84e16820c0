package brygga_test

import (
	"context"
	"errors"
	"testing"
	"time"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

func syncRounds(t *testing.T, cs ...*brygga.Client) {
	t.Helper()
	for range 2 {
		for _, c := range cs {
			if err := c.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestResultAcrossDevices records a test whose sample is sent on one
// tablet; its answer is entered later on two others of the unit, one of
// which still thinks it pending: everyone ends with the known result, and
// a known result is not set back to pending.
func TestResultAcrossDevices(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	a := r.device(r.url(), r.team, r.teamStaf)
	b := r.device(r.url(), r.team, r.teamStaf)
	c := r.device(r.url(), r.team, r.teamStaf)

	cl, err := a.NewClient(ctx, schema.GenderMan, 1990, "")
	if err != nil {
		t.Fatal(err)
	}
	con := &schema.Contact{ClientCode: cl.Code, Setting: schema.SettingFixedSite, AreaCode: "2380"}
	if err := a.Add(ctx, con); err != nil {
		t.Fatal(err)
	}
	test := &schema.InfectionTest{ContactID: con.ID, ClientCode: cl.Code, Test: schema.TestHCVAntibody,
		Outcome: schema.TestSampleSent, Result: schema.ResultPending}
	declined := &schema.InfectionTest{ContactID: con.ID, ClientCode: cl.Code, Test: schema.TestHIV, Outcome: schema.TestDeclined}
	vacc := &schema.Vaccination{ContactID: con.ID, ClientCode: cl.Code, Vaccine: schema.VaccineHepAB, Dose: 1}
	for _, rec := range []schema.Record{test, declined, vacc} {
		if err := a.Add(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	syncRounds(t, a, b, c)
	pending, err := b.PendingTests(ctx)
	if err != nil || len(pending) != 1 || pending[0].ID != test.ID {
		t.Fatalf("pending tests on another tablet: %v %v", pending, err)
	}
	// Offline: b enters the laboratory's answer; c, which has not heard
	// of it, writes pending again, later by the clock.
	if err := b.SetTestResult(ctx, test.ID, schema.ResultReactive); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := c.SetTestResult(ctx, test.ID, schema.ResultPending); err != nil {
		t.Fatal(err)
	}
	syncRounds(t, c, b, a)
	for i, d := range []*brygga.Client{a, b, c} {
		rec, err := d.Get(ctx, schema.KindInfectionTest, test.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.(*schema.InfectionTest).Result; got != schema.ResultReactive {
			t.Errorf("tablet %d: result %s, want reactive", i, got)
		}
	}
	if err := a.SetTestResult(ctx, test.ID, schema.ResultPending); !errors.Is(err, brygga.ErrResultSettled) {
		t.Errorf("back to pending: %v, want ErrResultSettled", err)
	}
	var fe *schema.FieldError
	if err := a.SetTestResult(ctx, declined.ID, schema.ResultReactive); !errors.As(err, &fe) || fe.Rule != schema.RuleConsistency {
		t.Errorf("a result for a declined test: %v, want rule consistency", err)
	}
	// A correction of one known result by another is a later write.
	if err := a.SetTestResult(ctx, test.ID, schema.ResultNonReactive); err != nil {
		t.Fatal(err)
	}
	syncRounds(t, a, b)
	rec, err := r.srv.Record(ctx, schema.KindInfectionTest, test.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.(*schema.InfectionTest).Result; got != schema.ResultNonReactive {
		t.Errorf("server: result %s after the correction, want non_reactive", got)
	}
	if pending, _ := b.PendingTests(ctx); len(pending) != 0 {
		t.Errorf("pending tests after the answer: %v", pending)
	}
}

// TestDeathKeepsHistory reports a client deceased: the report syncs with
// its date and source, and the client code's history is as it was.
func TestDeathKeepsHistory(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	a := r.device(r.url(), r.team, r.teamStaf)
	cl, err := a.NewClient(ctx, schema.GenderWoman, 0, schema.Age25to29)
	if err != nil {
		t.Fatal(err)
	}
	con := &schema.Contact{ClientCode: cl.Code, Setting: schema.SettingStreet, AreaCode: "2380"}
	if err := a.Add(ctx, con); err != nil {
		t.Fatal(err)
	}
	ref := &schema.Referral{ContactID: con.ID, ClientCode: cl.Code, Service: schema.ServiceAddictionClinic, ToUnitID: r.clinic.ID, Status: schema.StatusSent}
	if err := a.Add(ctx, ref); err != nil {
		t.Fatal(err)
	}
	before, err := a.ClientHistory(ctx, string(cl.Code))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().AddDate(0, 0, -3)
	death, err := a.ReportDeath(ctx, cl.Code, day, schema.DeathRegistry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReportDeath(ctx, cl.Code, day, "rumour"); !errors.Is(err, brygga.ErrInvalid) {
		t.Errorf("an unknown source: %v, want ErrInvalid", err)
	}
	syncRounds(t, a)
	rec, err := r.srv.Record(ctx, schema.KindDeath, death.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.(*schema.Death)
	if got.ClientCode != cl.Code || got.Source != schema.DeathRegistry || !got.OccurredAt.Equal(death.OccurredAt) {
		t.Errorf("server holds %+v, want %+v", got, death)
	}
	if h, m := got.OccurredAt.In(stockholm(t)).Hour(), got.OccurredAt.In(stockholm(t)).Minute(); h != 0 || m != 0 {
		t.Errorf("date of death at %02d:%02d, want midnight", h, m)
	}
	after, err := a.ClientHistory(ctx, string(cl.Code))
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Deaths) != 1 || after.Client == nil || len(after.Contacts) != len(before.Contacts) || len(after.Referrals) != len(before.Referrals) {
		t.Errorf("history after the report: %d deaths, client %v, %d contacts, %d referrals; before %d, %d",
			len(after.Deaths), after.Client != nil, len(after.Contacts), len(after.Referrals), len(before.Contacts), len(before.Referrals))
	}
}

func stockholm(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
