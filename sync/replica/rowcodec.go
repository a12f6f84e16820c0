package replica

import (
	"fmt"
	"slices"

	"github.com/brygga/brygga/schema"
)

// What a ServerEngine outside this package stores a Row as: a table per
// kind, whose columns are the kind's fields (RecordColumns), then v (the
// version key every field has unless cv says otherwise), cv (a JSON object
// of field names to later keys, or NULL), seq and, on the server's field
// records, echo and echo_device (the device's id as text or NULL, see
// Row.EchoDevice). The values are those of schema.Field.SQLValue: text,
// int64 or nil.

// RecordColumns returns the names of the field columns of kind k's table,
// in order; nil if k is not a kind.
func RecordColumns(k schema.Kind) []string {
	info, ok := kinds[k]
	if !ok {
		return nil
	}
	return slices.Clone(info.names)
}

// RowValues returns the values of r's columns: its fields', v, cv (JSON
// text or nil), seq, echo and echo_device.
func RowValues(r *Row) []any {
	return append(rowArgs(r), r.Echo, echoDeviceArg(r))
}

// ScanRow returns the row of kind k whose column values are vals, as
// RowValues gives them (text as string or []byte, integers as int64); echo
// and echo_device may be left off. It checks the fields' values and the
// versions.
func ScanRow(k schema.Kind, vals []any) (*Row, error) {
	r := NewRow(k)
	if r == nil {
		return nil, fmt.Errorf("scan row: %q is not a kind", k)
	}
	n := len(r.fields) + 3
	if len(vals) != n && len(vals) != n+2 {
		return nil, fmt.Errorf("scan row %s: %d values, want %d or %d", k, len(vals), n, n+2)
	}
	if err := fillRow(r, vals); err != nil {
		return nil, fmt.Errorf("scan row %s: %w", k, err)
	}
	return r, nil
}
