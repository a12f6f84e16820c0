package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/sync/hlc"
)

// lockCounters locks the counter row in tx and returns the last change
// number taken and the clock the last write left. The lock is held until
// tx ends, so another transaction taking numbers waits for tx's commit
// (or rollback, which gives the numbers back), and numbers commit in the
// order they are taken: once a number is visible, every number below it
// is too. A pull that reads changes above its cursor in number order
// therefore never passes a number that commits later. Call it first in
// tx, before anything that makes tx wait for others, keep tx short (every
// writer of changes waits for it), and store the last number taken with
// saveCountersSQL before tx commits.
func lockCounters(ctx context.Context, tx pgx.Tx) (int64, hlc.Timestamp, error) {
	return scanCounters(tx.QueryRow(ctx, lockCountersSQL))
}

// lockCountersSQL is lockCounters' statement, for a pipeline; scanCounters
// reads its answer.
const lockCountersSQL = `SELECT change_seq, hlc FROM sync_counter FOR UPDATE`

func scanCounters(row pgx.Row) (int64, hlc.Timestamp, error) {
	var seq int64
	var last string
	if err := row.Scan(&seq, &last); err != nil {
		return 0, 0, fmt.Errorf("counters: %w", err)
	}
	var clock hlc.Timestamp
	if last != "" {
		var err error
		if clock, err = hlc.Parse(last); err != nil {
			return 0, 0, fmt.Errorf("stored clock: %w", err)
		}
	}
	return seq, clock, nil
}

// saveCountersSQL stores the last change number taken ($1) and the
// clock ($2), in the transaction that locked them.
const saveCountersSQL = `UPDATE sync_counter SET change_seq = $1, hlc = $2`
