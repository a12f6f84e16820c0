package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// testDB returns a new database for a test's server: a SQLite file in the
// test's directory, or, with BRYGGA_TEST_ENGINE=postgres in the
// environment, a PostgreSQL database of its own (make test runs the
// package's tests both ways). Tests that read the SQLite file themselves
// keep a file.
func testDB(t *testing.T) string {
	t.Helper()
	if os.Getenv("BRYGGA_TEST_ENGINE") == "postgres" {
		return pgtest.URL(t)
	}
	return filepath.Join(t.TempDir(), "s.db")
}
