package main

import (
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
)

// keyDeviceInsert is the figure of baseline-device.
const keyDeviceInsert = "baseline-device/insert rate"

// pushOneRows is the row count of push-one.
func (c *config) pushOneRows() int {
	if c.rows > 0 {
		return c.rows
	}
	return defaultPushRows / loaders
}

// records returns n records of unit by device and staff as a tablet makes
// them, contacts each followed by a syringe exchange at it, an hour ago.
func records(n int, unit, device, staff uuid.UUID) []schema.Record {
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	out := make([]schema.Record, 0, n)
	var contact uuid.UUID
	for i := range n {
		id := uuid.Must(uuid.NewV7())
		h := schema.Header{ID: id, UnitID: unit, DeviceID: device, StaffID: staff, OccurredAt: at}
		if i%2 == 0 {
			contact = id
			out = append(out, &schema.Contact{Header: h, Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"})
		} else {
			out = append(out, &schema.SyringeExchange{Header: h, ContactID: contact, SyringesOut: 20, NeedlesOut: 20, SyringesReturned: 12})
		}
	}
	return out
}

// runBaselineDevice measures raw inserts of the rows a first sync brings
// into a fresh device replica: the replica's own tables, pragmas and page
// size, one prepared statement a table, a transaction of 2000 rows (a
// pull page), the columns bound as they are, nothing decoded or merged.
func runBaselineDevice(ctx context.Context, cfg *config, rec *recorder) error {
	dir, err := os.MkdirTemp("", "bryggaload-device-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tablet.db")
	dev, unit, staff := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	d, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: dev, UnitID: unit})
	if err != nil {
		return err
	}
	d.Close()
	db, err := sql.Open("sqlite3", sqliteDSN(path)+"&_cache_size=-65536")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows := cfg.firstSyncRows
	recs := records(rows, unit, dev, staff)
	clock := hlc.NewClock(time.Now, 0)
	keys := make([]string, rows)
	for i := range keys {
		keys[i] = replica.Key(clock.Now(), dev)
	}
	const page = 2000
	start := time.Now()
	for i := 0; i < rows; i += page {
		if err := ctx.Err(); err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmts := map[schema.Kind]*sql.Stmt{}
		for j := i; j < min(i+page, rows); j++ {
			r := recs[j]
			st, ok := stmts[r.Kind()]
			if !ok {
				fs := r.Fields()
				names, marks := "", ""
				for k, f := range fs {
					if k > 0 {
						names, marks = names+", ", marks+", "
					}
					names, marks = names+f.Name, marks+"?"
				}
				if st, err = tx.PrepareContext(ctx, fmt.Sprintf(`INSERT INTO %s (%s, v, cv, seq) VALUES (%s, ?, ?, ?)`, r.Kind(), names, marks)); err != nil {
					tx.Rollback()
					return err
				}
				stmts[r.Kind()] = st
			}
			fs := r.Fields()
			args := make([]any, 0, len(fs)+3)
			for _, f := range fs {
				args = append(args, f.SQLValue())
			}
			args = append(args, keys[j], nil, j+1)
			if _, err := st.ExecContext(ctx, args...); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	rec.add(metric{Scenario: "baseline-device", Figure: "insert rate", Unit: "rows/s", Value: float64(rows) / elapsed.Seconds()})
	return nil
}

// runPushOne measures one tablet's Sync, through the SDK, of records it
// made offline: its pushes, then a pull that brings nothing back; and the
// bytes the sync moves against those of its pushes.
func runPushOne(ctx context.Context, cfg *config, rec *recorder) error {
	rows := cfg.pushOneRows()
	ls, err := startServer(ctx, 1)
	if err != nil {
		return err
	}
	defer ls.close()
	code, err := ls.enrolCode(ctx, ls.units[0].unit)
	if err != nil {
		return err
	}
	meter := &wireMeter{bytes: map[string]int64{}}
	client := loopbackClient(4)
	defer closeClient(client)
	meter.base = client.Transport
	client.Transport = meter
	path := filepath.Join(ls.dir, "tablet.db")
	cl, err := brygga.Open(ctx, path, sdkOptions(cfg, client))
	if err != nil {
		return err
	}
	if err := cl.Enroll(ctx, ls.url, code); err != nil {
		cl.Close()
		return err
	}
	if err := cl.Sync(ctx); err != nil {
		cl.Close()
		return err
	}
	devID := cl.DeviceID()
	cl.Close()
	// The records are made in the replica as the SDK makes them, each a
	// write of its own (Device.Create), not timed.
	d, err := replica.OpenDevice(ctx, path, replica.DeviceConfig{})
	if err != nil {
		return err
	}
	for _, r := range records(rows, ls.units[0].unit, devID, ls.units[0].staff) {
		if err := d.Create(ctx, r); err != nil {
			d.Close()
			return err
		}
	}
	d.Close()
	if cl, err = brygga.Open(ctx, path, sdkOptions(cfg, client)); err != nil {
		return err
	}
	defer cl.Close()

	meter.reset()
	if cfg.syncProfile != "" {
		f, err := os.Create(cfg.syncProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpuStart := processCPU()
	start := time.Now()
	err = cl.Sync(ctx)
	secs := time.Since(start).Seconds()
	cpu := processCPU() - cpuStart
	if cfg.syncProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	if st.Pending != 0 || len(st.Rejected) != 0 {
		return fmt.Errorf("after the sync %d mutations are pending and %d rejected", st.Pending, len(st.Rejected))
	}
	push, all := meter.get("/v1/sync/push"), meter.total()
	rate := float64(rows) / secs
	rec.add(metric{Scenario: "push-one", Figure: "throughput", Unit: "rows/s", Value: rate})
	rec.add(metric{Scenario: "push-one", Figure: "throughput vs baseline-sqlite", Unit: "rows/s", Value: rate, Base: keySQLiteInsert,
		Target: &target{Op: ">=", Limit: 0.6, OnRatio: true}})
	rec.add(metric{Scenario: "push-one", Figure: "CPU time a record, server and device", Unit: "µs", Value: cpu.Seconds() * 1e6 / float64(rows)})
	rec.add(metric{Scenario: "push-one", Figure: "bytes of the pushes a record", Unit: "bytes", Value: float64(push) / float64(rows)})
	rec.add(metric{Scenario: "push-one", Figure: "bytes of the whole sync a record", Unit: "bytes", Value: float64(all) / float64(rows),
		Base: "push-one/bytes of the pushes a record", Target: &target{Op: "<=", Limit: 1.1, OnRatio: true}})
	return nil
}

// wireMeter counts the bytes of requests and answers as they cross the
// network (bodies as sent, compressed or not, and headers), by path.
type wireMeter struct {
	base  http.RoundTripper
	mu    sync.Mutex
	bytes map[string]int64
}

func (m *wireMeter) add(path string, n int64) {
	m.mu.Lock()
	m.bytes[path] += n
	m.mu.Unlock()
}

func (m *wireMeter) get(path string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes[path]
}

func (m *wireMeter) total() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, b := range m.bytes {
		n += b
	}
	return n
}

func (m *wireMeter) reset() {
	m.mu.Lock()
	m.bytes = map[string]int64{}
	m.mu.Unlock()
}

func headerBytes(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// RoundTrip counts a request and its answer; a compressed answer is
// counted as it came and decompressed for the caller.
func (m *wireMeter) RoundTrip(req *http.Request) (*http.Response, error) {
	path := req.URL.Path
	req.Header.Set("Accept-Encoding", "gzip")
	m.add(path, int64(len(req.Method)+len(req.URL.RequestURI())+12)+headerBytes(req.Header)+max(req.ContentLength, 0))
	resp, err := m.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	m.add(path, 16+headerBytes(resp.Header))
	body := &meteredBody{r: resp.Body, c: resp.Body, n: func(n int) { m.add(path, int64(n)) }}
	resp.Body = body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			body.Close()
			return nil, err
		}
		resp.Body = &meteredBody{r: zr, c: body, n: func(int) {}}
		resp.Header.Del("Content-Encoding")
		resp.ContentLength = -1
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the transport below.
func (m *wireMeter) CloseIdleConnections() {
	if c, ok := m.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type meteredBody struct {
	r io.Reader
	c io.Closer
	n func(int)
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n(n)
	return n, err
}

func (b *meteredBody) Close() error { return b.c.Close() }
