package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// TestMigratePostgres: bryggad migrate sets a new PostgreSQL database up,
// and a second run finds nothing to do.
func TestMigratePostgres(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := Run(ctx, []string{"migrate", "--db", url}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied PostgreSQL migrations [1 2 3 4 5") {
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
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n < 5 {
		t.Errorf("%d migrations recorded, %v; want every one", n, err)
	}
	// The record tables, generated from the schema, are there too.
	var contacts *string
	if err := conn.QueryRow(ctx, `SELECT to_regclass('contacts')::text`).Scan(&contacts); err != nil || contacts == nil {
		t.Errorf("no contacts table after migrate (%v)", err)
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
