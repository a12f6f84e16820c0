package main

import (
	"context"
	"fmt"
	"io"

	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/sqlitestore"
)

// migrate brings the schema of the database --db names up to date: a
// postgres:// URL names a PostgreSQL database, anything else a SQLite
// file, created if it does not exist. Servers migrate on start too; this
// is for a database set up before any server starts, or by an operator
// who migrates apart from starting.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("migrate", stderr)
	fs.Lookup("db").Usage = "the server's SQLite database `file`, or a postgres:// URL"
	if err := parse(fs, args); err != nil {
		return err
	}
	if pgstore.IsURL(*db) {
		applied, err := pgstore.Migrate(ctx, *db)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "the PostgreSQL database is up to date")
			return nil
		}
		fmt.Fprintf(stdout, "applied PostgreSQL migrations %v\n", applied)
		return nil
	}
	release, err := lockDB(*db)
	if err != nil {
		return err
	}
	defer release()
	s, err := sqlitestore.Open(ctx, *db, sqlitestore.Config{})
	if err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the SQLite database %s is up to date\n", *db)
	return nil
}
