package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// recordKinds are the kinds that have a table.
var recordKinds = append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...)

// tableColumns returns the columns of table, in order.
func tableColumns(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// TestRecordTablesFromSchema checks that migrating makes each kind's
// table from schema's field descriptors: its fields' columns in order,
// then the sync's, and that a record's values as schema.Field.SQLValue
// gives them are stored and read back by ScanSQL unchanged.
func TestRecordTablesFromSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	if _, err := pgstore.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, k := range recordKinds {
		t.Run(string(k), func(t *testing.T) {
			fields, _ := schema.FieldsOf(k)
			var want []string
			for _, f := range fields {
				want = append(want, f.Name)
			}
			want = append(want, "v", "cv", "seq")
			if schema.IsFieldKind(k) {
				want = append(want, "echo", "echo_device")
			}
			if got := tableColumns(t, conn, string(k)); !slices.Equal(got, want) {
				t.Fatalf("columns of %s:\n got %v\nwant %v", k, got, want)
			}

			rec, _ := schema.New(k)
			in := rec.Fields()
			var names, marks, reads []string
			var args []any
			for i, f := range in {
				names = append(names, f.Name)
				marks = append(marks, fmt.Sprintf("$%d", i+1))
				args = append(args, f.SQLValue())
				if f.Type == schema.TypeID {
					reads = append(reads, f.Name+"::text")
				} else {
					reads = append(reads, f.Name)
				}
			}
			n := len(in)
			insert := fmt.Sprintf(`INSERT INTO %s (%s, v, cv, seq) VALUES (%s, $%d, $%d, $%d)`,
				k, strings.Join(names, ", "), strings.Join(marks, ", "), n+1, n+2, n+3)
			if _, err := conn.Exec(ctx, insert, append(args, "0000000000001-0000-node", `{"x":"y"}`, int64(7))...); err != nil {
				t.Fatalf("insert: %v", err)
			}
			vals := make([]any, n)
			ptrs := make([]any, n)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT %s FROM %s`, strings.Join(reads, ", "), k)).Scan(ptrs...); err != nil {
				t.Fatalf("select: %v", err)
			}
			back, _ := schema.New(k)
			out := back.Fields()
			for i, f := range out {
				if err := f.ScanSQL(vals[i]); err != nil {
					t.Fatalf("scan %s (%T): %v", f.Name, vals[i], err)
				}
				if got, want := f.SQLValue(), in[i].SQLValue(); got != want {
					t.Errorf("%s: read back %v, stored %v", f.Name, got, want)
				}
			}
		})
	}
}

// TestRecordTablesGainColumns checks that migrating again changes nothing
// where the tables are complete, and adds a column a table lacks: a field
// the schema gained after the table was made.
func TestRecordTablesGainColumns(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	if _, err := pgstore.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	k := schema.FieldKinds[0]
	full := tableColumns(t, conn, string(k))
	fields, _ := schema.FieldsOf(k)
	gone := fields[len(fields)-1].Name
	if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s DROP COLUMN %s`, k, gone)); err != nil {
		t.Fatal(err)
	}
	applied, err := pgstore.Migrate(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Errorf("migrating again applied %v", applied)
	}
	got := tableColumns(t, conn, string(k))
	slices.Sort(got)
	slices.Sort(full)
	if !slices.Equal(got, full) {
		t.Errorf("columns of %s after migrating again: %v, want %v", k, got, full)
	}
}
