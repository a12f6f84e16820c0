package replica

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// Row is the state a replica holds of one record: its fields and, for each
// field, the key of the write that set it. Rows form a join-semilattice
// under Join.
type Row struct {
	Kind   schema.Kind
	Record schema.Record
	fields []schema.Field
	// keys[i] is the version key of fields[i]; "" for a field never
	// written (only in a partial row, see Write).
	keys []string
	// Seq is the server's change sequence number of the row's latest
	// change; 0 if the server has not seen it.
	Seq int64
	// Echo is, in the server's store, the number of the mutation whose
	// push made exactly this state, which its device holds (see
	// migrations 0013 and 0021); 0 for any other state. In a device's
	// replica it is the number of the device's latest own write on the
	// row, whose answer's change number, once noted (the echoes table of
	// migration 0023), raises Seq where a row is read; 0 for none.
	Echo int64
	// EchoDevice is the device of Echo: uuid.Nil for the record's own
	// device (its header's DeviceID), which makes most echoes.
	EchoDevice uuid.UUID
}

// EchoOf returns the device whose push made the row's state, which it
// holds; uuid.Nil if the state is no device's echo.
func (r *Row) EchoOf() uuid.UUID {
	switch {
	case r.Echo == 0:
		return uuid.Nil
	case r.EchoDevice != uuid.Nil:
		return r.EchoDevice
	}
	return schema.HeaderOf(r.Record).DeviceID
}

// echoDeviceArg is the value of the echo_device column of r.
func echoDeviceArg(r *Row) any {
	if r.EchoDevice == uuid.Nil {
		return nil
	}
	return r.EchoDevice.String()
}

type kindInfo struct {
	index   map[string]int
	idField int
	names   []string
	// nextByName[0] is the field whose name sorts first, nextByName[i+1]
	// the one whose name sorts after field i's; -1 after the last.
	nextByName []int
	// fields describe the kind's columns (their values are a zero record's).
	fields []schema.Field
}

var kinds = func() map[schema.Kind]*kindInfo {
	m := map[schema.Kind]*kindInfo{}
	for _, k := range append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...) {
		fs, _ := schema.FieldsOf(k)
		info := &kindInfo{index: map[string]int{}, fields: fs}
		for i, f := range fs {
			info.index[f.Name] = i
			info.names = append(info.names, f.Name)
		}
		info.idField = info.index["id"]
		byName := make([]int, len(fs))
		for i := range byName {
			byName[i] = i
		}
		sort.Slice(byName, func(a, b int) bool { return fs[byName[a]].Name < fs[byName[b]].Name })
		info.nextByName = slices.Repeat([]int{-1}, len(fs)+1)
		prev := -1
		for _, i := range byName {
			info.nextByName[prev+1] = i
			prev = i
		}
		m[k] = info
	}
	return m
}()

// rowMem is a row with room for its fields and keys: a push makes a row of
// every mutation, each in one allocation besides its record's.
type rowMem struct {
	row    Row
	fields [schema.MaxFields]schema.Field
	keys   [schema.MaxFields]string
}

// field returns the index of the field named name, trying first the
// fields that follow field prev (-1 before the first) in column order and
// in the order of their names, the orders in which writers send them.
func (info *kindInfo) field(name []byte, prev int) (int, bool) {
	if i := prev + 1; i < len(info.names) && info.names[i] == string(name) {
		return i, true
	}
	if i := info.nextByName[prev+1]; i >= 0 && info.names[i] == string(name) {
		return i, true
	}
	i, ok := info.index[string(name)]
	return i, ok
}

// NewRow returns an empty row of kind k, or nil if k is not a kind.
func NewRow(k schema.Kind) *Row {
	rec, ok := schema.New(k)
	if !ok {
		return nil
	}
	m := &rowMem{}
	fs := schema.AppendFields(m.fields[:0], rec)
	var keys []string
	if len(fs) <= len(m.keys) {
		keys = m.keys[:len(fs)]
	} else {
		keys = make([]string, len(fs))
	}
	m.row = Row{Kind: k, Record: rec, fields: fs, keys: keys}
	return &m.row
}

// RowOf returns a row holding rec with every field written at key.
func RowOf(rec schema.Record, key string) *Row {
	r := NewRow(rec.Kind())
	copyRecord(r, rec)
	r.setAll(key)
	return r
}

func copyRecord(dst *Row, src schema.Record) {
	for i, f := range src.Fields() {
		dst.fields[i].ScanSQL(f.SQLValue())
	}
}

// setAll sets every field's key from the plain key base.
func (r *Row) setAll(base string) {
	epoch := r.reopened()
	for i, f := range r.fields {
		r.keys[i] = fieldKey(f, base, epoch)
	}
}

// reopened returns the row's reopen count (referrals), or 0.
func (r *Row) reopened() int {
	if ref, ok := r.Record.(*schema.Referral); ok {
		return ref.Reopened
	}
	return 0
}

// ID returns the record's id.
func (r *Row) ID() uuid.UUID { return r.Record.RecordID() }

// Key returns the version key of the named field, "" if unknown or unset.
func (r *Row) Key(name string) string {
	if i, ok := kinds[r.Kind].index[name]; ok {
		return r.keys[i]
	}
	return ""
}

// Versions returns the row's keys compactly: v, the key of the id field
// (the create's), and cv, every other field's key that differs from v.
// The form is canonical: equal rows give equal versions.
func (r *Row) Versions() (v string, cv map[string]string) {
	v = r.keys[kinds[r.Kind].idField]
	for i, k := range r.keys {
		if k != v {
			if cv == nil {
				cv = make(map[string]string)
			}
			cv[r.fields[i].Name] = k
		}
	}
	return v, cv
}

// setVersions sets the keys from their compact form.
func (r *Row) setVersions(v string, cv map[string]string) error {
	for i := range r.keys {
		r.keys[i] = v
	}
	for name, k := range cv {
		i, ok := kinds[r.Kind].index[name]
		if !ok {
			return fmt.Errorf("version of unknown field %q", name)
		}
		r.keys[i] = k
	}
	for i, f := range r.fields {
		if f.Merge != schema.MergeLWW && r.keys[i] == v {
			// Keys of status and counter fields have their own form and
			// are always listed in cv.
			return fmt.Errorf("version of %s missing", f.Name)
		}
	}
	return nil
}

// FieldsJSON encodes the row's fields as a JSON object, in field order.
func (r *Row) FieldsJSON() json.RawMessage {
	b := make([]byte, 0, 512)
	b = append(b, '{')
	for i, f := range r.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.Name...)
		b = append(b, '"', ':')
		b = f.AppendJSON(b)
	}
	return append(b, '}')
}

// Equal reports whether two rows hold the same values with the same keys.
func (r *Row) Equal(o *Row) bool {
	if r.Kind != o.Kind || len(r.keys) != len(o.keys) {
		return false
	}
	for i := range r.fields {
		if r.keys[i] != o.keys[i] || r.fields[i].SQLValue() != o.fields[i].SQLValue() {
			return false
		}
	}
	return true
}

// String describes the row for test failures.
func (r *Row) String() string {
	v, cv := r.Versions()
	names := make([]string, 0, len(cv))
	for n := range cv {
		names = append(names, n)
	}
	sort.Strings(names)
	s := fmt.Sprintf("%s %s seq=%d %s v=%s", r.Kind, r.ID(), r.Seq, r.FieldsJSON(), v)
	for _, n := range names {
		s += " " + n + "=" + cv[n]
	}
	return s
}
