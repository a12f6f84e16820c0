package brygga_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// movableDevice enrols a device of unit through url whose clock the test
// moves: moving it past the access token's 15 minutes makes the SDK ask
// the token endpoint again.
func (r *region) movableDevice(url string, unit *schema.Unit, staff *schema.Staff) (*brygga.Client, *atomic.Int64) {
	r.t.Helper()
	var ahead atomic.Int64
	c := r.deviceWith(url, unit, staff, &brygga.Options{HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	return c, &ahead
}

// tokenAnswers counts the token endpoint's answers by code in the audit
// log ("ok" for none).
func tokenAnswers(t *testing.T, r *region, device uuid.UUID) map[string]int {
	t.Helper()
	entries, err := r.srv.Audit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		if e.Action == "token" && e.Actor == "device:"+device.String() {
			out[e.Outcome]++
		}
	}
	return out
}

// TestRetiredDeviceAuthenticates: a retired device whose access token
// expired gets a new one at the token endpoint, pushes everything it
// holds, is answered device_retired at pull, and is wiped once its outbox
// is empty; every record it made is on the server once.
func TestRetiredDeviceAuthenticates(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	c, ahead := r.movableDevice(r.url(), r.team, r.teamStaf)
	synced := addN(t, c, 2)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	unsent := addN(t, c, 5)
	id := c.DeviceID()
	if err := r.srv.RetireDevice(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	ahead.Store(int64(20 * time.Minute)) // the access token has expired
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRetired) {
		t.Fatalf("sync of a retired device: %v", err)
	}
	if c.Enrolled() {
		t.Error("the retired tablet's replica is still there")
	}
	all := append(synced, unsent...)
	if n := r.count(t, schema.KindContact, all); n != len(all) {
		t.Errorf("the server holds %d of the retired tablet's %d records", n, len(all))
	}
	if got := tokenAnswers(t, r, id); len(got) != 0 {
		// Its token requests after the retirement (its own clock said
		// the token had expired) were all granted.
		t.Errorf("refused token requests of the retired device: %v", got)
	}
	devs, _ := r.srv.DevicesOf(ctx, uuid.Nil)
	for _, d := range devs {
		if d.ID == id && d.RetiredAt == nil {
			t.Errorf("device %s is not retired any more", id)
		}
	}
}

// TestLostDeviceRefusedEverywhere: a device revoked as lost is answered
// device_revoked at the token endpoint (its access token expired), at a
// repeated enrolment (the same code and key, with a new proof) and at
// sync with a still valid token; each wipes the replica.
func TestLostDeviceRefusedEverywhere(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)

	// At the token endpoint.
	c, ahead := r.movableDevice(r.url(), r.team, r.teamStaf)
	addN(t, c, 1)
	id := c.DeviceID()
	if err := r.srv.RevokeDevice(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	ahead.Store(int64(20 * time.Minute))
	if err := c.Sync(ctx); !errors.Is(err, brygga.ErrRevoked) || c.Enrolled() {
		t.Fatalf("sync of a lost device whose token expired: %v (enrolled %v)", err, c.Enrolled())
	}
	if got := tokenAnswers(t, r, id); got[string(wire.CodeDeviceRevoked)] == 0 {
		t.Errorf("token answers of the lost device: %v", got)
	}

	// At sync, with a valid token.
	c2 := r.device(r.url(), r.team, r.teamStaf)
	unsent := addN(t, c2, 2)
	id2 := c2.DeviceID()
	r.srv.RevokeDevice(ctx, id2, "test")
	if err := c2.Sync(ctx); !errors.Is(err, brygga.ErrRevoked) || c2.Enrolled() {
		t.Fatalf("sync of a lost device: %v", err)
	}
	if n := r.count(t, schema.KindContact, unsent); n != 0 {
		t.Errorf("the server took %d records of a lost device", n)
	}

	// At a repeated enrolment: the answer was lost, the manager revoked
	// the device that appeared, the tablet enrols again with the code.
	cut, via := startCutter(t, r.url())
	cut.path.Store(wire.EnrolPath)
	cut.cut.Store(1)
	path := filepath.Join(t.TempDir(), "t.db")
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	c3, _ := brygga.Open(ctx, path, nil)
	defer c3.Close()
	if err := c3.Enroll(ctx, via, code.Code); err == nil {
		t.Fatal("enrolled although the answer was lost")
	}
	devs, _ := r.srv.DevicesOf(ctx, uuid.Nil)
	var appeared uuid.UUID
	for _, d := range devs {
		if d.ID != id && d.ID != id2 {
			appeared = d.ID
		}
	}
	if err := r.srv.RevokeDevice(ctx, appeared, "test"); err != nil {
		t.Fatal(err)
	}
	if err := c3.Enroll(ctx, via, code.Code); !errors.Is(err, brygga.ErrRevoked) {
		t.Fatalf("enrolment again of a lost device: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lost device's key is still on the tablet: %v", err)
	}
}

// TestUnknownDeviceAtTheTokenEndpoint: a server restored from a copy
// older than a tablet's enrolment, whose access token has expired: the
// token endpoint answers device_unknown (not unauthorized, which the SDK
// would retry for ever), Sync returns ErrUnknownDevice and keeps the
// replica, the background loop stops, and Reenroll with a new code, whose
// answer is lost once, brings every record to the server exactly once.
func TestUnknownDeviceAtTheTokenEndpoint(t *testing.T) {
	ctx := context.Background()
	for _, newEpoch := range []bool{true, false} {
		r := startRegion(t)
		cut, via := startCutter(t, r.url())
		old := &tabletT{c: r.device(via, r.team, r.teamStaf), unit: r.team}
		old.made = addN(t, old.c, 2)
		if err := old.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(t.TempDir(), "copy.db")
		if newEpoch {
			if _, err := r.srv.Backup(ctx, copyPath); err != nil {
				t.Fatal(err)
			}
		} else {
			r.snapshot(copyPath)
		}
		c, ahead := r.movableDevice(via, r.team, r.teamStaf)
		late := &tabletT{c: c, unit: r.team}
		late.made = addN(t, c, 3)
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		late.made = append(late.made, addN(t, c, 2)...) // not pushed
		if newEpoch {
			r.restore(copyPath)
		} else {
			r.restoreByHand(copyPath)
		}
		ahead.Store(int64(20 * time.Minute))
		for range 3 {
			err := c.Sync(ctx)
			if !errors.Is(err, brygga.ErrUnknownDevice) {
				t.Fatalf("new epoch %v: sync of a device the server does not know: %v", newEpoch, err)
			}
			var ae *brygga.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
				t.Errorf("new epoch %v: %v", newEpoch, err)
			}
		}
		if !c.Enrolled() {
			t.Fatal("the unknown device's replica was wiped")
		}
		for _, id := range late.made {
			if _, err := c.Get(ctx, schema.KindContact, id); err != nil {
				t.Errorf("record %s on the unknown device: %v", id, err)
			}
		}
		// The background loop stops on it rather than retrying.
		c.Start()
		c.SyncNow()
		stopped := make(chan struct{})
		go func() { c.Stop(); close(stopped) }()
		<-stopped

		// Reenroll, its answer lost once, then again with the same code.
		code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
		cut.path.Store(wire.EnrolPath)
		cut.cut.Store(1)
		if err := c.Reenroll(ctx, code.Code); err == nil {
			t.Fatal("re-enrolled although the answer was lost")
		}
		if err := c.Reenroll(ctx, code.Code); err != nil {
			t.Fatalf("new epoch %v: Reenroll again after a lost answer: %v", newEpoch, err)
		}
		for range 2 {
			for _, tb := range []*tabletT{old, late} {
				r.syncHealed(t, tb)
			}
		}
		r.checkHealed(t, []*tabletT{old, late})
		devs, _ := r.srv.DevicesOf(ctx, uuid.Nil)
		if len(devs) != 2 {
			t.Errorf("new epoch %v: %d devices on the restored server, want 2 (the lost answer enrolled none more)", newEpoch, len(devs))
		}
	}
}

// snapshot copies the server's database file as an operator would with
// cp or a file system snapshot, not with bryggad backup: the copy keeps
// the database's epoch. The server is stopped for the copy and started
// again.
func (r *region) snapshot(copyPath string) {
	r.t.Helper()
	r.stop()
	copyFileT(r.t, copyPath, r.db)
	if _, err := os.Stat(r.db + "-wal"); err == nil {
		copyFileT(r.t, copyPath+"-wal", r.db+"-wal")
	}
	r.restart()
}

// restoreByHand stops the server, copies a snapshot over its database as
// an operator would with cp (the epoch stays what it was), and starts it.
func (r *region) restoreByHand(copyPath string) {
	r.t.Helper()
	r.stop()
	for _, p := range []string{r.db, r.db + "-wal", r.db + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.t.Fatal(err)
		}
	}
	copyFileT(r.t, r.db, copyPath)
	if _, err := os.Stat(copyPath + "-wal"); err == nil {
		copyFileT(r.t, r.db+"-wal", copyPath+"-wal")
	}
	r.restart()
}
