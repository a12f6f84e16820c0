package replica

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// scopePart is the part of a unit's scope that one table holds: the
// reference data, a kind's records of the unit, and referrals to it.
type scopePart struct {
	kind  schema.Kind
	where string
	args  []any
}

// scopeParts returns the parts of unit's scope with seq > after, without
// the records skip leaves out.
func scopeParts(unit uuid.UUID, after int64, skip EchoSkip) []scopePart {
	u := unit.String()
	var parts []scopePart
	for _, k := range schema.ReferenceKinds {
		parts = append(parts, scopePart{k, `WHERE seq > ?`, []any{after}})
	}
	dev := ""
	if skip.Device != uuid.Nil {
		dev = skip.Device.String()
	}
	// Each table of field records is read in two ranges of change
	// numbers, below and above the echo span skip leaves out whole (none:
	// the first range is all, the second empty), so that the scan of the
	// (unit, seq) index passes over the span rather than reading its
	// rows. The echo of a row in a range is read from the row: its device
	// is the record's own unless echo_device says another.
	below, above := int64(math.MaxInt64), int64(math.MaxInt64)
	if skip.To > 0 {
		below, above = skip.From, max(after, skip.To)
	}
	const echo = `NOT (echo > ? AND echo <= ? AND coalesce(echo_device, device_id) = ?)`
	for _, k := range schema.FieldKinds {
		parts = append(parts,
			scopePart{k, `WHERE unit_id = ? AND seq > ? AND seq < ? AND ` + echo, []any{u, after, below, skip.After, skip.Acked, dev}},
			scopePart{k, `WHERE unit_id = ? AND seq > ? AND ` + echo, []any{u, above, skip.After, skip.Acked, dev}})
	}
	// A referral is never to its own unit, so no row is in two parts. A
	// device of the unit it is to leaves out its own changes of it alike.
	return append(parts,
		scopePart{schema.KindReferral, `WHERE to_unit_id = ? AND seq > ? AND seq < ? AND ` + echo, []any{u, after, below, skip.After, skip.Acked, dev}},
		scopePart{schema.KindReferral, `WHERE to_unit_id = ? AND seq > ? AND ` + echo, []any{u, above, skip.After, skip.Acked, dev}})
}

// ScopeRows returns every row in unit's scope, ordered by seq, for checks
// and tests: read as rows, column by column, not as pull pages are.
func (s *ServerStore) ScopeRows(ctx context.Context, unit uuid.UUID) ([]*Row, error) {
	var all []*Row
	for _, p := range scopeParts(unit, 0, EchoSkip{}) {
		rows, err := queryRows(ctx, s.db.read, p.kind, p.where, p.args...)
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
	}
	slices.SortFunc(all, func(a, b *Row) int { return cmp.Compare(a.Seq, b.Seq) })
	return all, nil
}

// pageQuery is the query of a pull page: one arm a part of the scope, each
// row its sequence number, its part and its columns as SQLite encodes
// them in a JSON array (fields, v, then cv). SQLite merges the arms' scans
// of their (unit, seq) indexes in order and stops at the page's end, so a
// page reads just its rows, in one query, and each row comes as one value.
var pageQuery = sync.OnceValue(func() string {
	parts := scopeParts(uuid.Nil, 0, EchoSkip{})
	arms := make([]string, len(parts))
	for i, p := range parts {
		arms[i] = fmt.Sprintf(`SELECT seq, %d, json_array(%s, v, json(cv)) FROM %s %s`,
			i, strings.Join(kinds[p.kind].names, ", "), p.kind, p.where)
	}
	return strings.Join(arms, " UNION ALL ") + ` ORDER BY 1 LIMIT ?`
})

// scopePage returns up to limit changes in unit's scope with seq > after,
// but those skip leaves out, ordered by seq: a pull page, what ChangeOf makes of the rows, encoded
// straight from the stored columns (the server's rows were checked when
// they were written, and a first sync reads a million of them). page is
// pageQuery prepared. The changes' fields are read into arrays of chunks,
// which the caller may put back once done with the page.
func scopePage(ctx context.Context, page *sql.Stmt, unit uuid.UUID, after int64, skip EchoSkip, limit int, chunks *PageBuffers) ([]wire.Change, error) {
	parts := scopeParts(unit, after, skip)
	var args []any
	for _, p := range parts {
		args = append(args, p.args...)
	}
	rows, err := page.QueryContext(ctx, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("query page: %w", err)
	}
	defer rows.Close()
	changes := make([]wire.Change, 0, min(limit, 256))
	// The changes' fields are slices of buf. A row that might not fit in
	// what is left of it starts a new array, so that the rows already read
	// are not copied as the page grows (and a slice taken stays valid
	// however buf grows).
	var buf []byte
	var cols sql.RawBytes
	for rows.Next() {
		var seq int64
		var part int
		if err := rows.Scan(&seq, &part, &cols); err != nil {
			return nil, fmt.Errorf("query page: %w", err)
		}
		// A change's fields take about its columns' length and their
		// names': twice the columns and some is room enough (were it not,
		// append would move buf, and the rows before keep the old array).
		switch room := 2*len(cols) + 512; {
		case cap(buf)-len(buf) >= room:
		case room > chunkSize: // a record far larger than any the app writes
			buf = make([]byte, 0, room)
		default:
			buf = chunks.Get()
		}
		if part < 0 || part >= len(parts) {
			return nil, fmt.Errorf("query page: part %d", part)
		}
		c := wire.Change{Kind: parts[part].kind, Seq: seq}
		start := len(buf)
		if buf, err = appendChange(buf, &c, cols); err != nil {
			return nil, fmt.Errorf("query page: %s seq %d: %w", c.Kind, seq, err)
		}
		c.Fields = buf[start:len(buf):len(buf)]
		changes = append(changes, c)
	}
	return changes, rows.Err()
}

// chunkSize is the size of the arrays a page is read into.
const chunkSize = 256 << 10

// chunkPool keeps the arrays of pages encoded, for the pages to come.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, chunkSize)
	return &b
}}

// PageBuffers are the arrays one pull page is read into, taken from a
// pool shared by every page and put back by release. The zero value is
// ready to use; it is used by one goroutine.
type PageBuffers struct{ taken []*[]byte }

// Get returns an empty array of chunkSize bytes' capacity, which the page
// is done with when it is released.
func (c *PageBuffers) Get() []byte {
	b := chunkPool.Get().(*[]byte)
	c.taken = append(c.taken, b)
	return (*b)[:0]
}

// release puts the arrays back: the page read into them is done with.
func (c *PageBuffers) release() {
	for _, b := range c.taken {
		*b = (*b)[:0]
		chunkPool.Put(b)
	}
	c.taken = nil
}

// appendChange reads the columns of c's row, a JSON array as pageQuery
// selects it, into c: its fields it appends to buf as a JSON object (the
// wire form of Row.FieldsJSON), its id, v and cv it sets.
func appendChange(buf []byte, c *wire.Change, cols []byte) ([]byte, error) {
	info := kinds[c.Kind]
	a := columnArray{data: cols}
	if !a.open() {
		return nil, errors.New("columns are not a JSON array")
	}
	buf = append(buf, '{')
	for i, f := range info.fields {
		v, err := a.next()
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, f.Name...)
		buf = append(buf, '"', ':')
		if buf, err = appendFieldOfElement(buf, f, v); err != nil {
			return nil, err
		}
		if i == info.idField {
			text, err := elementText(v)
			if err != nil {
				return nil, err
			}
			if c.ID, err = uuid.ParseBytes(text); err != nil {
				return nil, fmt.Errorf("id: %w", err)
			}
		}
	}
	buf = append(buf, '}')
	v, err := a.next()
	if err != nil {
		return nil, err
	}
	text, err := elementText(v)
	if err != nil {
		return nil, fmt.Errorf("v: %w", err)
	}
	c.V = string(text)
	// cv, an object or null, is the last element.
	rest, ok := a.rest()
	if !ok {
		return nil, errors.New("columns do not end with cv")
	}
	if string(rest) != "null" {
		if err := json.Unmarshal(rest, &c.CV); err != nil {
			return nil, fmt.Errorf("cv: %w", err)
		}
	}
	return buf, nil
}

// columnArray reads the elements of a JSON array of column values as
// SQLite's json_array writes them: no white space; each value null, an
// integer or a string, but the last.
type columnArray struct {
	data []byte
	i    int
}

func (a *columnArray) open() bool {
	if len(a.data) < 2 || a.data[0] != '[' || a.data[len(a.data)-1] != ']' {
		return false
	}
	a.i = 1
	return true
}

// next returns the next element, which is not the last.
func (a *columnArray) next() ([]byte, error) {
	d, start := a.data, a.i
	end := start
	if start < len(d) && d[start] == '"' {
		for end = start + 1; ; end++ {
			j := bytes.IndexByte(d[end:], '"')
			if j < 0 {
				return nil, errors.New("unterminated string in columns")
			}
			end += j
			// The quote ends the string unless an odd number of
			// backslashes escapes it.
			k := end - 1
			for k > start && d[k] == '\\' {
				k--
			}
			if (end-1-k)%2 == 0 {
				break
			}
		}
		end++
	} else {
		j := bytes.IndexByte(d[start:], ',')
		if j < 0 {
			return nil, errors.New("too few columns")
		}
		end = start + j
	}
	if end >= len(d) || d[end] != ',' {
		return nil, errors.New("too few columns")
	}
	a.i = end + 1
	return d[start:end], nil
}

// rest returns the last element.
func (a *columnArray) rest() ([]byte, bool) {
	if a.i >= len(a.data)-1 {
		return nil, false
	}
	return a.data[a.i : len(a.data)-1], true
}

// appendFieldOfElement appends the wire encoding of field f from v, its
// column's value as SQLite's json_array encodes it: null, an integer or a
// string.
func appendFieldOfElement(buf []byte, f schema.Field, v []byte) ([]byte, error) {
	switch {
	case string(v) == "null":
		return f.AppendJSONOfNull(buf), nil
	case len(v) > 0 && v[0] == '"':
		text, err := elementText(v)
		if err != nil {
			return nil, err
		}
		return f.AppendJSONOfText(buf, text)
	}
	n, ok := parseInt64(v)
	if !ok {
		return nil, fmt.Errorf("%s: %q is not an integer", f.Name, v)
	}
	return f.AppendJSONOfInt(buf, n)
}

// elementText returns the content of the JSON string v: v's own bytes if
// it has no escapes.
func elementText(v []byte) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' {
		return nil, fmt.Errorf("%q is not text", v)
	}
	inner := v[1 : len(v)-1]
	if !slices.Contains(inner, '\\') {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// parseInt64 reads a decimal integer that fits in an int64.
func parseInt64(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}
