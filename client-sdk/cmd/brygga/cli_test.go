package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// TestOfflineSync syncs with the server gone: sync says it will sync when
// the server can be reached, exits with status 3 and keeps every record.
func TestOfflineSync(t *testing.T) {
	r := startRegion(t)
	db, _ := r.enroll(t, r.team)
	mustID(t, "--db", db, "contact", "--setting", "street")
	mustID(t, "--db", db, "contact", "--setting", "shelter")
	if err := r.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	out, _, err := run("--db", db, "sync")
	if !errors.Is(err, errOffline) || exitCode(err) != exitOffline {
		t.Fatalf("sync without the server: %v (status %d)", err, exitCode(err))
	}
	if want := "offline: will sync when the server can be reached (2 changes waiting on this device)"; err.Error() != want || out != "" {
		t.Errorf("sync without the server printed %q and the error %q, want the error %q", out, err, want)
	}
	out, _, err = run("--db", db, "sync", "--json")
	var res syncResult
	if exitCode(err) != exitOffline || json.Unmarshal([]byte(out), &res) != nil || !res.Offline || res.Pending != 2 || res.Rejected == nil {
		t.Errorf("sync --json without the server: %v, printed %q", err, out)
	}
	if st := status(t, db); st.Pending != 2 {
		t.Errorf("pending after the failed syncs: %d, want 2", st.Pending)
	}
	// Enrolling another device cannot reach the server either.
	_, _, err = run("--db", db+"2", "enroll", r.url, "AAAA-AAAA-AAAA")
	if exitCode(err) != exitOffline || !strings.HasPrefix(err.Error(), "offline: ") {
		t.Errorf("enroll without the server: %v (status %d)", err, exitCode(err))
	}
}

// TestOneErrorPrefix checks that the errors a worker meets carry no
// "brygga:" of their own: main prints the only one.
func TestOneErrorPrefix(t *testing.T) {
	r := startRegion(t)
	db, _ := r.enroll(t, r.team)
	ref := mustID(t, "--db", db, "refer", "--service", "addiction_clinic", "--to", r.clinic.ID.String())
	must(t, "--db", db, "referral-status", "--id", ref.String(), "--status", "attended")
	for name, args := range map[string][]string{
		"used enrolment code":  {"--db", db + "2", "enroll", r.url, "AAAA-AAAA-AAAA"},
		"already enrolled":     {"--db", db, "enroll", r.url, "AAAA-AAAA-AAAA"},
		"not enrolled":         {"--db", db + "3", "contact"},
		"another unit's staff": {"--db", db, "staff", "--set", r.nurses[0].ID.String()},
		"status backwards":     {"--db", db, "referral-status", "--id", ref.String(), "--status", "received"},
		"invalid record":       {"--db", db, "contact", "--setting", "moon"},
		"no such record":       {"--db", db, "void", "--kind", "contact", "--id", ref.String()},
		"usage":                {"--db", db, "list", "clients"},
	} {
		_, _, err := run(args...)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "brygga:") {
			t.Errorf("%s: %q repeats the prefix main prints", name, msg)
		}
	}
}

// TestReadableOutput checks list's headers, times in the local zone with
// the zone shown, --json where a script wants it, and contacts that take
// the client's gender and age band.
func TestReadableOutput(t *testing.T) {
	r := startRegion(t)
	db, out := r.enroll(t, r.team, "--json")
	var enr enrolment
	if err := json.Unmarshal([]byte(out), &enr); err != nil || enr.UnitID != r.team.ID || len(enr.Staff) != 1 || !enr.Staff[0].Current {
		t.Fatalf("enroll --json printed %q (%v)", out, err)
	}
	var cl schema.Client
	if err := json.Unmarshal([]byte(must(t, "--db", db, "client", "new", "--gender", "man", "--birth-year", "1988", "--json")), &cl); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	withClient := mustID(t, "--db", db, "contact", "--client", strings.ToLower(string(cl.Code)), "--at", at.Format(time.RFC3339))
	overridden := mustID(t, "--db", db, "contact", "--client", string(cl.Code), "--gender", "not_stated", "--at", at.Format(time.RFC3339))
	stranger := "7K3M-QX2D-V"
	if _, err := schema.ParseClientCode(stranger); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run("--db", db, "contact", "--client", stranger, "--at", at.Format(time.RFC3339))
	if err != nil || !strings.Contains(stderr, "not on this device") {
		t.Errorf("a contact with a client the device does not hold: %v, %q", err, stderr)
	}
	anonymous := mustID(t, "--db", db, "contact", "--at", at.Format(time.RFC3339))

	var contacts []*schema.Contact
	if err := json.Unmarshal([]byte(must(t, "--db", db, "list", "contacts", "--json")), &contacts); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		withClient.String(): {"man", "30_39"}, overridden.String(): {"not_stated", "30_39"}, anonymous.String(): {"not_stated", "not_stated"},
	}
	for _, c := range contacts {
		if w, ok := want[c.ID.String()]; ok && (string(c.Gender) != w[0] || string(c.AgeBand) != w[1]) {
			t.Errorf("contact %s: %s, %s; want %v", c.ID, c.Gender, c.AgeBand, w)
		}
		if c.ClientCode == schema.ClientCode(stranger) && (c.Gender != schema.GenderNotStated || c.AgeBand != schema.AgeNotStated) {
			t.Errorf("contact with an unknown client: %s, %s", c.Gender, c.AgeBand)
		}
	}
	if len(contacts) != 4 {
		t.Errorf("%d contacts listed, want 4", len(contacts))
	}

	lines := strings.Split(strings.TrimSpace(must(t, "--db", db, "list", "contacts")), "\n")
	when := at.Local().Format("2006-01-02 15:04 MST")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "CONTACT ID") || !strings.Contains(lines[0], "WHEN") || !strings.Contains(lines[1], when) {
		t.Errorf("list contacts printed %q, want a header and times such as %q", lines, when)
	}
	if at.Local().Format("MST") == "" {
		t.Error("the local zone has no name to show")
	}
	if out := must(t, "--db", db, "list", "units"); !strings.HasPrefix(out, "UNIT ID") {
		t.Errorf("list units printed %q", out)
	}
	if out := must(t, "--db", db, "list", "referrals"); out != "no referrals\n" {
		t.Errorf("list referrals printed %q", out)
	}
	var staff []staffMember
	if err := json.Unmarshal([]byte(must(t, "--db", db, "staff", "--json")), &staff); err != nil || len(staff) != 1 || staff[0].ID != r.staff.ID || !staff[0].Current {
		t.Errorf("staff --json: %+v (%v)", staff, err)
	}
	var res syncResult
	if err := json.Unmarshal([]byte(must(t, "--db", db, "sync", "--json")), &res); err != nil || res.Offline || res.Pushed != 5 || res.Pending != 0 || res.LastSync == nil {
		t.Errorf("sync --json: %+v (%v)", res, err)
	}
	var hist brygga.History
	if err := json.Unmarshal([]byte(must(t, "--db", db, "client", "show", string(cl.Code), "--json")), &hist); err != nil || len(hist.Contacts) != 2 {
		t.Errorf("client show --json: %+v (%v)", hist, err)
	}
	if out := must(t, "--db", db, "status"); !strings.Contains(out, time.Now().Format("MST")) && !strings.Contains(out, time.Now().Local().Format("MST")) {
		t.Errorf("status shows the last sync without its zone: %q", out)
	}
}
