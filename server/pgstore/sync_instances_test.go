package pgstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/sync/replica"
)

// TestSyncInstancesShareOneSequence runs two servers' sync on one
// PostgreSQL database: devices push through both at once while another
// device of their unit pulls, in small pages, through either; once all is
// pushed and it has pulled to the end, it holds every record: no change
// was numbered below a cursor it had passed.
func TestSyncInstancesShareOneSequence(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	var servers []*replica.ServerSync
	for range 2 {
		st, err := pgstore.Open(ctx, url, pgstore.Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		s, err := replica.NewServerSync(ctx, st.SyncEngine(), replica.ServerConfig{Now: now})
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		servers = append(servers, s)
	}
	org, unit, staff := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	if err := servers[0].PutReference(ctx,
		&schema.Organisation{ID: org, OrgKind: schema.OrgMunicipality, Name: "Östersunds kommun", RegionCode: "23", Active: true},
		&schema.Unit{ID: unit, OrgID: org, Name: "Fältgruppen", AreaCode: "2380", Active: true},
		&schema.Staff{ID: staff, UnitID: unit, Role: schema.RoleOutreachWorker, Active: true},
	); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	open := func() *replica.Device {
		id := uuid.Must(uuid.NewV7())
		if _, err := conn.Exec(ctx, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, id, unit, at); err != nil {
			t.Fatal(err)
		}
		d, err := replica.OpenDevice(ctx, filepath.Join(t.TempDir(), id.String()+".db"), replica.DeviceConfig{ID: id, UnitID: unit, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	const writers, records = 4, 40
	reader := open()
	var ws []*replica.Device
	for range writers {
		ws = append(ws, open())
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for i, d := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range records {
				c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: unit, DeviceID: d.ID(), StaffID: staff, OccurredAt: at.Add(-time.Hour)},
					Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
				if err := d.Create(ctx, c); err != nil {
					errs <- err
					return
				}
				if j%3 != 2 {
					continue
				}
				if err := pushAll(ctx, servers[(i+j)%2], d); err != nil {
					errs <- err
					return
				}
			}
			if err := pushAll(ctx, servers[i%2], d); err != nil {
				errs <- err
			}
		}()
	}
	done := make(chan struct{})
	pulled := make(chan error, 1)
	go func() {
		// Pull while the writers push; a bounded number of pages.
		for i := 0; i < 10000; i++ {
			select {
			case <-done:
				pulled <- nil
				return
			default:
			}
			if err := pullPage(ctx, servers[i%2], reader); err != nil {
				pulled <- err
				return
			}
		}
		pulled <- nil
	}()
	wg.Wait()
	close(done)
	if err := <-pulled; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("pull did not finish")
		}
		req, err := reader.PullRequest(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := servers[i%2].Pull(ctx, reader.ID(), req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reader.AcceptPull(ctx, resp); err != nil {
			t.Fatal(err)
		}
		if !resp.HasMore {
			break
		}
	}
	rows, err := reader.Rows(ctx, schema.KindContact)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != writers*records {
		t.Errorf("the reader holds %d contacts, want %d", len(rows), writers*records)
	}
}

// pushAll pushes what d has queued through s.
func pushAll(ctx context.Context, s *replica.ServerSync, d *replica.Device) error {
	for i := 0; i < 100; i++ {
		req, err := d.NextPush(ctx, 5)
		if err != nil || req == nil {
			return err
		}
		resp, err := s.Push(ctx, d.ID(), req)
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		if err := d.AcceptPush(ctx, resp); err != nil {
			return err
		}
	}
	return fmt.Errorf("device %s: push did not finish", d.ID())
}

// pullPage pulls one page of at most 3 changes for d through s.
func pullPage(ctx context.Context, s *replica.ServerSync, d *replica.Device) error {
	req, err := d.PullRequest(ctx, 3)
	if err != nil {
		return err
	}
	resp, err := s.Pull(ctx, d.ID(), req)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	_, err = d.AcceptPull(ctx, resp)
	return err
}
