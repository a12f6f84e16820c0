package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// takeSeq takes n change numbers in tx and returns the first: the numbers
// after the last one taken. The update locks the counter row until tx
// ends, so another transaction taking numbers waits for tx's commit (or
// rollback, which gives the numbers back), and numbers commit in the order
// they are taken: once a number is visible, every number below it is too.
// A pull that reads changes above its cursor in number order therefore
// never passes a number that commits later. Call it first in tx, before
// anything that makes tx wait for others, and keep tx short: every writer
// of changes waits for it.
func takeSeq(ctx context.Context, tx pgx.Tx, n int64) (int64, error) {
	var last int64
	if err := tx.QueryRow(ctx, `UPDATE sync_counter SET change_seq = change_seq + $1 RETURNING change_seq`, n).Scan(&last); err != nil {
		return 0, fmt.Errorf("take change numbers: %w", err)
	}
	return last - n + 1, nil
}
