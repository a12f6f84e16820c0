package replica

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// Epoch returns the database's epoch: its id, which every sync answer
// carries and cursors hold. It changes when the database is copied by
// Backup or put in place by a restore (NewEpoch), so that devices notice
// a restored server.
func (s *ServerSync) Epoch() uuid.UUID { return s.id }

// RetireDevice retires a device, taken out of service: it may still push
// what it holds, but pulls nothing more (wire.CodeDeviceRetired), and the
// SDK wipes its replica once everything is sent. Retiring a retired device
// changes nothing. Errors: ErrUnknownDevice, ErrDeviceRevoked for a device
// revoked as lost or stolen (revocation stands).
func (s *ServerStore) RetireDevice(ctx context.Context, id uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("retire device %s: %w", id, err)
	}
	defer tx.Rollback()
	d, err := lookupDevice(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("retire device: %w", err)
	}
	if !d.RevokedAt.IsZero() {
		return fmt.Errorf("retire device %s: %w", id, ErrDeviceRevoked)
	}
	if d.RetiredAt.IsZero() {
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET retired_at = ? WHERE id = ?`, s.now().UnixMilli(), id.String()); err != nil {
			return fmt.Errorf("retire device %s: %w", id, err)
		}
	}
	return tx.Commit()
}

// Heal merges records a device sends again, each whole with its versions,
// into the store: after a restore of the database from an older copy the
// device holds what the copy lacks. A record is joined with the store's
// state of it (Join: idempotent, so one the store has at these versions is
// unchanged), checked for the device's scope and validity, and written with
// a new change sequence number if it changed anything. A record refused
// stays the device's; one refused does not fail the others. The device's
// last processed mutation number becomes req.AckedThrough if that is more:
// those mutations' effects are in the records. Revoked devices are
// refused; retired ones may heal (they send what they hold). Errors that
// concern the whole request are *wire.Error.
func (s *ServerSync) Heal(ctx context.Context, deviceID uuid.UUID, req *wire.HealRequest) (*wire.HealResponse, error) {
	now := s.now()
	rows := make([]*Row, len(req.Records))
	resp := &wire.HealResponse{Versions: wire.Current(), Epoch: s.id.String(), Results: make([]wire.HealResult, len(req.Records))}
	for i := range req.Records {
		c := &req.Records[i]
		resp.Results[i] = wire.HealResult{ID: c.ID.String()}
		if !schema.IsFieldKind(c.Kind) {
			resp.Results[i].Status, resp.Results[i].Error = wire.Refused, &wire.Error{Code: wire.CodeUnknownKind, Field: "kind",
				Message: fmt.Sprintf("%q is not a kind of record a device writes", c.Kind)}
			continue
		}
		row, err := RowOfChange(c)
		var latest hlc.Timestamp
		if err == nil {
			latest, err = s.checkHealKeys(row, now)
		}
		if err != nil {
			resp.Results[i].Status, resp.Results[i].Error = wire.Refused, &wire.Error{Code: wire.CodeInvalidRecord, Field: "v", Message: err.Error()}
			continue
		}
		row.Seq = 0
		rows[i] = row
		// The server's clock moves past every version it takes, as it
		// does for pushes, so that its own later writes order after them.
		s.clock.Observe(latest)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	tx, from, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("heal: %w", err)
	}
	defer tx.Rollback()
	dev, err := activeDevice(ctx, tx, deviceID, false)
	if err != nil {
		return nil, err
	}
	seq := from
	healed := int64(0)
	for i, row := range rows {
		if row == nil {
			continue
		}
		res := &resp.Results[i]
		status, e, err := healRow(ctx, tx, dev, row, now, &seq)
		if err != nil {
			return nil, fmt.Errorf("heal %s %s: %w", row.Kind, row.ID(), err)
		}
		res.Status, res.Error = status, e
		if status == wire.Healed {
			healed++
		}
	}
	last := max(dev.LastSeq, req.AckedThrough)
	if last > dev.LastSeq {
		// The numbers taken as processed have no hashes here: a mutation
		// numbered among them is refused as reused (its content cannot be
		// told from another's), never taken for a duplicate and dropped.
		if err := tx.AddPush(ctx, deviceID, &PushRecord{First: dev.LastSeq + 1, Last: last, Hashes: []byte{}}); err != nil {
			return nil, fmt.Errorf("heal: %w", err)
		}
	}
	if err := tx.NoteHeal(ctx, deviceID, last, healed, now); err != nil {
		return nil, fmt.Errorf("heal: %w", err)
	}
	if err := s.saveCounters(ctx, tx, from, seq); err != nil {
		return nil, fmt.Errorf("heal: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("heal: %w", err)
	}
	resp.LastSeq = last
	return resp, nil
}

// healRow merges one record sent again into the store, taking the next
// change sequence number after *seq if it changes anything.
func healRow(ctx context.Context, tx ServerWrite, dev *EnrolledDevice, row *Row, now time.Time, seq *int64) (wire.HealStatus, *wire.Error, error) {
	refuse := func(err error) (wire.HealStatus, *wire.Error, error) {
		if fe, ok := err.(*schema.FieldError); ok {
			return wire.Refused, wire.FromFieldError(fe), nil
		}
		return wire.Refused, &wire.Error{Code: wire.CodeInvalidRecord, Message: err.Error()}, nil
	}
	if !inScope(row, dev.UnitID) {
		return wire.Refused, &wire.Error{Code: wire.CodeOutOfScope, Field: "unit_id", Message: "the record is not in the device's scope"}, nil
	}
	cur, err := tx.Load(ctx, row.Kind, row.ID())
	if err != nil {
		return "", nil, err
	}
	merged := row
	if cur != nil {
		if !inScope(cur, dev.UnitID) {
			return wire.Refused, &wire.Error{Code: wire.CodeOutOfScope, Field: "id", Message: fmt.Sprintf("id %s is taken by a record outside the device's scope", row.ID())}, nil
		}
		merged = cur.Clone() // with no echo: a state sent again is no push's
		changed, err := Join(merged, row)
		if err != nil {
			return refuse(err)
		}
		if !changed {
			return wire.Unchanged, nil, nil
		}
		// A receiving unit's device changes only the status of another
		// unit's referral, as it may in a push.
		if h := schema.HeaderOf(cur.Record); h.UnitID != dev.UnitID {
			for i, f := range merged.fields {
				if merged.keys[i] != cur.keys[i] && !receiverFields[f.Name] {
					return wire.Refused, &wire.Error{Code: wire.CodeOutOfScope, Field: f.Name,
						Message: "the receiving unit may only change a referral's status"}, nil
				}
			}
		}
	}
	if err := merged.Record.Validate(now); err != nil {
		return refuse(err)
	}
	*seq++
	merged.Seq = *seq
	if err := tx.Save(ctx, merged); err != nil {
		return "", nil, err
	}
	return wire.Healed, nil, nil
}

// checkHealKeys checks that no field of a record sent again carries a
// version ahead of the server's clock by more than the skew allowed: a
// device may send again what it holds, not stamp the future. It returns
// the latest of the versions.
func (s *ServerSync) checkHealKeys(row *Row, now time.Time) (hlc.Timestamp, error) {
	limit := now.Add(s.maxSkew).UnixMilli()
	var latest hlc.Timestamp
	for i, k := range row.keys {
		at := strings.IndexByte(k, '@')
		if at < 0 {
			continue
		}
		base := k
		if dot := strings.LastIndexByte(k[:at], '.'); dot >= 0 {
			base = k[dot+1:]
		}
		ts, _, err := ParseKey(base)
		if err != nil {
			return 0, err
		}
		if ts.WallMillis() > limit {
			return 0, fmt.Errorf("version of %s is ahead of the server's clock", row.fields[i].Name)
		}
		latest = max(latest, ts)
	}
	return latest, nil
}

// Backup writes a consistent copy of the database to path, which must not
// exist, while others read and write it (SQLite's VACUUM INTO, in one read
// transaction), and gives the copy an epoch of its own: putting it in place
// is a restore the devices notice. It returns the copy's epoch.
func (s *ServerStore) Backup(ctx context.Context, path string) (uuid.UUID, error) {
	if _, err := s.db.write.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return uuid.Nil, fmt.Errorf("backup: %w", err)
	}
	id, err := NewEpoch(ctx, path, "backup_at", s.now())
	if err != nil {
		return uuid.Nil, fmt.Errorf("backup: %w", err)
	}
	return id, nil
}

// NewEpoch gives the server database at path a new epoch, noting the old
// one as its parent and the time under the meta key what ("backup_at" or
// "restored_at"); the file must not be in use by a server. It returns the
// new epoch.
func NewEpoch(ctx context.Context, path, what string, now time.Time) (uuid.UUID, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		return uuid.Nil, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return uuid.Nil, err
	}
	defer tx.Rollback()
	var old string
	if _, err := getMeta(ctx, tx, "store_id", &old); err != nil {
		return uuid.Nil, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return uuid.Nil, err
	}
	if err := setMeta(ctx, tx, "store_id", id.String()); err != nil {
		return uuid.Nil, err
	}
	if err := setMeta(ctx, tx, "epoch_parent", old); err != nil {
		return uuid.Nil, err
	}
	if err := setMeta(ctx, tx, what, now.UnixMilli()); err != nil {
		return uuid.Nil, err
	}
	if err := tx.Commit(); err != nil {
		return uuid.Nil, err
	}
	// One self-contained file: no write-ahead log beside it to lose.
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode=DELETE`); err != nil {
		return uuid.Nil, err
	}
	return id, nil
}

// BackupTime returns when the database at path was copied by Backup, or
// the zero time if it was not made by Backup.
func BackupTime(ctx context.Context, path string) (time.Time, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return time.Time{}, err
	}
	defer db.Close()
	var ms int64
	ok, err := getMeta(ctx, db, "backup_at", &ms)
	if err != nil || !ok {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}
