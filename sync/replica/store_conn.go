package replica

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/brygga/brygga/schema"
)

// connInserts runs a rowStore's inserts on the driver's connection of the
// store's transaction, without database/sql in between: a push inserts
// most of its records, and database/sql's checks and conversions of each
// call's arguments cost about as much as SQLite's binding of them. Each
// kind's statement is prepared once and its arguments are kept from row
// to row, so that a value the last row of its kind had too is neither
// converted nor allocated again.
//
// The insert is run as a query: the driver binds a query's arguments and
// takes its first step in one call into C, where an exec binds each
// argument in a call of its own (17 for a contact), which cost a push
// about a tenth of its insert. A query has no count of the rows it
// changed, so the statement has no ON CONFLICT clause: a record that is
// there already fails it with SQLite's primary key constraint, before it
// writes anything, and that failure is the insert's false.
type connInserts struct {
	conn  *sql.Conn // the connection the store's transaction is on
	kinds map[schema.Kind]*connInsert
}

// connInsert is the insert of one kind on the driver's connection.
type connInsert struct {
	st   driver.Stmt
	args []driver.NamedValue
	// last is the row args hold; it does not change after (see
	// rowStore.insert).
	last *Row
}

// insert runs the insert of r, as rowStore.insert does.
func (c *connInserts) insert(ctx context.Context, s *rowStore, r *Row) (bool, error) {
	inserted := false
	err := c.raw(func(dc any) error {
		in, err := c.kind(ctx, s, dc, r.Kind)
		if err != nil {
			return err
		}
		in.setArgs(s, r)
		query, ok := in.st.(driver.StmtQueryContext)
		if !ok {
			return errors.New("driver statement without QueryContext")
		}
		rows, err := query.QueryContext(ctx, in.args)
		if err == nil {
			// The driver took the step already; were it to take it
			// here, Next would, and Close would not.
			if err = rows.Next(nil); err == io.EOF {
				err = nil
			}
			if cerr := rows.Close(); err == nil {
				err = cerr
			}
		}
		var se sqlite3.Error
		if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey {
			return nil // there already: not inserted
		}
		if err != nil {
			return err
		}
		inserted = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("insert %s %s: %w", r.Kind, r.ID(), err)
	}
	return inserted, nil
}

// raw runs fn on the driver's connection. database/sql closes the
// connection of a Raw whose function panics or fails with
// driver.ErrBadConn, and closing it waits for the transaction open on it,
// which waits for this Raw to return: the writer would hang, holding the
// write lock, for ever. Here either comes back as an error of the insert,
// and the transaction is rolled back as after any failed insert.
func (c *connInserts) raw(fn func(dc any) error) error {
	return c.conn.Raw(func(dc any) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic on the driver's connection: %v", p)
			}
			if errors.Is(err, driver.ErrBadConn) {
				err = errors.New(err.Error()) // not ErrBadConn: see above
			}
		}()
		return fn(dc)
	})
}

// kind returns the insert of kind k, preparing it on dc, the driver's
// connection, the first time.
func (c *connInserts) kind(ctx context.Context, s *rowStore, dc any, k schema.Kind) (*connInsert, error) {
	if in, ok := c.kinds[k]; ok {
		return in, nil
	}
	prep, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("driver connection without PrepareContext")
	}
	st, err := prep.PrepareContext(ctx, s.insertSQL(k))
	if err != nil {
		return nil, err
	}
	if c.kinds == nil {
		c.kinds = map[schema.Kind]*connInsert{}
	}
	in := &connInsert{st: st}
	c.kinds[k] = in
	return in, nil
}

// setArgs sets the arguments to the values of r's columns, leaving those
// that the last row held too as they are.
func (in *connInsert) setArgs(s *rowStore, r *Row) {
	n := len(r.fields)
	if in.last == nil || len(in.args) == 0 {
		in.args = make([]driver.NamedValue, n+5)
		for i := range in.args {
			in.args[i].Ordinal = i + 1
		}
		in.args = in.args[:n+3]
		if s.echoes(r.Kind) {
			in.args = in.args[:n+5]
		}
	}
	for i, f := range r.fields {
		if in.last == nil || !f.SameValue(in.last.fields[i]) {
			in.args[i].Value = f.SQLValue()
		}
	}
	in.last = r
	v, cv := r.Versions()
	if prev, _ := in.args[n].Value.(string); prev != v {
		in.args[n].Value = v
	}
	in.args[n+1].Value = cvArg(cv)
	in.args[n+2].Value = r.Seq
	if len(in.args) > n+3 {
		in.args[n+3].Value = r.Echo
		in.args[n+4].Value = echoDeviceArg(r)
	}
}

// close closes the statements.
func (c *connInserts) close() {
	if len(c.kinds) == 0 {
		return
	}
	c.raw(func(any) error {
		for _, in := range c.kinds {
			in.st.Close()
		}
		return nil
	})
	c.kinds = nil
}
