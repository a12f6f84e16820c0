package pgstore_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// TestDatabasePutBack: a database put back to a copy taken before changes
// that a device pulled is noticed when the server opens it, even once it
// has taken more change numbers than the device's cursor holds: the
// device's next pull is answered server_restored, so that it sends its
// records again, instead of going on from a cursor of a history the
// database no longer has. Servers opening the same database again begin
// no new span.
func TestDatabasePutBack(t *testing.T) {
	ctx := context.Background()
	orig := pgtest.URL(t)
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	open := func(u string) *pgstore.Store {
		st, err := pgstore.Open(ctx, u, pgstore.Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	exec := func(u, q string, args ...any) {
		t.Helper()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	org, unit, staff := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	st := open(orig)
	if err := st.PutReference(ctx,
		&schema.Organisation{ID: org, OrgKind: schema.OrgMunicipality, Name: "Östersunds kommun", RegionCode: "23", Active: true},
		&schema.Unit{ID: unit, OrgID: org, Name: "Fältgruppen", AreaCode: "2380", Active: true},
		&schema.Staff{ID: staff, UnitID: unit, Role: schema.RoleOutreachWorker, Active: true},
	); err != nil {
		t.Fatal(err)
	}
	device := func() *replica.Device {
		id := uuid.Must(uuid.NewV7())
		exec(orig, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, id, unit, at)
		d, err := replica.OpenDevice(ctx, filepath.Join(t.TempDir(), id.String()+".db"), replica.DeviceConfig{ID: id, UnitID: unit, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	// writer records before the copy and after it; later records after
	// the database is put back (a device whose own history the copy
	// lacks heals first, which is not what this test is about).
	writer, later, reader := device(), device(), device()
	record := func(s *pgstore.Store, writer *replica.Device, n int) {
		t.Helper()
		for range n {
			c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: unit, DeviceID: writer.ID(), StaffID: staff, OccurredAt: at.Add(-time.Hour)},
				Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
			if err := writer.Create(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := pushAll(ctx, s.ServerSync, writer); err != nil {
			t.Fatal(err)
		}
	}
	pull := func(s *pgstore.Store) error {
		for range 100 {
			req, err := reader.PullRequest(ctx, 50)
			if err != nil {
				return err
			}
			resp, err := s.Pull(ctx, reader.ID(), req)
			if err != nil {
				return err
			}
			if _, err := reader.AcceptPull(ctx, resp); err != nil || !resp.HasMore {
				return err
			}
		}
		t.Fatal("pull did not finish")
		return nil
	}
	record(st, writer, 3)
	st.Close()

	// The copy: a database made from this one as it is now.
	u, err := url.Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	copyName := strings.TrimPrefix(u.Path, "/") + "_copy"
	admin := pgtest.Server()
	exec(admin, `CREATE DATABASE `+copyName+` TEMPLATE `+strings.TrimPrefix(u.Path, "/"))
	t.Cleanup(func() { exec(admin, `DROP DATABASE IF EXISTS `+copyName+` WITH (FORCE)`) })
	u.Path = "/" + copyName
	copied := u.String()

	// The database goes on; the reader pulls what it holds.
	st = open(orig)
	record(st, writer, 4)
	if err := pull(st); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = open(orig) // a server started again: the same history
	if err := pull(st); err != nil {
		t.Errorf("pull from the same database opened again: %v", err)
	}
	st.Close()

	// The copy is put in its place, and takes more change numbers than
	// the reader's cursor holds before the reader comes back.
	st = open(copied)
	defer st.Close()
	record(st, later, 10)
	err = pull(st)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeServerRestored {
		t.Fatalf("pull after the database was put back: %v, want %s", err, wire.CodeServerRestored)
	}

	var spans int
	conn, err := pgx.Connect(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM change_lineage`).Scan(&spans); err != nil || spans != 1 {
		t.Errorf("the database opened three times has %d spans (%v), want 1", spans, err)
	}
}
