package replica_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
)

// TestRowValuesScanRow checks that a row read back by ScanRow from the
// values RowValues gives is the row: its fields, its versions (one field
// written later than the rest, so that cv is set), seq and echo; and that
// ScanRow refuses values of the wrong count or kind.
func TestRowValuesScanRow(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	s := MustOpenServer(t, newTestClock(), w)
	row, err := s.Get(ctx, schema.KindUnit, w.unitA)
	if err != nil || row == nil {
		t.Fatalf("get unit: %v %v", row, err)
	}
	later, err := replica.DecodeWrite(schema.KindUnit, w.unitA, []byte(`{"name":"Natteam"}`), replica.Key(hlc.Timestamp(1)<<62, w.orgA))
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := replica.Join(row, later); err != nil || !changed {
		t.Fatalf("join: %v %v", changed, err)
	}
	row.Seq, row.Echo, row.EchoDevice = 41, 7, uuid.Must(uuid.NewV7())
	if _, cv := row.Versions(); len(cv) != 1 {
		t.Fatalf("versions of the row: cv %v, want one field", cv)
	}

	vals := replica.RowValues(row)
	if got, want := len(vals), len(replica.RecordColumns(schema.KindUnit))+5; got != want {
		t.Fatalf("%d values, want %d", got, want)
	}
	back, err := replica.ScanRow(schema.KindUnit, vals)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(replica.ChangeOf(back), replica.ChangeOf(row)) || back.Echo != row.Echo || back.EchoDevice != row.EchoDevice {
		t.Errorf("read back %+v echo %d of %s, want %+v echo %d of %s", replica.ChangeOf(back), back.Echo, back.EchoDevice, replica.ChangeOf(row), row.Echo, row.EchoDevice)
	}
	// Text as the driver may give it, and no echo.
	bytesVals := append([]any{}, vals[:len(vals)-2]...)
	for i, v := range bytesVals {
		if s, ok := v.(string); ok {
			bytesVals[i] = []byte(s)
		}
	}
	back, err = replica.ScanRow(schema.KindUnit, bytesVals)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(replica.ChangeOf(back), replica.ChangeOf(row)) || back.Echo != 0 {
		t.Errorf("read back from bytes %+v echo %d", replica.ChangeOf(back), back.Echo)
	}

	if _, err := replica.ScanRow(schema.KindUnit, vals[:3]); err == nil {
		t.Error("three values scanned as a unit")
	}
	if _, err := replica.ScanRow(schema.KindStaff, vals); err == nil {
		t.Error("a unit's values scanned as staff")
	}
	if _, err := replica.ScanRow("nothing", vals); err == nil {
		t.Error("values scanned as an unknown kind")
	}
}
