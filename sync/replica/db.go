// Package replica applies changes to a SQLite replica of Brygga's records:
// the server's database and each device's. Both use the same merge: per
// field, the write with the greatest version wins, with the domain rules of
// schema.MergeRule, so that every replica that has seen the same writes
// holds the same state whatever order they came in.
//
// ServerSync is the server's side: it applies pushed mutations exactly once
// and serves pulls of a device's scope, on any ServerEngine (the storage it
// declares); ServerStore is ServerSync on a SQLite file, with the devices'
// state. Device is a device's replica: it
// records local writes in an outbox, builds pushes and applies pulls.
package replica

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3" // registers the sqlite3 driver

	"github.com/brygga/brygga/schema"
)

// DB is a SQLite database opened the way Brygga needs it: one writer
// connection and a pool of readers, every connection with the same pragmas,
// and a connection of its own that checkpoints the write-ahead log. It is
// safe for concurrent use.
type DB struct {
	write *sql.DB
	read  *sql.DB
	path  string

	ckpt    *sql.DB
	commits chan struct{} // a commit was made since the last checkpoint
	stop    chan struct{}
	stopped chan struct{}
	closing sync.Once
}

// OpenDB opens or creates the SQLite database at path and migrates it to
// the latest schema of target.
func OpenDB(ctx context.Context, path string, target schema.Target) (*DB, error) {
	if target == schema.DeviceDB {
		if err := createFile(ctx, path, devicePageSize); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	// The writer keeps up to 64 MiB of pages, against SQLite's 2 MiB: past
	// a few hundred thousand records the indexes a push writes no longer
	// fit in 2 MiB, and each insert reads pages back (measured: 1000-row
	// pushes at 400k records, 71k rows/s with 2 MiB, 105k with 64 MiB).
	// SQLite takes the memory only as pages are used. Readers keep 16 MiB.
	q.Set("_cache_size", "-65536")
	// Both run most statements as SQL text, a few each transaction: each
	// connection keeps the ones it last prepared rather than preparing
	// them again (a device's push answer runs eight, a local write six; a
	// server's push reads the device, the clock and the counters).
	q.Set("_stmt_cache_size", "64")
	dsn := "file:" + path + "?" + q.Encode()

	commits := make(chan struct{}, 1)
	write := sql.OpenDB(&writer{dsn: dsn, commits: commits})
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	q.Set("_txlock", "deferred")
	q.Set("_cache_size", "-16384")
	q.Set("mode", "ro")
	read, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	q.Del("mode")
	ckpt, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)

	db := &DB{write: write, read: read, path: path, ckpt: ckpt,
		commits: commits, stop: make(chan struct{}), stopped: make(chan struct{})}
	go db.checkpoints()
	if _, err := schema.Migrate(ctx, write, target); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// Checkpoints. SQLite's writer copies the write-ahead log back into the
// database file itself, by default in the commit that takes the log past
// 1000 pages, and every write waits for it: a steady stream of pushes
// spent a fifth of its time there. Here the writer leaves that to a
// connection of its own, woken by the writer's commits, which checkpoints
// on the other core while the writer goes on (SQLite lets one checkpoint
// run beside one writer). The writer still checkpoints a log grown past
// checkpointBackstop, should the checkpoints fall that far behind.
const (
	checkpointBackstop = 64 << 20
	// checkpointDelay gathers the commits of a burst into one checkpoint.
	checkpointDelay = 20 * time.Millisecond
	// checkpointTries is how many times a checkpoint that could not copy
	// the whole log (a reader still needs part of it, or a commit was
	// still writing) is tried again before the next commit.
	checkpointTries = 50
)

// writer connects the writer's connections: each, should the pool ever
// replace one (database/sql drops a connection whose transaction's context
// ends), with its own checkpoints set to the backstop and a commit hook
// that wakes the DB's.
type writer struct {
	dsn     string
	commits chan<- struct{}
	driver  sqlite3.SQLiteDriver
}

func (w *writer) Driver() driver.Driver { return &w.driver }

func (w *writer) Connect(context.Context) (driver.Conn, error) {
	dc, err := w.driver.Open(w.dsn)
	if err != nil {
		return nil, err
	}
	c := dc.(*sqlite3.SQLiteConn)
	if err := setBackstop(c); err != nil {
		c.Close()
		return nil, err
	}
	c.RegisterCommitHook(func() int {
		select {
		case w.commits <- struct{}{}:
		default:
		}
		return 0 // go on with the commit
	})
	return c, nil
}

// setBackstop sets c to checkpoint only a log grown past the backstop,
// and to cut the log file back to a quarter of it once the log starts
// over: a burst of writes leaves the file as large as it grew.
func setBackstop(c *sqlite3.SQLiteConn) error {
	rows, err := c.Query("PRAGMA page_size", nil)
	if err != nil {
		return err
	}
	v := make([]driver.Value, 1)
	err = rows.Next(v)
	rows.Close()
	if err != nil {
		return fmt.Errorf("page size: %w", err)
	}
	pageSize, ok := v[0].(int64)
	if !ok || pageSize <= 0 {
		return fmt.Errorf("page size %v", v[0])
	}
	for _, pragma := range []string{
		fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", checkpointBackstop/pageSize),
		fmt.Sprintf("PRAGMA journal_size_limit = %d", checkpointBackstop/4),
	} {
		if _, err := c.Exec(pragma, nil); err != nil {
			return err
		}
	}
	return nil
}

// checkpoints runs until Close, checkpointing after commits. A passive
// checkpoint copies what no reader still needs and never waits for a
// lock; what it leaves, the next one takes.
func (db *DB) checkpoints() {
	defer close(db.stopped)
	ctx := context.Background()
	for {
		select {
		case <-db.stop:
			return
		case <-db.commits:
		}
		// The hook runs as a commit begins, before its pages are in the
		// log: a commit that takes longer than the delay to write is left
		// for another try. A failed checkpoint loses nothing: the log
		// keeps the pages, and the next checkpoint or the backstop copies
		// them.
		for range checkpointTries {
			select {
			case <-db.stop:
				return
			case <-time.After(checkpointDelay):
			}
			var busy, log, copied int
			err := db.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
			if err != nil || copied >= log {
				break
			}
		}
	}
}

// devicePageSize is the page size of a device's database. A device writes
// most of its rows in bulk, a first sync's pages of thousands, where 16 KiB
// pages make inserts about a fifth faster than SQLite's 4 KiB; its own
// writes are few.
const devicePageSize = 16384

// createFile creates the database file at path, if there is none yet or it
// is empty, with the given page size and in WAL mode: the page size is
// fixed once a database is in WAL mode, which the pools' connections set
// as they open.
func createFile(ctx context.Context, path string, pageSize int) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "PRAGMA journal_mode = WAL")
	return err
}

// Close closes both pools, the readers first: the writer, closing last,
// checkpoints the write-ahead log into the database file, so that the file
// alone is the whole database (as a copy or backup of it expects).
func (db *DB) Close() error {
	db.closing.Do(func() { close(db.stop) })
	<-db.stopped
	err := db.ckpt.Close()
	if rerr := db.read.Close(); err == nil {
		err = rerr
	}
	if werr := db.write.Close(); err == nil {
		err = werr
	}
	return err
}

// Writer returns the single writer connection pool. Statistics and
// reports use it only through transactions of their own.
func (db *DB) Writer() *sql.DB { return db.write }

// Reader returns the read-only pool.
func (db *DB) Reader() *sql.DB { return db.read }

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }
