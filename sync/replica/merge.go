package replica

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// DecodeWrite decodes the fields one mutation writes into a partial row:
// the written fields have their values and keys, the others no key. A
// write that sets "id" creates the record: fields it leaves out are written
// as absent (zero). base is the write's plain key (see Key).
//
// Errors are *schema.FieldError: an unknown field, a value of the wrong
// type, an id that differs from id.
func DecodeWrite(kind schema.Kind, id uuid.UUID, fields json.RawMessage, base string) (*Row, error) {
	r, err := decodeFields(kind, id, fields)
	if err != nil {
		return nil, err
	}
	r.rekey(base)
	return r, nil
}

// unkeyed marks the written fields of a row that decodeFields made, until
// rekey gives them their keys.
const unkeyed = "\x00"

// decodeFields decodes a write as DecodeWrite does, with every written
// field marked unkeyed: the costly part of a write, which needs neither the
// write's version nor a lock.
func decodeFields(kind schema.Kind, id uuid.UUID, fields json.RawMessage) (*Row, error) {
	r := NewRow(kind)
	if r == nil {
		return nil, &schema.FieldError{Kind: kind, Field: "kind", Rule: schema.RuleEnum, Message: fmt.Sprintf("%q is not a kind", kind)}
	}
	info := kinds[kind]
	var written fieldSet
	prev := -1
	err := schema.EachMemberBytes(fields, func(name, v []byte) error {
		i, ok := info.field(name, prev)
		if !ok {
			return &schema.FieldError{Kind: kind, Field: string(name), Rule: schema.RuleUnknownField, Message: fmt.Sprintf("%s have no field %q", kind, name)}
		}
		prev = i
		if err := r.fields[i].UnmarshalJSON(v); err != nil {
			if fe, ok := err.(*schema.FieldError); ok {
				fe.Kind = kind
			}
			return err
		}
		written.add(i)
		return nil
	})
	if err != nil {
		var fe *schema.FieldError
		if !errors.As(err, &fe) {
			return nil, &schema.FieldError{Kind: kind, Field: "fields", Rule: schema.RuleType, Message: "want a JSON object"}
		}
		return nil, err
	}
	create := written.has(info.idField)
	if create && r.ID() != id {
		return nil, &schema.FieldError{Kind: kind, Field: "id", Rule: schema.RuleConsistency, Message: "id in fields differs from the mutation's id"}
	}
	if !create { // a create's fields hold the id, checked above
		r.fields[info.idField].ScanSQL(id.String())
	}
	// A status is ranked within the reopening it was made under, which
	// only the write itself can say: without it, a status set after a
	// reopening would lose to the status before it, silently.
	if st, ok := info.index["status"]; ok && written.has(st) && !create && !written.has(info.index["reopened"]) {
		return nil, &schema.FieldError{Kind: kind, Field: "reopened", Rule: schema.RuleRequired,
			Message: "a status write carries the reopened count of the referral it was made on"}
	}
	for i := range r.fields {
		if create || written.has(i) {
			r.keys[i] = unkeyed
		}
	}
	return r, nil
}

// fieldSet is a set of field indexes; no kind has more than 64 fields.
type fieldSet uint64

func (s *fieldSet) add(i int)     { *s |= 1 << i }
func (s fieldSet) has(i int) bool { return s&(1<<i) != 0 }

// rekey gives every written field of r its key for the plain key base.
func (r *Row) rekey(base string) {
	epoch, read := 0, false // read if a field's key needs it
	for i := range r.fields {
		switch {
		case r.keys[i] == "":
		case r.fields[i].Merge == schema.MergeLWW:
			r.keys[i] = base // fieldKey's, without copying the field
		default:
			if !read {
				epoch, read = r.reopened(), true
			}
			r.keys[i] = fieldKey(r.fields[i], base, epoch)
		}
	}
}

// checkStatus checks a referral's status written by w against row, the
// record it applies to (nil for a create): a referral is closed only from
// attended, under the same reopen count. A write that a later reopening
// has overtaken is not checked: it loses the merge anyway. The error is a
// *schema.FieldError with RuleTransition.
func checkStatus(row, w *Row) error {
	ref, ok := w.Record.(*schema.Referral)
	if !ok || w.Key("status") == "" || ref.Status != schema.StatusClosed {
		return nil
	}
	if row != nil {
		cur := row.Record.(*schema.Referral)
		if cur.Reopened > ref.Reopened || cur.Reopened == ref.Reopened && cur.Status.Closes() {
			return nil
		}
	}
	return &schema.FieldError{Kind: schema.KindReferral, Field: "status", Rule: schema.RuleTransition,
		Message: "a referral is closed only after it was attended"}
}

// IsCreate reports whether the partial row w creates its record.
func (w *Row) IsCreate() bool { return w.keys[kinds[w.Kind].idField] != "" }

// Join merges the partial or full row src into dst: each field takes the
// value with the greater key (on equal keys, the greater value, so that
// Join is a lattice join whatever the input). Join is commutative,
// associative and idempotent on the fields it changes.
//
// An immutable field that both rows hold with different values is an
// error, a *schema.FieldError with RuleImmutable, and leaves dst unchanged.
// Join reports whether dst changed.
func Join(dst, src *Row) (bool, error) {
	if dst.Kind != src.Kind {
		return false, fmt.Errorf("join %s into %s", src.Kind, dst.Kind)
	}
	for i, f := range dst.fields {
		if !f.Immutable || src.keys[i] == "" || dst.keys[i] == "" {
			continue
		}
		if a, b := f.SQLValue(), src.fields[i].SQLValue(); a != b {
			return false, &schema.FieldError{Kind: dst.Kind, Field: f.Name, Rule: schema.RuleImmutable,
				Message: fmt.Sprintf("%s cannot change once the record exists", f.Name)}
		}
	}
	changed := false
	for i, f := range dst.fields {
		sk, dk := src.keys[i], dst.keys[i]
		if sk == "" || sk < dk {
			continue
		}
		sv := src.fields[i].SQLValue()
		if sk == dk {
			dv := f.SQLValue()
			if !valueLess(dv, sv) {
				continue
			}
		}
		f.ScanSQL(sv)
		dst.keys[i] = sk
		changed = true
	}
	return changed, nil
}

// valueLess orders SQL values: nil, then integers, then strings.
func valueLess(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b != nil
	case int64:
		switch b := b.(type) {
		case nil:
			return false
		case int64:
			return a < b
		}
		return true
	case string:
		if b, ok := b.(string); ok {
			return a < b
		}
		return false
	}
	return false
}

// Clone returns a deep copy of r.
func (r *Row) Clone() *Row {
	c := NewRow(r.Kind)
	copyRecord(c, r.Record)
	copy(c.keys, r.keys)
	c.Seq = r.Seq
	return c
}

// Complete reports whether every field of r has a key: a full row, as
// opposed to a partial one.
func (r *Row) Complete() bool {
	for _, k := range r.keys {
		if k == "" {
			return false
		}
	}
	return true
}
