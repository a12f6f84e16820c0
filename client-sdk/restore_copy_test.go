package brygga_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/brygga/brygga/schema"
)

// TestRestoreByCopy: the server's database is put back to an older copy
// by copying the file (no bryggad restore, so the epoch stays). Tablets
// that pushed after the copy and pulled, that pushed after the copy but
// whose pull was cut, that only pulled after the copy (while another
// tablet's pushes to the restored server number changes past its cursor),
// that hold records not pushed yet, and one that saw nothing after the
// copy, each sync: the server holds every record any of them made exactly
// once, and every tablet holds what the server holds.
func TestRestoreByCopy(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	cut, via := startCutter(t, r.url())
	mk := func() *tabletT { return &tabletT{c: r.device(via, r.team, r.teamStaf), unit: r.team} }
	pushedPulled, pushedCut, pulledOnly, pending, quiet := mk(), mk(), mk(), mk(), mk()
	clinic := &tabletT{c: r.device(via, r.clinic, r.clinStaf), unit: r.clinic}
	tablets := []*tabletT{pushedPulled, pushedCut, pulledOnly, pending, quiet, clinic}
	for _, tb := range tablets {
		tb.made = addN(t, tb.c, 2)
		if err := tb.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, tb := range tablets {
		if err := tb.c.Sync(ctx); err != nil { // everyone has everyone's
			t.Fatal(err)
		}
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	epoch := r.srv.Epoch()
	r.snapshot(copyPath)

	// After the copy.
	ref := &schema.Referral{ContactID: pushedPulled.made[0], Service: schema.ServiceAddictionClinic, ToUnitID: r.clinic.ID, Status: schema.StatusSent}
	if err := pushedPulled.c.Add(ctx, ref); err != nil {
		t.Fatal(err)
	}
	pushedPulled.made = append(pushedPulled.made, addN(t, pushedPulled.c, 3)...)
	if err := pushedPulled.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	pending.made = append(pending.made, addN(t, pending.c, 2)...)
	if err := pending.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pulledOnly.c.Sync(ctx); err != nil { // its cursor moves past the copy's
		t.Fatal(err)
	}
	if err := clinic.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := clinic.c.SetReferralStatus(ctx, ref.ID, schema.StatusReceived); err != nil {
		t.Fatal(err)
	}
	if err := clinic.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	pushedCut.made = append(pushedCut.made, addN(t, pushedCut.c, 3)...)
	cut.path.Store("/v1/sync/pull")
	cut.cut.Store(5) // the transport sends an idempotent request again once
	if err := pushedCut.c.Sync(ctx); err == nil {
		t.Fatal("a sync whose pull was cut succeeded")
	}
	cut.path.Store("")
	cut.cut.Store(0)
	if st, _ := pushedCut.c.Status(ctx); st.Pending != 0 {
		t.Fatalf("%d pending after the push", st.Pending)
	}
	pending.made = append(pending.made, addN(t, pending.c, 3)...) // not pushed yet

	r.restoreByHand(copyPath)
	if got := r.srv.Epoch(); got != epoch {
		t.Fatalf("the copy's epoch is %s, the server's was %s", got, epoch)
	}

	// The tablet with pending records goes first: its push heals the
	// server and moves the restored server's change sequence past the
	// cursors of the others.
	order := []*tabletT{pending, pulledOnly, pushedPulled, pushedCut, clinic, quiet}
	for round := range 2 {
		for _, tb := range order {
			if err := tb.c.Sync(ctx); err != nil {
				t.Fatalf("round %d: sync of %s: %v", round, tb.c.DeviceID(), err)
			}
		}
	}
	r.checkHealed(t, tablets)
	got, err := r.srv.Record(ctx, schema.KindReferral, ref.ID)
	if err != nil || got.(*schema.Referral).Status != schema.StatusReceived {
		t.Errorf("the referral after the restore: %+v %v", got, err)
	}
	for _, tb := range tablets {
		if st, _ := tb.c.Status(ctx); st.Pending != 0 || len(st.Rejected) != 0 || st.HealRefused != 0 {
			t.Errorf("status of %s: %+v", tb.c.DeviceID(), st)
		}
	}
	// Heals happened, without a new epoch.
	healed := 0
	entries, _ := r.srv.Audit(ctx, 0, 100000)
	for _, e := range entries {
		if e.Action == "heal" {
			healed++
		}
	}
	if healed == 0 {
		t.Error("no tablet healed the server")
	}
}
