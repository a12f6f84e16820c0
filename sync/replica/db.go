// Package replica applies changes to a SQLite replica of Brygga's records:
// the server's database and each device's. Both use the same merge: per
// field, the write with the greatest version wins, with the domain rules of
// schema.MergeRule, so that every replica that has seen the same writes
// holds the same state whatever order they came in.
//
// Server is the server's store: it applies pushed mutations exactly once
// and serves pulls of a device's scope. Device is a device's replica: it
// records local writes in an outbox, builds pushes and applies pulls.
package replica

import (
	"context"
	"database/sql"
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
	dsn := "file:" + path + "?" + q.Encode()

	write, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
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
		commits: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go db.checkpoints()
	if err := db.hookWriter(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
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
)

// hookWriter sets the writer connection's checkpoints to the backstop and
// has its commits wake the checkpoints. Should the pool ever replace the
// connection, the new one checkpoints for itself, as SQLite does by
// default.
func (db *DB) hookWriter(ctx context.Context) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var pageSize int64
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", checkpointBackstop/pageSize)); err != nil {
		return err
	}
	// A burst of writes leaves the log file as large as it grew; once the
	// log starts over, the writer cuts it back to a quarter of the backstop.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", checkpointBackstop/4)); err != nil {
		return err
	}
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("writer connection is a %T, not SQLite's", dc)
		}
		c.RegisterCommitHook(func() int {
			select {
			case db.commits <- struct{}{}:
			default:
			}
			return 0 // go on with the commit
		})
		return nil
	})
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
		select {
		case <-db.stop:
			return
		case <-time.After(checkpointDelay):
		}
		// A failed checkpoint loses nothing: the log keeps the pages, and
		// the next checkpoint or the backstop copies them.
		db.ckpt.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
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
