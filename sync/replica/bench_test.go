package replica_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// benchDB is a server database preloaded with BRYGGA_BENCH_ROWS records
// (default 1,000,000), shared by the benchmarks of one run.
type benchDB struct {
	s      *replica.ServerStore
	w      world
	device uuid.UUID
	clock  *hlc.Clock
	seq    int64
	now    *testClock
}

var (
	benchOnce sync.Once
	bench     *benchDB
	benchErr  error
	benchDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench != nil {
		bench.s.Close()
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

func openBench(b *testing.B) *benchDB {
	benchOnce.Do(func() {
		rows := 1_000_000
		if s := os.Getenv("BRYGGA_BENCH_ROWS"); s != "" {
			rows, _ = strconv.Atoi(s)
		}
		benchDir, benchErr = os.MkdirTemp("", "brygga-bench-")
		if benchErr != nil {
			return
		}
		now := newTestClock()
		w := newWorld(b)
		s, err := replica.OpenServer(context.Background(), filepath.Join(benchDir, "server.db"), replica.ServerConfig{Now: now.Now})
		if err != nil {
			benchErr = err
			return
		}
		if err := s.PutReference(context.Background(), w.reference()...); err != nil {
			benchErr = err
			return
		}
		db := &benchDB{s: s, w: w, device: newID(b), clock: hlc.NewClock(now.Now, 0), now: now}
		if _, err := s.RegisterDevice(context.Background(), db.device, w.unitA); err != nil {
			benchErr = err
			return
		}
		start := time.Now()
		for n := 0; n < rows; n += 1000 {
			if _, err := db.push(db.batch(1000)); err != nil {
				benchErr = err
				return
			}
		}
		b.Logf("preloaded %d records in %v", rows, time.Since(start).Round(time.Millisecond))
		bench = db
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

// batch makes n mutations as a tablet makes them: contacts, each with a
// syringe exchange.
func (db *benchDB) batch(n int) *wire.PushRequest {
	req := &wire.PushRequest{Versions: wire.Current(), Mutations: make([]wire.Mutation, 0, n)}
	at := db.now.Now().Add(-time.Hour)
	var contact uuid.UUID
	for i := range n {
		id := uuid.Must(uuid.NewV7())
		h := schema.Header{ID: id, UnitID: db.w.unitA, DeviceID: db.device, StaffID: db.w.staffA, OccurredAt: at}
		var rec schema.Record
		if i%2 == 0 {
			contact = id
			rec = &schema.Contact{Header: h, Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
		} else {
			rec = &schema.SyringeExchange{Header: h, ContactID: contact, SyringesOut: 20, NeedlesOut: 20, SyringesReturned: 12}
		}
		obj := map[string]json.RawMessage{}
		for _, f := range rec.Fields() {
			v, _ := f.MarshalJSON()
			obj[f.Name] = v
		}
		fields, _ := json.Marshal(obj)
		db.seq++
		req.Mutations = append(req.Mutations, wire.Mutation{Seq: db.seq, Kind: rec.Kind(), ID: id, Version: db.clock.Now(), Fields: fields})
	}
	req.Clock = db.clock.Now()
	return req
}

func (db *benchDB) push(req *wire.PushRequest) (*wire.PushResponse, error) {
	resp, err := db.s.Push(context.Background(), db.device, req)
	if err != nil {
		return nil, err
	}
	for _, r := range resp.Results {
		if r.Status != wire.Applied {
			return nil, fmt.Errorf("mutation %d: %s %v", r.Seq, r.Status, r.Error)
		}
	}
	return resp, nil
}

// BenchmarkPushApply applies 1000-mutation pushes to a database that
// already holds a million records: the server's write path, in process.
func BenchmarkPushApply(b *testing.B) {
	db := openBench(b)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		req := db.batch(1000)
		b.StartTimer()
		if _, err := db.push(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPushReplay answers a retried 1000-mutation push: all duplicates.
func BenchmarkPushReplay(b *testing.B) {
	db := openBench(b)
	req := db.batch(1000)
	if _, err := db.push(req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.s.Push(context.Background(), db.device, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "rows/s")
}

// cursorAt returns a pull cursor of the store at sequence number seq, and
// the store's latest sequence number.
func (db *benchDB) cursorAt(b *testing.B, seq int64) (cursor string, head int64) {
	first, err := db.s.Pull(context.Background(), db.device, &wire.PullRequest{Versions: wire.Current(), Limit: 1})
	if err != nil {
		b.Fatal(err)
	}
	c, err := wire.ParseCursor(first.Cursor)
	if err != nil {
		b.Fatal(err)
	}
	c.Seq = seq
	return c.String(), first.Head
}

// BenchmarkPullPage builds a 500-change pull page from the middle of the
// million-record database.
func BenchmarkPullPage(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	cursor, _ := db.cursorAt(b, db.seq/2)
	req := &wire.PullRequest{Versions: wire.Current(), Cursor: cursor, Limit: 500}
	b.ResetTimer()
	for b.Loop() {
		resp, err := db.s.Pull(ctx, db.device, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Changes) != 500 {
			b.Fatalf("page of %d", len(resp.Changes))
		}
	}
	b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkPullCaughtUp answers the pull of a device that is caught up but
// for the last 5 changes: the pull of every sync after the first.
func BenchmarkPullCaughtUp(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	_, head := db.cursorAt(b, 0)
	cursor, _ := db.cursorAt(b, head-5)
	req := &wire.PullRequest{Versions: wire.Current(), Cursor: cursor, Limit: wire.MaxPullLimit}
	b.ResetTimer()
	for b.Loop() {
		resp, err := db.s.Pull(ctx, db.device, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Changes) == 0 || resp.HasMore {
			b.Fatalf("page of %d, has_more %v", len(resp.Changes), resp.HasMore)
		}
	}
}

// BenchmarkAcceptPullPage applies 2000-change pull pages to a fresh device
// replica: the device's side of a first sync.
func BenchmarkAcceptPullPage(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	dev, err := replica.OpenDevice(ctx, filepath.Join(b.TempDir(), "d.db"), replica.DeviceConfig{ID: db.device, UnitID: db.w.unitA})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	var pages []*wire.PullResponse
	_, head := db.cursorAt(b, 0)
	for i := int64(0); i < 20 && i*2000 < head; i++ {
		cursor, _ := db.cursorAt(b, i*2000)
		p, err := db.s.Pull(ctx, db.device, &wire.PullRequest{Versions: wire.Current(), Cursor: cursor, Limit: 2000})
		if err != nil {
			b.Fatal(err)
		}
		pages = append(pages, p)
	}
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		p := *pages[i%len(pages)]
		cur, _ := dev.PullRequest(ctx, 0)
		p.Since = cur.Cursor
		if ok, err := dev.AcceptPull(ctx, &p); err != nil || !ok {
			b.Fatal(err)
		}
		n += len(p.Changes)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkDevicePush pushes a device's outbox of 20,000 records (contacts
// and exchanges, made offline) to a server in this process, in batches of
// wire.MaxMutations, with a context that can be cancelled as an app's is,
// and reports the time a record of each step: the device reading its
// outbox (next), the server applying the push (server) and the device
// taking the answer (accept).
func BenchmarkDevicePush(b *testing.B) {
	const n = 20_000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var next, srv, accept time.Duration
	for b.Loop() {
		b.StopTimer()
		clock := newTestClock()
		w := newWorld(b)
		s := MustOpenServer(b, clock, w)
		d := MustOpenDevice(b, clock.Now, s, w.unitA)
		var contact uuid.UUID
		at := clock.Now().Add(-time.Hour)
		for i := range n {
			h := schema.Header{ID: newID(b), UnitID: w.unitA, DeviceID: d.ID(), StaffID: w.staffA, OccurredAt: at}
			var rec schema.Record = &schema.SyringeExchange{Header: h, ContactID: contact, SyringesOut: 20, NeedlesOut: 20, SyringesReturned: 12}
			if i%2 == 0 {
				contact = h.ID
				rec = &schema.Contact{Header: h, Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
			}
			if err := d.Create(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for {
			t0 := time.Now()
			req, err := d.NextPush(ctx, wire.MaxMutations)
			if err != nil {
				b.Fatal(err)
			}
			if req == nil {
				break
			}
			t1 := time.Now()
			resp, err := s.Push(ctx, d.ID(), req)
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if err := d.AcceptPush(ctx, resp); err != nil {
				b.Fatal(err)
			}
			next, srv, accept = next+t1.Sub(t0), srv+t2.Sub(t1), accept+time.Since(t2)
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*n) }
	b.ReportMetric(per(next), "next-ns/record")
	b.ReportMetric(per(srv), "server-ns/record")
	b.ReportMetric(per(accept), "accept-ns/record")
	b.ReportMetric(0, "ns/op")
}
