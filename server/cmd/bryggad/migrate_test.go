package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// TestMigratePostgres: bryggad migrate sets a new PostgreSQL database up,
// and a second run finds nothing to do; serve refuses the database, saying
// what it lacks.
func TestMigratePostgres(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := Run(ctx, []string{"migrate", "--db", url}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied PostgreSQL migrations [1 2 3 4 5]") {
		t.Errorf("first migrate said %q", out.String())
	}
	out.Reset()
	if err := Run(ctx, []string{"migrate", "--db", url}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "up to date") {
		t.Errorf("second migrate said %q", out.String())
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != 5 {
		t.Errorf("%d migrations recorded, %v; want 5", n, err)
	}
	// The record tables, generated from the schema, are there too.
	var contacts *string
	if err := conn.QueryRow(ctx, `SELECT to_regclass('contacts')::text`).Scan(&contacts); err != nil || contacts == nil {
		t.Errorf("no contacts table after migrate (%v)", err)
	}
	err = Run(ctx, []string{"serve", "--db", url, "--addr", "127.0.0.1:0"}, nil, io.Discard, io.Discard)
	if !errors.Is(err, server.ErrPostgresSync) {
		t.Errorf("serve on PostgreSQL: %v, want ErrPostgresSync", err)
	}
}

// TestMigrateSQLite: bryggad migrate creates and migrates a SQLite file.
func TestMigrateSQLite(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"migrate", "--db", db}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("no database file: %v", err)
	}
	if !strings.Contains(out.String(), "up to date") {
		t.Errorf("migrate said %q", out.String())
	}
}
