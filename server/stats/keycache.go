package stats

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// keyCache holds the permanent keys of the records and client codes
// (record_keys, client_keys) in memory, so that a build of the
// publication reads the records alone and looks their keys up here rather
// than in the database, record by record. Keys never change once given,
// so the cache is brought up to date with the records changed since it
// last was. It is not safe for concurrent use; the Publisher serialises
// its builds.
type keyCache struct {
	loaded  bool
	seq     int64 // the change sequence number it is up to date with
	records map[schema.Kind]map[uuid.UUID]uint32
	clients map[string]uint32
}

// update brings the cache up to date with the records in tx, whose change
// sequence number is seq: all keys the first time, then those of the
// records changed since.
func (kc *keyCache) update(ctx context.Context, tx dbTx, seq int64) error {
	if kc.loaded && kc.seq == seq {
		return nil
	}
	if !kc.loaded {
		kc.records = map[schema.Kind]map[uuid.UUID]uint32{}
		kc.clients = map[string]uint32{}
		for _, k := range factKinds {
			kc.records[k] = map[uuid.UUID]uint32{}
		}
		if err := kc.read(ctx, tx, `SELECT kind, id, key FROM record_keys`); err != nil {
			return err
		}
		if err := kc.readClients(ctx, tx, `SELECT client_code, key FROM client_keys`); err != nil {
			return err
		}
		kc.loaded, kc.seq = true, seq
		return nil
	}
	for _, k := range factKinds {
		// Unit by unit through the (unit_id, seq) index, as the rollups
		// read the records changed.
		q := tx.d.unitWalk(string(k)) + fmt.Sprintf(`SELECT k.kind, k.id, k.key FROM u CROSS JOIN %[1]s x JOIN record_keys k ON k.kind = '%[1]s' AND k.id = x.id
			WHERE x.unit_id = u.id AND x.seq > ?`, k)
		if err := kc.read(ctx, tx, q, kc.seq); err != nil {
			return err
		}
	}
	q := tx.d.unitWalk(string(schema.KindContact)) + fmt.Sprintf(`SELECT c.client_code, c.key FROM u CROSS JOIN %[1]s x JOIN client_keys c ON c.client_code = x.client_code
		WHERE x.unit_id = u.id AND x.seq > ?`, schema.KindContact)
	if err := kc.readClients(ctx, tx, q, kc.seq); err != nil {
		return err
	}
	kc.seq = seq
	return nil
}

func (kc *keyCache) read(ctx context.Context, tx dbTx, q string, args ...any) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("stats: publication: record keys: %w", err)
	}
	defer rows.Close()
	var kind string
	var id sql.RawBytes
	var key int64
	for rows.Next() {
		if err := rows.Scan(&kind, &id, &key); err != nil {
			return fmt.Errorf("stats: publication: record keys: %w", err)
		}
		m := kc.records[schema.Kind(kind)]
		u, err := uuid.ParseBytes(id)
		if m == nil || err != nil {
			continue // not a record the publication counts
		}
		m[u] = uint32(key)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stats: publication: record keys: %w", err)
	}
	return nil
}

func (kc *keyCache) readClients(ctx context.Context, tx dbTx, q string, args ...any) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("stats: publication: client keys: %w", err)
	}
	defer rows.Close()
	var code string
	var key int64
	for rows.Next() {
		if err := rows.Scan(&code, &key); err != nil {
			return fmt.Errorf("stats: publication: client keys: %w", err)
		}
		kc.clients[code] = uint32(key)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stats: publication: client keys: %w", err)
	}
	return nil
}

// record returns the key of a record, 0 if it has none.
func (kc *keyCache) record(kind schema.Kind, id []byte) uint32 {
	u, err := uuid.ParseBytes(id)
	if err != nil {
		return 0
	}
	return kc.records[kind][u]
}
