package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Errors of CheckCopy.
var (
	// ErrUnsound means a file is not a sound SQLite database.
	ErrUnsound = errors.New("not a sound SQLite database")
	// ErrNotServer means a SQLite database is not a Brygga server's.
	ErrNotServer = errors.New("not a Brygga server database")
)

// CheckCopy checks, read only, that the file at path is a whole Brygga
// server database: SQLite's quick check passes and it has a store id.
// Errors: ErrUnsound, ErrNotServer, or the failure to open it.
func CheckCopy(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var ok, id string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&ok); err != nil || ok != "ok" {
		return fmt.Errorf("%s: %w (%v %s)", path, ErrUnsound, err, ok)
	}
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'store_id'`).Scan(&id); err != nil {
		return fmt.Errorf("%s: %w", path, ErrNotServer)
	}
	return nil
}
