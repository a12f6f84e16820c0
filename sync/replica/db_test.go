package replica_test

import (
	"context"
	"path/filepath"
	"testing"

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
