package replica_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// TestPageSize: a device's database is created with 16 KiB pages, in WAL
// mode; an existing database keeps its pages; the server's has SQLite's.
func TestPageSize(t *testing.T) {
	ctx := context.Background()
	pragmas := func(path string, target schema.Target) (pageSize int, mode string) {
		t.Helper()
		db, err := replica.OpenDB(ctx, path, target)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Reader().QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
			t.Fatal(err)
		}
		if err := db.Reader().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		return pageSize, mode
	}
	dir := t.TempDir()
	device := filepath.Join(dir, "device.db")
	for range 2 { // created, then opened again
		if size, mode := pragmas(device, schema.DeviceDB); size != 16384 || mode != "wal" {
			t.Errorf("device database: page size %d, journal mode %s; want 16384, wal", size, mode)
		}
	}
	if size, mode := pragmas(filepath.Join(dir, "server.db"), schema.ServerDB); size != 4096 || mode != "wal" {
		t.Errorf("server database: page size %d, journal mode %s; want 4096, wal", size, mode)
	}
}

// TestCheckpointsBesideTheWriter: the writer's commits leave the
// write-ahead log to the database's own checkpoints, which copy it into
// the database file while the writer goes on, even once the writer's
// connection has been replaced; the writer checkpoints only past the
// backstop; closing leaves the file alone the whole database.
func TestCheckpointsBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "server.db")
	db, err := replica.OpenDB(ctx, path, schema.ServerDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A transaction whose context ends loses database/sql its connection;
	// the one after it is set up alike. A temporary table, which lives as
	// long as its connection, tells them apart.
	if _, err := db.Writer().ExecContext(ctx, "CREATE TEMP TABLE first_connection (x)"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	if _, err := db.Writer().BeginTx(cctx, nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	for deadline := time.Now().Add(10 * time.Second); db.Writer().Stats().OpenConnections > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection of a cancelled transaction was kept")
		}
	}
	var first int
	if err := db.Writer().QueryRowContext(ctx, "SELECT count(*) FROM sqlite_temp_master WHERE name = 'first_connection'").Scan(&first); err != nil || first != 0 {
		t.Fatalf("the writer kept its connection (%v)", err)
	}
	var frames int
	if err := db.Writer().QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&frames); err != nil {
		t.Fatal(err)
	}
	if frames != 64<<20/4096 {
		t.Errorf("writer checkpoints at %d pages of log, want %d (64 MiB)", frames, 64<<20/4096)
	}
	var limit int64
	if err := db.Writer().QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&limit); err != nil || limit != 16<<20 {
		t.Errorf("log cut back to %d bytes (%v), want 16 MiB", limit, err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if _, err := db.Writer().ExecContext(ctx, "CREATE TABLE scratch (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	// 8 MiB in 32 commits: eight times SQLite's own checkpoint threshold
	// of 1000 pages, an eighth of the backstop.
	blob := make([]byte, 256<<10)
	for range 32 {
		if _, err := db.Writer().ExecContext(ctx, "INSERT INTO scratch VALUES (?)", blob); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for size() < before+8<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 20 s after 8 MiB were committed: the log was not checkpointed", size())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Errorf("write-ahead log left after Close: %v", err)
	}
	again, err := replica.OpenDB(ctx, path, schema.ServerDB)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var n int
	if err := again.Reader().QueryRowContext(ctx, "SELECT count(*) FROM scratch").Scan(&n); err != nil || n != 32 {
		t.Fatalf("reopened: %d rows (%v), want 32", n, err)
	}
}
