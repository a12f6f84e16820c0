package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3" // registers the sqlite3 driver

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// Figure keys that other figures are compared to.
const (
	keySQLiteInsert = "baseline-sqlite/insert rate"
	keyFiberPush    = "baseline-fiber/push decode"
	keyFiberPull    = "baseline-fiber/pull page"
)

// sqliteDSN opens path with the parameters replica.OpenDB uses: WAL,
// synchronous NORMAL, a busy timeout, foreign keys and immediate write
// transactions.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// contactsTable is shaped like the contacts table of the records
// migration.
const contactsTable = `CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    unit_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    staff_id    TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0,
    client_code TEXT,
    gender      TEXT NOT NULL,
    age_band    TEXT NOT NULL,
    setting     TEXT NOT NULL,
    area_code   TEXT NOT NULL,
    substance   TEXT,
    v           TEXT NOT NULL,
    cv          TEXT,
    seq         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX contacts_unit_seq ON contacts (unit_id, seq);`

// runBaselineSQLite measures raw SQLite inserts into a contacts-shaped
// table: 1000-row transactions of one prepared statement, one writer
// connection, the server's pragmas.
func runBaselineSQLite(ctx context.Context, cfg *config, rec *recorder) error {
	dir, err := os.MkdirTemp("", "bryggaload-sqlite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite3", sqliteDSN(filepath.Join(dir, "raw.db")))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if _, err := db.ExecContext(ctx, contactsTable); err != nil {
		return err
	}
	stmt, err := db.PrepareContext(ctx, `INSERT INTO contacts (id, unit_id, device_id, staff_id, occurred_at, voided,
		client_code, gender, age_band, setting, area_code, substance, v, cv, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()

	rows := cfg.sqliteRows()
	ids := make([]string, rows)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	d := fakeDevice()
	unit, dev, staff := d.ref.unit.String(), d.id.String(), d.ref.staff.String()
	v := replica.Key(d.clock.Now(), d.id)
	at := time.Now().Add(-time.Hour).UnixMilli()

	start := time.Now()
	for i := 0; i < rows; i += batchSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		st := tx.StmtContext(ctx, stmt)
		for j := i; j < min(i+batchSize, rows); j++ {
			if _, err := st.ExecContext(ctx, ids[j], unit, dev, staff, at, 0, nil,
				string(schema.GenderWoman), string(schema.Age25to29), string(schema.SettingStreet), "2380", nil, v, nil, j+1); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	rec.add(metric{Scenario: "baseline-sqlite", Figure: "insert rate", Unit: "rows/s", Value: float64(rows) / elapsed.Seconds()})
	return nil
}

// runBaselineFiber measures a bare Fiber app on loopback: it decodes the
// same gzip JSON push bodies into wire.PushRequest and answers a small
// JSON, for four clients at once; and it serves a pre-encoded page of 1000
// changes that the clients decode.
func runBaselineFiber(ctx context.Context, cfg *config, rec *recorder) error {
	counts := split(cfg.pushRows(), loaders)
	bodies := make([][]body, loaders)
	total := 0
	for i := range bodies {
		var err error
		if bodies[i], err = fakeDevice().pushBodies(counts[i]); err != nil {
			return err
		}
		total += counts[i]
	}
	page, err := changePage(batchSize)
	if err != nil {
		return err
	}

	app := fiber.New(fiber.Config{BodyLimit: wire.MaxBodyBytes, DisableStartupMessage: true})
	app.Post("/push", func(c *fiber.Ctx) error {
		r, err := wire.Body(bytes.NewReader(c.Request().Body()), c.Get(fiber.HeaderContentEncoding))
		if err != nil {
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
		}
		req, err := wire.DecodePushRequest(r)
		if err != nil {
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
		}
		return c.JSON(fiber.Map{"mutations": len(req.Mutations)})
	})
	app.Get("/pull", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(page)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		app.ShutdownWithContext(sctx)
		<-served
	}()
	base := "http://" + ln.Addr().String()
	client := loopbackClient(loaders)
	defer closeClient(client)

	start := time.Now()
	err = parallel(ctx, loaders, func(ctx context.Context, i int) error {
		for j := range bodies[i] {
			var got struct {
				Mutations int `json:"mutations"`
			}
			if _, err := call(ctx, client, http.MethodPost, base+"/push", "", &bodies[i][j], func(r io.Reader) error {
				return json.NewDecoder(r).Decode(&got)
			}); err != nil {
				return err
			}
			if got.Mutations != bodies[i][j].rows {
				return fmt.Errorf("bare push decoded %d mutations of %d", got.Mutations, bodies[i][j].rows)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	pushRate := float64(total) / time.Since(start).Seconds()

	pages := spread(max(1, total/batchSize), loaders)
	start = time.Now()
	err = parallel(ctx, loaders, func(ctx context.Context, i int) error {
		for range pages[i] {
			if _, err := call(ctx, client, http.MethodGet, base+"/pull", "", nil, func(r io.Reader) error {
				data, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				var resp wire.PullResponse
				if err := json.Unmarshal(data, &resp); err != nil {
					return err
				}
				if len(resp.Changes) != batchSize {
					return fmt.Errorf("bare pull page of %d changes", len(resp.Changes))
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	pulled := max(1, total/batchSize) * batchSize
	pullRate := float64(pulled) / time.Since(start).Seconds()

	rec.add(metric{Scenario: "baseline-fiber", Figure: "push decode", Unit: "rows/s", Value: pushRate})
	rec.add(metric{Scenario: "baseline-fiber", Figure: "pull page", Unit: "changes/s", Value: pullRate})
	return nil
}

// changePage returns the JSON of a pull page of n changes of contacts and
// exchanges, as the server sends them.
func changePage(n int) ([]byte, error) {
	d := fakeDevice()
	req, err := d.batch(n)
	if err != nil {
		return nil, err
	}
	resp := wire.PullResponse{Versions: wire.Current(), Changes: make([]wire.Change, len(req.Mutations)),
		Cursor: wire.Cursor{Store: uuid.Must(uuid.NewRandom()), Seq: int64(n)}.String(), HasMore: true,
		Head: int64(2 * n), Clock: d.clock.Now()}
	for i, m := range req.Mutations {
		resp.Changes[i] = wire.Change{Kind: m.Kind, ID: m.ID, Seq: int64(i + 1), Fields: m.Fields, V: replica.Key(m.Version, d.id)}
	}
	return json.Marshal(resp)
}

// runPush measures the full protocol: four enrolled devices push
// contacts and syringe exchanges in 1000-mutation gzip batches at once.
func runPush(ctx context.Context, cfg *config, rec *recorder) error {
	return pushOn(ctx, cfg, rec, backend{})
}

// pushOn is push on be: on PostgreSQL, push-postgres, compared to
// baseline-postgres.
func pushOn(ctx context.Context, cfg *config, rec *recorder, be backend) error {
	ls, err := startServerOn(ctx, 1, be)
	if err != nil {
		return err
	}
	defer ls.close()
	counts := split(cfg.pushRows(), loaders)
	devs := make([]*device, loaders)
	bodies := make([][]body, loaders)
	total := 0
	for i := range devs {
		if devs[i], err = ls.enrol(ctx, ls.units[0]); err != nil {
			return err
		}
		if bodies[i], err = devs[i].pushBodies(counts[i]); err != nil {
			return err
		}
		total += counts[i]
	}
	client := loopbackClient(loaders)
	defer closeClient(client)
	cpu, pgCPU := processCPU(), postgresCPU()
	elapsed, err := ls.pushAll(ctx, client, devs, bodies)
	if err != nil {
		return err
	}
	cpu, pgCPU = processCPU()-cpu, postgresCPU()-pgCPU
	rate := float64(total) / elapsed.Seconds()
	if be.postgres != "" {
		// Where the time goes: the servers and their clients (this
		// process) against PostgreSQL's processes, a record each.
		perRecord := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(total) }
		rec.add(metric{Scenario: "push-postgres", Figure: "CPU a record, servers and clients", Unit: "µs", Value: perRecord(cpu)})
		rec.add(metric{Scenario: "push-postgres", Figure: "CPU a record, PostgreSQL", Unit: "µs", Value: perRecord(pgCPU)})
		rec.add(metric{Scenario: "push-postgres", Figure: fmt.Sprintf("throughput, %d instances", be.instances), Unit: "rows/s", Value: rate})
		rec.add(metric{Scenario: "push-postgres", Figure: "throughput vs baseline-postgres", Unit: "rows/s", Value: rate, Base: keyPostgresInsert,
			Target: &target{Op: ">=", Limit: 0.67, OnRatio: true}})
		return nil
	}
	rec.add(metric{Scenario: "push", Figure: "throughput", Unit: "rows/s", Value: rate, Target: &target{Op: ">=", Limit: 100_000}})
	rec.add(metric{Scenario: "push", Figure: "throughput vs baseline-sqlite", Unit: "rows/s", Value: rate, Base: keySQLiteInsert})
	rec.add(metric{Scenario: "push", Figure: "throughput vs baseline-fiber", Unit: "rows/s", Value: rate, Base: keyFiberPush})
	return nil
}

// sdkOptions are the SDK's options of a tablet of the load test.
func sdkOptions(cfg *config, client *http.Client) *brygga.Options {
	return &brygga.Options{HTTPClient: client, PullPage: cfg.pullPage, PushBatch: cfg.pushBatch}
}

// runFirstSync measures a new device's first full pull, through the SDK,
// of a unit holding --first-sync-rows records.
func runFirstSync(ctx context.Context, cfg *config, rec *recorder) error {
	return firstSyncOn(ctx, cfg, rec, backend{})
}

// firstSyncOn is first-sync on be: on PostgreSQL, first-sync-postgres.
func firstSyncOn(ctx context.Context, cfg *config, rec *recorder, be backend) error {
	rows := cfg.firstSyncRows
	ls, err := startServerOn(ctx, 1, be)
	if err != nil {
		return err
	}
	defer ls.close()
	if err := ls.preload(ctx, rows); err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	code, err := ls.enrolCode(ctx, ls.units[0].unit)
	if err != nil {
		return err
	}
	client := loopbackClient(2)
	defer closeClient(client)
	opts := sdkOptions(cfg, client)
	var pulled int64
	opts.OnProgress = func(p brygga.Progress) {
		if p.Phase == "pull" {
			pulled = p.Done
		}
	}

	cpuStart := processCPU()
	start := time.Now()
	cl, err := brygga.Open(ctx, filepath.Join(ls.dir, "tablet.db"), opts)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Enroll(ctx, ls.url, code); err != nil {
		return err
	}
	if err := cl.Sync(ctx); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	cpu := processCPU() - cpuStart
	if pulled < int64(rows) {
		return fmt.Errorf("the first sync pulled %d changes, want at least %d", pulled, rows)
	}
	rate := float64(rows) / secs
	if be.postgres != "" {
		rec.add(metric{Scenario: "first-sync-postgres", Figure: fmt.Sprintf("time for %d records", rows), Unit: "s", Value: secs})
		rec.add(metric{Scenario: "first-sync-postgres", Figure: "rate vs first-sync on SQLite", Unit: "rows/s", Value: rate, Base: "first-sync/rate vs baseline-device insert"})
		rec.add(metric{Scenario: "first-sync-postgres", Figure: "rate vs baseline-device insert", Unit: "rows/s", Value: rate, Base: keyDeviceInsert})
		rec.add(metric{Scenario: "first-sync-postgres", Figure: "CPU time a record, server and device", Unit: "µs", Value: cpu.Seconds() * 1e6 / float64(rows)})
		return nil
	}
	rec.add(metric{Scenario: "first-sync", Figure: fmt.Sprintf("time for %d records", rows), Unit: "s", Value: secs})
	rec.add(metric{Scenario: "first-sync", Figure: "rate vs baseline-fiber pull", Unit: "rows/s", Value: rate, Base: keyFiberPull})
	rec.add(metric{Scenario: "first-sync", Figure: "rate vs baseline-device insert", Unit: "rows/s", Value: rate, Base: keyDeviceInsert,
		Target: &target{Op: ">=", Limit: 0.6, OnRatio: true}})
	rec.add(metric{Scenario: "first-sync", Figure: "CPU time a record, server and device", Unit: "µs", Value: cpu.Seconds() * 1e6 / float64(rows)})
	rec.add(metric{Scenario: "first-sync", Figure: fmt.Sprintf("time for %d records, extrapolated", targetRows), Unit: "s",
		Value: secs * float64(targetRows) / float64(rows), Target: &target{Op: "<=", Limit: 10}})
	return nil
}

// runSmallSync measures a 10-record sync (push and pull) of one device
// against a server holding 1000 records and one holding --big-rows: the
// SDK's whole Sync, and the part of it spent waiting on the server.
func runSmallSync(ctx context.Context, cfg *config, rec *recorder) error {
	small, err := smallSyncLatency(ctx, cfg, smallServerRows)
	if err != nil {
		return fmt.Errorf("%d records: %w", smallServerRows, err)
	}
	big, err := smallSyncLatency(ctx, cfg, cfg.bigRows)
	if err != nil {
		return fmt.Errorf("%d records: %w", cfg.bigRows, err)
	}
	syncFig := func(rows int) string { return fmt.Sprintf("sync latency, %d records", rows) }
	rtFig := func(rows int) string { return fmt.Sprintf("server round trips of a sync, %d records", rows) }
	rec.add(metric{Scenario: "small-sync", Figure: syncFig(smallServerRows), Unit: "ms", Value: small.sync})
	rec.add(metric{Scenario: "small-sync", Figure: syncFig(cfg.bigRows), Unit: "ms", Value: big.sync,
		Base: "small-sync/" + syncFig(smallServerRows), Target: &target{Op: "<=", Limit: 1.5, OnRatio: true}})
	rec.add(metric{Scenario: "small-sync", Figure: rtFig(smallServerRows), Unit: "ms", Value: small.roundTrips})
	rec.add(metric{Scenario: "small-sync", Figure: rtFig(cfg.bigRows), Unit: "ms", Value: big.roundTrips,
		Base: "small-sync/" + rtFig(smallServerRows)})
	return nil
}

// syncLatency is the median time of a small sync, and of its requests.
type syncLatency struct {
	sync, roundTrips float64 // milliseconds
}

// smallSyncLatency measures the SDK's Sync of 10 new records by a
// caught-up device against a server holding rows records of its unit.
func smallSyncLatency(ctx context.Context, cfg *config, rows int) (syncLatency, error) {
	var out syncLatency
	ls, err := startServer(ctx, 1)
	if err != nil {
		return out, err
	}
	defer ls.close()
	if err := ls.preload(ctx, rows); err != nil {
		return out, fmt.Errorf("preload: %w", err)
	}
	code, err := ls.enrolCode(ctx, ls.units[0].unit)
	if err != nil {
		return out, err
	}
	client := loopbackClient(2)
	tt := &timedTransport{base: client.Transport}
	client.Transport = tt
	defer closeClient(client)
	cl, err := brygga.Open(ctx, filepath.Join(ls.dir, "tablet.db"), sdkOptions(cfg, client))
	if err != nil {
		return out, err
	}
	defer cl.Close()
	if err := cl.Enroll(ctx, ls.url, code); err != nil {
		return out, err
	}
	if err := cl.Sync(ctx); err != nil {
		return out, fmt.Errorf("catching up: %w", err)
	}
	if err := cl.SetStaff(ctx, ls.units[0].staff); err != nil {
		return out, err
	}
	syncs := make([]float64, 0, cfg.smallSyncs)
	trips := make([]float64, 0, cfg.smallSyncs)
	for range cfg.smallSyncs {
		for range 5 {
			c := &schema.Contact{Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
			if err := cl.Add(ctx, c); err != nil {
				return out, err
			}
			x := &schema.SyringeExchange{ContactID: c.ID, SyringesOut: 10, NeedlesOut: 10, SyringesReturned: 8}
			if err := cl.Add(ctx, x); err != nil {
				return out, err
			}
		}
		waited := tt.elapsed()
		start := time.Now()
		if err := cl.Sync(ctx); err != nil {
			return out, err
		}
		syncs = append(syncs, ms(time.Since(start)))
		trips = append(trips, ms(tt.elapsed()-waited))
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return out, err
	}
	if st.Pending != 0 || len(st.Rejected) != 0 {
		return out, fmt.Errorf("after the syncs %d mutations are pending and %d rejected", st.Pending, len(st.Rejected))
	}
	return syncLatency{sync: median(syncs), roundTrips: median(trips)}, nil
}

// devicesPerUnit is how many of many-devices' devices share a unit.
const devicesPerUnit = 10

// runManyDevices starts --devices enrolled, caught-up devices at once, each
// pushing a 5-mutation batch and pulling what changed since its last pull,
// and measures latency, errors and the
// server's peak memory: the devices are enrolled here, then the server
// moves to a process of its own on the same database, so that its memory
// is not the load clients'.
func runManyDevices(ctx context.Context, cfg *config, rec *recorder) error {
	return manyDevicesOn(ctx, cfg, rec, backend{}, "many-devices")
}

// manyDevicesOn is many-devices on be, its figures under name.
func manyDevicesOn(ctx context.Context, cfg *config, rec *recorder, be backend, name string) error {
	n := cfg.devices
	units := max(1, (n+devicesPerUnit-1)/devicesPerUnit)
	ls, err := startServerOn(ctx, units, be)
	if err != nil {
		return err
	}
	defer ls.close()
	devs := make([]*device, n)
	bodies := make([]body, n)
	for i := range devs {
		if devs[i], err = ls.enrol(ctx, ls.units[i%units]); err != nil {
			return err
		}
		req, err := devs[i].batch(5)
		if err != nil {
			return err
		}
		data, err := json.Marshal(req)
		if err != nil {
			return err
		}
		// The SDK compresses bodies over 4 KiB only.
		if bodies[i], err = encodeBody(req, len(data) > 4096, len(req.Mutations)); err != nil {
			return err
		}
	}
	// The devices are in the field already: each has pulled its unit's
	// reference data and records before, so that what is measured is a
	// sync of a small batch, not a first sync.
	cursors := make([]string, n)
	setup := loopbackClient(cfg.conns)
	err = parallel(ctx, n, func(ctx context.Context, i int) error {
		for {
			resp, _, err := ls.pull(ctx, setup, devs[i], cursors[i], wire.MaxPullLimit)
			if err != nil {
				return err
			}
			cursors[i] = resp.Cursor
			if !resp.HasMore {
				return nil
			}
		}
	})
	closeClient(setup)
	if err != nil {
		return fmt.Errorf("catching up: %w", err)
	}
	if err := ls.moveToChild(ctx); err != nil {
		return fmt.Errorf("server process: %w", err)
	}
	client := loopbackClient(cfg.conns)
	defer closeClient(client)

	type outcome struct {
		push, pull timing
		pushErr    error
		pullErr    error
	}
	outcomes := make([]outcome, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range devs {
		wg.Go(func() {
			<-gate
			o := &outcomes[i]
			o.push, o.pushErr = ls.push(ctx, client, devs[i], &bodies[i])
			var resp *wire.PullResponse
			resp, o.pull, o.pullErr = ls.pull(ctx, client, devs[i], cursors[i], wire.DefaultPullLimit)
			if o.pullErr == nil && len(resp.Changes) < 5 {
				o.pullErr = fmt.Errorf("pull: %d changes, want at least the device's own 5", len(resp.Changes))
			}
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	wall := time.Since(start)
	peak, rssErr := ls.peakRSS()
	if err := ctx.Err(); err != nil {
		return err
	}

	var connected, issued []float64
	errs := 0
	var firstErr error
	for _, o := range outcomes {
		for _, r := range []struct {
			t   timing
			err error
		}{{o.push, o.pushErr}, {o.pull, o.pullErr}} {
			if r.err != nil {
				errs++
				if firstErr == nil {
					firstErr = r.err
				}
				continue
			}
			connected = append(connected, ms(r.t.connected))
			issued = append(issued, ms(r.t.issued))
		}
	}
	if firstErr != nil {
		fmt.Fprintf(cfg.stderr, "%s: %d errors, the first: %v\n", name, errs, firstErr)
	}
	const mib = 1 << 20
	add := func(figure, unit string, v float64, t *target) {
		rec.add(metric{Scenario: name, Figure: figure, Unit: unit, Value: v, Target: t})
	}
	add("latency p50, connected", "ms", percentile(connected, 50), nil)
	add("latency p99, connected", "ms", percentile(connected, 99), &target{Op: "<", Limit: 100})
	add("latency p50, issued", "ms", percentile(issued, 50), nil)
	add("latency p99, issued", "ms", percentile(issued, 99), &target{Op: "<", Limit: 100})
	add("wall time, all devices", "s", wall.Seconds(), nil)
	rec.add(metric{Scenario: name, Figure: "errors", Unit: "requests", Value: float64(errs), Target: &target{Op: "=", Limit: 0}, Max: true})
	if rssErr != nil {
		fmt.Fprintf(cfg.stderr, "%s: no memory figures: %v\n", name, rssErr)
		return nil
	}
	add("server peak RSS", "MiB", float64(peak)/mib, &target{Op: "<", Limit: 150})
	return nil
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile returns the p-th percentile of vs by the nearest rank, or 0
// for no values.
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// runWireSize measures the bytes per record of a 1000-mutation push as
// plain JSON and gzip-compressed.
func runWireSize(ctx context.Context, cfg *config, rec *recorder) error {
	req, err := fakeDevice().batch(batchSize)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(req)
	if err != nil {
		return err
	}
	gz, err := gzipBytes(plain)
	if err != nil {
		return err
	}
	n := float64(len(req.Mutations))
	rec.add(metric{Scenario: "wire-size", Figure: "push, plain JSON", Unit: "bytes/record", Value: float64(len(plain)) / n})
	rec.add(metric{Scenario: "wire-size", Figure: "push, gzip JSON", Unit: "bytes/record", Value: float64(len(gz)) / n,
		Base: "wire-size/push, plain JSON", Target: &target{Op: "<=", Limit: 0.25, OnRatio: true}})
	return ctx.Err()
}

// processCPU returns the CPU time, user and system, this process has used.
// In first-sync the server and the device run in it together.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
