package stats

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// The statistics run the same SQL on SQLite and on PostgreSQL, over
// database/sql. What differs between the engines is held by a Dialect, in
// this file: how a statement's parameters are written, where the change
// sequence number and the devices' times are kept, how the units of a
// record table are walked, which transactions see one snapshot, how
// writers of several server processes are serialised, whether a statement
// may run while another's rows are read, and how many rows an INSERT
// takes. The rest is written so that both engines take it: INSERT ... ON
// CONFLICT (an upsert's SET naming its table's columns by the table),
// booleans stored and written as 0 or 1, no integer division, ids
// compared with ids of the same type (the record tables' ids are UUID on
// PostgreSQL, and so are the statistics' tables' ids there), ids read as
// their text and cast to TEXT where they meet a text.

// Dialect is what differs between the engines the statistics run on.
// SQLite and Postgres are the two there are.
type Dialect struct {
	name string
	// numbered: parameters are $1, $2, ... rather than ?.
	numbered bool
	// changeSeq reads the server's last change sequence number.
	changeSeq string
	// devices reads the devices not revoked: when each was enrolled and
	// last synced, as Unix milliseconds.
	devices string
	// firstUnit is the first unit_id of table %[1]s, with the condition
	// %[2]s (empty, or a WHERE clause), as a scalar subquery.
	firstUnit string
	// notIndexed follows a table's name to read it in full, not through
	// an index.
	notIndexed string
	// snapshot is the isolation of read transactions that read several
	// statements' worth from one snapshot.
	snapshot sql.IsolationLevel
	// lock, if set, is the statement that takes the transaction-scoped
	// lock numbered by its parameter, which other server processes on the
	// same database wait for.
	lock string
	// streams: a statement may run while another's rows are being read
	// in the same transaction.
	streams bool
	// batch is how many rows one INSERT of insertAbsent adds: 1 where a
	// statement costs no round trip.
	batch int
}

// SQLite is the dialect of the SQLite server database
// (sync/replica.DB's writer and reader). Its writer is one connection, so
// writes are serialised, and every transaction reads one snapshot.
var SQLite = &Dialect{
	name:       "sqlite",
	changeSeq:  `SELECT value FROM meta WHERE key = 'change_seq'`,
	devices:    `SELECT enrolled_at, max(COALESCE(last_push_at, 0), COALESCE(last_pull_at, 0)) FROM devices WHERE revoked_at IS NULL`,
	firstUnit:  `(SELECT min(unit_id) FROM %[1]s%[2]s)`,
	notIndexed: ` NOT INDEXED`,
	streams:    true,
	batch:      1,
}

// Postgres is the dialect of a PostgreSQL server database (server/pgstore's,
// through github.com/jackc/pgx/v5/stdlib). Several server processes may
// share it: the rollups' refresh and the recording of a publication take
// advisory locks, and reads that span statements use REPEATABLE READ.
var Postgres = &Dialect{
	name:      "postgres",
	numbered:  true,
	changeSeq: `SELECT change_seq FROM sync_counter`,
	devices: `SELECT (extract(epoch FROM enrolled_at) * 1000)::bigint,
		(extract(epoch FROM GREATEST(COALESCE(last_push_at, 'epoch'), COALESCE(last_pull_at, 'epoch'))) * 1000)::bigint
		FROM devices WHERE revoked_at IS NULL`,
	// PostgreSQL has no min() of UUIDs; the first in the index's order
	// is as quick.
	firstUnit: `(SELECT unit_id FROM %[1]s%[2]s ORDER BY unit_id LIMIT 1)`,
	snapshot:  sql.LevelRepeatableRead,
	lock:      `SELECT pg_advisory_xact_lock(?)`,
	batch:     500,
}

// The locks a Dialect's lock takes.
const (
	refreshLock     = 0x62727973 // "brys": the rollups' refresh
	publicationLock = 0x62727970 // "bryp": the recording of a publication's cells
)

// String returns the dialect's name.
func (d *Dialect) String() string { return d.name }

// bind returns query with its ? parameters written as the dialect writes
// them. The statistics' SQL has no ? inside quotes.
func (d *Dialect) bind(query string) string {
	if !d.numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// unitWalk returns the start of a query over the records of table changed
// after a sequence number: unit by unit, through the (unit_id, seq)
// index, which neither engine skip-scans for seq alone. u walks the
// distinct units of the index, one lookup each; the query joins table x
// ON x.unit_id = u.id and adds the seq condition.
func (d *Dialect) unitWalk(table string) string {
	return fmt.Sprintf(`WITH RECURSIVE u(id) AS (
				SELECT %s
				UNION ALL
				SELECT %s FROM u WHERE u.id IS NOT NULL)
			`, fmt.Sprintf(d.firstUnit, table, ""), fmt.Sprintf(d.firstUnit, table, " WHERE unit_id > u.id"))
}

// DB is the database the statistics run on: Writer for the rollups and
// what a publication records, Reader for what they read, and the engine's
// Dialect (nil is SQLite). On SQLite Writer is the one writer connection
// and Reader the read pool; on PostgreSQL both may be one pool.
type DB struct {
	Writer, Reader *sql.DB
	Dialect        *Dialect
}

// dbTx is a transaction whose statements are written with ? and bound to
// the dialect here, the one place that does.
type dbTx struct {
	*sql.Tx
	d *Dialect
}

func (t dbTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.d.bind(query), args...)
}

func (t dbTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.d.bind(query), args...)
}

func (t dbTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.d.bind(query), args...)
}

func (t dbTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.Tx.PrepareContext(ctx, t.d.bind(query))
}

// lock takes the dialect's lock n for the rest of the transaction, if it
// has one.
func (t dbTx) lock(ctx context.Context, n int64) error {
	if t.d.lock == "" {
		return nil
	}
	_, err := t.ExecContext(ctx, t.d.lock, n)
	return err
}

// insertAbsent inserts rows, each of len(cols) values, into table, each
// unless its key is there, d.batch rows to a statement, and reports
// whether every row was inserted.
func (t dbTx) insertAbsent(ctx context.Context, table, cols string, rows [][]any) (bool, error) {
	if len(rows) == 0 {
		return true, nil
	}
	batch := max(t.d.batch, 1)
	marks := "(?" + strings.Repeat(", ?", len(rows[0])-1) + ")"
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	var args []any
	for i := 0; i < len(rows); i += batch {
		chunk := rows[i:min(i+batch, len(rows))]
		st := stmts[len(chunk)]
		if st == nil {
			var err error
			values := marks + strings.Repeat(", "+marks, len(chunk)-1)
			if st, err = t.PrepareContext(ctx, `INSERT INTO `+table+` (`+cols+`) VALUES `+values+` ON CONFLICT DO NOTHING`); err != nil {
				return false, err
			}
			stmts[len(chunk)] = st
		}
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(chunk)) {
			return false, err
		}
	}
	return true, nil
}

// write begins a transaction on the writer.
func (db DB) write(ctx context.Context) (dbTx, error) {
	tx, err := db.Writer.BeginTx(ctx, nil)
	return dbTx{tx, db.dialect()}, err
}

// read begins a read-only transaction on the reader that reads one
// snapshot in all its statements.
func (db DB) read(ctx context.Context) (dbTx, error) {
	d := db.dialect()
	tx, err := db.Reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: d.snapshot})
	return dbTx{tx, d}, err
}

func (db DB) dialect() *Dialect {
	if db.Dialect == nil {
		return SQLite
	}
	return db.Dialect
}

// flag is b as the tables store booleans: 0 or 1.
func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// orNull is s, or NULL if it is empty.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}
