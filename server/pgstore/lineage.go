package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A PostgreSQL database is put back to an earlier state by PostgreSQL's
// own tools, never by bryggad: a point-in-time recovery, a standby
// promoted after its primary was lost (which lacks what the primary had
// not yet sent it), a dump restored or a database copied into a new
// database. Each of these may have lost changes that devices pulled, and
// each leaves the database on another cluster, timeline or database oid
// than before. The change lineage (migration 0005, as SQLite's 0012)
// tells such a device's cursor from one of the database's own history:
// when a server opens the database on another cluster, timeline or oid
// than the last one noted, a new span begins at the change number the
// database holds, so that a cursor beyond it, made before the database
// was put back, is known for one the database no longer has, and its
// device sends its records again (wire.CodeServerRestored).
//
// Servers that start one after another on the same database begin no
// span: spans are the database's, not a server's. A standby promoted
// while servers run is noticed when they start again; they reconnect to
// it through the same URL, so restart them after a failover.

// timelineSetting is the meta key of the timeline last noted.
const timelineSetting = "pg_timeline"

// timeline names the database's cluster, its current timeline and the
// database's oid, which any role may read.
const timeline = `SELECT (SELECT system_identifier FROM pg_control_system())::text
	|| '/' || ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint::text
	|| '/' || (SELECT oid FROM pg_database WHERE datname = current_database())::text`

// noteTimeline begins a new span of the change lineage if the database
// is on another cluster, timeline or oid than it last noted, and notes
// the current one. tx holds the counter row's lock.
func noteTimeline(ctx context.Context, tx pgx.Tx, now time.Time) error {
	var current string
	if err := tx.QueryRow(ctx, timeline).Scan(&current); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	var noted string
	err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, timelineSetting).Scan(&noted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("timeline: %w", err)
	case noted == current:
		return nil
	default:
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		mark := int64(binary.BigEndian.Uint64(b[:])>>1) | 1 // positive, never 0
		if _, err := tx.Exec(ctx, `INSERT INTO change_lineage (mark, from_seq, opened_at)
			SELECT $1, change_seq, $2 FROM sync_counter`, mark, now); err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, timelineSetting, current)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return nil
}
