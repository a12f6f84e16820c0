package pgstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// SyncEngine is the replica.ServerEngine of a Store: the records in the
// tables generated from schema (records.go), the change numbers taken
// under the counter row's lock (takeSeq's guarantee: numbers commit in the
// order they are taken). It is safe for concurrent use, also by several
// server processes on one database.
type SyncEngine struct{ s *Store }

var _ replica.ServerEngine = (*SyncEngine)(nil)

// SyncEngine returns the store's sync engine, for replica.NewServerSync.
func (s *Store) SyncEngine() *SyncEngine { return &SyncEngine{s: s} }

// selectColumns returns the columns of kind k's table as a SELECT reads
// them for replica.ScanRow: ids as text.
func selectColumns(k schema.Kind, echo bool) string {
	fields, _ := schema.FieldsOf(k)
	cols := make([]string, 0, len(fields)+4)
	for _, f := range fields {
		if f.Type == schema.TypeID {
			cols = append(cols, f.Name+"::text")
		} else {
			cols = append(cols, f.Name)
		}
	}
	cols = append(cols, "v", "cv", "seq")
	if echo {
		cols = append(cols, "echo", "echo_device::text")
	}
	return strings.Join(cols, ", ")
}

// queryer is what pgx.Tx and the pool provide.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// loadRows returns the rows of kind k that where selects.
func loadRows(ctx context.Context, q queryer, k schema.Kind, where string, args ...any) ([]*replica.Row, error) {
	echo := schema.IsFieldKind(k)
	rows, err := q.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s %s`, selectColumns(k, echo), k, where), args...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", k, err)
	}
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
	return out, rows.Err()
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
		return err
	})
	if err != nil {
		return uuid.Nil, 0, fmt.Errorf("open sync: %w", err)
	}
	return epoch, clock, nil
}

// BeginWrite locks the counter row first, and holds the lock to the end
// of the transaction: no other transaction takes change numbers until
// this one has committed or rolled back.
func (e *SyncEngine) BeginWrite(ctx context.Context) (replica.ServerWrite, int64, hlc.Timestamp, error) {
	tx, err := e.s.pool.Begin(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	var seq int64
	var last string
	if err := tx.QueryRow(ctx, `SELECT change_seq, hlc FROM sync_counter FOR UPDATE`).Scan(&seq, &last); err != nil {
		tx.Rollback(ctx)
		return nil, 0, 0, fmt.Errorf("counters: %w", err)
	}
	var clock hlc.Timestamp
	if last != "" {
		if clock, err = hlc.Parse(last); err != nil {
			tx.Rollback(ctx)
			return nil, 0, 0, fmt.Errorf("stored clock: %w", err)
		}
	}
	return &pgWrite{tx: tx, ctx: ctx}, seq, clock, nil
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

// pgWrite is a write transaction of a SyncEngine.
type pgWrite struct {
	tx  pgx.Tx
	ctx context.Context // the transaction's, for Commit and Rollback
}

func (w *pgWrite) Device(ctx context.Context, id uuid.UUID) (*replica.EnrolledDevice, error) {
	return lookupDevice(ctx, w.tx, id, "")
}

func (w *pgWrite) Load(ctx context.Context, k schema.Kind, id uuid.UUID) (*replica.Row, error) {
	return loadRow(ctx, w.tx, k, id)
}

// insertSQL returns the INSERT of a row of kind k, its columns those of
// replica.RowValues.
func insertSQL(k schema.Kind) string {
	cols := append(replica.RecordColumns(k), "v", "cv", "seq")
	if schema.IsFieldKind(k) {
		cols = append(cols, "echo", "echo_device")
	}
	marks := make([]string, len(cols))
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	return fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, k, strings.Join(cols, ", "), strings.Join(marks, ", "))
}

func rowArgs(r *replica.Row) []any {
	vals := replica.RowValues(r)
	if !schema.IsFieldKind(r.Kind) {
		vals = vals[:len(vals)-2]
	}
	return vals
}

func (w *pgWrite) Save(ctx context.Context, r *replica.Row) error {
	cols := append(replica.RecordColumns(r.Kind)[1:], "v", "cv", "seq") // the id never changes
	if schema.IsFieldKind(r.Kind) {
		cols = append(cols, "echo", "echo_device")
	}
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = excluded." + c
	}
	q := insertSQL(r.Kind) + ` ON CONFLICT (id) DO UPDATE SET ` + strings.Join(set, ", ")
	if _, err := w.tx.Exec(ctx, q, rowArgs(r)...); err != nil {
		return fmt.Errorf("save %s %s: %w", r.Kind, r.ID(), err)
	}
	return nil
}

func (w *pgWrite) Insert(ctx context.Context, r *replica.Row) (bool, error) {
	tag, err := w.tx.Exec(ctx, insertSQL(r.Kind)+` ON CONFLICT (id) DO NOTHING`, rowArgs(r)...)
	if err != nil {
		return false, fmt.Errorf("insert %s %s: %w", r.Kind, r.ID(), err)
	}
	return tag.RowsAffected() == 1, nil
}

func (w *pgWrite) Owner(ctx context.Context, k schema.Kind, id uuid.UUID) (uuid.UUID, bool, error) {
	col := "unit_id"
	if k == schema.KindUnit {
		col = "id"
	}
	var owner uuid.UUID
	err := w.tx.QueryRow(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE id = $1`, col, k), id).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, nil
	}
	return owner, err == nil, err
}

func (w *pgWrite) EchoSeq(ctx context.Context, k schema.Kind, id, device uuid.UUID, echo int64) (int64, error) {
	var seq int64
	err := w.tx.QueryRow(ctx, fmt.Sprintf(`SELECT seq FROM %s WHERE id = $1 AND coalesce(echo_device, device_id) = $2 AND echo = $3`, k), id, device, echo).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

func (w *pgWrite) LastPush(ctx context.Context, device uuid.UUID, seq int64) (*replica.PushRecord, error) {
	p := &replica.PushRecord{}
	var rej, re *string
	err := w.tx.QueryRow(ctx, `SELECT first_seq, last_seq, hashes, rejections, restamps FROM device_pushes
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
	_, err = w.tx.Exec(ctx, `INSERT INTO device_pushes (device_id, first_seq, last_seq, hashes, rejections, restamps) VALUES ($1, $2, $3, $4, $5, $6)`,
		device, p.First, p.Last, hashes, rej, re)
	return err
}

func (w *pgWrite) NotePush(ctx context.Context, device uuid.UUID, p replica.DevicePush) error {
	_, err := w.tx.Exec(ctx, `UPDATE devices SET echo_after = greatest(echo_after, $1), last_seq = $2, last_push_at = $3, protocol = $4,
		rejected = rejected + $5, applied = applied + $6 WHERE id = $7`,
		p.EchoAfter, p.LastSeq, ms(p.At), p.Protocol, p.Rejected, p.Applied, device)
	return err
}

func (w *pgWrite) NoteHeal(ctx context.Context, device uuid.UUID, last, healed int64, now time.Time) error {
	_, err := w.tx.Exec(ctx, `UPDATE devices SET last_seq = $1, healed = healed + $2, last_push_at = $3 WHERE id = $4`, last, healed, ms(now), device)
	return err
}

func (w *pgWrite) SaveCounters(ctx context.Context, seq int64, changed bool, clock hlc.Timestamp) error {
	_, err := w.tx.Exec(ctx, `UPDATE sync_counter SET change_seq = $1, hlc = $2`, seq, clock.String())
	return err
}

func (w *pgWrite) Commit() error { return w.tx.Commit(w.ctx) }

func (w *pgWrite) Rollback() error {
	err := w.tx.Rollback(context.WithoutCancel(w.ctx))
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
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

// Page reads each part of the scope in change order, up to limit rows
// each, and keeps the first limit of them all.
func (r *pgRead) Page(ctx context.Context, unit uuid.UUID, after int64, skip replica.EchoSkip, limit int, _ *replica.PageBuffers) ([]wire.Change, error) {
	var rows []*replica.Row
	add := func(k schema.Kind, where string, args ...any) error {
		got, err := loadRows(ctx, r.tx, k, where+fmt.Sprintf(` ORDER BY seq LIMIT %d`, limit), args...)
		rows = append(rows, got...)
		return err
	}
	for _, k := range schema.ReferenceKinds {
		if err := add(k, `WHERE seq > $1`, after); err != nil {
			return nil, err
		}
	}
	for _, k := range schema.FieldKinds {
		if err := add(k, `WHERE unit_id = $1 AND seq > $2 AND NOT (coalesce(echo_device, device_id) IS NOT DISTINCT FROM $3 AND echo > $4 AND echo <= $5)`,
			unit, after, nullID(skip.Device), skip.After, skip.Acked); err != nil {
			return nil, err
		}
	}
	if err := add(schema.KindReferral, `WHERE to_unit_id = $1 AND seq > $2 AND NOT (coalesce(echo_device, device_id) IS NOT DISTINCT FROM $3 AND echo > $4 AND echo <= $5)`,
		unit, after, nullID(skip.Device), skip.After, skip.Acked); err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b *replica.Row) int { return cmp.Compare(a.Seq, b.Seq) })
	rows = rows[:min(len(rows), limit)]
	changes := make([]wire.Change, len(rows))
	for i, row := range rows {
		changes[i] = replica.ChangeOf(row)
	}
	return changes, nil
}

func (r *pgRead) Rollback() error { return r.tx.Rollback(context.WithoutCancel(r.ctx)) }
