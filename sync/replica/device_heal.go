package replica

import (
	"context"
	"errors"
	"fmt"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// ErrSealed means the replica takes no more writes: its device was retired
// and it is emptying its outbox before it is wiped.
var ErrSealed = errors.New("the device was retired: it records nothing more")

const metaSealed = "sealed"

// Seal stops the replica taking writes, for good (it is kept in the
// replica), and returns how many queued mutations are left to push. A
// write in progress finishes first, so that once Seal has returned 0 the
// outbox stays empty and the replica can be wiped without losing a record.
func (d *Device) Seal(ctx context.Context) (int, error) {
	ctx, err := detach(ctx)
	if err != nil {
		return 0, fmt.Errorf("seal: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.sealed {
		if err := setMeta(ctx, d.db.write, metaSealed, "1"); err != nil {
			return 0, fmt.Errorf("seal: %w", err)
		}
		d.sealed = true
	}
	var n int
	if err := d.db.write.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("seal: %w", err)
	}
	return n, nil
}

// Sealed reports whether Seal was called.
func (d *Device) Sealed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sealed
}

// AckedThrough returns the highest mutation number whose answer the
// device has had: the numbers below its oldest queued mutation, or every
// number it has used if none is queued.
func (d *Device) AckedThrough(ctx context.Context) (int64, error) {
	ctx, err := detach(ctx)
	if err != nil {
		return 0, fmt.Errorf("acked through: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var first, next int64
	if err := d.db.write.QueryRowContext(ctx, `SELECT COALESCE(min(seq), 0) FROM outbox`).Scan(&first); err != nil {
		return 0, fmt.Errorf("acked through: %w", err)
	}
	if first > 0 {
		return first - 1, nil
	}
	if _, err := getMeta(ctx, d.db.write, "next_seq", &next); err != nil {
		return 0, err
	}
	return max(next-1, 0), nil
}

// HealCursor is where HealRecords continues: the kind (an index into
// schema.FieldKinds) and the last id sent of it.
type HealCursor struct {
	Kind int
	ID   string
}

// HealRecords returns up to limit of the field records the replica holds,
// each whole with its versions (its local, unpushed writes included), in
// kind and id order after cursor, and the cursor to continue from; none
// when all are sent. They are what a device sends a server that may have
// lost them (wire.HealRequest).
func (d *Device) HealRecords(ctx context.Context, cursor HealCursor, limit int) ([]wire.Change, HealCursor, error) {
	var out []wire.Change
	for cursor.Kind < len(schema.FieldKinds) && len(out) < limit {
		qctx, err := detach(ctx)
		if err != nil {
			return nil, cursor, fmt.Errorf("heal records: %w", err)
		}
		k := schema.FieldKinds[cursor.Kind]
		rows, err := queryDeviceRows(qctx, d.db.read, k, `WHERE id > ? ORDER BY id LIMIT ?`, cursor.ID, limit-len(out))
		if err != nil {
			return nil, cursor, fmt.Errorf("heal records: %w", err)
		}
		for _, r := range rows {
			out = append(out, ChangeOf(r))
			cursor.ID = r.ID().String()
		}
		if len(out) < limit {
			cursor = HealCursor{Kind: cursor.Kind + 1}
		}
	}
	return out, cursor, nil
}

// Unbind removes the replica's device id, for an enrolment of the same
// unit under a new id (OpenDevice with the new id and the same unit adopts
// the replica): its records stay, and the queued writes made under the old
// id are dropped, since their effects are in the records, which the device
// sends again (HealRecords) before it pulls. Mutation numbers go on from
// where they were. The Device must be closed after.
func (d *Device) Unbind(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("unbind: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM meta WHERE key = 'device_id'`); err != nil {
		return fmt.Errorf("unbind: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox`); err != nil {
		return fmt.Errorf("unbind: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("unbind: %w", err)
	}
	return nil
}
