package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// The PostgreSQL scenarios run the server on a database of their own on
// the PostgreSQL server --postgres names, created for the scenario and
// dropped after it: baseline-postgres, the raw limit (the same rows
// copied into a contacts-shaped table by the same number of clients,
// nothing decoded or merged), then push, first sync and many devices with
// --instances servers on the one database, each device syncing with one
// of them.

// defaultPostgres is the PostgreSQL server of the PostgreSQL scenarios
// unless --postgres names another.
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// keyPostgresInsert is baseline-postgres's figure, push-postgres's base.
const keyPostgresInsert = "baseline-postgres/copy rate"

// pgDatabase is a database bryggaload created on a PostgreSQL server.
type pgDatabase struct {
	admin string // the server's URL, to drop it from
	name  string
	url   string // the database's URL
}

// createDatabase creates a database with a new name on the PostgreSQL
// server at admin.
func createDatabase(ctx context.Context, admin string) (*pgDatabase, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	db := &pgDatabase{admin: admin, name: "bryggaload_" + hex.EncodeToString(b)}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+db.name); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + db.name
	db.url = u.String()
	return db, nil
}

// drop drops the database.
func (db *pgDatabase) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.admin)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+db.name+` WITH (FORCE)`)
	return err
}

// pgContactsTable is shaped like the contacts table the server generates
// on PostgreSQL (server/pgstore/records.go).
const pgContactsTable = `CREATE TABLE contacts (
    id          UUID PRIMARY KEY,
    unit_id     UUID NOT NULL,
    device_id   UUID NOT NULL,
    staff_id    UUID NOT NULL,
    occurred_at BIGINT NOT NULL,
    voided      BIGINT NOT NULL CHECK (voided IN (0, 1)),
    client_code TEXT,
    gender      TEXT NOT NULL,
    age_band    TEXT NOT NULL,
    setting     TEXT NOT NULL,
    area_code   TEXT NOT NULL,
    substance   TEXT,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         BIGINT NOT NULL DEFAULT 0,
    echo        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX contacts_unit_seq ON contacts (unit_id, seq)`

// runBaselinePostgres measures the raw limit of PostgreSQL on this
// machine for push's rows: as many clients as push has, each copying its
// share into a contacts-shaped table in transactions of a push's rows
// (COPY, the fastest way in), on a database of its own.
func runBaselinePostgres(ctx context.Context, cfg *config, rec *recorder, _ backend) error {
	db, err := createDatabase(ctx, cfg.postgres)
	if err != nil {
		return err
	}
	defer db.drop()
	setup, err := pgx.Connect(ctx, db.url)
	if err != nil {
		return err
	}
	_, err = setup.Exec(ctx, pgContactsTable)
	setup.Close(ctx)
	if err != nil {
		return err
	}
	d := fakeDevice()
	v := replica.Key(d.clock.Now(), d.id)
	at := time.Now().Add(-time.Hour).UnixMilli()
	counts := split(cfg.pushRows(), loaders)
	rows := make([][][]any, loaders)
	var seq int64
	for i := range rows {
		for range counts[i] {
			seq++
			rows[i] = append(rows[i], []any{uuid.Must(uuid.NewV7()), d.ref.unit, d.id, d.ref.staff, at, 0, nil,
				string(schema.GenderWoman), string(schema.Age25to29), string(schema.SettingStreet), "2380", nil, v, nil, seq, seq})
		}
	}
	conns := make([]*pgx.Conn, loaders)
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, db.url); err != nil {
			return err
		}
		defer conns[i].Close(ctx)
	}
	columns := strings.Fields("id unit_id device_id staff_id occurred_at voided client_code gender age_band setting area_code substance v cv seq echo")
	start := time.Now()
	err = parallel(ctx, loaders, func(ctx context.Context, i int) error {
		for j := 0; j < len(rows[i]); j += batchSize {
			batch := rows[i][j:min(j+batchSize, len(rows[i]))]
			err := pgx.BeginFunc(ctx, conns[i], func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"contacts"}, columns, pgx.CopyFromRows(batch))
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	rec.add(metric{Scenario: "baseline-postgres", Figure: "copy rate", Unit: "rows/s", Value: float64(seq) / elapsed.Seconds()})
	return nil
}

// onPostgres runs a scenario on PostgreSQL with cfg's instances.
func onPostgres(name string, run func(ctx context.Context, cfg *config, rec *recorder, be backend) error) scenario {
	return scenario{name, func(ctx context.Context, cfg *config, rec *recorder) error {
		if !postgresAnswers(ctx, cfg, name) {
			return nil
		}
		return run(ctx, cfg, rec, backend{postgres: cfg.postgres, instances: cfg.instances})
	}}
}

func runManyDevicesPostgres(ctx context.Context, cfg *config, rec *recorder, be backend) error {
	return manyDevicesOn(ctx, cfg, rec, be, "many-devices-postgres")
}

// postgresAnswers reports whether the PostgreSQL server of the scenarios
// answers; where none does, the scenarios say so and measure nothing.
func postgresAnswers(ctx context.Context, cfg *config, scenario string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.postgres)
	if err != nil {
		fmt.Fprintf(cfg.stderr, "%s: skipped: no PostgreSQL answers at --postgres (%v)\n", scenario, err)
		return false
	}
	conn.Close(ctx)
	return true
}

// postgresCPU is the CPU time the PostgreSQL server's processes on this
// machine have used (their user and system time, from /proc): the
// backends of the connections, and the writers and checkpointer that work
// for them. Processes that end meanwhile take theirs with them; the pools
// of the servers keep their connections for a run.
func postgresCPU() time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: utime and stime are the 14th and
		// 15th fields, the 12th and 13th after the command's name.
		open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || end < open || string(data[open+1:end]) != "postgres" {
			continue
		}
		f := strings.Fields(string(data[end+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	// The kernel counts in USER_HZ, 100 a second on Linux.
	return time.Duration(ticks) * (time.Second / 100)
}
