package brygga_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// addN records n contacts on c and returns their ids.
func addN(t *testing.T, c *brygga.Client, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for range n {
		x := contact(schema.SettingStreet)
		if err := c.Add(context.Background(), x); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, x.ID)
	}
	return ids
}

// TestRetiredDeviceSendsEverythingThenWipes: a tablet retired with a day
// of unsynced work, one record of which the server rejects, sends all of
// it, is never stuck, and wipes its replica once its outbox is empty;
// nothing it held is lost.
func TestRetiredDeviceSendsEverythingThenWipes(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	dir := t.TempDir()
	// The tablet's clock is three days ahead: it accepts a contact two and
	// a half days ahead of the server's clock, which the server rejects.
	ahead := func() time.Time { return time.Now().Add(72 * time.Hour) }
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	c, err := brygga.Open(ctx, filepath.Join(dir, "tablet.db"), &brygga.Options{Now: ahead, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Enroll(ctx, r.url(), code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetStaff(ctx, r.teamStaf.ID)
	ids := addN(t, c, 5)
	bad := contact(schema.SettingStreet)
	bad.OccurredAt = time.Now().Add(60 * time.Hour).UTC().Truncate(time.Millisecond)
	if err := c.Add(ctx, bad); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, addN(t, c, 2)...)

	if err := r.srv.RetireDevice(ctx, c.DeviceID(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRetired) {
		t.Fatalf("sync of a retired device: %v", err)
	}
	if n := r.count(t, schema.KindContact, ids); n != len(ids) {
		t.Errorf("the server holds %d of the retired tablet's %d records", n, len(ids))
	}
	if n := r.count(t, schema.KindContact, []uuid.UUID{bad.ID}); n != 0 {
		t.Errorf("the rejected record was stored")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("replica files left after the retirement: %v", entries)
	}
	st, _ := c.Status(ctx)
	if st.Enrolled || st.LastError != brygga.ErrRetired.Error() {
		t.Errorf("status after the retirement: %+v", st)
	}
	d, err := r.srv.Device(ctx, uuid.Nil, st.DeviceID)
	if err == nil && d.State != "retired" {
		t.Errorf("device state %q", d.State)
	}
}

// TestRetirementNoticedMidSync: the device is retired while a sync pushes
// its first batch, and the worker records once more in that moment: all
// of it reaches the server before the replica is wiped, and recording
// after the retirement is noticed is refused, never silently dropped.
func TestRetirementNoticedMidSync(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	var c *brygga.Client
	var once sync.Once
	var late []uuid.UUID
	opts := &brygga.Options{PushBatch: 2, HTTPClient: &http.Client{Timeout: 10 * time.Second}, OnProgress: func(p brygga.Progress) {
		if p.Phase != "push" || p.Done == 0 {
			return
		}
		once.Do(func() {
			if err := r.srv.RetireDevice(ctx, c.DeviceID(), "test"); err != nil {
				t.Error(err)
			}
			x := contact(schema.SettingFixedSite)
			if err := c.Add(ctx, x); err != nil {
				t.Error(err)
			}
			late = append(late, x.ID)
		})
	}}
	c = r.deviceWith(r.url(), r.team, r.teamStaf, opts)
	ids := addN(t, c, 7)
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRetired) {
		t.Fatalf("sync: %v", err)
	}
	all := append(ids, late...)
	if len(late) != 1 || r.count(t, schema.KindContact, all) != len(all) {
		t.Errorf("the server holds %d of %d records", r.count(t, schema.KindContact, all), len(all))
	}
	if err := c.Add(ctx, contact(schema.SettingStreet)); !errors.Is(err, brygga.ErrNotEnrolled) {
		t.Errorf("recording after the wipe: %v", err)
	}
}

// TestRetiredWhileAway: a tablet retired while it cannot reach the server
// keeps everything; when it reaches the server again (the app restarted
// meanwhile) it sends all of it and is wiped.
func TestRetiredWhileAway(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	path := filepath.Join(t.TempDir(), "tablet.db")
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	c, _ := brygga.Open(ctx, path, nil)
	if err := c.Enroll(ctx, r.url(), code.Code); err != nil {
		t.Fatal(err)
	}
	c.Sync(ctx)
	c.SetStaff(ctx, r.teamStaf.ID)
	ids := addN(t, c, 3)
	if err := r.srv.RetireDevice(ctx, c.DeviceID(), "test"); err != nil {
		t.Fatal(err)
	}
	r.stop()
	if err := c.Sync(ctx); err == nil || errors.Is(err, brygga.ErrRetired) {
		t.Fatalf("sync with the server away: %v", err)
	}
	if st, _ := c.Status(ctx); !st.Enrolled || st.Pending != 3 {
		t.Errorf("status with the server away: %+v", st)
	}
	c.Close()
	r.restart()
	c, _ = brygga.Open(ctx, path, nil)
	defer c.Close()
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRetired) {
		t.Fatalf("sync: %v", err)
	}
	if n := r.count(t, schema.KindContact, ids); n != len(ids) {
		t.Errorf("the server holds %d of %d records", n, len(ids))
	}
}

// TestLostDeviceIsWipedAndNothingAccepted: a tablet revoked as lost or
// stolen is wiped at its next contact and none of its unsent records is
// accepted.
func TestLostDeviceIsWipedAndNothingAccepted(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	c := r.device(r.url(), r.team, r.teamStaf)
	synced := addN(t, c, 2)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	unsent := addN(t, c, 3)
	if err := r.srv.RetireDevice(ctx, c.DeviceID(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.RevokeDevice(ctx, c.DeviceID(), "test"); err != nil { // lost overrides retired
		t.Fatal(err)
	}
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRevoked) {
		t.Fatalf("sync of a lost device: %v", err)
	}
	if r.count(t, schema.KindContact, synced) != 2 || r.count(t, schema.KindContact, unsent) != 0 {
		t.Errorf("the server holds %d synced and %d unsent records of the lost tablet", r.count(t, schema.KindContact, synced), r.count(t, schema.KindContact, unsent))
	}
	if c.Enrolled() {
		t.Error("the lost tablet's replica is still there")
	}
	if err := r.srv.RetireDevice(ctx, c.DeviceID(), "test"); err == nil {
		t.Error("a lost device was retired")
	}
}

// restore stops the server, puts the copy in place of its database with a
// new epoch, as bryggad restore does, and starts it again.
func (r *region) restore(copyPath string) {
	r.t.Helper()
	r.stop()
	for _, p := range []string{r.db, r.db + "-wal", r.db + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.t.Fatal(err)
		}
	}
	copyFileT(r.t, r.db, copyPath)
	if _, err := replica.NewEpoch(context.Background(), r.db, "restored_at", time.Now()); err != nil {
		r.t.Fatal(err)
	}
	r.restart()
}

// tablet is a device of the test with the records it made.
type tabletT struct {
	c    *brygga.Client
	unit *schema.Unit
	made []uuid.UUID
}

// syncHealed syncs a tablet; one the restored server does not know is
// enrolled again with a new code of its unit, keeping its replica.
func (r *region) syncHealed(t *testing.T, tb *tabletT) {
	t.Helper()
	ctx := context.Background()
	err := tb.c.Sync(ctx)
	if errors.Is(err, brygga.ErrUnknownDevice) {
		if !tb.c.Enrolled() {
			t.Fatal("the unknown device's replica was wiped")
		}
		code, cerr := r.srv.NewEnrolCode(ctx, tb.unit.ID, "test")
		if cerr != nil {
			t.Fatal(cerr)
		}
		if err := tb.c.Reenroll(ctx, code.Code); err != nil {
			t.Fatalf("re-enrolment: %v", err)
		}
		err = tb.c.Sync(ctx)
	}
	if err != nil {
		t.Fatalf("sync of %s: %v", tb.c.DeviceID(), err)
	}
}

// checkHealed checks that the server holds every record the tablets made
// and hold, exactly once, and that each tablet holds what the server has.
func (r *region) checkHealed(t *testing.T, tablets []*tabletT) {
	t.Helper()
	ctx := context.Background()
	seen := map[uuid.UUID]bool{}
	for _, tb := range tablets {
		for _, id := range tb.made {
			if seen[id] {
				t.Fatalf("record %s made twice", id)
			}
			seen[id] = true
			srv, err := r.srv.Record(ctx, schema.KindContact, id)
			if err != nil {
				t.Errorf("record %s of %s: %v", id, tb.c.DeviceID(), err)
				continue
			}
			for _, other := range tablets {
				if other.unit.ID != tb.unit.ID {
					continue
				}
				got, err := other.c.Get(ctx, schema.KindContact, id)
				if err != nil || !reflect.DeepEqual(got, srv) {
					t.Errorf("tablet %s holds %+v (%v), the server %+v", other.c.DeviceID(), got, err, srv)
				}
			}
		}
	}
	db, err := sql.Open("sqlite3", "file:"+r.db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM contacts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(seen) {
		t.Errorf("the server holds %d contacts, the tablets made %d", n, len(seen))
	}
}

// TestRestoredServerIsHealed: tablets record and push; a backup is taken
// while they push; more is pushed, and a tablet is enrolled; the server's
// database is restored from the backup. Every tablet syncs: the server
// holds every record any tablet holds, exactly once (the referral's status
// set after the backup too), no tablet is stranded, and each converges to
// the server.
func TestRestoredServerIsHealed(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	a := &tabletT{c: r.device(r.url(), r.team, r.teamStaf), unit: r.team}
	b := &tabletT{c: r.device(r.url(), r.team, r.teamStaf), unit: r.team}
	clinic := &tabletT{c: r.device(r.url(), r.clinic, r.clinStaf), unit: r.clinic}
	tablets := []*tabletT{a, b, clinic}
	a.made = addN(t, a.c, 3)
	b.made = addN(t, b.c, 2)
	ref := &schema.Referral{ContactID: a.made[0], Service: schema.ServiceAddictionClinic, ToUnitID: r.clinic.ID, Status: schema.StatusSent}
	if err := a.c.Add(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tablets {
		if err := tb.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The backup, while a tablet pushes.
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			a.made = append(a.made, addN(t, a.c, 2)...)
			if err := a.c.Sync(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	if _, err := r.srv.Backup(ctx, copyPath); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	// After the backup: more pushed, the referral received, a new tablet.
	a.made = append(a.made, addN(t, a.c, 3)...)
	b.made = append(b.made, addN(t, b.c, 4)...)
	if err := clinic.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := clinic.c.SetReferralStatus(ctx, ref.ID, schema.StatusReceived); err != nil {
		t.Fatal(err)
	}
	late := &tabletT{c: r.device(r.url(), r.team, r.teamStaf), unit: r.team}
	late.made = addN(t, late.c, 2)
	tablets = append(tablets, late)
	for _, tb := range tablets {
		if err := tb.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// And some not pushed yet.
	a.made = append(a.made, addN(t, a.c, 2)...)
	late.made = append(late.made, addN(t, late.c, 1)...)

	r.restore(copyPath)

	if err := late.c.Sync(ctx); !errors.Is(err, brygga.ErrUnknownDevice) || !late.c.Enrolled() {
		t.Fatalf("sync of a tablet enrolled after the backup: %v (enrolled %v)", err, late.c.Enrolled())
	}
	for round := range 2 {
		for _, tb := range tablets {
			r.syncHealed(t, tb)
		}
		_ = round
	}
	r.checkHealed(t, tablets)
	got, err := r.srv.Record(ctx, schema.KindReferral, ref.ID)
	if err != nil || got.(*schema.Referral).Status != schema.StatusReceived {
		t.Errorf("the referral after the restore: %+v %v", got, err)
	}
	// Pushing goes on as before: no tablet is stranded.
	for _, tb := range tablets {
		tb.made = append(tb.made, addN(t, tb.c, 1)...)
		if err := tb.c.Sync(ctx); err != nil {
			t.Fatalf("sync after healing: %v", err)
		}
	}
	for _, tb := range tablets {
		if err := tb.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := tb.c.Status(ctx); st.Pending != 0 || len(st.Rejected) != 0 || st.HealRefused != 0 {
			t.Errorf("status of %s: %+v", tb.c.DeviceID(), st)
		}
	}
	r.checkHealed(t, tablets)
}

// TestRestoreSchedules runs random schedules of recording, syncing,
// backups, restores from any earlier backup, restarts of the server (some
// while a tablet syncs) and enrolments: at the end every tablet syncs (none stranded), the server
// holds every record made, once, and every tablet holds what the server
// has.
func TestRestoreSchedules(t *testing.T) {
	seeds, steps := 6, 30
	if testing.Short() {
		seeds, steps = 3, 16
	}
	if n, err := strconv.Atoi(os.Getenv("BRYGGA_RESTORES")); err == nil && n > 0 {
		seeds = n // more schedules, for a longer run
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(seed), 7))
			ctx := context.Background()
			r := startRegion(t)
			dir := t.TempDir()
			tablets := []*tabletT{
				{c: r.device(r.url(), r.team, r.teamStaf), unit: r.team},
				{c: r.device(r.url(), r.team, r.teamStaf), unit: r.team},
			}
			var copies []string
			for step := range steps {
				tb := tablets[rnd.IntN(len(tablets))]
				switch op := rnd.IntN(10); {
				case op < 4:
					tb.made = append(tb.made, addN(t, tb.c, 1+rnd.IntN(3))...)
				case op < 6:
					r.syncHealed(t, tb)
				case op == 6:
					p := filepath.Join(dir, fmt.Sprintf("copy-%d.db", step))
					if _, err := r.srv.Backup(ctx, p); err != nil {
						t.Fatal(err)
					}
					copies = append(copies, p)
				case op == 7 && len(copies) > 0:
					r.restore(copies[rnd.IntN(len(copies))])
				case op == 8:
					// The server stops, sometimes while a tablet syncs.
					done := make(chan struct{})
					go func() {
						defer close(done)
						if rnd2 := step % 2; rnd2 == 0 {
							tb.c.Sync(ctx) // may fail: the server goes away
						}
					}()
					r.stop()
					<-done
					r.restart()
				case op == 9 && len(tablets) < 4:
					tablets = append(tablets, &tabletT{c: r.device(r.url(), r.team, r.teamStaf), unit: r.team})
				}
			}
			for range 2 {
				for _, tb := range tablets {
					r.syncHealed(t, tb)
				}
			}
			r.checkHealed(t, tablets)
		})
	}
}

// TestReenrollKeepsRecords: a replica enrolled again keeps its records and
// sends them, its unsent ones included; a code of another unit is refused
// and leaves the records for an enrolment with a code of the unit.
func TestReenrollKeepsRecords(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	path := filepath.Join(t.TempDir(), "tablet.db")
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	c, _ := brygga.Open(ctx, path, nil)
	defer func() { c.Close() }()
	if err := c.Enroll(ctx, r.url(), code.Code); err != nil {
		t.Fatal(err)
	}
	c.Sync(ctx)
	c.SetStaff(ctx, r.teamStaf.ID)
	synced := addN(t, c, 2)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	unsent := addN(t, c, 3)
	old := c.DeviceID()

	wrong, _ := r.srv.NewEnrolCode(ctx, r.clinic.ID, "test")
	if err := c.Reenroll(ctx, wrong.Code); !errors.Is(err, replica.ErrIdentity) || c.Enrolled() {
		t.Fatalf("re-enrolment with another unit's code: %v (enrolled %v)", err, c.Enrolled())
	}
	c.Close()
	c, _ = brygga.Open(ctx, path, nil)
	if c.Enrolled() {
		t.Fatal("the replica has an id after a refused enrolment")
	}
	right, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	if err := c.Enroll(ctx, r.url(), right.Code); err != nil {
		t.Fatal(err)
	}
	if c.DeviceID() == old {
		t.Error("the device kept its old id")
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	all := append(synced, unsent...)
	if n := r.count(t, schema.KindContact, all); n != len(all) {
		t.Errorf("the server holds %d of the %d records", n, len(all))
	}
	for _, id := range all {
		if _, err := c.Get(ctx, schema.KindContact, id); err != nil {
			t.Errorf("record %s after the re-enrolment: %v", id, err)
		}
	}
	// New records go on under the new id (the app sets the staff member
	// again on a Client opened without an enrolment).
	c.SetStaff(ctx, r.teamStaf.ID)
	more := addN(t, c, 1)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.count(t, schema.KindContact, more); n != 1 {
		t.Error("a record made after the re-enrolment did not reach the server")
	}
	if st, _ := c.Status(ctx); st.Pending != 0 || len(st.Rejected) != 0 {
		t.Errorf("status: %+v", st)
	}
}
