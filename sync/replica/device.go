package replica

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// Errors of the device replica.
var (
	// ErrNotFound means there is no such record on the device.
	ErrNotFound = errors.New("record not found")
	// ErrOutOfScope means the device may not write that record.
	ErrOutOfScope = errors.New("record out of the device's scope")
	// ErrIdentity means the replica file belongs to another device or unit.
	ErrIdentity = errors.New("replica belongs to another device")
)

// DeviceConfig configures a Device.
type DeviceConfig struct {
	// ID is the device's id, given at enrolment.
	ID uuid.UUID
	// UnitID is the unit the device is enrolled for.
	UnitID uuid.UUID
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Device is a device's replica: the records in its scope, an outbox of the
// writes not yet acknowledged by the server, and the sync state. Local
// writes apply at once and queue a mutation; a pull overwrites rows with the
// server's state and replays the queued writes on top, so the device shows
// the server's state plus what it has not yet pushed. It is safe for
// concurrent use.
type Device struct {
	db    *DB
	id    uuid.UUID
	unit  uuid.UUID
	now   func() time.Time
	clock *hlc.Clock

	mu     sync.Mutex // serialises writes
	sealed bool       // see Seal; guarded by mu
}

// ErrNoIdentity means a replica was opened without ids and holds none: the
// device has not been enrolled.
var ErrNoIdentity = errors.New("replica has no device identity")

// detach returns ctx without its cancellation, or ctx's error if it is
// done already. The device's statements are short and run so: with a
// context that can be cancelled, database/sql watches each transaction and
// each query with a goroutine of its own and go-sqlite3 runs each
// statement on one, which costs more than most of the statements
// themselves. A sync checks its context between them (each call here
// checks it first), so cancelling still stops it promptly; SQLite's busy
// timeout bounds the waits for a lock.
func detach(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// OpenDevice opens or creates the device replica at path. With zero ids in
// cfg it opens an existing replica as the device it belongs to, and fails
// with ErrNoIdentity if it belongs to none.
func OpenDevice(ctx context.Context, path string, cfg DeviceConfig) (*Device, error) {
	if (cfg.ID == uuid.Nil) != (cfg.UnitID == uuid.Nil) {
		return nil, fmt.Errorf("open device replica: give both the device and the unit id, or neither")
	}
	db, err := OpenDB(ctx, path, schema.DeviceDB)
	if err != nil {
		return nil, err
	}
	if cfg.ID == uuid.Nil {
		var id, unit string
		okID, err := getMeta(ctx, db.read, "device_id", &id)
		if err == nil && okID {
			_, err = getMeta(ctx, db.read, "unit_id", &unit)
		}
		if err != nil || !okID {
			db.Close()
			if err == nil {
				err = ErrNoIdentity
			}
			return nil, fmt.Errorf("open device replica: %w", err)
		}
		cfg.ID, _ = uuid.Parse(id)
		cfg.UnitID, _ = uuid.Parse(unit)
	}
	d := &Device{db: db, id: cfg.ID, unit: cfg.UnitID, now: cfg.Now}
	if d.now == nil {
		d.now = time.Now
	}
	if err := d.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open device replica: %w", err)
	}
	return d, nil
}

func (d *Device) load(ctx context.Context) error {
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for key, want := range map[string]string{"device_id": d.id.String(), "unit_id": d.unit.String()} {
		var got string
		ok, err := getMeta(ctx, tx, key, &got)
		if err != nil {
			return err
		}
		if !ok {
			if err := setMeta(ctx, tx, key, want); err != nil {
				return err
			}
		} else if got != want {
			return fmt.Errorf("%s is %s, not %s: %w", key, got, want, ErrIdentity)
		}
	}
	var last string
	ts := hlc.Timestamp(0)
	if ok, err := getMeta(ctx, tx, "hlc", &last); err != nil {
		return err
	} else if ok {
		if ts, err = hlc.Parse(last); err != nil {
			return err
		}
	}
	d.clock = hlc.NewClock(d.now, ts)
	var sealed string
	if _, err := getMeta(ctx, tx, metaSealed, &sealed); err != nil {
		return err
	}
	d.sealed = sealed != ""
	return tx.Commit()
}

// PrepareMeta returns the value kept beside the records under key (as
// Device.Meta has it) in the replica at path, which need not have a device
// identity yet: a device keeps there what it makes before it is enrolled,
// such as its key pair. If the value is unset, or check refuses it, make
// is called and its value stored in the same transaction, and made
// durable before PrepareMeta returns (a power cut does not lose it). The
// file is created if there is none; a later OpenDevice with ids gives it
// its identity and keeps the value.
func PrepareMeta(ctx context.Context, path, key string, check func(string) bool, create func() (string, error)) (string, error) {
	db, err := OpenDB(ctx, path, schema.DeviceDB)
	if err != nil {
		return "", err
	}
	defer db.Close()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("prepare meta: %w", err)
	}
	defer tx.Rollback()
	var v string
	ok, err := getMeta(ctx, tx, "sdk."+key, &v)
	if err != nil {
		return "", err
	}
	if ok && check(v) {
		return v, nil
	}
	if v, err = create(); err != nil {
		return "", err
	}
	if err := setMeta(ctx, tx, "sdk."+key, v); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("prepare meta: %w", err)
	}
	if _, err := db.write.ExecContext(ctx, `PRAGMA wal_checkpoint(FULL)`); err != nil {
		return "", fmt.Errorf("prepare meta: %w", err)
	}
	return v, nil
}

// MetaAt returns the value kept beside the records under key (as
// Device.Meta has it) in the replica at path, whether or not it has a
// device identity: "" if it is unset. It returns os.ErrNotExist if there
// is no replica at path.
func MetaAt(ctx context.Context, path, key string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	db, err := OpenDB(ctx, path, schema.DeviceDB)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	if _, err := getMeta(ctx, db.read, "sdk."+key, &v); err != nil {
		return "", fmt.Errorf("meta: %w", err)
	}
	return v, nil
}

// SetMetaAt sets values kept beside the records (as Device.SetMeta does)
// in the replica at path, in one transaction, whether or not it has a
// device identity yet: a device writes what enrolment gave it before the
// replica takes its identity, so that a replica with an identity always
// has them. The file is created if there is none.
func SetMetaAt(ctx context.Context, path string, values map[string]string) error {
	db, err := OpenDB(ctx, path, schema.DeviceDB)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set meta: %w", err)
	}
	defer tx.Rollback()
	for k, v := range values {
		if err := setMeta(ctx, tx, "sdk."+k, v); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set meta: %w", err)
	}
	return nil
}

// Close closes the replica.
func (d *Device) Close() error { return d.db.Close() }

// DB returns the underlying database.
func (d *Device) DB() *DB { return d.db }

// ID returns the device's id.
func (d *Device) ID() uuid.UUID { return d.id }

// UnitID returns the device's unit.
func (d *Device) UnitID() uuid.UUID { return d.unit }

// Create records a new record. It fails with a *schema.FieldError if the
// record is invalid and with ErrOutOfScope if it is not of the device's
// unit and device.
func (d *Device) Create(ctx context.Context, rec schema.Record) error {
	if h := schema.HeaderOf(rec); h == nil {
		return fmt.Errorf("create %s: %w: reference data is written on the server", rec.Kind(), ErrOutOfScope)
	} else if h.UnitID != d.unit || h.DeviceID != d.id {
		return fmt.Errorf("create %s: %w: unit and device must be this device's", rec.Kind(), ErrOutOfScope)
	}
	fields, err := json.Marshal(fieldsObject(rec.Fields(), nil))
	if err != nil {
		return err
	}
	return d.Write(ctx, rec.Kind(), rec.RecordID(), fields)
}

// Update writes the named fields of rec, an existing record, as a
// correction.
func (d *Device) Update(ctx context.Context, rec schema.Record, names ...string) error {
	if len(names) == 0 {
		return fmt.Errorf("update %s: no fields named", rec.Kind())
	}
	only := map[string]bool{}
	for _, n := range names {
		if n == "id" {
			return fmt.Errorf("update %s: the id is not a field to update", rec.Kind())
		}
		only[n] = true
	}
	obj := fieldsObject(rec.Fields(), only)
	if len(obj) != len(only) {
		return &schema.FieldError{Kind: rec.Kind(), Field: fmt.Sprint(names), Rule: schema.RuleUnknownField, Message: "names a field the record does not have"}
	}
	fields, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return d.Write(ctx, rec.Kind(), rec.RecordID(), fields)
}

// Void marks a record as entered by mistake.
func (d *Device) Void(ctx context.Context, k schema.Kind, id uuid.UUID) error {
	return d.Write(ctx, k, id, json.RawMessage(`{"voided":true}`))
}

func fieldsObject(fs []schema.Field, only map[string]bool) map[string]json.RawMessage {
	obj := make(map[string]json.RawMessage, len(fs))
	for _, f := range fs {
		if only != nil && !only[f.Name] {
			continue
		}
		b, _ := f.MarshalJSON()
		obj[f.Name] = b
	}
	return obj
}

// Write applies a write of fields (a JSON object; with "id" a create) to
// the record of kind k with id, stamped with the device's clock, and queues
// it for the server, in one transaction. Errors: *schema.FieldError for an
// invalid write or result, ErrNotFound for a change to a record the device
// does not have.
func (d *Device) Write(ctx context.Context, k schema.Kind, id uuid.UUID, fields json.RawMessage) error {
	if !schema.IsFieldKind(k) {
		return fmt.Errorf("write %s: %w: not a kind devices write", k, ErrOutOfScope)
	}
	ctx, err := detach(ctx)
	if err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sealed {
		return fmt.Errorf("write %s %s: %w", k, id, ErrSealed)
	}
	// The time is at least what the clock last heard from the server: a
	// tablet whose clock was reset still validates times as of then.
	now := d.now()
	if known := d.clock.Last().Wall(); known.After(now) {
		now = known
	}
	ts := d.clock.Now()
	w, err := DecodeWrite(k, id, fields, Key(ts, d.id))
	if err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	// The outbox keeps the fields in encoding/json's compact form, which
	// wire.AppendPushRequest copies as they are into every push.
	if fields, err = json.Marshal(fields); err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	defer tx.Rollback()
	rs := newDeviceRowStore(tx)
	defer rs.close()
	row, err := rs.load(ctx, k, id)
	if err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	if row == nil && !w.IsCreate() {
		return fmt.Errorf("write %s %s: %w", k, id, ErrNotFound)
	}
	if err := checkStatus(row, w); err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	merged := w
	if row == nil {
		if !w.IsCreate() {
			return fmt.Errorf("write %s %s: %w", k, id, ErrNotFound)
		}
	} else {
		merged = row
		if _, err := Join(merged, w); err != nil {
			return fmt.Errorf("write %s %s: %w", k, id, err)
		}
	}
	if err := merged.Record.Validate(now); err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	var next int64
	if _, err := getMeta(ctx, tx, "next_seq", &next); err != nil {
		return err
	}
	next = max(next, 1)
	// The row names this write as its latest own (Row.Echo): the answer to
	// it raises the row's change number. A queued write it follows is
	// marked, so that the answer to that one raises the row's seq itself.
	if row != nil && row.Echo > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET superseded = 1 WHERE seq = ?`, row.Echo); err != nil {
			return fmt.Errorf("write %s %s: queue: %w", k, id, err)
		}
	}
	merged.Echo = next
	if err := rs.save(ctx, merged); err != nil {
		return fmt.Errorf("write %s %s: %w", k, id, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (seq, kind, id, version, fields, created_at, base_seq) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		next, string(k), id.String(), ts.String(), string(fields), now.UnixMilli(), merged.Seq); err != nil {
		return fmt.Errorf("write %s %s: queue: %w", k, id, err)
	}
	if err := setMeta(ctx, tx, "next_seq", next+1); err != nil {
		return err
	}
	if err := setMeta(ctx, tx, "hlc", d.clock.Last().String()); err != nil {
		return err
	}
	return tx.Commit()
}

// Get returns the row of kind k with id; ErrNotFound if there is none.
func (d *Device) Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*Row, error) {
	rs := newDeviceRowStore(d.db.read)
	defer rs.close()
	r, err := rs.load(ctx, k, id)
	if err == nil && r == nil {
		err = fmt.Errorf("%s %s: %w", k, id, ErrNotFound)
	}
	return r, err
}

// Rows returns every row of kind k, in id order.
func (d *Device) Rows(ctx context.Context, k schema.Kind) ([]*Row, error) {
	return queryDeviceRows(ctx, d.db.read, k, `ORDER BY id`)
}

// Pending returns the number of queued mutations.
func (d *Device) Pending(ctx context.Context) (int, error) {
	ctx, err := detach(ctx)
	if err != nil {
		return 0, err
	}
	var n int
	err = d.db.read.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
	return n, err
}

// NextPush returns a push request of up to limit queued mutations, oldest
// first, or nil if the outbox is empty.
func (d *Device) NextPush(ctx context.Context, limit int) (*wire.PushRequest, error) {
	return d.NextPushAfter(ctx, 0, limit)
}

// NextPushAfter is NextPush of the queued mutations numbered above after:
// the batch that follows one still in flight.
func (d *Device) NextPushAfter(ctx context.Context, after int64, limit int) (*wire.PushRequest, error) {
	if limit <= 0 || limit > wire.MaxMutations {
		limit = wire.MaxMutations
	}
	ctx, err := detach(ctx)
	if err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	rows, err := d.db.read.QueryContext(ctx, `SELECT seq, kind, id, version, fields, base_seq FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	defer rows.Close()
	req := &wire.PushRequest{Versions: wire.Current(), Mutations: make([]wire.Mutation, 0, limit)}
	// The id and version are read where the driver holds them; the kind,
	// one of a few, is shared with the mutation before it; the fields of
	// all the mutations are copied into one array, which is only ever
	// grown (the fields of the mutations before keep the array they were
	// copied into), where a string and a slice of its own each cost two
	// allocations and a copy more.
	var kind, id, version, fields sql.RawBytes
	var all []byte
	for rows.Next() {
		var m wire.Mutation
		if err := rows.Scan(&m.Seq, &kind, &id, &version, &fields, &m.Base); err != nil {
			return nil, fmt.Errorf("next push: %w", err)
		}
		m.Base = max(m.Base, 0) // -1: forgotten (ResetCursor)
		if n := len(req.Mutations); n > 0 && string(req.Mutations[n-1].Kind) == string(kind) {
			m.Kind = req.Mutations[n-1].Kind
		} else {
			m.Kind = schema.Kind(kind)
		}
		if m.ID, err = uuid.ParseBytes(id); err != nil {
			return nil, fmt.Errorf("next push: %w", err)
		}
		if err = m.Version.UnmarshalText(version); err != nil {
			return nil, fmt.Errorf("next push: %w", err)
		}
		if all == nil {
			// Room for the batch, sized on its first mutation: growing
			// the array by doubling would copy the batch's fields again.
			all = make([]byte, 0, (len(fields)+len(fields)/4+64)*limit)
		}
		start := len(all)
		all = append(all, fields...)
		m.Fields = json.RawMessage(all[start:len(all):len(all)])
		req.Mutations = append(req.Mutations, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	if len(req.Mutations) == 0 {
		return nil, nil
	}
	req.Clock = d.clock.Now()
	return req, nil
}

// PushBatch is a push request read from the outbox already encoded: what
// wire.AppendPushRequest makes of the request NextPushAfter reads.
type PushBatch struct {
	Body        []byte // the request as JSON
	First, Last int64  // the numbers of its first and last mutations
	Count       int    // how many mutations it has
}

// pushBodyBytes is about the most bytes of mutations a push body holds,
// far below what a server takes (wire.MaxBodyBytes): a push of the most
// mutations a server takes, of records as the app makes them (a few
// hundred bytes each), stays under it, and a batch of unusually large
// ones is sent in more pushes rather than in one that a weak link
// struggles to carry. A variable, so that tests can lower it.
var pushBodyBytes = 1 << 20

// NextPushBody is NextPushAfter with the request encoded by SQLite as it
// reads the outbox: a push costs no decoding of the queued mutations and
// no encoding of them again. nil when none is queued after after. The
// batch ends early where its body would pass pushBodyBytes; it holds one
// mutation at least.
func (d *Device) NextPushBody(ctx context.Context, after int64, limit int) (*PushBatch, error) {
	if limit <= 0 || limit > wire.MaxMutations {
		limit = wire.MaxMutations
	}
	ctx, err := detach(ctx)
	if err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	// The columns hold the text AppendPushRequest writes: the kind, the
	// id as uuid.UUID.String gives it, the version as hlc.Timestamp's
	// text, the fields in encoding/json's compact form, which Write
	// stores; only a positive base is sent (-1: forgotten). Each row is
	// a mutation's JSON, made by SQLite as it reads the row, copied once.
	rows, err := d.db.read.QueryContext(ctx, `SELECT seq, iif(base_seq > 0,
			format('{"seq":%d,"kind":"%s","id":"%s","version":"%s","fields":%s,"base":%d}', seq, kind, id, version, fields, base_seq),
			format('{"seq":%d,"kind":"%s","id":"%s","version":"%s","fields":%s}', seq, kind, id, version, fields))
		FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	defer rows.Close()
	b := &PushBatch{}
	var body []byte
	var m sql.RawBytes
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq, &m); err != nil {
			return nil, fmt.Errorf("next push: %w", err)
		}
		if b.Count == 0 {
			// Room for the batch, sized on its first mutation: growing
			// the array by doubling would copy the batch again.
			body = make([]byte, 0, min((len(m)+len(m)/4+8)*limit, pushBodyBytes+len(m))+96)
			body = append(wire.AppendPushRequestStart(body, wire.Current(), d.clock.Now()), '[')
			b.First = seq
		} else {
			if len(body)+1+len(m)+2 > pushBodyBytes { // ",", m and "]}"
				break
			}
			body = append(body, ',')
		}
		body = append(body, m...)
		b.Last = seq
		b.Count++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("next push: %w", err)
	}
	if b.Count == 0 {
		return nil, nil
	}
	b.Body = append(body, "]}"...)
	return b, nil
}

// Rejection is a mutation the server refused, kept so the worker can see
// what did not sync and why.
type Rejection struct {
	Seq        int64       `json:"seq"`
	Kind       schema.Kind `json:"kind"`
	ID         uuid.UUID   `json:"id"`
	Error      wire.Error  `json:"error"`
	RejectedAt time.Time   `json:"rejected_at"`
	// Fields are the fields the mutation wrote, as it sent them: every
	// field of a refused create, the changed ones of a correction.
	Fields json.RawMessage `json:"fields"`
}

// Record returns what the rejected mutation wrote as a record of its kind,
// the fields it did not write at their zero values, so that an app can
// show it for the worker to record again, corrected. A mutation refused
// because its fields do not decode (an unknown field, a value of the wrong
// type) has no record: the error says why, and Fields are as it sent them.
func (r *Rejection) Record() (schema.Record, error) {
	w, err := decodeFields(r.Kind, r.ID, r.Fields)
	if err != nil {
		return nil, fmt.Errorf("rejection %d: %w", r.Seq, err)
	}
	return w.Record, nil
}

// AcceptPush applies the server's answer to a push: acknowledged mutations
// leave the outbox, rejected ones are recorded as rejections and their
// local effect is replaced by the server's state of the record. A response
// to an older request (a late or duplicated delivery) is harmless.
func (d *Device) AcceptPush(ctx context.Context, resp *wire.PushResponse) error {
	ctx, err := detach(ctx)
	if err != nil {
		return fmt.Errorf("accept push: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clock.Observe(resp.Clock)
	now := d.now()
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("accept push: %w", err)
	}
	defer tx.Rollback()
	rs := newDeviceRowStore(tx)
	defer rs.close()
	type target struct {
		kind    schema.Kind
		id      uuid.UUID
		current *wire.Change
	}
	var resets []target
	for _, res := range resp.Results {
		if res.Status != wire.Rejected || res.Error == nil {
			continue
		}
		var kind, id, fields string
		err := tx.QueryRowContext(ctx, `SELECT kind, id, fields FROM outbox WHERE seq = ?`, res.Seq).Scan(&kind, &id, &fields)
		if err != nil {
			continue // already handled by an earlier delivery of this answer
		}
		rid, _ := uuid.Parse(id)
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO rejections (seq, kind, id, code, field, message, rejected_at, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			res.Seq, kind, id, string(res.Error.Code), res.Error.Field, res.Error.Message, now.UnixMilli(), fields); err != nil {
			return fmt.Errorf("accept push: %w", err)
		}
		resets = append(resets, target{schema.Kind(kind), rid, res.Current})
	}
	if err := d.pullAgainRestamped(ctx, tx, resp); err != nil {
		return fmt.Errorf("accept push: %w", err)
	}
	if err := d.adoptRestamps(ctx, tx, rs, resp); err != nil {
		return fmt.Errorf("accept push: %w", err)
	}
	if err := d.noteEchoes(ctx, tx, resp); err != nil {
		return fmt.Errorf("accept push: %w", err)
	}
	// Only mutations with a result leave the queue: the server may have
	// processed more (LastSeq) in a request whose answer was lost, and
	// their rejections must still reach the device.
	var upto int64
	if n := len(resp.Results); n > 0 {
		upto = min(resp.Results[n-1].Seq, resp.LastSeq)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, upto); err != nil {
		return fmt.Errorf("accept push: %w", err)
	}
	for _, t := range resets {
		var base *Row
		if t.current != nil {
			if base, err = RowOfChange(t.current); err != nil {
				return fmt.Errorf("accept push: %w", err)
			}
		}
		if err := d.rebase(ctx, tx, rs, t.kind, t.id, base); err != nil {
			return fmt.Errorf("accept push: %w", err)
		}
	}
	if err := setMeta(ctx, tx, "hlc", d.clock.Last().String()); err != nil {
		return err
	}
	return tx.Commit()
}

// metaEchoHead is the highest change sequence number a push answer gave
// the state of a record the device holds (wire.Result.Change): a pull
// leaves such states out, so a page read before it may hold an older state
// of the record than the device's (see AcceptPage).
const metaEchoHead = "echo_head"

// noteEchoes notes the change sequence numbers that resp gives mutations
// whose push made exactly the state the device holds (a result with
// Change): the pull leaves those states out, and a row is as up to date as
// if it had been pulled. A row names its latest own write (Row.Echo): the
// number noted for that write raises the row's seq where it is read
// (deviceSeq), which costs the answer no write to the row. The answer to
// a write that a later one of the same record followed (superseded)
// raises the row's seq itself. Rows the device has since pulled further
// keep theirs. The mutations still queued are the ones to note: a later
// delivery of the same answer finds them gone and notes nothing.
func (d *Device) noteEchoes(ctx context.Context, tx *sql.Tx, resp *wire.PushResponse) error {
	// The echo head is the greatest change number any answer gave, noted
	// or not: a page read before it may be older than the device's rows.
	var head int64
	for _, res := range resp.Results {
		if res.Change > 0 && res.Status != wire.Rejected {
			head = max(head, res.Change)
		}
	}
	if head == 0 {
		return nil
	}
	if err := raiseEchoHead(ctx, tx, head); err != nil {
		return err
	}
	var queued sql.NullInt64 // the queue is the numbers from its first on
	if err := tx.QueryRowContext(ctx, `SELECT min(seq) FROM outbox`).Scan(&queued); err != nil {
		return err
	}
	if !queued.Valid {
		return nil
	}
	lo, hi := int64(-1), int64(-1)
	// The numbers as a JSON object of mutation number to change number,
	// which json_each gives SQLite as key and value.
	notes := make([]byte, 0, 24*len(resp.Results)+2)
	notes = append(notes, '{')
	for _, res := range resp.Results {
		if res.Change <= 0 || res.Status == wire.Rejected || res.Seq < queued.Int64 {
			continue
		}
		if lo >= 0 {
			notes = append(notes, ',')
		}
		notes = append(notes, '"')
		notes = strconv.AppendInt(notes, res.Seq, 10)
		notes = append(notes, `":`...)
		notes = strconv.AppendInt(notes, res.Change, 10)
		if lo < 0 {
			lo = res.Seq
		}
		hi = max(hi, res.Seq)
	}
	if lo < 0 {
		return nil
	}
	notes = append(notes, '}')
	if _, err := tx.ExecContext(ctx, `INSERT INTO echoes (mutation, change) SELECT CAST(key AS INTEGER), value FROM json_each(?) WHERE true
		ON CONFLICT (mutation) DO UPDATE SET change = max(change, excluded.change)`, string(notes)); err != nil {
		return err
	}
	return d.raiseSuperseded(ctx, tx, resp, lo, hi)
}

// raiseEchoHead raises the echo head (metaEchoHead) to head.
func raiseEchoHead(ctx context.Context, tx *sql.Tx, head int64) error {
	var prev int64
	if _, err := getMeta(ctx, tx, metaEchoHead, &prev); err != nil {
		return err
	}
	if head > prev {
		return setMeta(ctx, tx, metaEchoHead, head)
	}
	return nil
}

// raiseSuperseded gives the rows of the queued mutations lo..hi that a
// later write of the same record followed the change numbers resp gives
// them, where greater than their seq: the rows name the later writes.
func (d *Device) raiseSuperseded(ctx context.Context, tx *sql.Tx, resp *wire.PushResponse, lo, hi int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, kind, id FROM outbox WHERE superseded = 1 AND seq BETWEEN ? AND ?`, lo, hi)
	if err != nil {
		return err
	}
	type raise struct {
		kind   schema.Kind
		id     string
		change int64
	}
	var raises []raise
	for rows.Next() {
		var seq int64
		var kind, id string
		if err := rows.Scan(&seq, &kind, &id); err != nil {
			rows.Close()
			return err
		}
		i, ok := slices.BinarySearchFunc(resp.Results, seq, func(r wire.Result, seq int64) int { return cmp.Compare(r.Seq, seq) })
		if ok && resp.Results[i].Change > 0 && resp.Results[i].Status != wire.Rejected && schema.IsFieldKind(schema.Kind(kind)) {
			raises = append(raises, raise{schema.Kind(kind), id, resp.Results[i].Change})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range raises {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET seq = ? WHERE id = ? AND seq < ?`, r.kind), r.change, r.id, r.change); err != nil {
			return err
		}
	}
	return nil
}

// SkipTo drops queued mutations numbered below expected: the server's
// answer to a push that started beyond what it had processed says it has
// processed them already.
func (d *Device) SkipTo(ctx context.Context, expected int64) error {
	ctx, err := detach(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err = d.db.write.ExecContext(ctx, `DELETE FROM outbox WHERE seq < ?`, expected)
	return err
}

// rebase stores base (the server's state of a record, or nil if the server
// has none) with the queued writes of the record replayed on top.
func (d *Device) rebase(ctx context.Context, tx queryer, rs *rowStore, k schema.Kind, id uuid.UUID, base *Row) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, version, fields FROM outbox WHERE id = ? AND kind = ? ORDER BY seq`, id.String(), string(k))
	if err != nil {
		return err
	}
	type queued struct {
		seq             int64
		version, fields string
	}
	var qs []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.seq, &q.version, &q.fields); err != nil {
			rows.Close()
			return err
		}
		qs = append(qs, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, q := range qs {
		ts, err := hlc.Parse(q.version)
		if err != nil {
			return err
		}
		w, err := DecodeWrite(k, id, json.RawMessage(q.fields), Key(ts, d.id))
		if err != nil {
			continue // the server will reject it too
		}
		switch {
		case base == nil && w.IsCreate():
			base = w
		case base != nil:
			seq := base.Seq
			if _, err := Join(base, w); err != nil {
				continue
			}
			base.Seq = seq
		}
	}
	if base == nil {
		return rs.remove(ctx, k, id)
	}
	// The latest queued write is the row's own latest (Row.Echo); the ones
	// before it were marked superseded when it was made.
	base.Echo = 0
	if len(qs) > 0 {
		base.Echo = qs[len(qs)-1].seq
	}
	return rs.save(ctx, base)
}

// PullRequest returns the request for the next page of changes. It
// carries the mutation numbers the device has had answered
// (AckedThrough), so that the server leaves out what the device's own
// pushes made, which it holds, and a server that has processed fewer of
// them answers wire.CodeServerRestored.
func (d *Device) PullRequest(ctx context.Context, limit int) (*wire.PullRequest, error) {
	ctx, err := detach(ctx)
	if err != nil {
		return nil, err
	}
	var cursor string
	if _, err := getMeta(ctx, d.db.read, "cursor", &cursor); err != nil {
		return nil, err
	}
	acked, err := d.AckedThrough(ctx)
	if err != nil {
		return nil, err
	}
	return &wire.PullRequest{Versions: wire.Current(), Cursor: cursor, Limit: limit, Acked: acked}, nil
}

// ResetCursor makes the next pull start over, as the server asks with
// CodeCursorInvalid. Starting over is safe: a pull only ever sets rows to
// the server's state. The queued writes forget their bases
// (wire.Mutation.Base): the change numbers the device had may be
// another history's, such as a restored server's before its restore.
func (d *Device) ResetCursor(ctx context.Context) error {
	ctx, err := detach(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET base_seq = -1 WHERE base_seq > 0`); err != nil {
		return err
	}
	if err := setMeta(ctx, tx, metaEchoHead, 0); err != nil {
		return err
	}
	if err := setMeta(ctx, tx, "cursor", ""); err != nil {
		return err
	}
	return tx.Commit()
}

// AcceptPull applies a page of changes: each row is set to the server's
// state with the device's queued writes replayed on top, and the cursor
// advances, in one transaction. A page that does not continue from the
// device's cursor (a late or repeated answer) is ignored; it reports
// whether the page was applied. It is DecodePage and AcceptPage.
func (d *Device) AcceptPull(ctx context.Context, resp *wire.PullResponse) (bool, error) {
	p, err := DecodePage(resp)
	if err != nil {
		return false, err
	}
	return d.AcceptPage(ctx, p)
}

// Page is a pull page decoded into rows, ready to be applied.
type Page struct {
	resp *wire.PullResponse
	rows []*Row
}

// DecodePage decodes the changes of a pull page into rows. Decoding is
// most of the cost of applying a page and needs no lock on the replica, so
// that a client can decode one page while the replica applies another.
// DecodePage is safe for concurrent use.
func DecodePage(resp *wire.PullResponse) (*Page, error) {
	p := &Page{resp: resp, rows: make([]*Row, len(resp.Changes))}
	for i := range resp.Changes {
		row, err := RowOfChange(&resp.Changes[i])
		if err != nil {
			return nil, fmt.Errorf("accept pull: %w", err)
		}
		p.rows[i] = row
	}
	return p, nil
}

// Since is the cursor the page continues from.
func (p *Page) Since() string { return p.resp.Since }

// Response is the page as it came from the server.
func (p *Page) Response() *wire.PullResponse { return p.resp }

// AcceptPage applies a decoded page as AcceptPull does.
func (d *Device) AcceptPage(ctx context.Context, p *Page) (bool, error) {
	resp := p.resp
	d.mu.Lock()
	defer d.mu.Unlock()
	// A page is applied whole once begun: it has thousands of statements
	// (see detach).
	ctx, err := detach(ctx)
	if err != nil {
		return false, fmt.Errorf("accept pull: %w", err)
	}
	d.clock.Observe(resp.Clock)
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("accept pull: %w", err)
	}
	defer tx.Rollback()
	var cursor string
	if _, err := getMeta(ctx, tx, "cursor", &cursor); err != nil {
		return false, err
	}
	if cursor != resp.Since {
		return false, nil
	}
	rs := newDeviceRowStore(tx)
	defer rs.close()
	var queued int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&queued); err != nil {
		return false, fmt.Errorf("accept pull: %w", err)
	}
	// A page read before a push answer that gave a record's state a change
	// number (noteEchoes) may hold an older state of it than the device's,
	// which no later page brings: such rows keep the device's state.
	var echoHead int64
	if _, err := getMeta(ctx, tx, metaEchoHead, &echoHead); err != nil {
		return false, err
	}
	switch {
	case resp.Head < echoHead:
		for _, row := range p.rows {
			var seq int64
			err = tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE id = ?`, deviceSeq(row.Kind), row.Kind), row.ID().String()).Scan(&seq)
			if err == nil && seq > row.Seq {
				continue
			}
			if err != nil && err != sql.ErrNoRows {
				break
			}
			if err = d.rebase(ctx, tx, rs, row.Kind, row.ID(), row); err != nil {
				break
			}
		}
	case queued == 0: // nothing to replay: the common case of a first sync
		err = rs.saveAll(ctx, p.rows)
	default:
		for _, row := range p.rows {
			if err = d.rebase(ctx, tx, rs, row.Kind, row.ID(), row); err != nil {
				break
			}
		}
	}
	if err != nil {
		return false, fmt.Errorf("accept pull: %w", err)
	}
	if err := setMeta(ctx, tx, "cursor", resp.Cursor); err != nil {
		return false, err
	}
	if err := setMeta(ctx, tx, "hlc", d.clock.Last().String()); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("accept pull: %w", err)
	}
	return true, nil
}

// Meta returns a value the device keeps beside its records (for the SDK:
// the server's URL, the device's key, the last sync); "" if unset.
func (d *Device) Meta(ctx context.Context, key string) (string, error) {
	ctx, err := detach(ctx)
	if err != nil {
		return "", err
	}
	var v string
	_, err = getMeta(ctx, d.db.read, "sdk."+key, &v)
	return v, err
}

// SetMeta sets a value kept beside the records.
func (d *Device) SetMeta(ctx context.Context, key, value string) error {
	ctx, err := detach(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return setMeta(ctx, d.db.write, "sdk."+key, value)
}

// Select returns the rows of kind k that a WHERE clause (with ? arguments)
// selects, followed by an optional ORDER BY and LIMIT: the reads an app
// makes of its replica. The rows' Seq is their change number (deviceSeq);
// a clause that names seq reads the column, which an answer to the row's
// latest own write has not raised.
func (d *Device) Select(ctx context.Context, k schema.Kind, where string, args ...any) ([]*Row, error) {
	if _, ok := kinds[k]; !ok {
		return nil, fmt.Errorf("select: unknown kind %q", k)
	}
	return queryDeviceRows(ctx, d.db.read, k, where, args...)
}

// Purge deletes synced field records that happened before cutoff and have
// no queued writes, except referrals that are still open and tests whose
// result is pending, and returns how
// many it deleted. It keeps a device from holding more than it needs.
func (d *Device) Purge(ctx context.Context, cutoff time.Time) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var total int64
	for _, k := range schema.FieldKinds {
		q := fmt.Sprintf(`DELETE FROM %s WHERE occurred_at < ? AND %s > 0 AND id NOT IN (SELECT id FROM outbox)`, k, deviceSeq(k))
		if k == schema.KindReferral {
			q += ` AND (voided = 1 OR status IN ('closed', 'declined', 'not_reached'))`
		}
		if k == schema.KindInfectionTest {
			q += ` AND (voided = 1 OR result IS NULL OR result <> 'pending')`
		}
		res, err := tx.ExecContext(ctx, q, cutoff.UnixMilli())
		if err != nil {
			return 0, fmt.Errorf("purge %s: %w", k, err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	// The notes of answers (noteEchoes) that no row names any more.
	named := make([]string, len(schema.FieldKinds))
	for i, k := range schema.FieldKinds {
		named[i] = fmt.Sprintf(`SELECT echo FROM %s`, k)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM echoes WHERE mutation NOT IN (`+strings.Join(named, " UNION ALL ")+`)`); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	return total, tx.Commit()
}

// pullAgainRestamped moves the cursor back for mutations the server
// applied at a version of its own (the device's clock was out of bounds):
// there they have another version than here, and if a pull brought the
// record after the write was made (the page came before this answer), its
// row holds the write at the local version on top of the server's. The
// next pull brings the server's row again, from just before it; pulling
// again is always safe.
func (d *Device) pullAgainRestamped(ctx context.Context, tx *sql.Tx, resp *wire.PushResponse) error {
	back := int64(-1)
	for _, res := range resp.Results {
		if res.Status == wire.Rejected || res.Version == 0 {
			continue
		}
		var kind, id string
		var base int64
		if err := tx.QueryRowContext(ctx, `SELECT kind, id, base_seq FROM outbox WHERE seq = ?`, res.Seq).Scan(&kind, &id, &base); err != nil {
			continue // already handled by an earlier delivery of this answer
		}
		if _, ok := kinds[schema.Kind(kind)]; !ok {
			continue
		}
		var seq int64
		err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE id = ?`, deviceSeq(schema.Kind(kind)), kind), id).Scan(&seq)
		if err == sql.ErrNoRows || seq == base {
			continue // no pull since the write: the next one brings it
		}
		if err != nil {
			return err
		}
		if back < 0 || seq-1 < back {
			back = seq - 1
		}
	}
	if back < 0 {
		return nil
	}
	var cursor string
	if _, err := getMeta(ctx, tx, "cursor", &cursor); err != nil {
		return err
	}
	c, err := wire.ParseCursor(cursor)
	if err != nil || c.Seq <= back {
		return nil
	}
	c.Seq = back
	return setMeta(ctx, tx, "cursor", c.String())
}

// adoptRestamps gives the fields a re-stamped mutation wrote, where the
// replica still holds them at the device's own version, the version the
// server used (wire.Result.Version): the replica then holds the record as
// the server does even before it pulls it, so that, sent again to a server
// restored from an older copy (HealRequest), it carries no version ahead
// of that server's clock, which the server would refuse.
func (d *Device) adoptRestamps(ctx context.Context, tx *sql.Tx, rs *rowStore, resp *wire.PushResponse) error {
	for _, res := range resp.Results {
		if res.Status == wire.Rejected || res.Version == 0 {
			continue
		}
		var kind, id, version string
		if err := tx.QueryRowContext(ctx, `SELECT kind, id, version FROM outbox WHERE seq = ?`, res.Seq).Scan(&kind, &id, &version); err != nil {
			continue // already handled by an earlier delivery of this answer
		}
		ts, err := hlc.Parse(version)
		if err != nil || ts == res.Version {
			continue
		}
		rid, err := uuid.Parse(id)
		if err != nil {
			continue
		}
		row, err := rs.load(ctx, schema.Kind(kind), rid)
		if err != nil {
			return err
		}
		if row == nil {
			continue
		}
		own, server := Key(ts, d.id), Key(res.Version, d.id)
		changed := false
		for i, k := range row.keys {
			if strings.HasSuffix(k, own) {
				row.keys[i] = k[:len(k)-len(own)] + server
				changed = true
			}
		}
		if changed {
			if err := rs.save(ctx, row); err != nil {
				return err
			}
		}
	}
	return nil
}

// DismissRejection removes the rejection of mutation seq from the list,
// once the worker has dealt with it. ErrNotFound if there is none.
func (d *Device) DismissRejection(ctx context.Context, seq int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	res, err := d.db.write.ExecContext(ctx, `DELETE FROM rejections WHERE seq = ?`, seq)
	if err != nil {
		return fmt.Errorf("dismiss rejection %d: %w", seq, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("dismiss rejection %d: %w", seq, ErrNotFound)
	}
	return nil
}

// Rejections returns the mutations the server rejected, newest first.
func (d *Device) Rejections(ctx context.Context) ([]Rejection, error) {
	rows, err := d.db.read.QueryContext(ctx, `SELECT seq, kind, id, code, COALESCE(field, ''), message, rejected_at, COALESCE(fields, '{}') FROM rejections ORDER BY seq DESC`)
	if err != nil {
		return nil, fmt.Errorf("rejections: %w", err)
	}
	defer rows.Close()
	var out []Rejection
	for rows.Next() {
		var r Rejection
		var id string
		var at int64
		var fields string
		if err := rows.Scan(&r.Seq, &r.Kind, &id, &r.Error.Code, &r.Error.Field, &r.Error.Message, &at, &fields); err != nil {
			return nil, fmt.Errorf("rejections: %w", err)
		}
		r.ID, _ = uuid.Parse(id)
		r.RejectedAt = time.UnixMilli(at).UTC()
		r.Fields = json.RawMessage(fields)
		out = append(out, r)
	}
	return out, rows.Err()
}
