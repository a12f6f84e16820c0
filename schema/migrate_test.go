package schema_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/brygga/brygga/schema"
)

func openFile(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateFreshAndAgain(t *testing.T) {
	ctx := context.Background()
	for _, target := range []schema.Target{schema.ServerDB, schema.DeviceDB} {
		t.Run(string(target), func(t *testing.T) {
			ms, err := schema.Migrations(target)
			if err != nil {
				t.Fatal(err)
			}
			db := openFile(t, filepath.Join(t.TempDir(), "brygga.db"))
			n, err := schema.Migrate(ctx, db, target)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(ms) {
				t.Errorf("applied %d migrations to a fresh file, want %d", n, len(ms))
			}
			n, err = schema.Migrate(ctx, db, target)
			if err != nil || n != 0 {
				t.Errorf("second Migrate applied %d (%v), want 0", n, err)
			}
			var recorded int
			if err := db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&recorded); err != nil {
				t.Fatal(err)
			}
			if recorded != len(ms) {
				t.Errorf("%d migrations recorded, want %d", recorded, len(ms))
			}
		})
	}
}

// TestTablesMatchModel holds the SQL tables and the Go record types
// together: every table has exactly its kind's fields plus v, cv and seq,
// and on the server a field record's echo and its device (migrations 0013
// and 0021).
func TestTablesMatchModel(t *testing.T) {
	db := openFile(t, filepath.Join(t.TempDir(), "brygga.db"))
	if _, err := schema.Migrate(context.Background(), db, schema.ServerDB); err != nil {
		t.Fatal(err)
	}
	for _, k := range append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...) {
		fs, _ := schema.FieldsOf(k)
		var want []string
		for _, f := range fs {
			want = append(want, f.Name)
		}
		want = append(want, "v", "cv", "seq")
		if schema.IsFieldKind(k) {
			want = append(want, "echo", "echo_device")
		}
		rows, err := db.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, string(k))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			got = append(got, name)
		}
		rows.Close()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("table %s has columns\n %v\nwant\n %v", k, got, want)
		}
	}
}

// TestMigrateUpgradeKeepsRows builds a database at every earlier version,
// fills it, migrates it to the latest and checks that no row was lost.
func TestMigrateUpgradeKeepsRows(t *testing.T) {
	ctx := context.Background()
	for _, target := range []schema.Target{schema.ServerDB, schema.DeviceDB} {
		ms, _ := schema.Migrations(target)
		for _, m := range ms[:len(ms)-1] {
			t.Run(fmt.Sprintf("%s from %d", target, m.Version), func(t *testing.T) {
				db := openFile(t, filepath.Join(t.TempDir(), "old.db"))
				if _, err := schema.MigrateTo(ctx, db, target, m.Version); err != nil {
					t.Fatal(err)
				}
				counts := fill(t, db, 50)
				n, err := schema.Migrate(ctx, db, target)
				if err != nil {
					t.Fatal(err)
				}
				if want := countAfter(ms, m.Version); n != want {
					t.Errorf("applied %d, want %d", n, want)
				}
				for table, want := range counts {
					var got int
					if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&got); err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Errorf("%s: %d rows after upgrade, want %d", table, got, want)
					}
				}
			})
		}
	}
}

func countAfter(ms []schema.Migration, v int) int {
	n := 0
	for _, m := range ms {
		if m.Version > v {
			n++
		}
	}
	return n
}

// fill inserts n rows into every record table the database has, with
// values of the right type for every NOT NULL column, and returns the row
// counts.
func fill(t *testing.T, db *sql.DB, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, k := range append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...) {
		var exists int
		db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type='table' AND name=?`, string(k)).Scan(&exists)
		if exists == 0 {
			continue
		}
		fs, _ := schema.FieldsOf(k)
		var cols, marks []string
		for _, f := range fs {
			cols = append(cols, f.Name)
			marks = append(marks, "?")
		}
		cols = append(cols, "v")
		marks = append(marks, "?")
		stmt := fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, k, strings.Join(cols, ","), strings.Join(marks, ","))
		for i := 0; i < n; i++ {
			args := make([]any, 0, len(cols))
			for _, f := range fs {
				switch f.Type {
				case schema.TypeInt, schema.TypeBool, schema.TypeTime:
					args = append(args, i)
				default:
					args = append(args, fmt.Sprintf("%s-%d", f.Name, i))
				}
			}
			args = append(args, "v")
			if _, err := db.Exec(stmt, args...); err != nil {
				t.Fatalf("fill %s: %v", k, err)
			}
		}
		counts[string(k)] = n
	}
	return counts
}

func TestMigrateRefusesOtherDatabases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	server := openFile(t, filepath.Join(dir, "server.db"))
	if _, err := schema.Migrate(ctx, server, schema.ServerDB); err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Migrate(ctx, server, schema.DeviceDB); !errors.Is(err, schema.ErrWrongTarget) {
		t.Errorf("device migration of a server database: got %v, want ErrWrongTarget", err)
	}

	foreign := openFile(t, filepath.Join(dir, "foreign.db"))
	if _, err := foreign.Exec(`CREATE TABLE notes (body TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Migrate(ctx, foreign, schema.ServerDB); !errors.Is(err, schema.ErrWrongTarget) {
		t.Errorf("migration of a foreign database: got %v, want ErrWrongTarget", err)
	}

	newer := openFile(t, filepath.Join(dir, "newer.db"))
	if _, err := schema.Migrate(ctx, newer, schema.DeviceDB); err != nil {
		t.Fatal(err)
	}
	if _, err := newer.Exec(`INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_device_future.sql')`); err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Migrate(ctx, newer, schema.DeviceDB); !errors.Is(err, schema.ErrNewerSchema) {
		t.Errorf("migration of a newer database: got %v, want ErrNewerSchema", err)
	}
}

func TestMigrationFilesAreOrdered(t *testing.T) {
	for _, target := range []schema.Target{schema.ServerDB, schema.DeviceDB} {
		ms, err := schema.Migrations(target)
		if err != nil {
			t.Fatal(err)
		}
		versions := make([]int, len(ms))
		for i, m := range ms {
			versions[i] = m.Version
			if !strings.Contains(m.Name, "_core_") && !strings.Contains(m.Name, "_"+string(target)+"_") {
				t.Errorf("%s: migration %s of another target", target, m.Name)
			}
		}
		if !sort.IntsAreSorted(versions) || versions[0] != 1 {
			t.Errorf("%s: versions %v", target, versions)
		}
		// Numbers are one sequence over both targets' files, so a target
		// skips the numbers of the other target's own migrations: within a
		// target they only increase, each used once.
		for i := 1; i < len(versions); i++ {
			if versions[i] <= versions[i-1] {
				t.Errorf("%s: version %d follows %d", target, versions[i], versions[i-1])
			}
		}
	}
	if _, err := schema.Migrations("laptop"); err == nil {
		t.Error("unknown target accepted")
	}
}
