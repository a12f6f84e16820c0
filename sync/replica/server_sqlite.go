package replica

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// sqliteServer is the ServerEngine of a server database in a SQLite file.
// SQLite's one writer connection serialises write transactions, so the
// change numbers commit in the order they are taken.
type sqliteServer struct {
	db *DB
	// page is pageQuery, prepared once on the read pool: it is long, and
	// every pull runs it.
	page *sql.Stmt
}

var _ ServerEngine = (*sqliteServer)(nil)

func (e *sqliteServer) Open(ctx context.Context, now time.Time) (uuid.UUID, hlc.Timestamp, error) {
	tx, err := e.db.write.BeginTx(ctx, nil)
	if err != nil {
		return uuid.Nil, 0, err
	}
	defer tx.Rollback()
	var id string
	ok, err := getMeta(ctx, tx, "store_id", &id)
	if err != nil {
		return uuid.Nil, 0, err
	}
	if !ok {
		nid, err := uuid.NewRandom()
		if err != nil {
			return uuid.Nil, 0, err
		}
		id = nid.String()
		if err := setMeta(ctx, tx, "store_id", id); err != nil {
			return uuid.Nil, 0, err
		}
	}
	epoch, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, 0, fmt.Errorf("store id: %w", err)
	}
	clock, err := storedClock(ctx, tx)
	if err != nil {
		return uuid.Nil, 0, err
	}
	if err := openLineage(ctx, tx, now); err != nil {
		return uuid.Nil, 0, err
	}
	return epoch, clock, tx.Commit()
}

// storedClock returns the clock the last write left, 0 if none.
func storedClock(ctx context.Context, q queryer) (hlc.Timestamp, error) {
	var last string
	ok, err := getMeta(ctx, q, "hlc", &last)
	if err != nil || !ok {
		return 0, err
	}
	ts, err := hlc.Parse(last)
	if err != nil {
		return 0, fmt.Errorf("stored clock: %w", err)
	}
	return ts, nil
}

// openLineage begins a new span of the change sequence's history, in tx:
// a new random mark, from the current change sequence number on, which
// the pull cursors made from now on carry (see wire.Cursor.Mark). Every
// opening of the database begins one, so that a copy put back in place
// is running in a span that the copy it replaced never had.
func openLineage(ctx context.Context, tx *sql.Tx, now time.Time) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	mark := int64(binary.BigEndian.Uint64(b[:])>>1) | 1 // positive, never 0
	var seq int64
	if _, err := getMeta(ctx, tx, "change_seq", &seq); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO change_lineage (mark, from_seq, opened_at) VALUES (?, ?, ?)`, mark, seq, now.UnixMilli()); err != nil {
		return fmt.Errorf("lineage: %w", err)
	}
	return setMeta(ctx, tx, "lineage_mark", mark)
}

// BeginWrite reads the counters anew in every transaction, never keeping
// them between transactions, so that another process writing to the same
// database (an admin command while the server runs) neither reuses a
// change number nor stamps behind the other's clock. SQLite's write lock,
// taken at BEGIN, keeps them current until the commit.
//
// The transaction is begun on a connection held for it, on which the
// row store runs its inserts directly (see connInserts) if ctx cannot end.
func (e *sqliteServer) BeginWrite(ctx context.Context) (ServerWrite, int64, hlc.Timestamp, error) {
	conn, err := e.db.write.Conn(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, 0, 0, err
	}
	w := &sqliteWrite{ctx: ctx, tx: tx, conn: conn, rs: newServerRowStore(tx)}
	if ctx.Done() == nil {
		// Only under a context that cannot end: database/sql rolls back
		// the transaction of one that ends, and a statement run on the
		// connection after would then commit by itself.
		w.rs.conn = &connInserts{conn: conn}
	}
	var seq int64
	if _, err := getMeta(ctx, tx, "change_seq", &seq); err != nil {
		w.Rollback()
		return nil, 0, 0, err
	}
	clock, err := storedClock(ctx, tx)
	if err != nil {
		w.Rollback()
		return nil, 0, 0, err
	}
	return w, seq, clock, nil
}

func (e *sqliteServer) BeginRead(ctx context.Context) (ServerRead, error) {
	tx, err := e.db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return &sqliteRead{tx: tx, page: e.page}, nil
}

func (e *sqliteServer) Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*Row, error) {
	rs := newServerRowStore(e.db.read)
	defer rs.close()
	return rs.load(ctx, k, id)
}

func (e *sqliteServer) Close() error {
	e.page.Close()
	return e.db.Close()
}

// sqliteWrite is a write transaction of a sqliteServer, which prepares
// each statement once. It draws the keys of the records it wrote when it
// commits (see keysToDraw).
type sqliteWrite struct {
	ctx    context.Context // the transaction's, for Commit's drawing of keys
	tx     *sql.Tx
	conn   *sql.Conn // tx's, given back to the pool as tx ends
	rs     *rowStore
	refs   map[schema.Kind]*sql.Stmt // Owner's lookups
	echoes map[schema.Kind]*sql.Stmt // EchoSeq's lookups
	keys   keysToDraw
	closed bool
}

func (w *sqliteWrite) Device(ctx context.Context, id uuid.UUID) (*EnrolledDevice, error) {
	return lookupDevice(ctx, w.tx, id)
}

func (w *sqliteWrite) Load(ctx context.Context, k schema.Kind, id uuid.UUID) (*Row, error) {
	return w.rs.load(ctx, k, id)
}

func (w *sqliteWrite) Save(ctx context.Context, r *Row) error {
	if err := w.rs.save(ctx, r); err != nil {
		return err
	}
	w.keys.wrote(r)
	return nil
}

func (w *sqliteWrite) Insert(ctx context.Context, r *Row) (bool, error) {
	ok, err := w.rs.insert(ctx, r)
	if ok {
		w.keys.wrote(r)
	}
	return ok, err
}

func (w *sqliteWrite) Owner(ctx context.Context, k schema.Kind, id uuid.UUID) (uuid.UUID, bool, error) {
	if w.refs == nil {
		w.refs = map[schema.Kind]*sql.Stmt{}
	}
	st, ok := w.refs[k]
	if !ok {
		col := "unit_id"
		if k == schema.KindUnit {
			col = "id"
		}
		var err error
		if st, err = w.tx.PrepareContext(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE id = ?`, col, k)); err != nil {
			return uuid.Nil, false, err
		}
		w.refs[k] = st
	}
	var s string
	err := st.QueryRowContext(ctx, id.String()).Scan(&s)
	if err == sql.ErrNoRows {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, err
	}
	owner, _ := uuid.Parse(s)
	return owner, true, nil
}

func (w *sqliteWrite) EchoSeq(ctx context.Context, k schema.Kind, id, device uuid.UUID, echo int64) (int64, error) {
	if w.echoes == nil {
		w.echoes = map[schema.Kind]*sql.Stmt{}
	}
	st, ok := w.echoes[k]
	if !ok {
		var err error
		if st, err = w.tx.PrepareContext(ctx, fmt.Sprintf(`SELECT seq FROM %s WHERE id = ? AND coalesce(echo_device, device_id) = ? AND echo = ?`, k)); err != nil {
			return 0, err
		}
		w.echoes[k] = st
	}
	var seq int64
	err := st.QueryRowContext(ctx, id.String(), device.String(), echo).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return seq, err
}

func (w *sqliteWrite) LastPush(ctx context.Context, device uuid.UUID, seq int64) (*PushRecord, error) {
	p := &PushRecord{}
	var rej, re sql.NullString
	err := w.tx.QueryRowContext(ctx, `SELECT first_seq, last_seq, hashes, rejections, restamps FROM device_pushes
		WHERE device_id = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1`, device.String(), seq).
		Scan(&p.First, &p.Last, &p.Hashes, &rej, &re)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rej.Valid {
		if err := json.Unmarshal([]byte(rej.String), &p.Rejections); err != nil {
			return nil, fmt.Errorf("rejections of push %d..%d: %w", p.First, p.Last, err)
		}
	}
	if re.Valid {
		if err := json.Unmarshal([]byte(re.String), &p.Restamps); err != nil {
			return nil, fmt.Errorf("re-stamped versions of push %d..%d: %w", p.First, p.Last, err)
		}
	}
	return p, nil
}

func (w *sqliteWrite) AddPush(ctx context.Context, device uuid.UUID, p *PushRecord) error {
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
	_, err = w.tx.ExecContext(ctx, `INSERT INTO device_pushes (device_id, first_seq, last_seq, hashes, rejections, restamps) VALUES (?, ?, ?, ?, ?, ?)`,
		device.String(), p.First, p.Last, hashes, rej, re)
	return err
}

func (w *sqliteWrite) NotePush(ctx context.Context, device uuid.UUID, p DevicePush) error {
	if p.EchoAfter > 0 {
		if _, err := w.tx.ExecContext(ctx, `UPDATE devices SET echo_after = max(echo_after, ?) WHERE id = ?`, p.EchoAfter, device.String()); err != nil {
			return err
		}
	}
	sp := p.EchoSpan
	_, err := w.tx.ExecContext(ctx, `UPDATE devices SET last_seq = ?, last_push_at = ?, protocol = ?, rejected = rejected + ?, applied = applied + ?,
		echo_span_from = ?, echo_span_to = ?, echo_span_first = ?, echo_span_last = ? WHERE id = ?`,
		p.LastSeq, p.At.UnixMilli(), p.Protocol, p.Rejected, p.Applied, sp.From, sp.To, sp.First, sp.Last, device.String())
	return err
}

func (w *sqliteWrite) NoteHeal(ctx context.Context, device uuid.UUID, last, healed int64, now time.Time) error {
	_, err := w.tx.ExecContext(ctx, `UPDATE devices SET last_seq = ?, healed = healed + ?, last_push_at = ? WHERE id = ?`,
		last, healed, now.UnixMilli(), device.String())
	return err
}

func (w *sqliteWrite) SaveCounters(ctx context.Context, seq int64, changed bool, clock hlc.Timestamp) error {
	if changed {
		if err := setMeta(ctx, w.tx, "change_seq", seq); err != nil {
			return err
		}
	}
	return setMeta(ctx, w.tx, "hlc", clock.String())
}

// close closes the prepared statements.
func (w *sqliteWrite) close() {
	if w.closed {
		return
	}
	w.closed = true
	w.rs.close()
	for _, st := range w.refs {
		st.Close()
	}
	for _, st := range w.echoes {
		st.Close()
	}
}

// Commit draws the keys of the records the transaction wrote, then
// commits.
func (w *sqliteWrite) Commit() error {
	w.close()
	if err := w.keys.draw(w.ctx, w.tx); err != nil {
		w.tx.Rollback()
		w.conn.Close()
		return err
	}
	err := w.tx.Commit()
	w.conn.Close()
	return err
}

func (w *sqliteWrite) Rollback() error {
	w.close()
	err := w.tx.Rollback()
	w.conn.Close()
	return err
}

// sqliteRead is a read transaction of a sqliteServer.
type sqliteRead struct {
	tx   *sql.Tx
	page *sql.Stmt
}

func (r *sqliteRead) Device(ctx context.Context, id uuid.UUID) (*EnrolledDevice, error) {
	return lookupDevice(ctx, r.tx, id)
}

func (r *sqliteRead) Head(ctx context.Context) (int64, int64, error) {
	var seq, mark int64
	if _, err := getMeta(ctx, r.tx, "change_seq", &seq); err != nil {
		return 0, 0, err
	}
	if _, err := getMeta(ctx, r.tx, "lineage_mark", &mark); err != nil {
		return 0, 0, err
	}
	return seq, mark, nil
}

func (r *sqliteRead) Lineage(ctx context.Context, mark int64) (bool, int64, bool, error) {
	var id int64
	err := r.tx.QueryRowContext(ctx, `SELECT id FROM change_lineage WHERE mark = ?`, mark).Scan(&id)
	if err == sql.ErrNoRows {
		return false, 0, false, nil
	}
	if err != nil {
		return false, 0, false, fmt.Errorf("lineage: %w", err)
	}
	var end sql.NullInt64
	if err := r.tx.QueryRowContext(ctx, `SELECT min(from_seq) FROM change_lineage WHERE id > ?`, id).Scan(&end); err != nil {
		return false, 0, false, fmt.Errorf("lineage: %w", err)
	}
	return true, end.Int64, !end.Valid, nil
}

func (r *sqliteRead) Page(ctx context.Context, unit uuid.UUID, after int64, skip EchoSkip, limit int, bufs *PageBuffers) ([]wire.Change, error) {
	page := r.tx.StmtContext(ctx, r.page)
	defer page.Close()
	return scopePage(ctx, page, unit, after, skip, limit, bufs)
}

func (r *sqliteRead) Rollback() error { return r.tx.Rollback() }

// Record keys. Every field record that the authority's reports count has
// a permanent random key, an integer from 0 to 2^32-1, in record_keys,
// and every client code of a contact or death report one in client_keys
// (migrations 0010 and 0018, docs/REPORTS.md). A write transaction draws
// them just before it commits: a statement for each kind and unit whose
// records it wrote, and one for their client codes, where a trigger a row
// cost a push 40 % of its insert (migration 0022). DO NOTHING keeps a key
// drawn before as it is, whatever conflict policy the records' own
// statements have: a key is drawn once and never changes. SQLite's
// random() draws from its own generator, seeded from the operating
// system's randomness; its low 32 bits are the key.

// keyedKinds are the kinds whose records have keys, and whether their
// client codes have keys too.
var keyedKinds = map[schema.Kind]bool{
	schema.KindContact: true, schema.KindSyringeExchange: false, schema.KindNaloxone: false,
	schema.KindReversal: false, schema.KindReferral: false, schema.KindInfectionTest: false,
	schema.KindVaccination: false, schema.KindDeath: true,
}

// recordKeysSQL are the statements that key a kind's records of a unit
// (the first argument) from a change number (the second) on. They read
// the ids from the (unit_id, seq) index alone.
var recordKeysSQL = func() map[schema.Kind]string {
	m := map[schema.Kind]string{}
	for k := range keyedKinds {
		m[k] = fmt.Sprintf(`INSERT INTO record_keys (kind, id, key) SELECT '%[1]s', id, random() & 4294967295 FROM %[1]s
			WHERE unit_id = ? AND seq >= ? ON CONFLICT DO NOTHING`, k)
	}
	return m
}()

// clientKeysSQL keys the client codes of a JSON array.
const clientKeysSQL = `INSERT INTO client_keys (client_code, key) SELECT value, random() & 4294967295 FROM json_each(?)
	WHERE true ON CONFLICT DO NOTHING`

// keysToDraw is what a write transaction wrote that has keys: the records
// of each kind and unit, and their client codes.
type keysToDraw struct {
	spans []keySpan
	last  int // the span that wrote last found
	codes map[schema.ClientCode]struct{}
}

// keySpan is the records of a kind and unit that a transaction wrote:
// those of the unit with change number from or more, from being the least
// number of those it wrote, each as stored. Every record written takes a
// new change number, above those of every transaction before, so the span
// holds no other transaction's records.
type keySpan struct {
	kind schema.Kind
	unit uuid.UUID
	from int64
}

// wrote notes that r was written as it is.
func (d *keysToDraw) wrote(r *Row) {
	clients, ok := keyedKinds[r.Kind]
	if !ok {
		return
	}
	unit := schema.HeaderOf(r.Record).UnitID
	if d.last >= len(d.spans) || d.spans[d.last].kind != r.Kind || d.spans[d.last].unit != unit {
		d.last = slices.IndexFunc(d.spans, func(s keySpan) bool { return s.kind == r.Kind && s.unit == unit })
		if d.last < 0 {
			d.last = len(d.spans)
			d.spans = append(d.spans, keySpan{kind: r.Kind, unit: unit, from: r.Seq})
		}
	}
	span := &d.spans[d.last]
	span.from = min(span.from, r.Seq)
	if !clients {
		return
	}
	var code schema.ClientCode
	switch rec := r.Record.(type) {
	case *schema.Contact:
		if rec.ClientCode == "" { // NULL: no client
			return
		}
		code = rec.ClientCode
	case *schema.Death:
		code = rec.ClientCode
	}
	if d.codes == nil {
		d.codes = map[schema.ClientCode]struct{}{}
	}
	d.codes[code] = struct{}{}
}

// draw keys, in tx, the records and client codes noted, those that have
// no key yet, and forgets them.
func (d *keysToDraw) draw(ctx context.Context, tx *sql.Tx) error {
	for _, s := range d.spans {
		if _, err := tx.ExecContext(ctx, recordKeysSQL[s.kind], s.unit.String(), s.from); err != nil {
			return fmt.Errorf("record keys of %s: %w", s.kind, err)
		}
	}
	if len(d.codes) > 0 {
		codes := make([]schema.ClientCode, 0, len(d.codes))
		for c := range d.codes {
			codes = append(codes, c)
		}
		b, err := json.Marshal(codes)
		if err != nil {
			return fmt.Errorf("client keys: %w", err)
		}
		if _, err := tx.ExecContext(ctx, clientKeysSQL, string(b)); err != nil {
			return fmt.Errorf("client keys: %w", err)
		}
	}
	*d = keysToDraw{}
	return nil
}
