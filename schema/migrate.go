package schema

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Target is a kind of database Brygga keeps: the server's or a device's
// replica. Both share the core migrations; each has its own as well.
type Target string

// Targets.
const (
	ServerDB Target = "server"
	DeviceDB Target = "device"
)

// applicationID marks a database file as Brygga's, per target (PRAGMA
// application_id), so that a device replica is never opened as a server
// database or the other way round.
func (t Target) applicationID() int32 {
	switch t {
	case ServerDB:
		return 0x42525953 // "BRYS"
	case DeviceDB:
		return 0x42525944 // "BRYD"
	}
	return 0
}

// Migration is one numbered SQL migration.
type Migration struct {
	Version int
	Name    string // file name, for example "0001_core_records.sql"
	SQL     string
}

// Errors of Migrate.
var (
	// ErrNewerSchema means the database was migrated by a newer Brygga
	// than this one: update the program.
	ErrNewerSchema = errors.New("database schema is newer than this program")
	// ErrWrongTarget means the file is another target's database, or not
	// Brygga's at all.
	ErrWrongTarget = errors.New("database belongs to another target")
)

// Migrations returns the migrations of target t in the order they apply.
// Migration files are named NNNN_<core|server|device>_<name>.sql; core
// files belong to both targets.
func Migrations(t Target) ([]Migration, error) {
	if t.applicationID() == 0 {
		return nil, fmt.Errorf("migrations: unknown target %q", t)
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		parts := strings.SplitN(strings.TrimSuffix(name, ".sql"), "_", 3)
		if len(parts) != 3 || len(parts[0]) != 4 {
			return nil, fmt.Errorf("migrations: malformed file name %q", name)
		}
		v, err := strconv.Atoi(parts[0])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migrations: malformed version in %q", name)
		}
		if parts[1] != "core" && parts[1] != string(t) {
			continue
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations: %q and %q share version %d", other, name, v)
		}
		seen[v] = name
		body, err := migrationFiles.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Migrate applies every migration of target t that db lacks, in order, each
// in its own transaction together with its record in schema_migrations. It
// returns how many it applied: 0 on an up-to-date database. It fails with
// ErrWrongTarget on another target's database and ErrNewerSchema on one
// migrated by a newer program.
func Migrate(ctx context.Context, db *sql.DB, t Target) (int, error) {
	return MigrateTo(ctx, db, t, 0)
}

// MigrateTo is Migrate stopping after version upTo; 0 means the latest. It
// exists to build databases of earlier versions, as in upgrade tests.
func MigrateTo(ctx context.Context, db *sql.DB, t Target, upTo int) (int, error) {
	ms, err := Migrations(t)
	if err != nil {
		return 0, err
	}
	if err := claim(ctx, db, t); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	)`); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if latest := ms[len(ms)-1].Version; current > latest {
		return 0, fmt.Errorf("migrate: database at version %d, program knows %d: %w", current, latest, ErrNewerSchema)
	}
	applied := 0
	for _, m := range ms {
		if upTo > 0 && m.Version > upTo {
			break
		}
		ok, err := apply(ctx, db, m)
		if err != nil {
			return applied, err
		}
		if ok {
			applied++
		}
	}
	return applied, nil
}

// claim stamps a fresh database with t's application id, or checks it.
func claim(ctx context.Context, db *sql.DB, t Target) error {
	var id int32
	if err := db.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&id); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	switch id {
	case t.applicationID():
		return nil
	case 0:
		var tables int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if tables > 0 {
			return fmt.Errorf("migrate: file holds tables but is not a Brygga %s database: %w", t, ErrWrongTarget)
		}
		_, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, t.applicationID()))
		return err
	}
	return fmt.Errorf("migrate: not a Brygga %s database (application_id %#x): %w", t, id, ErrWrongTarget)
}

// apply runs one migration unless it is already recorded, and reports
// whether it ran.
func apply(ctx context.Context, db *sql.DB, m Migration) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	return true, nil
}
