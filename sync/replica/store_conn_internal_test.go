package replica

import (
	"context"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"testing"

	"github.com/brygga/brygga/schema"
)

// A panic or a broken-connection error on the driver's connection of an
// open write transaction comes back as an error, and the transaction can
// still be rolled back and its connection given back: database/sql alone
// would close the connection from within Raw, waiting for the transaction
// for ever.
func TestConnInsertsRawFailsWithoutHanging(t *testing.T) {
	ctx := context.Background()
	db, err := OpenDB(ctx, filepath.Join(t.TempDir(), "server.db"), schema.ServerDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &connInserts{conn: conn}
	if err := c.raw(func(any) error { panic("boom") }); err == nil {
		t.Fatal("a panic on the connection came back as no error")
	}
	err = c.raw(func(any) error { return driver.ErrBadConn })
	if err == nil || errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("a broken-connection error came back as %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	// The writer is free again.
	if _, err := db.write.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('probe', '1')`); err != nil {
		t.Fatal(err)
	}
}
