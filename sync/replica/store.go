package replica

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// queryer is what both *sql.Tx and *sql.DB provide.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// columns returns the column list of kind k's table: its fields, then v,
// cv and seq.
func columns(k schema.Kind) string {
	return strings.Join(kinds[k].names, ", ") + ", v, cv, seq"
}

// deviceSeq is how a device reads the seq of kind k's rows: the greater
// of the column and the change number that the answer to the row's echo
// (its latest own write) gave, if one has (migration 0023).
func deviceSeq(k schema.Kind) string {
	if !schema.IsFieldKind(k) {
		return "seq"
	}
	return fmt.Sprintf("max(%[1]s.seq, coalesce((SELECT change FROM echoes WHERE mutation = %[1]s.echo), 0))", k)
}

// deviceRowColumns is columns(k) as a device reads them (deviceSeq).
func deviceRowColumns(k schema.Kind) string {
	return strings.Join(kinds[k].names, ", ") + ", v, cv, " + deviceSeq(k)
}

// rowStore reads and writes rows of one transaction, preparing each
// statement once.
type rowStore struct {
	q queryer
	// echo says the store is the server's, whose field records keep
	// Row.Echo and Row.EchoDevice in columns of their own; device says it
	// is a device's replica, whose field records keep Row.Echo.
	echo    bool
	device  bool
	loads   map[schema.Kind]*sql.Stmt
	saves   map[schema.Kind]*sql.Stmt
	inserts map[schema.Kind]*sql.Stmt
	// last is the row of each kind that insert or saveAll wrote last,
	// with its arguments; such rows do not change after.
	last map[schema.Kind]writtenRow
	// conn, if set, runs insert on the connection of q, a transaction
	// begun on conn.conn.
	conn *connInserts
}

type writtenRow struct {
	row  *Row
	args []any
}

func newRowStore(q queryer) *rowStore {
	return &rowStore{q: q, loads: map[schema.Kind]*sql.Stmt{}, saves: map[schema.Kind]*sql.Stmt{}, inserts: map[schema.Kind]*sql.Stmt{},
		last: map[schema.Kind]writtenRow{}}
}

// newServerRowStore is newRowStore for the server's store.
func newServerRowStore(q queryer) *rowStore {
	s := newRowStore(q)
	s.echo = true
	return s
}

// newDeviceRowStore is newRowStore for a device's replica.
func newDeviceRowStore(q queryer) *rowStore {
	s := newRowStore(q)
	s.device = true
	return s
}

// echoes reports whether rows of kind k keep Row.Echo and Row.EchoDevice
// here, as the server's do.
func (s *rowStore) echoes(k schema.Kind) bool {
	return s.echo && schema.IsFieldKind(k)
}

// extra returns how many columns follow seq in kind k's rows here: echo
// and echo_device on the server's field records, echo on a device's.
func (s *rowStore) extra(k schema.Kind) int {
	switch {
	case !schema.IsFieldKind(k):
		return 0
	case s.echo:
		return 2
	case s.device:
		return 1
	}
	return 0
}

// cols returns the column list of kind k's table as this store writes
// it: columns(k), then its extra columns.
func (s *rowStore) cols(k schema.Kind) string {
	switch s.extra(k) {
	case 2:
		return columns(k) + ", echo, echo_device"
	case 1:
		return columns(k) + ", echo"
	}
	return columns(k)
}

// readCols returns the columns the store reads of kind k's rows: cols(k),
// with a device's seq as deviceSeq gives it.
func (s *rowStore) readCols(k schema.Kind) string {
	if s.extra(k) == 1 {
		return deviceRowColumns(k) + ", echo"
	}
	return s.cols(k)
}

// insertSQL returns the INSERT of a row of kind k.
func (s *rowStore) insertSQL(k schema.Kind) string {
	n := len(kinds[k].names) + 3 + s.extra(k)
	return fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, k, s.cols(k), strings.Repeat("?, ", n-1)+"?")
}

// appendExtra appends the values of r's extra columns (see extra).
func (s *rowStore) appendExtra(args []any, r *Row) []any {
	switch s.extra(r.Kind) {
	case 2:
		return append(args, r.Echo, echoDeviceArg(r))
	case 1:
		return append(args, r.Echo)
	}
	return args
}

// args returns the values of r's columns.
func (s *rowStore) args(r *Row) []any {
	return s.appendExtra(rowArgs(r), r)
}

// sharedArgs returns rowArgs(r) for a row that does not change after it is
// written. Where r holds a value that the last such row of its kind held
// too, the argument made for that row is passed again: rows written
// together (a push, a pull page) share most of their ids and codes, and
// each new argument costs an allocation.
func (s *rowStore) sharedArgs(r *Row) []any {
	prev, ok := s.last[r.Kind]
	args := make([]any, 0, len(r.fields)+5)
	for i, f := range r.fields {
		if ok && f.SameValue(prev.row.fields[i]) {
			args = append(args, prev.args[i])
		} else {
			args = append(args, f.SQLValue())
		}
	}
	args = s.appendExtra(appendVersionArgs(args, r), r)
	s.last[r.Kind] = writtenRow{r, args}
	return args
}

func (s *rowStore) close() {
	if s.conn != nil {
		s.conn.close()
	}
	for _, m := range []map[schema.Kind]*sql.Stmt{s.loads, s.saves, s.inserts} {
		for _, st := range m {
			st.Close()
		}
	}
}

// load returns the row of kind k with id, or nil if there is none.
func (s *rowStore) load(ctx context.Context, k schema.Kind, id uuid.UUID) (*Row, error) {
	st, ok := s.loads[k]
	if !ok {
		var err error
		st, err = s.q.PrepareContext(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE id = ?`, s.readCols(k), k))
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", k, err)
		}
		s.loads[k] = st
	}
	rows, err := st.QueryContext(ctx, id.String())
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", k, id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	r := NewRow(k)
	sc := rowScanner{extra: s.extra(k)}
	if err := sc.scan(rows, r); err != nil {
		return nil, fmt.Errorf("load %s %s: %w", k, id, err)
	}
	return r, rows.Err()
}

// rowScanner reads result rows of columns(kind), reusing its buffers from row
// to row.
type rowScanner struct {
	vals, ptrs []any
	extra      int // columns after seq (rowStore.extra)
}

// values reads the next result row's n columns.
func (sc *rowScanner) values(rows *sql.Rows, n int) ([]any, error) {
	if len(sc.vals) != n {
		sc.vals = make([]any, n)
		sc.ptrs = make([]any, n)
		for i := range sc.vals {
			sc.ptrs[i] = &sc.vals[i]
		}
	}
	if err := rows.Scan(sc.ptrs...); err != nil {
		return nil, err
	}
	return sc.vals, nil
}

func (sc *rowScanner) scan(rows *sql.Rows, r *Row) error {
	vals, err := sc.values(rows, len(r.fields)+3+sc.extra)
	if err != nil {
		return err
	}
	return fillRow(r, vals)
}

// fillRow sets r from the values of its columns: its fields, v, cv, seq
// and, if there are more, echo, then echo_device (NULL, or the device as
// text).
func fillRow(r *Row, vals []any) error {
	n := len(r.fields)
	for i, f := range r.fields {
		if err := f.ScanSQL(vals[i]); err != nil {
			return err
		}
	}
	v, _ := vals[n].(string)
	if b, ok := vals[n].([]byte); ok {
		v = string(b)
	}
	cv, err := scanVersions(vals[n+1])
	if err != nil {
		return err
	}
	if err := r.setVersions(v, cv); err != nil {
		return err
	}
	r.Seq, _ = vals[n+2].(int64)
	if len(vals) > n+3 {
		r.Echo, _ = vals[n+3].(int64)
	}
	if len(vals) > n+4 {
		var dev []byte
		switch d := vals[n+4].(type) {
		case string:
			dev = []byte(d)
		case []byte:
			dev = d
		case [16]byte: // a UUID column, as a driver may give it
			r.EchoDevice = d
		}
		if dev != nil {
			id, err := uuid.ParseBytes(dev)
			if err != nil {
				return fmt.Errorf("echo_device: %w", err)
			}
			r.EchoDevice = id
		}
	}
	return nil
}

// scanVersions reads a cv column: NULL or a JSON object of field names to
// keys.
func scanVersions(col any) (map[string]string, error) {
	var cv map[string]string
	switch c := col.(type) {
	case string:
		if err := json.Unmarshal([]byte(c), &cv); err != nil {
			return nil, fmt.Errorf("versions: %w", err)
		}
	case []byte:
		if err := json.Unmarshal(c, &cv); err != nil {
			return nil, fmt.Errorf("versions: %w", err)
		}
	}
	return cv, nil
}

// save writes r, inserting or replacing the stored row.
func (s *rowStore) save(ctx context.Context, r *Row) error {
	st, err := s.saveStmt(ctx, r.Kind)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, s.args(r)...); err != nil {
		return fmt.Errorf("save %s %s: %w", r.Kind, r.ID(), err)
	}
	return nil
}

// saveAll saves rows, which do not change after, as save does, with
// sharedArgs.
func (s *rowStore) saveAll(ctx context.Context, rows []*Row) error {
	for _, r := range rows {
		st, err := s.saveStmt(ctx, r.Kind)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, s.sharedArgs(r)...); err != nil {
			return fmt.Errorf("save %s %s: %w", r.Kind, r.ID(), err)
		}
	}
	return nil
}

// saveStmt returns save's prepared statement for kind k.
func (s *rowStore) saveStmt(ctx context.Context, k schema.Kind) (*sql.Stmt, error) {
	if st, ok := s.saves[k]; ok {
		return st, nil
	}
	names := kinds[k].names
	set := make([]string, 0, len(names)+2)
	for _, n := range names[1:] { // the id never changes
		set = append(set, n+" = excluded."+n)
	}
	set = append(set, "v = excluded.v", "cv = excluded.cv", "seq = excluded.seq")
	switch s.extra(k) {
	case 2:
		set = append(set, "echo = excluded.echo", "echo_device = excluded.echo_device")
	case 1:
		set = append(set, "echo = excluded.echo")
	}
	st, err := s.q.PrepareContext(ctx, s.insertSQL(k)+` ON CONFLICT (id) DO UPDATE SET `+strings.Join(set, ", "))
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", k, err)
	}
	s.saves[k] = st
	return st, nil
}

// insert writes r unless a row with its id exists, and reports whether it
// did. r does not change after (see sharedArgs).
func (s *rowStore) insert(ctx context.Context, r *Row) (bool, error) {
	if s.conn != nil { // set only for a transaction whose context cannot end
		return s.conn.insert(ctx, s, r)
	}
	st, ok := s.inserts[r.Kind]
	if !ok {
		var err error
		if st, err = s.q.PrepareContext(ctx, s.insertSQL(r.Kind)+` ON CONFLICT (id) DO NOTHING`); err != nil {
			return false, fmt.Errorf("insert %s: %w", r.Kind, err)
		}
		s.inserts[r.Kind] = st
	}
	res, err := st.ExecContext(ctx, s.sharedArgs(r)...)
	if err != nil {
		return false, fmt.Errorf("insert %s %s: %w", r.Kind, r.ID(), err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func rowArgs(r *Row) []any {
	args := make([]any, 0, len(r.fields)+3)
	for _, f := range r.fields {
		args = append(args, f.SQLValue())
	}
	return appendVersionArgs(args, r)
}

// appendVersionArgs appends the values of r's v, cv and seq columns.
func appendVersionArgs(args []any, r *Row) []any {
	v, cv := r.Versions()
	return append(args, v, cvArg(cv), r.Seq)
}

// cvArg returns the value of the cv column of versions cv: NULL, or a
// JSON object with its keys sorted (canonical).
func cvArg(cv map[string]string) any {
	if cv == nil {
		return nil
	}
	b, _ := json.Marshal(cv)
	return string(b)
}

// remove deletes the row of kind k with id.
func (s *rowStore) remove(ctx context.Context, k schema.Kind, id uuid.UUID) error {
	if _, err := s.q.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %s WHERE id = ?`, k), id.String()); err != nil {
		return fmt.Errorf("remove %s %s: %w", k, id, err)
	}
	return nil
}

// queryRows returns the rows of kind k that a query selects; where and
// args follow "SELECT columns FROM k".
func queryRows(ctx context.Context, q queryer, k schema.Kind, where string, args ...any) ([]*Row, error) {
	return selectRows(ctx, q, k, columns(k), where, args...)
}

// queryDeviceRows is queryRows in a device's replica, whose rows' seq
// deviceSeq gives.
func queryDeviceRows(ctx context.Context, q queryer, k schema.Kind, where string, args ...any) ([]*Row, error) {
	return selectRows(ctx, q, k, deviceRowColumns(k), where, args...)
}

func selectRows(ctx context.Context, q queryer, k schema.Kind, cols, where string, args ...any) ([]*Row, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(`SELECT %s FROM %s %s`, cols, k, where), args...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", k, err)
	}
	defer rows.Close()
	var out []*Row
	var sc rowScanner
	for rows.Next() {
		r := NewRow(k)
		if err := sc.scan(rows, r); err != nil {
			return nil, fmt.Errorf("query %s: %w", k, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// getMeta reads a value of the meta table into dst; it reports whether
// the key exists.
func getMeta(ctx context.Context, q queryer, key string, dst any) (bool, error) {
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(dst)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("meta %s: %w", key, err)
	}
	return true, nil
}

func setMeta(ctx context.Context, q queryer, key string, value any) error {
	_, err := q.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("meta %s: %w", key, err)
	}
	return nil
}

// ChangeOf returns the wire form of a row.
func ChangeOf(r *Row) wire.Change {
	v, cv := r.Versions()
	return wire.Change{Kind: r.Kind, ID: r.ID(), Seq: r.Seq, Fields: r.FieldsJSON(), V: v, CV: cv}
}

// RowOfChange decodes a change from a pull into a full row, checking its
// kind, fields and versions.
func RowOfChange(c *wire.Change) (*Row, error) {
	w, err := decodeFields(c.Kind, c.ID, c.Fields)
	if err != nil {
		return nil, fmt.Errorf("change %s %s: %w", c.Kind, c.ID, err)
	}
	if !w.IsCreate() {
		return nil, fmt.Errorf("change %s %s: fields lack the id", c.Kind, c.ID)
	}
	if _, _, err := ParseKey(c.V); err != nil {
		return nil, fmt.Errorf("change %s %s: %w", c.Kind, c.ID, err)
	}
	if err := w.setVersions(c.V, c.CV); err != nil {
		return nil, fmt.Errorf("change %s %s: %w", c.Kind, c.ID, err)
	}
	for i, f := range w.fields {
		if w.keys[i] == c.V {
			continue // checked above
		}
		if err := checkFieldKey(f, w.keys[i]); err != nil {
			return nil, fmt.Errorf("change %s %s: %w", c.Kind, c.ID, err)
		}
	}
	w.Seq = c.Seq
	return w, nil
}
