package pgstore

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// TestChangeNumbersCommitInOrder: writers on separate connections take
// change numbers and commit changes while a reader pulls above its cursor
// again and again, as a device does. The reader sees every change exactly
// once: none commits below a cursor the reader already passed.
func TestChangeNumbersCommitInOrder(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.URL(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.pool.Exec(ctx, `CREATE TABLE test_changes (seq BIGINT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 6, 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range perWriter {
				err := writeChanges(ctx, s.pool, 1+r.Int64N(3), r.IntN(3) == 0)
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[int64]int{}
	var cursor int64
	pull := func() {
		rows, err := s.pool.Query(ctx, `SELECT seq FROM test_changes WHERE seq > $1 ORDER BY seq LIMIT 50`, cursor)
		if err != nil {
			t.Fatal(err)
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range seqs {
			seen[q]++
			cursor = q
		}
	}
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		pull()
	}
	for before := int64(-1); before != cursor; {
		before = cursor
		pull()
	}
	var all []int64
	rows, err := s.pool.Query(ctx, `SELECT seq FROM test_changes ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	if all, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		t.Fatal(err)
	}
	missed := 0
	for _, q := range all {
		switch seen[q] {
		case 1:
		case 0:
			missed++
		default:
			t.Errorf("change %d pulled %d times", q, seen[q])
		}
	}
	if missed > 0 {
		t.Errorf("the reader skipped %d of %d changes: they committed below its cursor", missed, len(all))
	}
	if len(all) == 0 {
		t.Fatal("no changes were written")
	}
}

// writeChanges takes n change numbers and writes a change of each, in one
// transaction, as the sync engine does; with abort it rolls back instead, giving the numbers back.
func writeChanges(ctx context.Context, pool *pgxpool.Pool, n int64, abort bool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	last, clock, err := lockCounters(ctx, tx)
	if err != nil {
		return err
	}
	first := last + 1
	for q := first; q < first+n; q++ {
		if _, err := tx.Exec(ctx, `INSERT INTO test_changes (seq) VALUES ($1)`, q); err != nil {
			return err
		}
		// Work between the number and the commit, as a push's checks are.
		if _, err := tx.Exec(ctx, `SELECT pg_sleep(0.001)`); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, saveCountersSQL, last+n, clock.String()); err != nil {
		return err
	}
	if abort {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}
