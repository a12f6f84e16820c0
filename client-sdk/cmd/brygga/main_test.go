package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// region is a running server with an outreach team (one staff member) of
// a municipality and a clinic (two staff members) of a region.
type region struct {
	srv    *server.Server
	url    string
	team   *schema.Unit
	clinic *schema.Unit
	staff  *schema.Staff // the team's only staff member
	nurses []*schema.Staff
}

func startRegion(t *testing.T) *region {
	t.Helper()
	return startRegionWith(t, server.Config{})
}

// startRegionWith starts the region with cfg's settings.
func startRegionWith(t *testing.T, cfg server.Config) *region {
	t.Helper()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	cfg.DBPath, cfg.PublicURL = filepath.Join(t.TempDir(), "server.db"), url
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-done
		srv.Close()
	})
	r := &region{srv: srv, url: url}
	muni, err := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Östersunds kommun", "23")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	if err != nil {
		t.Fatal(err)
	}
	if r.team, err = srv.AddUnit(ctx, muni.ID, "Fältgruppen", "2380"); err != nil {
		t.Fatal(err)
	}
	if r.clinic, err = srv.AddUnit(ctx, reg.ID, "Beroendemottagningen", "2309", schema.ServiceAddictionClinic); err != nil {
		t.Fatal(err)
	}
	if r.staff, err = srv.AddStaff(ctx, r.team.ID, schema.RoleOutreachWorker); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err := srv.AddStaff(ctx, r.clinic.ID, schema.RoleNurse)
		if err != nil {
			t.Fatal(err)
		}
		r.nurses = append(r.nurses, s)
	}
	return r
}

// code returns a new one-time enrolment code for unit.
func (r *region) code(t *testing.T, unit *schema.Unit) string {
	t.Helper()
	c, err := r.srv.NewEnrolCode(context.Background(), unit.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	return c.Code
}

// run runs the command line and returns what it printed.
func run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = Run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// must runs the command line and fails the test on an error.
func must(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := run(args...)
	if err != nil {
		t.Fatalf("brygga %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// mustID runs a command that prints a new record's id.
func mustID(t *testing.T, args ...string) uuid.UUID {
	t.Helper()
	out := must(t, args...)
	id, err := uuid.Parse(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("brygga %s printed %q, not an id", strings.Join(args, " "), out)
	}
	return id
}

func status(t *testing.T, db string) brygga.Status {
	t.Helper()
	var st brygga.Status
	if err := json.Unmarshal([]byte(must(t, "--db", db, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// enroll enrols a device of unit into a new replica and returns its path.
func (r *region) enroll(t *testing.T, unit *schema.Unit, flags ...string) (string, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "tablet.db")
	args := append([]string{"--db", db, "enroll", r.url, r.code(t, unit)}, flags...)
	return db, must(t, args...)
}

func TestUsageErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	cases := []struct {
		name string
		args []string
	}{
		{"no arguments", nil},
		{"unknown command", []string{"--db", db, "dance"}},
		{"unknown flag", []string{"--db", db, "contact", "--colour", "red"}},
		{"missing contact", []string{"--db", db, "exchange", "--syringes", "5"}},
		{"bad contact id", []string{"--db", db, "naloxone", "--contact", "42", "--doses", "2"}},
		{"bad time", []string{"--db", db, "contact", "--at", "yesterday"}},
		{"bad exchange time", []string{"--db", db, "exchange", "--contact", uuid.NewString(), "--at", "2026-13-01T00:00:00Z"}},
		{"bad referral time", []string{"--db", db, "refer", "--service", "housing", "--at", "noon"}},
		{"bad supply", []string{"--db", db, "exchange", "--contact", uuid.NewString(), "--supply", "swabs"}},
		{"enroll without code", []string{"--db", db, "enroll", "http://127.0.0.1:1"}},
		{"enroll with a bad URL", []string{"--db", db, "enroll", "example.org", "AAAA-BBBB-CCCC"}},
		{"list what", []string{"--db", db, "list", "kittens"}},
		{"status and reopen", []string{"--db", db, "referral-status", "--id", uuid.NewString(), "--status", "received", "--reopen"}},
		{"void a unit", []string{"--db", db, "void", "--kind", "units", "--id", uuid.NewString()}},
		{"simulate without codes", []string{"simulate", "--server", "http://127.0.0.1:1", "--devices", "2", "--days", "1", "--code", "AAAA"}},
		{"extra argument", []string{"--db", db, "sync", "now"}},
		{"dismiss without a number", []string{"--db", db, "dismiss"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(tc.args...)
			if !errors.Is(err, errUsage) || exitCode(err) != 2 {
				t.Errorf("error %v (exit %d), want a usage error (exit 2)", err, exitCode(err))
			}
		})
	}
	if _, stderr, _ := run(); !strings.Contains(stderr, "usage: brygga") {
		t.Errorf("no arguments printed %q, want the usage", stderr)
	}
	if out, _, err := run("help"); err != nil || !strings.Contains(out, "simulate") {
		t.Errorf("help: %q %v", out, err)
	}
	if _, _, err := run("--db", db, "contact", "-h"); err != nil {
		t.Errorf("contact -h: %v", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("usage errors created the replica: %v", err)
	}
	// Not enrolled is an ordinary failure, with a hint.
	_, _, err := run("--db", db, "contact")
	if !errors.Is(err, brygga.ErrNotEnrolled) || exitCode(err) != 1 || !strings.Contains(err.Error(), "enroll SERVER CODE") {
		t.Errorf("contact before enrolment: %v (exit %d)", err, exitCode(err))
	}
}

func TestParseAllowsFlagsAfterArguments(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	staff := fs.String("staff", "", "")
	pos, err := parse(fs, []string{"http://x", "--staff", "s1", "CODE", "--", "--not-a-flag"})
	if err != nil {
		t.Fatal(err)
	}
	if *staff != "s1" || strings.Join(pos, " ") != "http://x CODE --not-a-flag" {
		t.Errorf("staff %q, arguments %q", *staff, pos)
	}
}

func TestFieldWork(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	db, out := r.enroll(t, r.team)
	st := status(t, db)
	if !st.Enrolled || st.UnitID != r.team.ID || !strings.Contains(out, st.DeviceID.String()) ||
		!strings.Contains(out, r.team.ID.String()) || !strings.Contains(out, r.staff.ID.String()) {
		t.Fatalf("enroll printed %q; status %+v", out, st)
	}

	if _, _, err := run("--db", db, "dismiss", "--seq", "7"); !errors.Is(err, brygga.ErrNotFound) {
		t.Errorf("dismissing a rejection there is not: %v", err)
	}

	before := time.Now().Add(-time.Second)
	contact := mustID(t, "--db", db, "contact", "--setting", "street")
	after := time.Now().Add(time.Second)
	exchange := mustID(t, "--db", db, "exchange", "--contact", contact.String(), "--syringes", "10", "--needles", "12",
		"--returned", "7", "--supply", "swabs=10", "--supply", "filters=5")
	naloxone := mustID(t, "--db", db, "naloxone", "--contact", contact.String(), "--doses", "2", "--training")
	referral := mustID(t, "--db", db, "refer", "--service", "addiction_clinic", "--to", r.clinic.ID.String(), "--contact", contact.String())
	if st := status(t, db); st.Pending != 4 || len(st.Rejected) != 0 || st.LastSync == nil {
		t.Errorf("status before sync: %+v", st)
	}

	// An invalid exchange names the field and the rule and records nothing.
	_, _, err := run("--db", db, "exchange", "--contact", contact.String(), "--syringes", "-1")
	var fe *schema.FieldError
	if !errors.As(err, &fe) || fe.Field != "syringes_out" || fe.Rule != schema.RuleRange ||
		!strings.Contains(err.Error(), "syringes_out") || !strings.Contains(err.Error(), "range") || exitCode(err) != 1 {
		t.Errorf("invalid exchange: %v", err)
	}
	// So does an exchange at a contact the device does not have.
	if _, _, err := run("--db", db, "exchange", "--contact", uuid.NewString(), "--syringes", "5"); !errors.Is(err, brygga.ErrNotFound) {
		t.Errorf("exchange at an unknown contact: %v", err)
	}
	if st := status(t, db); st.Pending != 4 {
		t.Errorf("after failed records %d pending, want 4", st.Pending)
	}

	out = must(t, "--db", db, "sync")
	if !strings.Contains(out, "pushed 4") || !strings.Contains(out, "0 pending") || strings.Contains(out, "\r") {
		t.Errorf("sync printed %q", out)
	}
	if st := status(t, db); st.Pending != 0 || len(st.Rejected) != 0 {
		t.Errorf("status after sync: %+v", st)
	}

	rec, err := r.srv.Record(ctx, schema.KindContact, contact)
	if err != nil {
		t.Fatal(err)
	}
	c := rec.(*schema.Contact)
	if c.Setting != schema.SettingStreet || c.ClientCode != "" || c.Gender != schema.GenderNotStated ||
		c.AgeBand != schema.AgeNotStated || c.AreaCode != r.team.AreaCode || c.StaffID != r.staff.ID ||
		c.OccurredAt.Before(before) || c.OccurredAt.After(after) {
		t.Errorf("contact on the server: %+v", c)
	}
	rec, err = r.srv.Record(ctx, schema.KindSyringeExchange, exchange)
	if err != nil {
		t.Fatal(err)
	}
	if x := rec.(*schema.SyringeExchange); x.ContactID != contact || x.SyringesOut != 10 || x.NeedlesOut != 12 ||
		x.SyringesReturned != 7 || x.Supplies[schema.SupplySwabs] != 10 || x.Supplies[schema.SupplyFilters] != 5 {
		t.Errorf("exchange on the server: %+v", x)
	}
	rec, err = r.srv.Record(ctx, schema.KindNaloxone, naloxone)
	if err != nil {
		t.Fatal(err)
	}
	if n := rec.(*schema.NaloxoneHandout); n.Doses != 2 || !n.TrainingGiven || n.Reason != schema.NaloxoneFirstKit {
		t.Errorf("naloxone on the server: %+v", n)
	}
	rec, err = r.srv.Record(ctx, schema.KindReferral, referral)
	if err != nil {
		t.Fatal(err)
	}
	if ref := rec.(*schema.Referral); ref.ToUnitID != r.clinic.ID || ref.Status != schema.StatusSent || ref.ContactID != contact {
		t.Errorf("referral on the server: %+v", ref)
	}

	var contacts []schema.Contact
	if err := json.Unmarshal([]byte(must(t, "--db", db, "list", "contacts", "--json")), &contacts); err != nil {
		t.Fatal(err)
	}
	if len(contacts) != 1 || contacts[0].ID != contact || contacts[0].Setting != schema.SettingStreet || contacts[0].ClientCode != "" {
		t.Errorf("list contacts: %+v", contacts)
	}
	var refs []schema.Referral
	if err := json.Unmarshal([]byte(must(t, "--db", db, "list", "referrals", "--json")), &refs); err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].ID != referral {
		t.Errorf("list referrals: %+v", refs)
	}
	if err := json.Unmarshal([]byte(must(t, "--db", db, "list", "referrals", "--incoming", "--json")), &refs); err != nil || len(refs) != 0 {
		t.Errorf("incoming referrals of the team: %+v %v", refs, err)
	}
	if out := must(t, "--db", db, "list", "contacts"); !strings.Contains(out, contact.String()) || !strings.Contains(out, "anonymous") {
		t.Errorf("list contacts printed %q", out)
	}
}

func TestRecordingOptions(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	db, _ := r.enroll(t, r.team)

	at := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	full := mustID(t, "--db", db, "contact", "--setting", "fixed_site", "--gender", "woman", "--age-band", "25_29",
		"--area", "2309", "--substance", "opioids", "--at", at.Format(time.RFC3339))
	rev := mustID(t, "--db", db, "reversal", "--contact", full.String(), "--naloxone-used", "--doses", "2",
		"--ems-called", "--outcome", "taken_to_hospital")
	// Records at a contact happened when it did, unless --at says when.
	atContact := mustID(t, "--db", db, "exchange", "--contact", full.String(), "--syringes", "10")
	later := at.Add(20 * time.Minute)
	nal := mustID(t, "--db", db, "naloxone", "--contact", full.String(), "--doses", "2", "--at", later.Format(time.RFC3339))
	reported := time.Now().Add(-26 * time.Hour).UTC().Truncate(time.Second)
	alone := mustID(t, "--db", db, "reversal", "--at", reported.Format(time.RFC3339))
	plain := mustID(t, "--db", db, "contact")

	out := must(t, "--db", db, "client", "new", "--gender", "man", "--birth-year", "1990")
	lines := strings.Fields(out)
	if len(lines) != 2 {
		t.Fatalf("client new printed %q", out)
	}
	code, err := schema.ParseClientCode(lines[0])
	if err != nil || string(code) != lines[0] || lines[1] != code.QRPayload() {
		t.Fatalf("client new printed %q: %v", out, err)
	}
	// The code as typed, in lower case, or as scanned from the card.
	typed := mustID(t, "--db", db, "contact", "--client", strings.ToLower(lines[0]))
	scanned := mustID(t, "--db", db, "contact", "--client", lines[1])
	_, _, err = run("--db", db, "contact", "--client", "7K3M-QX2D-X")
	var fe *schema.FieldError
	if !errors.As(err, &fe) || fe.Field != "client_code" {
		t.Errorf("a mistyped client code: %v", err)
	}
	_, _, err = run("--db", db, "contact", "--setting", "park")
	if !errors.As(err, &fe) || fe.Field != "setting" || fe.Rule != schema.RuleEnum {
		t.Errorf("an unknown setting: %v", err)
	}
	// With no --to, the only unit offering the service is chosen; the
	// referral takes the contact's client code.
	ref := mustID(t, "--db", db, "refer", "--service", "addiction_clinic", "--contact", typed.String())
	if _, _, err := run("--db", db, "refer", "--service", "housing"); !errors.Is(err, errUsage) {
		t.Errorf("a referral to a service nobody offers: %v", err)
	}
	if out := must(t, "--db", db, "void", "--kind", "contact", "--id", scanned.String()); !strings.Contains(out, "voided") {
		t.Errorf("void printed %q", out)
	}
	if _, _, err := run("--db", db, "void", "--kind", "naloxone", "--id", uuid.NewString()); !errors.Is(err, brygga.ErrNotFound) {
		t.Errorf("voiding an unknown record: %v", err)
	}
	if h := must(t, "--db", db, "client", "show", lines[0]); !strings.Contains(h, "1 contacts, 1 referrals") {
		t.Errorf("client show printed %q", h)
	}
	must(t, "--db", db, "sync")

	get := func(k schema.Kind, id uuid.UUID) schema.Record {
		t.Helper()
		rec, err := r.srv.Record(ctx, k, id)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	if c := get(schema.KindContact, full).(*schema.Contact); c.Setting != schema.SettingFixedSite || c.Gender != schema.GenderWoman ||
		c.AgeBand != schema.Age25to29 || c.AreaCode != "2309" || c.Substance != schema.SubstanceOpioids || !c.OccurredAt.Equal(at) {
		t.Errorf("contact with every option: %+v", c)
	}
	if c := get(schema.KindContact, plain).(*schema.Contact); c.Setting != schema.SettingStreet || c.Gender != schema.GenderNotStated ||
		c.AgeBand != schema.AgeNotStated || c.AreaCode != r.team.AreaCode || c.ClientCode != "" || c.Substance != "" {
		t.Errorf("contact with the defaults: %+v", c)
	}
	if v := get(schema.KindReversal, rev).(*schema.Reversal); v.ContactID != full || !v.NaloxoneUsed || v.DosesUsed != 2 ||
		!v.EMSCalled || v.Outcome != schema.OutcomeHospital {
		t.Errorf("reversal: %+v", v)
	}
	if x := get(schema.KindSyringeExchange, atContact).(*schema.SyringeExchange); !x.OccurredAt.Equal(at) {
		t.Errorf("exchange at the contact happened at %v, want the contact's %v", x.OccurredAt, at)
	}
	if n := get(schema.KindNaloxone, nal).(*schema.NaloxoneHandout); !n.OccurredAt.Equal(later) {
		t.Errorf("naloxone with --at happened at %v, want %v", n.OccurredAt, later)
	}
	if v := get(schema.KindReversal, rev).(*schema.Reversal); !v.OccurredAt.Equal(at) {
		t.Errorf("reversal at the contact happened at %v, want %v", v.OccurredAt, at)
	}
	if v := get(schema.KindReversal, alone).(*schema.Reversal); v.ContactID != uuid.Nil || v.Outcome != schema.OutcomeNotReported ||
		!v.OccurredAt.Equal(reported) {
		t.Errorf("reversal without a contact: %+v", v)
	}
	if c := get(schema.KindContact, typed).(*schema.Contact); c.ClientCode != code {
		t.Errorf("contact by typed code: %+v", c)
	}
	if c := get(schema.KindContact, scanned).(*schema.Contact); c.ClientCode != code || !c.Voided {
		t.Errorf("voided contact by scanned code: %+v", c)
	}
	if f := get(schema.KindReferral, ref).(*schema.Referral); f.ToUnitID != r.clinic.ID || f.ClientCode != code {
		t.Errorf("referral by service: %+v", f)
	}
}

func TestReferralAcrossUnits(t *testing.T) {
	r := startRegion(t)
	team, _ := r.enroll(t, r.team)
	// The clinic has two nurses: enrolment cannot choose, so recording
	// asks for one.
	clinic, out := r.enroll(t, r.clinic)
	if !strings.Contains(out, "2 staff members") || !strings.Contains(out, r.nurses[0].ID.String()) {
		t.Errorf("enroll printed %q", out)
	}
	_, _, err := run("--db", clinic, "contact")
	var fe *schema.FieldError
	if !errors.As(err, &fe) || fe.Field != "staff_id" || !strings.Contains(err.Error(), "staff --set") {
		t.Errorf("recording without staff: %v", err)
	}
	if lines := strings.Split(must(t, "--db", clinic, "staff"), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "STAFF ID") ||
		!strings.HasPrefix(lines[1], r.nurses[0].ID.String()) && !strings.HasPrefix(lines[1], r.nurses[1].ID.String()) {
		t.Errorf("staff printed %q", lines)
	}
	must(t, "--db", clinic, "staff", "--set", r.nurses[1].ID.String())
	if _, _, err := run("--db", clinic, "staff", "--set", r.staff.ID.String()); !errors.Is(err, brygga.ErrNotFound) {
		t.Errorf("setting another unit's staff: %v", err)
	}

	ref := mustID(t, "--db", team, "refer", "--service", "addiction_clinic", "--to", r.clinic.ID.String())
	must(t, "--db", team, "sync")
	must(t, "--db", clinic, "sync")
	var in []schema.Referral
	if err := json.Unmarshal([]byte(must(t, "--db", clinic, "list", "referrals", "--incoming", "--json")), &in); err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || in[0].ID != ref || in[0].UnitID != r.team.ID {
		t.Fatalf("incoming referrals of the clinic: %+v", in)
	}
	if out := must(t, "--db", clinic, "referral-status", "--id", ref.String(), "--status", "attended"); out != ref.String()+" attended\n" {
		t.Errorf("referral-status printed %q", out)
	}
	if _, _, err := run("--db", clinic, "referral-status", "--id", ref.String(), "--status", "received"); !errors.Is(err, brygga.ErrStatusBackwards) ||
		!strings.Contains(err.Error(), "--reopen") {
		t.Errorf("moving back: %v", err)
	}
	// The team receives the clinic's update: one record pulled.
	if out := must(t, "--db", clinic, "sync"); !strings.HasPrefix(out, "pushed 1,") {
		t.Errorf("the clinic's sync of its update printed %q", out)
	}
	if out := must(t, "--db", team, "sync"); !strings.HasPrefix(out, "pushed 0, pulled 1;") {
		t.Errorf("the team's sync after the clinic's update printed %q", out)
	}
	var outgoing []schema.Referral
	if err := json.Unmarshal([]byte(must(t, "--db", team, "list", "referrals", "--json")), &outgoing); err != nil {
		t.Fatal(err)
	}
	if len(outgoing) != 1 || outgoing[0].Status != schema.StatusAttended {
		t.Errorf("the team's referral after the clinic's update: %+v", outgoing)
	}
	must(t, "--db", clinic, "referral-status", "--id", ref.String(), "--reopen")
	must(t, "--db", clinic, "sync")
	rec, err := r.srv.Record(context.Background(), schema.KindReferral, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.(*schema.Referral); got.Status != schema.StatusSent || got.Reopened != 1 {
		t.Errorf("after reopening: %s, reopened %d", got.Status, got.Reopened)
	}
}

func TestRecordingAfterTheLease(t *testing.T) {
	r := startRegionWith(t, server.Config{DeviceLease: time.Second})
	db, _ := r.enroll(t, r.team)
	contact := mustID(t, "--db", db, "contact", "--setting", "shelter")
	time.Sleep(1100 * time.Millisecond)
	// Reads are refused until the device syncs; recording goes on.
	_, _, err := run("--db", db, "list", "contacts")
	if !errors.Is(err, brygga.ErrLeaseExpired) || !strings.Contains(err.Error(), "brygga --db "+db+" sync") {
		t.Errorf("reading after the lease: %v", err)
	}
	exchange := mustID(t, "--db", db, "exchange", "--contact", contact.String(), "--syringes", "20")
	referral := mustID(t, "--db", db, "refer", "--service", "addiction_clinic", "--to", r.clinic.ID.String())
	if _, _, err := run("--db", db, "contact"); err == nil || !strings.Contains(err.Error(), "--area") {
		t.Errorf("a contact without the unit's area code: %v", err)
	}
	mustID(t, "--db", db, "contact", "--area", "2380")
	must(t, "--db", db, "sync")
	if st := status(t, db); st.Pending != 0 || len(st.Rejected) != 0 {
		t.Errorf("after sync: %+v", st)
	}
	for k, id := range map[schema.Kind]uuid.UUID{schema.KindSyringeExchange: exchange, schema.KindReferral: referral} {
		if _, err := r.srv.Record(context.Background(), k, id); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	must(t, "--db", db, "list", "contacts")
}

func TestSimulate(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	dir := t.TempDir()
	clinicCode := r.code(t, r.clinic)
	codesFile := filepath.Join(t.TempDir(), "codes.txt")
	if err := os.WriteFile(codesFile, []byte("# clinic\n"+clinicCode+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	simulate := func(dir string, codeArgs ...string) simReport {
		t.Helper()
		args := append([]string{"simulate", "--server", r.url, "--devices", "2", "--days", "2", "--seed", "42", "--dir", dir, "--json"}, codeArgs...)
		var rep simReport
		if err := json.Unmarshal([]byte(must(t, args...)), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := simulate(dir, "--code", r.code(t, r.team), "--codes-file", codesFile)

	if rep.Contacts < 2*2*5 || rep.Contacts > 2*2*30 {
		t.Errorf("%d contacts for 2 devices over 2 days, want 20 to 120", rep.Contacts)
	}
	if rep.Records != rep.simCounts.records() || rep.Exchanges == 0 || rep.Exchanges > rep.Contacts {
		t.Errorf("report: %+v", rep)
	}
	if rep.Mutations != rep.Records+rep.Corrections+rep.Voids || rep.Pushed != int64(rep.Mutations) || rep.Rejected != 0 || rep.Pending != 0 {
		t.Errorf("sync totals: %+v", rep)
	}

	// The server processed every mutation of the two devices.
	devs, err := r.srv.DevicesOf(ctx, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	var seqs int64
	for _, d := range devs {
		seqs += d.LastSeq
	}
	if len(devs) != 2 || seqs != int64(rep.Mutations) {
		t.Errorf("%d devices processed up to %d mutations, want 2 devices and %d", len(devs), seqs, rep.Mutations)
	}

	// Every contact the replicas hold is on the server, in working hours of
	// the past two days.
	now := time.Now()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	seen := map[uuid.UUID]bool{}
	for i := 1; i <= 2; i++ {
		cl, err := brygga.Open(ctx, filepath.Join(dir, "device-00"+string(rune('0'+i))+".db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		contacts, err := cl.Contacts(ctx, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range contacts {
			if c.UnitID != cl.UnitID() || seen[c.ID] {
				t.Errorf("contact %s of unit %s on device %d", c.ID, c.UnitID, i)
			}
			seen[c.ID] = true
			at := c.OccurredAt.Local()
			if at.Before(today.AddDate(0, 0, -2)) || !at.Before(today) || at.Hour() < 8 || at.Hour() >= 17 {
				t.Errorf("contact at %s", at)
			}
			if _, err := r.srv.Record(ctx, schema.KindContact, c.ID); err != nil {
				t.Errorf("contact %s: %v", c.ID, err)
			}
		}
	}
	if len(seen) != rep.Contacts {
		t.Errorf("the replicas hold %d contacts, the report says %d", len(seen), rep.Contacts)
	}

	// The same seed replays the same field work.
	again := simulate(t.TempDir(), "--code", r.code(t, r.team), "--enroll-code", r.code(t, r.clinic))
	if again.simCounts != rep.simCounts {
		t.Errorf("the same seed recorded %+v, then %+v", rep.simCounts, again.simCounts)
	}

	// A used code fails the simulation.
	if _, _, err := run("simulate", "--server", r.url, "--devices", "1", "--days", "1", "--code", clinicCode); !errors.Is(err, brygga.ErrEnrolCode) {
		t.Errorf("simulate with a used code: %v", err)
	}

	// With a manager's login, simulate makes the codes itself: for the
	// manager's unit, the password read from standard input.
	if _, err := r.srv.AddUser(ctx, "chef.ostersund", "ett långt lösenord", server.RoleManager, uuid.Nil, r.team.ID); err != nil {
		t.Fatal(err)
	}
	before, _ := r.srv.DevicesOf(ctx, uuid.Nil)
	withLogin := func(password string, extra ...string) (string, error) {
		var out, errOut bytes.Buffer
		args := append([]string{"simulate", "--server", r.url, "--devices", "3", "--days", "1", "--login", "chef.ostersund", "--json"}, extra...)
		err := Run(ctx, args, strings.NewReader(password), &out, &errOut)
		return out.String(), err
	}
	out, err := withLogin("ett långt lösenord\n")
	if err != nil {
		t.Fatalf("simulate --login: %v", err)
	}
	var byLogin simReport
	if err := json.Unmarshal([]byte(out), &byLogin); err != nil || byLogin.Contacts == 0 || byLogin.Pending != 0 {
		t.Errorf("simulate --login reported %q (%v)", out, err)
	}
	after, _ := r.srv.DevicesOf(ctx, uuid.Nil)
	added := 0
	for _, d := range after {
		if !slices.ContainsFunc(before, func(b server.DeviceInfo) bool { return b.ID == d.ID }) {
			added++
			if d.UnitID != r.team.ID {
				t.Errorf("simulate --login enrolled a device in unit %s, want the manager's %s", d.UnitID, r.team.ID)
			}
		}
	}
	if added != 3 {
		t.Errorf("simulate --login enrolled %d devices, want 3", added)
	}
	if _, err := withLogin("a wrong password\n"); !errors.Is(err, brygga.ErrUnauthorized) {
		t.Errorf("simulate --login with a wrong password: %v", err)
	}
	if _, err := withLogin(""); !errors.Is(err, errUsage) {
		t.Errorf("simulate --login without a password: %v", err)
	}
}

func TestSimulateText(t *testing.T) {
	r := startRegion(t)
	out := must(t, "simulate", "--server", r.url, "--devices", "1", "--days", "1", "--code", r.code(t, r.team))
	for _, want := range []string{"records made", "synced", "0 rejected", "seconds"} {
		if !strings.Contains(out, want) {
			t.Errorf("simulate printed %q, without %q", out, want)
		}
	}
}

func TestProgressBar(t *testing.T) {
	if got := renderBar(brygga.Progress{Phase: "push", Done: 5, Total: 10}, 10); got != "push [#####.....] 5/10" {
		t.Errorf("half way: %q", got)
	}
	if got := renderBar(brygga.Progress{Phase: "pull", Done: 0, Total: 0}, 4); got != "pull [####] 0/0" {
		t.Errorf("nothing to do: %q", got)
	}
	var buf bytes.Buffer
	b := &progressBar{w: &buf, width: 4}
	b.update(brygga.Progress{Phase: "push", Done: 0, Total: 2})
	b.update(brygga.Progress{Phase: "push", Done: 2, Total: 2})
	b.update(brygga.Progress{Phase: "pull", Done: 1, Total: 1})
	b.finish()
	if got := buf.String(); strings.Count(got, "\n") != 2 || strings.Count(got, "\r") != 3 || !strings.Contains(got, "push [####] 2/2") {
		t.Errorf("bar drew %q", got)
	}
	if isTerminal(&buf) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}
