package main

import (
	"context"
	"strings"
	"testing"
)

// TestReenroll: brygga reenroll enrols the replica again under a new id and
// sends its records, the unsent one included.
func TestReenroll(t *testing.T) {
	r := startRegion(t)
	db, _ := r.enroll(t, r.team)
	before := status(t, db).DeviceID
	contact := mustID(t, "--db", db, "contact", "--setting", "street")
	out := must(t, "--db", db, "reenroll", r.code(t, r.team))
	after := status(t, db)
	if after.DeviceID == before || !strings.Contains(out, after.DeviceID.String()) || !strings.Contains(out, "records sent") || after.Pending != 0 {
		t.Errorf("reenroll printed %q; status %+v", out, after)
	}
	if _, err := r.srv.Record(context.Background(), "contacts", contact); err != nil {
		t.Errorf("the contact recorded before the re-enrolment: %v", err)
	}
	if _, _, err := run("--db", db, "reenroll"); exitCode(err) != 2 {
		t.Errorf("reenroll without a code: %v", err)
	}
}
