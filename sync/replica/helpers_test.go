package replica_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// testClock is a settable clock shared by a test's replicas.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is the reference data of a test region: two organisations, a unit
// of each and staff in each unit.
type world struct {
	orgA, orgB     uuid.UUID
	unitA, unitB   uuid.UUID
	staffA, staffB uuid.UUID
}

func newID(tb testing.TB) uuid.UUID {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func newWorld(tb testing.TB) world {
	return world{orgA: newID(tb), orgB: newID(tb), unitA: newID(tb), unitB: newID(tb), staffA: newID(tb), staffB: newID(tb)}
}

func (w world) reference() []schema.Record {
	return []schema.Record{
		&schema.Organisation{ID: w.orgA, OrgKind: schema.OrgMunicipality, Name: "Östersunds kommun", RegionCode: "23", Active: true},
		&schema.Organisation{ID: w.orgB, OrgKind: schema.OrgRegion, Name: "Region Jämtland Härjedalen", RegionCode: "23", Active: true},
		&schema.Unit{ID: w.unitA, OrgID: w.orgA, Name: "Fältgruppen", AreaCode: "2380", Active: true},
		&schema.Unit{ID: w.unitB, OrgID: w.orgB, Name: "Beroendemottagningen", AreaCode: "2380", Active: true},
		&schema.Staff{ID: w.staffA, UnitID: w.unitA, Role: schema.RoleOutreachWorker, Active: true},
		&schema.Staff{ID: w.staffB, UnitID: w.unitB, Role: schema.RoleNurse, Active: true},
		&schema.Service{ID: newIDNoTB(), UnitID: w.unitB, Category: schema.ServiceAddictionClinic, Active: true},
	}
}

func newIDNoTB() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// MustOpenServer opens a server store on a fresh file with the world's
// reference data.
func MustOpenServer(tb testing.TB, clock *testClock, w world) *replica.ServerStore {
	tb.Helper()
	s, err := replica.OpenServer(context.Background(), filepath.Join(tb.TempDir(), "server.db"), replica.ServerConfig{Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := s.PutReference(context.Background(), w.reference()...); err != nil {
		tb.Fatal(err)
	}
	return s
}

// MustOpenDevice opens a device replica on a fresh file and enrols it.
func MustOpenDevice(tb testing.TB, clock func() time.Time, s *replica.ServerStore, unit uuid.UUID) *replica.Device {
	tb.Helper()
	id := newID(tb)
	if s != nil {
		if _, err := s.RegisterDevice(context.Background(), id, unit); err != nil {
			tb.Fatal(err)
		}
	}
	d, err := replica.OpenDevice(context.Background(), filepath.Join(tb.TempDir(), id.String()+".db"),
		replica.DeviceConfig{ID: id, UnitID: unit, Now: clock})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// syncAll pushes and pulls d until both are done, over a perfect network.
func syncAll(tb testing.TB, s *replica.ServerStore, d *replica.Device) {
	tb.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		if i > 1000 {
			tb.Fatal("push did not finish")
		}
		req, err := d.NextPush(ctx, 100)
		if err != nil {
			tb.Fatal(err)
		}
		if req == nil {
			break
		}
		resp, err := s.Push(ctx, d.ID(), req)
		if err != nil {
			tb.Fatal(err)
		}
		if err := d.AcceptPush(ctx, resp); err != nil {
			tb.Fatal(err)
		}
	}
	for i := 0; ; i++ {
		if i > 1000 {
			tb.Fatal("pull did not finish")
		}
		req, err := d.PullRequest(ctx, 100)
		if err != nil {
			tb.Fatal(err)
		}
		resp, err := s.Pull(ctx, d.ID(), req)
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeCursorInvalid {
			if err := d.ResetCursor(ctx); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		if ok, err := d.AcceptPull(ctx, resp); err != nil || !ok {
			tb.Fatalf("page not applied (%v)", err)
		}
		if !resp.HasMore {
			return
		}
	}
}
