package pgstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// pushBatch is how many records a push of the benchmarks carries.
const pushBatch = 500

// benchContact returns a new contact of the benchmarks, the same on every
// engine and in the raw inserts.
func benchContact(unit, dev, staff uuid.UUID, at time.Time) *schema.Contact {
	return &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: unit, DeviceID: dev, StaffID: staff, OccurredAt: at.Add(-time.Hour)},
		Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
}

// benchReferences are the organisation, unit and staff member the
// benchmarks' contacts belong to.
func benchReferences(unit, staff uuid.UUID) []schema.Record {
	org := uuid.Must(uuid.NewV7())
	return []schema.Record{
		&schema.Organisation{ID: org, OrgKind: schema.OrgMunicipality, Name: "Östersunds kommun", RegionCode: "23", Active: true},
		&schema.Unit{ID: unit, OrgID: org, Name: "Fältgruppen", AreaCode: "2380", Active: true},
		&schema.Staff{ID: staff, UnitID: unit, Role: schema.RoleOutreachWorker, Active: true},
	}
}

// BenchmarkSyncPush measures a push of 500 new contacts, applied and
// committed, on each engine; records/s is the figure to compare.
func BenchmarkSyncPush(b *testing.B) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	for _, e := range syncEngines {
		b.Run(e.name, func(b *testing.B) {
			eng := e.open(b, now)
			unit, staff, dev := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
			if err := eng.sync.PutReference(ctx, benchReferences(unit, staff)...); err != nil {
				b.Fatal(err)
			}
			eng.enrol(b, dev, unit)
			d, err := replica.OpenDevice(ctx, filepath.Join(b.TempDir(), "d.db"), replica.DeviceConfig{ID: dev, UnitID: unit, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for range pushBatch {
					if err := d.Create(ctx, benchContact(unit, dev, staff, at)); err != nil {
						b.Fatal(err)
					}
				}
				req, err := d.NextPush(ctx, pushBatch)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				resp, err := eng.sync.Push(ctx, dev, req)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := d.AcceptPush(ctx, resp); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*pushBatch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// benchDevice makes a device's pushes of new contacts as the SDK sends
// them, without a replica of its own: a benchmark's pushes cost the
// machine nothing but the server's work.
type benchDevice struct {
	id, unit, staff uuid.UUID
	at              time.Time
	clock           *hlc.Clock
	seq             int64 // the last mutation number
}

func newBenchDevice(unit, staff uuid.UUID, at time.Time) *benchDevice {
	return &benchDevice{id: uuid.Must(uuid.NewV7()), unit: unit, staff: staff, at: at, clock: hlc.NewClock(func() time.Time { return at }, 0)}
}

// push returns the device's next push, of n new contacts.
func (d *benchDevice) push(n int) *wire.PushRequest {
	req := &wire.PushRequest{Versions: wire.Current(), Mutations: make([]wire.Mutation, n)}
	for i := range req.Mutations {
		c := benchContact(d.unit, d.id, d.staff, d.at)
		ts := d.clock.Now()
		d.seq++
		req.Mutations[i] = wire.Mutation{Seq: d.seq, Kind: schema.KindContact, ID: c.ID, Version: ts,
			Fields: replica.RowOf(c, replica.Key(ts, d.id)).FieldsJSON()}
	}
	req.Clock = d.clock.Now()
	return req
}

// rows returns n new contacts of the device as rows of the table of
// contacts, numbered from seq+1 on, in the order of replica.RowValues.
func (d *benchDevice) rows(n int, seq int64) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		r := replica.RowOf(benchContact(d.unit, d.id, d.staff, d.at), replica.Key(d.clock.Now(), d.id))
		r.Seq, r.Echo = seq+int64(i)+1, seq+int64(i)+1
		rows[i] = replica.RowValues(r)
	}
	return rows
}

// benchServers opens n servers' sync on one new PostgreSQL database, each
// with a pool of its own as a process of its own has, and the unit and
// staff member of devices enrolled by enrol; and a connection of the
// benchmark's own.
func benchServers(b *testing.B, n int) (servers []*replica.ServerSync, conn *pgx.Conn, unit, staff uuid.UUID, enrol func(*benchDevice)) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	url := pgtest.URL(b)
	for range n {
		st, err := pgstore.Open(ctx, url, pgstore.Config{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		s, err := replica.NewServerSync(ctx, st.SyncEngine(), replica.ServerConfig{Now: now})
		if err != nil {
			st.Close()
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		servers = append(servers, s)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(ctx) })
	unit, staff = uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	if err := servers[0].PutReference(ctx, benchReferences(unit, staff)...); err != nil {
		b.Fatal(err)
	}
	enrol = func(d *benchDevice) {
		if _, err := conn.Exec(ctx, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, d.id, unit, at); err != nil {
			b.Fatal(err)
		}
	}
	return servers, conn, unit, staff, enrol
}

// BenchmarkSyncPushRaw measures, in each round, a push of 500 new
// contacts to PostgreSQL and the same rows (new ids) put into the same
// table of the same database without the sync, 500 to a transaction: by
// one multi-row INSERT and by COPY, what the database does at best. The
// three take turns in a rotating order, so that whatever else the machine
// does weighs on all three alike; the ratios push/insert and push/copy
// are the figures to compare.
func BenchmarkSyncPushRaw(b *testing.B) {
	ctx := context.Background()
	servers, conn, unit, staff, enrol := benchServers(b, 1)
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := newBenchDevice(unit, staff, at)
	enrol(d)
	rawDev := newBenchDevice(unit, staff, at) // the raw rows' device, which pushes nothing
	seq := int64(1 << 40)                     // the raw rows' change numbers, far from the pushes'
	push := func() (time.Duration, error) {
		req := d.push(pushBatch)
		t := time.Now()
		_, err := servers[0].Push(ctx, d.id, req)
		return time.Since(t), err
	}
	raw := func(write func(ctx context.Context, tx pgx.Tx, rows [][]any) error) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			rows := rawDev.rows(pushBatch, seq)
			seq += pushBatch
			t := time.Now()
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return write(ctx, tx, rows) })
			return time.Since(t), err
		}
	}
	ways := []func() (time.Duration, error){push, raw(insertRows), raw(copyRows)}
	var took [3]time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j := range ways {
			w := (i + j) % len(ways)
			t, err := ways[w]()
			if err != nil {
				b.Fatal(err)
			}
			took[w] += t
		}
	}
	rate := func(t time.Duration) float64 { return float64(b.N*pushBatch) / t.Seconds() }
	b.ReportMetric(rate(took[0]), "push-records/s")
	b.ReportMetric(rate(took[1]), "insert-records/s")
	b.ReportMetric(rate(took[2]), "copy-records/s")
	b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "push/insert")
	b.ReportMetric(took[2].Seconds()/took[0].Seconds(), "push/copy")
}

// contactColumns are the columns of the contact table, in the order of
// replica.RowValues.
var contactColumns = append(replica.RecordColumns(schema.KindContact), "v", "cv", "seq", "echo", "echo_device")

// insertRows inserts rows into the table of contacts with one INSERT.
func insertRows(ctx context.Context, tx pgx.Tx, rows [][]any) error {
	var q strings.Builder
	fmt.Fprintf(&q, "INSERT INTO %s (%s) VALUES ", schema.KindContact, strings.Join(contactColumns, ", "))
	args := make([]any, 0, len(rows)*len(contactColumns))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j := range r {
			if j > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d", len(args)+j+1)
		}
		q.WriteByte(')')
		args = append(args, r...)
	}
	_, err := tx.Exec(ctx, q.String(), args...)
	return err
}

// copyRows puts rows into the table of contacts by COPY; ids go as
// pgtype.UUID, which the binary format takes as it is.
func copyRows(ctx context.Context, tx pgx.Tx, rows [][]any) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{string(schema.KindContact)}, contactColumns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		for j, v := range r {
			if s, ok := v.(string); ok && strings.HasSuffix(contactColumns[j], "id") {
				id, err := uuid.Parse(s)
				if err != nil {
					return nil, err
				}
				r[j] = pgtype.UUID{Bytes: id, Valid: true}
			}
		}
		return r, nil
	}))
	return err
}
