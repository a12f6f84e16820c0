package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// FieldType is the type of a field's value.
type FieldType uint8

// Field types. On the wire an ID is a UUID string, Time an RFC 3339 string
// in UTC, Supplies an object of supply codes to counts; in SQL an ID is TEXT,
// Bool and Time (Unix milliseconds) INTEGER and Supplies canonical JSON TEXT.
const (
	TypeID FieldType = iota + 1
	TypeText
	TypeEnum
	TypeCode
	TypeInt
	TypeBool
	TypeTime
	TypeSupplies
)

// MergeRule says how concurrent writes of a field are merged. Every rule
// orders versions totally, so merging is commutative, associative and
// idempotent whatever order changes arrive in.
type MergeRule uint8

// Merge rules.
const (
	// MergeLWW keeps the write with the latest version (hybrid logical
	// clock, device id breaking ties).
	MergeLWW MergeRule = iota
	// MergeStatus keeps the referral status furthest along its lifecycle
	// within the latest reopening, the latest version breaking ties: a
	// status never moves back except by an explicit reopen.
	MergeStatus
	// MergeCounter keeps the highest count, the latest version breaking
	// ties: used for the number of reopenings.
	MergeCounter
	// MergeResult keeps a settled test result (anything but pending) over
	// pending or none, the latest version breaking ties: a result leaves
	// pending once and never returns to it, and of two settled results
	// written concurrently the later write wins, as a correction does.
	MergeResult
)

// Field is one field of a record: its description and a pointer into the
// record that holds its value. Fields are created by a record's Fields
// method and are valid as long as the record is.
type Field struct {
	Name      string
	Type      FieldType
	Enum      *Enumeration // for TypeEnum
	Immutable bool         // may not change once the record exists
	Optional  bool         // may be absent: empty, zero or null
	Merge     MergeRule
	ptr       any
}

func idField(name string, p *uuid.UUID) Field { return Field{Name: name, Type: TypeID, ptr: p} }
func textField(name string, p *string) Field  { return Field{Name: name, Type: TypeText, ptr: p} }
func codeField(name string, p *ClientCode) Field {
	return Field{Name: name, Type: TypeCode, ptr: p}
}
func enumField(name string, p *string, e *Enumeration) Field {
	return Field{Name: name, Type: TypeEnum, Enum: e, ptr: p}
}
func intField(name string, p *int) Field        { return Field{Name: name, Type: TypeInt, ptr: p} }
func boolField(name string, p *bool) Field      { return Field{Name: name, Type: TypeBool, ptr: p} }
func timeField(name string, p *time.Time) Field { return Field{Name: name, Type: TypeTime, ptr: p} }
func suppliesField(name string, p *Supplies) Field {
	return Field{Name: name, Type: TypeSupplies, ptr: p}
}

func (f Field) immutable() Field               { f.Immutable = true; return f }
func (f Field) optional() Field                { f.Optional = true; return f }
func (f Field) withMerge(rule MergeRule) Field { f.Merge = rule; return f }

// IsZero reports whether the field holds its zero value, which for an
// optional field means absent.
func (f Field) IsZero() bool {
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		return *p == uuid.Nil
	case *string:
		return *p == ""
	case *ClientCode:
		return *p == ""
	case *int:
		return *p == 0
	case *bool:
		return !*p
	case *time.Time:
		return p.IsZero()
	case *Supplies:
		return len(*p) == 0
	}
	panic("schema: unknown field pointer")
}

// SameValue reports whether f and g, fields of the same description (of two
// records of one kind), hold the same value.
func (f Field) SameValue(g Field) bool {
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		q, ok := g.ptr.(*uuid.UUID)
		return ok && *p == *q
	case *string:
		q, ok := g.ptr.(*string)
		return ok && *p == *q
	case *ClientCode:
		q, ok := g.ptr.(*ClientCode)
		return ok && *p == *q
	case *int:
		q, ok := g.ptr.(*int)
		return ok && *p == *q
	case *bool:
		q, ok := g.ptr.(*bool)
		return ok && *p == *q
	case *time.Time:
		q, ok := g.ptr.(*time.Time)
		return ok && p.Equal(*q)
	case *Supplies:
		q, ok := g.ptr.(*Supplies)
		return ok && maps.Equal(*p, *q) && (*p == nil) == (*q == nil)
	}
	panic("schema: unknown field pointer")
}

// SQLValue returns the field's value as stored in SQLite: string, int64 or
// nil for an absent optional field.
func (f Field) SQLValue() any {
	if f.Optional && f.IsZero() {
		return nil
	}
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		return p.String()
	case *string:
		return *p
	case *ClientCode:
		return string(*p)
	case *int:
		return int64(*p)
	case *bool:
		if *p {
			return int64(1)
		}
		return int64(0)
	case *time.Time:
		return p.UnixMilli()
	case *Supplies:
		b, _ := json.Marshal(*p) // map keys are sorted: canonical
		return string(b)
	}
	panic("schema: unknown field pointer")
}

// ScanSQL sets the field from a value read from SQLite.
func (f Field) ScanSQL(v any) error {
	if v == nil {
		f.setZero()
		return nil
	}
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("scan %s: want text, got %T", f.Name, v)
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return fmt.Errorf("scan %s: %w", f.Name, err)
		}
		*p = id
	case *string:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("scan %s: want text, got %T", f.Name, v)
		}
		*p = s
	case *ClientCode:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("scan %s: want text, got %T", f.Name, v)
		}
		*p = ClientCode(s)
	case *int:
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("scan %s: want integer, got %T", f.Name, v)
		}
		*p = int(n)
	case *bool:
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("scan %s: want integer, got %T", f.Name, v)
		}
		*p = n != 0
	case *time.Time:
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("scan %s: want integer, got %T", f.Name, v)
		}
		*p = time.UnixMilli(n).UTC()
	case *Supplies:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("scan %s: want text, got %T", f.Name, v)
		}
		var m Supplies
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return fmt.Errorf("scan %s: %w", f.Name, err)
		}
		*p = m
	}
	return nil
}

func (f Field) setZero() {
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		*p = uuid.Nil
	case *string:
		*p = ""
	case *ClientCode:
		*p = ""
	case *int:
		*p = 0
	case *bool:
		*p = false
	case *time.Time:
		*p = time.Time{}
	case *Supplies:
		*p = nil
	}
}

// MarshalJSON encodes the field's value as it goes on the wire. An absent
// optional field is null.
func (f Field) MarshalJSON() ([]byte, error) { return f.AppendJSON(nil), nil }

// AppendJSON appends the field's wire encoding, as MarshalJSON returns it,
// byte for byte what encoding/json makes of the value.
func (f Field) AppendJSON(dst []byte) []byte {
	if f.Optional && f.IsZero() {
		return append(dst, "null"...)
	}
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		dst = append(dst, '"')
		return append(AppendUUID(dst, *p), '"')
	case *string:
		return AppendJSONString(dst, *p)
	case *ClientCode:
		return AppendJSONString(dst, string(*p))
	case *int:
		return strconv.AppendInt(dst, int64(*p), 10)
	case *bool:
		return strconv.AppendBool(dst, *p)
	case *time.Time:
		return appendTime(dst, *p)
	case *Supplies:
		return appendSupplies(dst, *p)
	}
	panic("schema: unknown field pointer")
}

// appendSupplies encodes m as encoding/json does: keys sorted, nil as null.
func appendSupplies(dst []byte, m Supplies) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	keys := make([]Supply, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, string(k))
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(m[k]), 10)
	}
	return append(dst, '}')
}

// AppendJSONOfSQL appends the wire encoding of the value v read from the
// field's SQLite column (string, []byte, int64 or nil): what ScanSQL(v)
// then AppendJSON would append, without a record to hold the value. Only
// the field's description is used, not its value. AppendJSONOfText,
// AppendJSONOfInt and AppendJSONOfNull are the same for one type of
// column value, without an interface to box it in.
func (f Field) AppendJSONOfSQL(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return f.AppendJSONOfNull(dst), nil
	case string:
		return f.AppendJSONOfText(dst, []byte(v))
	case []byte:
		return f.AppendJSONOfText(dst, v)
	case int64:
		return f.AppendJSONOfInt(dst, v)
	}
	return nil, fmt.Errorf("scan %s: unexpected %T", f.Name, v)
}

// AppendJSONOfNull is AppendJSONOfSQL of NULL.
func (f Field) AppendJSONOfNull(dst []byte) []byte {
	if f.Optional {
		return append(dst, "null"...)
	}
	return f.appendZero(dst)
}

// AppendJSONOfText is AppendJSONOfSQL of a TEXT value.
func (f Field) AppendJSONOfText(dst []byte, s []byte) ([]byte, error) {
	switch f.Type {
	case TypeID:
		if isCanonicalUUID(s) && string(s) != nilUUID { // as ids are stored
			dst = append(dst, '"')
			dst = append(dst, s...)
			return append(dst, '"'), nil
		}
		id, err := uuid.ParseBytes(s)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", f.Name, err)
		}
		if f.Optional && id == uuid.Nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '"')
		return append(AppendUUID(dst, id), '"'), nil
	case TypeText, TypeEnum, TypeCode:
		if f.Optional && len(s) == 0 {
			return append(dst, "null"...), nil
		}
		return appendJSONString(dst, s), nil
	case TypeSupplies:
		var m Supplies
		if err := json.Unmarshal(s, &m); err != nil {
			return nil, fmt.Errorf("scan %s: %w", f.Name, err)
		}
		if f.Optional && len(m) == 0 {
			return append(dst, "null"...), nil
		}
		return appendSupplies(dst, m), nil
	}
	return nil, fmt.Errorf("scan %s: want integer, got text", f.Name)
}

// AppendJSONOfInt is AppendJSONOfSQL of an INTEGER value.
func (f Field) AppendJSONOfInt(dst []byte, n int64) ([]byte, error) {
	switch f.Type {
	case TypeInt:
		if f.Optional && int(n) == 0 {
			break
		}
		return strconv.AppendInt(dst, int64(int(n)), 10), nil
	case TypeBool:
		if f.Optional && n == 0 {
			break
		}
		return strconv.AppendBool(dst, n != 0), nil
	case TypeTime:
		t := time.UnixMilli(n).UTC()
		if f.Optional && t.IsZero() {
			break
		}
		return appendTime(dst, t), nil
	default:
		return nil, fmt.Errorf("scan %s: want text, got integer", f.Name)
	}
	return append(dst, "null"...), nil
}

// appendZero appends the encoding of the zero value of a required field.
func (f Field) appendZero(dst []byte) []byte {
	switch f.Type {
	case TypeID:
		dst = append(dst, '"')
		return append(AppendUUID(dst, uuid.Nil), '"')
	case TypeText, TypeEnum, TypeCode:
		return append(dst, `""`...)
	case TypeInt:
		return append(dst, '0')
	case TypeBool:
		return append(dst, "false"...)
	case TypeTime:
		return appendTime(dst, time.Time{})
	}
	return append(dst, "null"...) // supplies: a nil map
}

// TimeLayout is the wire format of times: RFC 3339 in UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// UnmarshalJSON sets the field from its wire encoding. It checks the JSON
// type and the format of ids and times, not the rules of Validate. null is
// accepted only for optional fields. On error the field is unchanged and
// the error is a *FieldError with the rule RuleType or RuleRequired.
func (f Field) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		if !f.Optional {
			return &FieldError{Field: f.Name, Rule: RuleRequired, Message: "may not be null"}
		}
		f.setZero()
		return nil
	}
	bad := func(want string) error {
		return &FieldError{Field: f.Name, Rule: RuleType, Message: "want " + want}
	}
	quoted := len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"'
	str := func() (string, bool) {
		if !quoted {
			return "", false
		}
		s, err := unquote(data)
		return s, err == nil
	}
	// plain is the content of a string without escapes, read in place.
	var plain []byte
	if quoted && bytes.IndexByte(data[1:len(data)-1], '\\') < 0 {
		plain = data[1 : len(data)-1]
	}
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		if plain == nil {
			s, ok := str()
			if !ok {
				return bad("a UUID string")
			}
			plain = []byte(s)
		}
		id, err := uuid.ParseBytes(plain)
		if err != nil || len(plain) != 36 {
			return bad("a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
		}
		*p = id
	case *string:
		if f.Enum != nil && plain != nil {
			// A known code is set to the enumeration's own string,
			// which costs no allocation.
			if i, ok := f.Enum.index[string(plain)]; ok {
				*p = f.Enum.Options[i].Code
				return nil
			}
		}
		s, ok := str()
		if !ok {
			return bad("a string")
		}
		*p = s
	case *ClientCode:
		s, ok := str()
		if !ok {
			return bad("a client code string")
		}
		*p = ClientCode(s)
	case *int:
		i, err := strconv.ParseInt(string(data), 10, 32)
		if err != nil || data[0] == '+' {
			return bad("an integer between -2147483648 and 2147483647")
		}
		*p = int(i)
	case *bool:
		switch string(data) {
		case "true":
			*p = true
		case "false":
			*p = false
		default:
			return bad("true or false")
		}
	case *time.Time:
		if t, ok := parseWireTime(plain); ok {
			*p = t
			return nil
		}
		s, ok := str()
		if !ok {
			return bad("an RFC 3339 time string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return bad("an RFC 3339 time such as 2026-03-01T14:05:00Z")
		}
		*p = t.UTC().Truncate(time.Millisecond)
	case *Supplies:
		m := Supplies{}
		err := EachMember(data, func(k string, v []byte) error {
			var n int
			if err := intField(f.Name, &n).UnmarshalJSON(v); err != nil {
				return err
			}
			m[Supply(k)] = n
			return nil
		})
		if err != nil {
			return bad("an object of supply codes to integer counts")
		}
		*p = m
	}
	return nil
}

// Supplies counts supplies handed out, by supply code.
type Supplies map[Supply]int

// FieldsOf returns the fields of a new zero record of kind k, which
// describe its columns. It returns false if k is not a kind.
func FieldsOf(k Kind) ([]Field, bool) {
	r, ok := New(k)
	if !ok {
		return nil, false
	}
	return r.Fields(), true
}

// New returns a new zero record of kind k.
func New(k Kind) (Record, bool) {
	switch k {
	case KindClient:
		return &Client{}, true
	case KindContact:
		return &Contact{}, true
	case KindSyringeExchange:
		return &SyringeExchange{}, true
	case KindNaloxone:
		return &NaloxoneHandout{}, true
	case KindReversal:
		return &Reversal{}, true
	case KindReferral:
		return &Referral{}, true
	case KindInfectionTest:
		return &InfectionTest{}, true
	case KindVaccination:
		return &Vaccination{}, true
	case KindDeath:
		return &Death{}, true
	case KindOrganisation:
		return &Organisation{}, true
	case KindUnit:
		return &Unit{}, true
	case KindStaff:
		return &Staff{}, true
	case KindService:
		return &Service{}, true
	}
	return nil, false
}

// FieldKinds lists the kinds devices write, in dependency order: a contact's
// client before the contact, a contact before what belongs to it. New kinds
// are appended: a device's heal cursor counts kinds by their place here.
var FieldKinds = []Kind{KindClient, KindContact, KindSyringeExchange, KindNaloxone, KindReversal, KindReferral,
	KindInfectionTest, KindVaccination, KindDeath}

// ReferenceKinds lists the kinds of reference data, in dependency order.
var ReferenceKinds = []Kind{KindOrganisation, KindUnit, KindStaff, KindService}

// KindOf returns the kind named name: for a known kind, its own string,
// which costs no allocation.
func KindOf(name []byte) Kind {
	for _, ks := range [][]Kind{FieldKinds, ReferenceKinds} {
		for _, k := range ks {
			if string(k) == string(name) {
				return k
			}
		}
	}
	return Kind(name)
}

// IsFieldKind reports whether k is a kind devices write.
func IsFieldKind(k Kind) bool {
	for _, f := range FieldKinds {
		if f == k {
			return true
		}
	}
	return false
}
