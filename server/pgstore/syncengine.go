package pgstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// SyncEngine is the replica.ServerEngine of a Store: the records in the
// tables generated from schema (records.go), the change numbers taken
// under the counter row's lock (lockCounters: numbers commit in the
// order they are taken). It is safe for concurrent use, also by several
// server processes on one database.
type SyncEngine struct{ s *Store }

var (
	_ replica.ServerEngine    = (*SyncEngine)(nil)
	_ replica.ServerPreloader = (*pgWrite)(nil)
)

// SyncEngine returns the store's sync engine, for replica.NewServerSync.
func (s *Store) SyncEngine() *SyncEngine { return &SyncEngine{s: s} }

// kindSQL is what the engine says to kind k's table, made once: the
// statements' texts are the same each time, so that the driver prepares
// each once per connection.
type kindSQL struct {
	kind    schema.Kind
	table   pgx.Identifier
	columns []string // as replica.RowValues gives them: echo only on field records
	echo    bool     // whether the table has echo
	sel     string   // SELECT of the columns, for replica.ScanRow
	byID    string
	byIDs   string // the rows of an array of ids
	insert  string // a row, unless its id is taken
	// insertNew is a row whose id is known not to be taken: it fails
	// if it is; copy is many of them, in COPY's text format (appendCopy).
	insertNew, copy string
	upsert          string // a row, replacing the one of its id
	owner           string // the unit of a record
	echoSeq         string
}

var kindSQLs = func() map[schema.Kind]*kindSQL {
	m := map[schema.Kind]*kindSQL{}
	for _, k := range recordKinds() {
		fields, _ := schema.FieldsOf(k)
		q := &kindSQL{kind: k, table: pgx.Identifier{string(k)}, echo: schema.IsFieldKind(k)}
		sel := make([]string, 0, len(fields)+4)
		for _, f := range fields {
			q.columns = append(q.columns, f.Name)
			if f.Type == schema.TypeID {
				sel = append(sel, f.Name+"::text")
			} else {
				sel = append(sel, f.Name)
			}
		}
		q.columns = append(q.columns, "v", "cv", "seq")
		sel = append(sel, "v", "cv", "seq")
		if q.echo {
			q.columns = append(q.columns, "echo", "echo_device")
			sel = append(sel, "echo", "echo_device::text")
		}
		q.sel = fmt.Sprintf(`SELECT %s FROM %s`, strings.Join(sel, ", "), k)
		q.byID = q.sel + ` WHERE id = $1`
		q.byIDs = q.sel + ` WHERE id = ANY($1)`
		marks := make([]string, len(q.columns))
		set := make([]string, 0, len(q.columns))
		for i, c := range q.columns {
			marks[i] = fmt.Sprintf("$%d", i+1)
			if c != "id" { // the id never changes
				set = append(set, c+" = excluded."+c)
			}
		}
		ins := fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (id) DO `, k, strings.Join(q.columns, ", "), strings.Join(marks, ", "))
		q.insert = ins + `NOTHING`
		q.upsert = ins + `UPDATE SET ` + strings.Join(set, ", ")
		q.insertNew = fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, k, strings.Join(q.columns, ", "), strings.Join(marks, ", "))
		q.copy = fmt.Sprintf(`COPY %s (%s) FROM STDIN`, k, strings.Join(q.columns, ", "))
		col := "unit_id"
		if k == schema.KindUnit {
			col = "id"
		}
		q.owner = fmt.Sprintf(`SELECT %s FROM %s WHERE id = $1`, col, k)
		if q.echo {
			q.echoSeq = fmt.Sprintf(`SELECT seq FROM %s WHERE id = $1 AND coalesce(echo_device, device_id) = $2 AND echo = $3`, k)
		}
		m[k] = q
	}
	return m
}()

// sqlOf returns kind k's statements, or an error if k has no table.
func sqlOf(k schema.Kind) (*kindSQL, error) {
	if q, ok := kindSQLs[k]; ok {
		return q, nil
	}
	return nil, fmt.Errorf("%q is not a kind of record", k)
}

// queryer is what pgx.Tx and the pool provide.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// scanRows returns the rows of kind k that rows hold, as q.sel reads them.
func scanRows(k schema.Kind, rows pgx.Rows) ([]*replica.Row, error) {
	defer rows.Close()
	var out []*replica.Row
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", k, err)
		}
		r, err := replica.ScanRow(k, vals)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query %s: %w", k, err)
	}
	return out, nil
}

// loadRows returns the rows of kind k that where selects.
func loadRows(ctx context.Context, q queryer, k schema.Kind, where string, args ...any) ([]*replica.Row, error) {
	ks, err := sqlOf(k)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, ks.sel+" "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", k, err)
	}
	return scanRows(k, rows)
}

func loadRow(ctx context.Context, q queryer, k schema.Kind, id uuid.UUID) (*replica.Row, error) {
	rows, err := loadRows(ctx, q, k, `WHERE id = $1`, id)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// Open gives the database an epoch if it has none and begins the
// lineage's first span if it has none: the spans are the database's, not
// an instance's, so that servers starting one after another on the same
// database do not end each other's spans.
func (e *SyncEngine) Open(ctx context.Context, now time.Time) (uuid.UUID, hlc.Timestamp, error) {
	var epoch uuid.UUID
	var clock hlc.Timestamp
	err := pgx.BeginFunc(ctx, e.s.pool, func(tx pgx.Tx) error {
		var last string
		if err := tx.QueryRow(ctx, `SELECT hlc FROM sync_counter FOR UPDATE`).Scan(&last); err != nil {
			return err
		}
		if last != "" {
			var err error
			if clock, err = hlc.Parse(last); err != nil {
				return fmt.Errorf("stored clock: %w", err)
			}
		}
		nid, err := uuid.NewRandom()
		if err != nil {
			return err
		}
		var id string
		if err := tx.QueryRow(ctx, `INSERT INTO meta (key, value) VALUES ('store_id', $1)
			ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value`, nid.String()).Scan(&id); err != nil {
			return err
		}
		if epoch, err = uuid.Parse(id); err != nil {
			return fmt.Errorf("store id: %w", err)
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		mark := int64(binary.BigEndian.Uint64(b[:])>>1) | 1 // positive, never 0
		_, err = tx.Exec(ctx, `INSERT INTO change_lineage (mark, from_seq, opened_at)
			SELECT $1, change_seq, $2 FROM sync_counter WHERE NOT EXISTS (SELECT 1 FROM change_lineage)`, mark, now)
		if err != nil {
			return err
		}
		return noteTimeline(ctx, tx, now)
	})
	if err != nil {
		return uuid.Nil, 0, fmt.Errorf("open sync: %w", err)
	}
	return epoch, clock, nil
}

// BeginWrite begins a transaction on a connection of its own and locks
// the counter row first (lockCounters), in one round trip, and holds the
// lock to the end of the transaction: no other transaction takes change
// numbers until this one has committed or rolled back.
func (e *SyncEngine) BeginWrite(ctx context.Context) (replica.ServerWrite, int64, hlc.Timestamp, error) {
	conn, err := e.s.pool.Acquire(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	w := &pgWrite{conn: conn, ctx: ctx}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(lockCountersSQL)
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	var seq int64
	var clock hlc.Timestamp
	if err == nil {
		seq, clock, err = scanCounters(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.Rollback()
		return nil, 0, 0, err
	}
	return w, seq, clock, nil
}

// BeginRead begins a repeatable-read transaction: one snapshot for the
// head and the page, which sees a prefix of the change numbers.
func (e *SyncEngine) BeginRead(ctx context.Context) (replica.ServerRead, error) {
	tx, err := e.s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	return &pgRead{tx: tx, ctx: ctx}, nil
}

// Get returns the row of kind k with id, or nil if there is none.
func (e *SyncEngine) Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*replica.Row, error) {
	return loadRow(ctx, e.s.pool, k, id)
}

// Close closes the store.
func (e *SyncEngine) Close() error { return e.s.Close() }

// pgWrite is a write transaction of a SyncEngine. It asks the database as
// seldom as it can, for every question costs a round trip: it reads the
// records a batch of pushes looks at in one go (Preload) and answers from
// them, and keeps what it writes until it must send it (flush), at the
// latest on Commit: many new records of a kind by COPY, and the other
// records and the bookkeeping of pushes, devices and counters in one pipeline that ends
// with the commit.
type pgWrite struct {
	// conn holds the transaction, until it ends; nil after.
	conn *pgxpool.Conn
	ctx  context.Context // the transaction's, for Commit and Rollback
	// known holds, by kind and id, the records the transaction knows the
	// state of: as stored, or as it wrote them.
	known map[schema.Kind]map[uuid.UUID]*knownRow
	// dirty are the records written and not yet sent, in the order first
	// written, of kinds in the order first written.
	dirty map[schema.Kind][]*knownRow
	kinds []schema.Kind
	// queued are statements that answer nothing, not yet sent; noted are
	// the devices whose rows or pushes they change.
	queued []queuedStatement
	noted  map[uuid.UUID]bool
	// devices are the devices read ahead and not changed since.
	devices map[uuid.UUID]*replica.EnrolledDevice
	buf     []byte // a COPY's data
}

// knownRow is a record as the transaction knows it.
type knownRow struct {
	row   *replica.Row // nil: there is no such record
	write rowWrite
}

// rowWrite is what a flush does with a known record.
type rowWrite uint8

const (
	unwritten    rowWrite = iota // nothing: it is stored as it is
	writeNew                     // insert it: its table has no row of its id
	writeChanged                 // insert it or replace the stored row
)

// copyAtLeast is how many new records of a kind a flush sends by COPY;
// fewer ride in the pipeline, one INSERT each.
const copyAtLeast = 8

type queuedStatement struct {
	sql  string
	args []any
}

func (w *pgWrite) knownOf(k schema.Kind, id uuid.UUID) *knownRow {
	return w.known[k][id]
}

func (w *pgWrite) setKnown(k schema.Kind, id uuid.UUID, e *knownRow) {
	if w.known == nil {
		w.known = map[schema.Kind]map[uuid.UUID]*knownRow{}
	}
	m := w.known[k]
	if m == nil {
		m = map[uuid.UUID]*knownRow{}
		w.known[k] = m
	}
	m[id] = e
}

// written marks e, of kind k, to be sent by the next flush as write.
func (w *pgWrite) written(k schema.Kind, e *knownRow, write rowWrite) {
	if e.write != unwritten {
		return // marked before: sent as it was first marked, with its state now
	}
	e.write = write
	if w.dirty == nil {
		w.dirty = map[schema.Kind][]*knownRow{}
	}
	if _, ok := w.dirty[k]; !ok {
		w.kinds = append(w.kinds, k)
	}
	w.dirty[k] = append(w.dirty[k], e)
}

// queue adds a statement that answers nothing to the next flush.
func (w *pgWrite) queue(device uuid.UUID, sql string, args ...any) {
	w.queued = append(w.queued, queuedStatement{sql: sql, args: args})
	delete(w.devices, device)
	if w.noted == nil {
		w.noted = map[uuid.UUID]bool{}
	}
	w.noted[device] = true
}

// flush sends what the transaction wrote and has not sent: the records
// first, kind by kind in the order first written, then the statements
// queued, in order; then, with commit, the commit, all in one pipeline.
// Many new records of a kind go first by COPY, a round trip of its own
// that costs less than the statements would.
func (w *pgWrite) flush(ctx context.Context, commit bool) error {
	if len(w.kinds) == 0 && len(w.queued) == 0 && !commit {
		return nil
	}
	b := &pgx.Batch{}
	var what []string
	for _, k := range w.kinds {
		q := kindSQLs[k]
		var fresh []*replica.Row
		for _, e := range w.dirty[k] {
			switch e.write {
			case writeNew:
				fresh = append(fresh, e.row)
			case writeChanged:
				b.Queue(q.upsert, rowArgs(q, e.row)...)
				what = append(what, fmt.Sprintf("save %s %s", k, e.row.ID()))
			}
			e.write = unwritten
		}
		if len(fresh) < copyAtLeast {
			for _, r := range fresh {
				b.Queue(q.insertNew, rowArgs(q, r)...)
				what = append(what, fmt.Sprintf("insert %s %s", k, r.ID()))
			}
			continue
		}
		w.buf = w.buf[:0]
		for _, r := range fresh {
			var err error
			if w.buf, err = appendCopy(w.buf, rowArgs(q, r)); err != nil {
				return fmt.Errorf("insert %s %s: %w", k, r.ID(), err)
			}
		}
		if _, err := w.conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(w.buf), q.copy); err != nil {
			return fmt.Errorf("insert %d %s: %w", len(fresh), k, err)
		}
	}
	for _, st := range w.queued {
		b.Queue(st.sql, st.args...)
		what = append(what, "bookkeeping")
	}
	if commit {
		b.Queue(`COMMIT`)
		what = append(what, "commit")
	}
	w.dirty, w.kinds, w.queued, w.noted = nil, nil, nil, nil
	br := w.conn.SendBatch(ctx, b)
	for i := range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("%s: %w", what[i], err)
		}
	}
	return br.Close()
}

// appendCopy appends vals, a row's values as replica.RowValues gives
// them, to buf as a line of COPY's text format: tab between values, \N
// for NULL, and a backslash before a backslash, tab, newline or carriage
// return in a text.
func appendCopy(buf []byte, vals []any) ([]byte, error) {
	for i, v := range vals {
		if i > 0 {
			buf = append(buf, '\t')
		}
		switch v := v.(type) {
		case nil:
			buf = append(buf, `\N`...)
		case int64:
			buf = strconv.AppendInt(buf, v, 10)
		case string:
			for j := 0; j < len(v); j++ {
				switch c := v[j]; c {
				case '\\':
					buf = append(buf, `\\`...)
				case '\t':
					buf = append(buf, `\t`...)
				case '\n':
					buf = append(buf, `\n`...)
				case '\r':
					buf = append(buf, `\r`...)
				default:
					buf = append(buf, c)
				}
			}
		default:
			return nil, fmt.Errorf("column %d: a value of type %T", i+1, v)
		}
	}
	return append(buf, '\n'), nil
}

func rowArgs(q *kindSQL, r *replica.Row) []any {
	return replica.RowValues(r)[:len(q.columns)]
}

// Preload reads the devices and the records of ids that the transaction
// does not know yet, one query for the devices and one per kind, all in
// one round trip.
func (w *pgWrite) Preload(ctx context.Context, devices []uuid.UUID, ids map[schema.Kind][]uuid.UUID) error {
	if err := w.flush(ctx, false); err != nil {
		return err
	}
	b := &pgx.Batch{}
	var devs []pgtype.UUID
	for _, id := range devices {
		if _, ok := w.devices[id]; !ok && !w.noted[id] {
			devs = append(devs, pgtype.UUID{Bytes: id, Valid: true})
		}
	}
	if len(devs) > 0 {
		b.Queue(`SELECT `+deviceColumns+` FROM devices WHERE id = ANY($1)`, devs)
	}
	var kinds []schema.Kind
	for k, list := range ids {
		if _, ok := kindSQLs[k]; !ok {
			continue
		}
		if w.known == nil {
			w.known = map[schema.Kind]map[uuid.UUID]*knownRow{}
		}
		if w.known[k] == nil {
			w.known[k] = make(map[uuid.UUID]*knownRow, len(list))
		}
		var want []pgtype.UUID // which the driver sends as they are
		for _, id := range list {
			if w.knownOf(k, id) == nil {
				w.setKnown(k, id, &knownRow{}) // absent unless read below
				want = append(want, pgtype.UUID{Bytes: id, Valid: true})
			}
		}
		if len(want) > 0 {
			b.Queue(kindSQLs[k].byIDs, want)
			kinds = append(kinds, k)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	br := w.conn.SendBatch(ctx, b)
	defer br.Close()
	if len(devs) > 0 {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("preload devices: %w", err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*replica.EnrolledDevice, error) { return scanDevice(r) })
		if err != nil {
			return fmt.Errorf("preload devices: %w", err)
		}
		if w.devices == nil {
			w.devices = map[uuid.UUID]*replica.EnrolledDevice{}
		}
		for _, d := range got {
			w.devices[d.ID] = d
		}
	}
	for _, k := range kinds {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("preload %s: %w", k, err)
		}
		got, err := scanRows(k, rows)
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		for _, r := range got {
			w.knownOf(k, r.ID()).row = r
		}
	}
	return br.Close()
}

func (w *pgWrite) Device(ctx context.Context, id uuid.UUID) (*replica.EnrolledDevice, error) {
	if d, ok := w.devices[id]; ok {
		c := *d // the caller may change it
		return &c, nil
	}
	if w.noted[id] {
		if err := w.flush(ctx, false); err != nil {
			return nil, err
		}
	}
	return lookupDevice(ctx, w.conn, id, "")
}

// copyOf returns a copy of e's row with its echo, which the caller may
// change; nil if there is no such record.
func copyOf(e *knownRow) *replica.Row {
	if e.row == nil {
		return nil
	}
	c := e.row.Clone()
	c.Echo, c.EchoDevice = e.row.Echo, e.row.EchoDevice
	return c
}

func (w *pgWrite) Load(ctx context.Context, k schema.Kind, id uuid.UUID) (*replica.Row, error) {
	if e := w.knownOf(k, id); e != nil {
		return copyOf(e), nil
	}
	// Unknown, so not written here: what is unsent does not change it.
	row, err := loadRow(ctx, w.conn, k, id)
	if err != nil {
		return nil, err
	}
	e := &knownRow{row: row}
	w.setKnown(k, id, e)
	return copyOf(e), nil
}

func (w *pgWrite) Save(ctx context.Context, r *replica.Row) error {
	if _, err := sqlOf(r.Kind); err != nil {
		return fmt.Errorf("save %s %s: %w", r.Kind, r.ID(), err)
	}
	c := r.Clone()
	c.Echo, c.EchoDevice = r.Echo, r.EchoDevice
	e := w.knownOf(r.Kind, r.ID())
	switch {
	case e == nil: // stored or not: the flush replaces it if it is
		e = &knownRow{}
		w.setKnown(r.Kind, r.ID(), e)
		w.written(r.Kind, e, writeChanged)
	case e.row == nil:
		w.written(r.Kind, e, writeNew)
	default:
		w.written(r.Kind, e, writeChanged)
	}
	e.row = c
	return nil
}

func (w *pgWrite) Insert(ctx context.Context, r *replica.Row) (bool, error) {
	q, err := sqlOf(r.Kind)
	if err != nil {
		return false, fmt.Errorf("insert %s %s: %w", r.Kind, r.ID(), err)
	}
	if e := w.knownOf(r.Kind, r.ID()); e != nil {
		if e.row != nil {
			return false, nil
		}
		e.row = r // r does not change after (ServerWrite.Insert)
		w.written(r.Kind, e, writeNew)
		return true, nil
	}
	if err := w.flush(ctx, false); err != nil {
		return false, err
	}
	tag, err := w.conn.Exec(ctx, q.insert, rowArgs(q, r)...)
	if err != nil {
		return false, fmt.Errorf("insert %s %s: %w", r.Kind, r.ID(), err)
	}
	if tag.RowsAffected() != 1 {
		return false, nil
	}
	w.setKnown(r.Kind, r.ID(), &knownRow{row: r})
	return true, nil
}

// ownerOf returns the unit of a record of row's kind, the id itself for a
// unit; false if the row does not say.
func ownerOf(row *replica.Row) (uuid.UUID, bool) {
	switch rec := row.Record.(type) {
	case *schema.Unit:
		return rec.ID, true
	case *schema.Staff:
		return rec.UnitID, true
	}
	if h := schema.HeaderOf(row.Record); h != nil {
		return h.UnitID, true
	}
	return uuid.Nil, false
}

func (w *pgWrite) Owner(ctx context.Context, k schema.Kind, id uuid.UUID) (uuid.UUID, bool, error) {
	if e := w.knownOf(k, id); e != nil {
		if e.row == nil {
			return uuid.Nil, false, nil
		}
		if owner, ok := ownerOf(e.row); ok {
			return owner, true, nil
		}
		if err := w.flush(ctx, false); err != nil { // the row may be unsent
			return uuid.Nil, false, err
		}
	}
	q, err := sqlOf(k)
	if err != nil {
		return uuid.Nil, false, err
	}
	var owner uuid.UUID
	err = w.conn.QueryRow(ctx, q.owner, id).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, nil
	}
	return owner, err == nil, err
}

func (w *pgWrite) EchoSeq(ctx context.Context, k schema.Kind, id, device uuid.UUID, echo int64) (int64, error) {
	if e := w.knownOf(k, id); e != nil {
		if e.row == nil {
			return 0, nil
		}
		if schema.HeaderOf(e.row.Record) != nil {
			if e.row.EchoOf() == device && e.row.Echo == echo {
				return e.row.Seq, nil
			}
			return 0, nil
		}
	}
	q, err := sqlOf(k)
	if err != nil || q.echoSeq == "" {
		return 0, fmt.Errorf("echo of %s: %q is not a kind of field record", id, k)
	}
	var seq int64
	err = w.conn.QueryRow(ctx, q.echoSeq, id, device, echo).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

func (w *pgWrite) LastPush(ctx context.Context, device uuid.UUID, seq int64) (*replica.PushRecord, error) {
	if w.noted[device] {
		if err := w.flush(ctx, false); err != nil {
			return nil, err
		}
	}
	p := &replica.PushRecord{}
	var rej, re *string
	err := w.conn.QueryRow(ctx, `SELECT first_seq, last_seq, hashes, rejections, restamps FROM device_pushes
		WHERE device_id = $1 AND first_seq <= $2 ORDER BY first_seq DESC LIMIT 1`, device, seq).Scan(&p.First, &p.Last, &p.Hashes, &rej, &re)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rej != nil {
		if err := json.Unmarshal([]byte(*rej), &p.Rejections); err != nil {
			return nil, fmt.Errorf("rejections of push %d..%d: %w", p.First, p.Last, err)
		}
	}
	if re != nil {
		if err := json.Unmarshal([]byte(*re), &p.Restamps); err != nil {
			return nil, fmt.Errorf("re-stamped versions of push %d..%d: %w", p.First, p.Last, err)
		}
	}
	return p, nil
}

// jsonOrNull encodes m as JSON, or nil (NULL) if it is empty.
func jsonOrNull[V any](m map[int64]V) (*string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func (w *pgWrite) AddPush(ctx context.Context, device uuid.UUID, p *replica.PushRecord) error {
	rej, err := jsonOrNull(p.Rejections)
	if err != nil {
		return err
	}
	re, err := jsonOrNull(p.Restamps)
	if err != nil {
		return err
	}
	hashes := p.Hashes
	if hashes == nil {
		hashes = []byte{}
	}
	w.queue(device, `INSERT INTO device_pushes (device_id, first_seq, last_seq, hashes, rejections, restamps) VALUES ($1, $2, $3, $4, $5, $6)`,
		device, p.First, p.Last, hashes, rej, re)
	return nil
}

func (w *pgWrite) NotePush(ctx context.Context, device uuid.UUID, p replica.DevicePush) error {
	w.queue(device, `UPDATE devices SET echo_after = greatest(echo_after, $1), last_seq = $2, last_push_at = $3, protocol = $4,
		rejected = rejected + $5, applied = applied + $6 WHERE id = $7`,
		p.EchoAfter, p.LastSeq, ms(p.At), p.Protocol, p.Rejected, p.Applied, device)
	return nil
}

func (w *pgWrite) NoteHeal(ctx context.Context, device uuid.UUID, last, healed int64, now time.Time) error {
	w.queue(device, `UPDATE devices SET last_seq = $1, healed = healed + $2, last_push_at = $3 WHERE id = $4`, last, healed, ms(now), device)
	return nil
}

func (w *pgWrite) SaveCounters(ctx context.Context, seq int64, changed bool, clock hlc.Timestamp) error {
	w.queue(uuid.Nil, saveCountersSQL, seq, clock.String())
	return nil
}

// Commit sends what is unsent and the commit, in one round trip.
func (w *pgWrite) Commit() error {
	if w.conn == nil {
		return pgx.ErrTxClosed
	}
	if err := w.flush(w.ctx, true); err != nil {
		return err
	}
	w.conn.Release()
	w.conn = nil
	return nil
}

// Rollback rolls the transaction back, if it has not ended, and gives
// the connection back to the pool; a connection that cannot roll back is
// closed, not given back.
func (w *pgWrite) Rollback() error {
	w.dirty, w.kinds, w.queued, w.noted = nil, nil, nil, nil
	if w.conn == nil {
		return nil
	}
	ctx := context.WithoutCancel(w.ctx)
	_, err := w.conn.Exec(ctx, `ROLLBACK`)
	if err != nil {
		w.conn.Conn().Close(ctx)
	}
	w.conn.Release()
	w.conn = nil
	return err
}

// pgRead is a read transaction of a SyncEngine.
type pgRead struct {
	tx  pgx.Tx
	ctx context.Context
}

func (r *pgRead) Device(ctx context.Context, id uuid.UUID) (*replica.EnrolledDevice, error) {
	return lookupDevice(ctx, r.tx, id, "")
}

func (r *pgRead) Head(ctx context.Context) (int64, int64, error) {
	var seq, mark int64
	err := r.tx.QueryRow(ctx, `SELECT change_seq, (SELECT mark FROM change_lineage ORDER BY id DESC LIMIT 1) FROM sync_counter`).Scan(&seq, &mark)
	return seq, mark, err
}

func (r *pgRead) Lineage(ctx context.Context, mark int64) (bool, int64, bool, error) {
	var id int64
	err := r.tx.QueryRow(ctx, `SELECT id FROM change_lineage WHERE mark = $1`, mark).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, false, nil
	}
	if err != nil {
		return false, 0, false, fmt.Errorf("lineage: %w", err)
	}
	var end *int64
	if err := r.tx.QueryRow(ctx, `SELECT min(from_seq) FROM change_lineage WHERE id > $1`, id).Scan(&end); err != nil {
		return false, 0, false, fmt.Errorf("lineage: %w", err)
	}
	if end == nil {
		return true, 0, true, nil
	}
	return true, *end, false, nil
}

// pagePart is a part of a unit's scope, as a pull page reads it: a
// kind's table and the condition on its rows, whose parameters are $1 the
// cursor's change number, then the unit, the pulling device and its echo
// numbers where the part has them.
type pagePart struct {
	kind  schema.Kind
	where string
	scope bool // whether the condition takes the unit and the echoes
}

// pageParts are the parts of a unit's scope: the reference data, the
// unit's records of each kind but those the pulling device holds (its
// echoes), and the referrals to the unit, again without its echoes. A
// referral is never to its own unit, so no row is in two parts.
var pageParts = func() []pagePart {
	const notEcho = ` AND NOT (coalesce(echo_device, device_id) IS NOT DISTINCT FROM $3 AND echo > $4 AND echo <= $5)`
	var parts []pagePart
	for _, k := range schema.ReferenceKinds {
		parts = append(parts, pagePart{kind: k, where: `seq > $1`})
	}
	for _, k := range schema.FieldKinds {
		parts = append(parts, pagePart{kind: k, where: `unit_id = $2 AND seq > $1` + notEcho, scope: true})
	}
	return append(parts, pagePart{kind: schema.KindReferral, where: `to_unit_id = $2 AND seq > $1` + notEcho, scope: true})
}()

// pageEnd is the query of the change number a page ends at: the limit-th
// of the scope's change numbers after the cursor ($6 the limit), or the
// last, each part read through its index in change order as far as the
// limit at most.
var pageEnd = func() string {
	arms := make([]string, len(pageParts))
	for i, p := range pageParts {
		arms[i] = fmt.Sprintf(`(SELECT seq FROM %s WHERE %s ORDER BY seq LIMIT $6)`, p.kind, p.where)
	}
	return `SELECT max(seq) FROM (SELECT seq FROM (` + strings.Join(arms, " UNION ALL ") + `) a ORDER BY seq LIMIT $6) p`
}()

// Page reads a page in two round trips: the change number it ends at,
// then, in one pipeline, each part's rows up to it, so that it reads the
// page's rows and no others.
func (r *pgRead) Page(ctx context.Context, unit uuid.UUID, after int64, skip replica.EchoSkip, limit int, _ *replica.PageBuffers) ([]wire.Change, error) {
	args := []any{after, unit, nullID(skip.Device), skip.After, skip.Acked}
	var end *int64
	if err := r.tx.QueryRow(ctx, pageEnd, append(args, limit)...).Scan(&end); err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	if end == nil {
		return []wire.Change{}, nil
	}
	var b pgx.Batch
	for _, p := range pageParts {
		ks, err := sqlOf(p.kind)
		if err != nil {
			return nil, err
		}
		q := ks.sel + ` WHERE ` + p.where + ` AND seq <= $` + fmt.Sprint(len(args)+1)
		if p.scope {
			b.Queue(q, append(args, *end)...)
		} else {
			b.Queue(strings.Replace(q, `$6`, `$2`, 1), after, *end)
		}
	}
	br := r.tx.SendBatch(ctx, &b)
	defer br.Close()
	var rows []*replica.Row
	for _, p := range pageParts {
		res, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", p.kind, err)
		}
		got, err := scanRows(p.kind, res)
		if err != nil {
			return nil, err
		}
		rows = append(rows, got...)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	slices.SortFunc(rows, func(a, b *replica.Row) int { return cmp.Compare(a.Seq, b.Seq) })
	changes := make([]wire.Change, len(rows))
	for i, row := range rows {
		changes[i] = replica.ChangeOf(row)
	}
	return changes, nil
}

func (r *pgRead) Rollback() error { return r.tx.Rollback(context.WithoutCancel(r.ctx)) }
