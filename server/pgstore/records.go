package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/schema"
)

// The record tables are not numbered migrations: each kind's table is
// generated from schema's field descriptors (schema.FieldsOf), so that a
// kind or field the schema gains has its table or column on PostgreSQL
// without a migration written by hand. They are ensured after the
// numbered migrations, under the same advisory lock, with the triggers
// that give their records the statistics' keys.
//
// A column holds what schema.Field.SQLValue gives and ScanSQL takes, as on
// SQLite: ids are UUID (pgx takes their text), texts, enumerations and
// codes TEXT, integers, booleans (0 or 1) and times (Unix milliseconds)
// BIGINT, supplies their canonical JSON as TEXT (JSONB would rewrite it).
// Then the sync's columns: v, cv (a JSON object as TEXT, or NULL), seq,
// and on field records echo and echo_device (see the SQLite migrations
// 0013 and 0021).

// columnType returns the PostgreSQL type of a column of field f.
func columnType(f schema.Field) (string, error) {
	switch f.Type {
	case schema.TypeID:
		return "UUID", nil
	case schema.TypeText, schema.TypeEnum, schema.TypeCode, schema.TypeSupplies:
		return "TEXT", nil
	case schema.TypeInt, schema.TypeTime:
		return "BIGINT", nil
	case schema.TypeBool:
		return "BIGINT CHECK (" + f.Name + " IN (0, 1))", nil
	}
	return "", fmt.Errorf("field %s: type %d has no column type", f.Name, f.Type)
}

// recordKinds are the kinds that have a table: field records, then
// reference data.
func recordKinds() []schema.Kind {
	return append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...)
}

// recordTable is what makes one kind's table: the statements that create
// it with its indexes, and for each column, in order, its definition for
// an ALTER TABLE that adds it to a table that lacks it (NULL allowed: the
// rows there have no value for it).
type recordTable struct {
	kind    schema.Kind
	create  []string
	columns [][2]string // name, definition
}

// recordTableOf returns kind k's recordTable.
func recordTableOf(k schema.Kind) (*recordTable, error) {
	fields, ok := schema.FieldsOf(k)
	if !ok {
		return nil, fmt.Errorf("record tables: %q is not a kind", k)
	}
	field := schema.IsFieldKind(k)
	t := &recordTable{kind: k}
	var cols []string
	for _, f := range fields {
		typ, err := columnType(f)
		if err != nil {
			return nil, fmt.Errorf("record table %s: %w", k, err)
		}
		t.columns = append(t.columns, [2]string{f.Name, f.Name + " " + typ})
		col := f.Name + " " + typ
		switch {
		case f.Name == "id":
			col += " PRIMARY KEY"
		case !f.Optional:
			col += " NOT NULL"
		}
		cols = append(cols, col)
	}
	cols = append(cols, "v TEXT NOT NULL", "cv TEXT", "seq BIGINT NOT NULL DEFAULT 0")
	if field {
		cols = append(cols, "echo BIGINT NOT NULL DEFAULT 0", "echo_device UUID")
		t.columns = append(t.columns, [2]string{"echo_device", "echo_device UUID"})
	}
	t.create = []string{fmt.Sprintf("CREATE TABLE %s (\n    %s\n)", k, strings.Join(cols, ",\n    "))}
	// The indexes a pull's page reads by (sync/replica's scope parts): a
	// unit's records in change order, referrals to a unit, reference
	// data in change order.
	if field {
		t.create = append(t.create, fmt.Sprintf(`CREATE INDEX %s_unit_seq ON %s (unit_id, seq)`, k, k))
		if k == schema.KindReferral {
			t.create = append(t.create, fmt.Sprintf(`CREATE INDEX %s_to_unit_seq ON %s (to_unit_id, seq)`, k, k))
		}
	} else {
		t.create = append(t.create, fmt.Sprintf(`CREATE INDEX %s_seq ON %s (seq)`, k, k))
	}
	return t, nil
}

// ensureRecordTables creates every kind's table that tx's database lacks,
// and adds the columns a table lacks. It reads the catalogue first and
// alters nothing that is complete: an ALTER TABLE locks the table against
// every reader, and servers run this each time they start.
func ensureRecordTables(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`)
	if err != nil {
		return fmt.Errorf("record tables: %w", err)
	}
	have := map[string]map[string]bool{}
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			rows.Close()
			return fmt.Errorf("record tables: %w", err)
		}
		if have[table] == nil {
			have[table] = map[string]bool{}
		}
		have[table][column] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("record tables: %w", err)
	}
	for _, k := range recordKinds() {
		t, err := recordTableOf(k)
		if err != nil {
			return err
		}
		cols, exists := have[string(k)]
		var stmts []string
		if !exists {
			stmts = t.create
		} else {
			for _, c := range t.columns {
				if !cols[c[0]] {
					stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s`, k, c[1]))
				}
			}
		}
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st); err != nil {
				return fmt.Errorf("record table %s: %w", k, err)
			}
		}
	}
	return ensureKeyTriggers(ctx, tx)
}

// keyedKinds are the kinds whose records get a key for the statistics'
// reports (migration 0006, server/stats), and whether their client codes
// get one too, as the SQLite migrations 0010 and 0018 give them.
var keyedKinds = []struct {
	kind    schema.Kind
	clients bool
}{
	{schema.KindContact, true}, {schema.KindSyringeExchange, false}, {schema.KindNaloxone, false},
	{schema.KindReversal, false}, {schema.KindReferral, false}, {schema.KindInfectionTest, false},
	{schema.KindVaccination, false}, {schema.KindDeath, true},
}

// ensureKeyTriggers creates the triggers that key the records of
// keyedKinds, and their client codes, when they are first stored, where
// tx's database lacks them, and keys the records stored before. Like the
// tables, it alters nothing that is complete.
func ensureKeyTriggers(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace`)
	if err != nil {
		return fmt.Errorf("key triggers: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("key triggers: %w", err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("key triggers: %w", err)
	}
	for _, kk := range keyedKinds {
		k := kk.kind
		// The triggers key what each statement inserted, at once
		// (migration 0007); a database made before has 0006's triggers,
		// which key a row at a time, and loses them here.
		var stmts []string
		if old := string(k) + "_record_key"; have[old] {
			stmts = append(stmts, fmt.Sprintf(`DROP TRIGGER %s ON %s`, old, k))
		}
		if name := string(k) + "_record_keys"; !have[name] {
			stmts = append(stmts,
				fmt.Sprintf(`CREATE TRIGGER %s AFTER INSERT ON %s REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION stats_record_keys()`, name, k),
				fmt.Sprintf(`INSERT INTO record_keys (kind, id, key) SELECT '%s', id, stats_random_key() FROM %s ON CONFLICT DO NOTHING`, k, k))
		}
		if kk.clients {
			if old := string(k) + "_client_key"; have[old] {
				stmts = append(stmts, fmt.Sprintf(`DROP TRIGGER %s ON %s`, old, k))
			}
			if name := string(k) + "_client_keys"; !have[name] {
				stmts = append(stmts,
					fmt.Sprintf(`CREATE TRIGGER %s AFTER INSERT ON %s REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION stats_client_keys()`, name, k),
					fmt.Sprintf(`INSERT INTO client_keys (client_code, key) SELECT client_code, stats_random_key()
						FROM (SELECT DISTINCT client_code FROM %s WHERE client_code IS NOT NULL) c ON CONFLICT DO NOTHING`, k))
			}
			if name := string(k) + "_client_key_changed"; !have[name] {
				stmts = append(stmts,
					fmt.Sprintf(`CREATE TRIGGER %s AFTER UPDATE OF client_code ON %s FOR EACH ROW EXECUTE FUNCTION stats_client_key()`, name, k))
			}
		}
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st); err != nil {
				return fmt.Errorf("key triggers of %s: %w", k, err)
			}
		}
	}
	return nil
}
