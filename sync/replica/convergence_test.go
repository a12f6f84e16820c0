package replica_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// TestConvergence runs random schedules of offline work and unreliable
// sync: 3 to 5 devices of two units in two organisations write records,
// correct and void them and move referrals between the units along their
// lifecycle, while pushes and pulls are dropped, duplicated, delayed and
// delivered out of order. After everyone has synced fully, every device
// must hold exactly the server's state of its scope, and the server must
// hold the effect of every accepted mutation exactly once.
//
// BRYGGA_SCHEDULES sets the number of schedules (default 1000, 200 with
// -short) and BRYGGA_SEED the first seed; a failure prints the seed that
// replays it.
func TestConvergence(t *testing.T) {
	first, n := scheduleSeeds("BRYGGA_SCHEDULES", 1000, 200)
	tmpl := newTemplates(t)
	for seed := first; seed < first+uint64(n); seed++ {
		if err := runSchedule(t, tmpl, tmpl.sqliteServer, seed); err != nil {
			t.Fatalf("schedule %d failed: %v\nreplay: BRYGGA_SEED=%d BRYGGA_SCHEDULES=1 go test -run TestConvergence ./sync/replica", seed, err, seed)
		}
	}
}

// scheduleSeeds returns the first seed (BRYGGA_SEED, default 1) and the
// number of schedules: the environment's variable env, else n, or short
// with -short.
func scheduleSeeds(env string, n, short int) (uint64, int) {
	if testing.Short() {
		n = short
	}
	if s := os.Getenv(env); s != "" {
		n, _ = strconv.Atoi(s)
	}
	first := uint64(1)
	if s := os.Getenv("BRYGGA_SEED"); s != "" {
		first, _ = strconv.ParseUint(s, 10, 64)
	}
	return first, n
}

// templates are migrated database files that schedules copy, so that each
// schedule starts from real files without paying for migrations.
type templates struct {
	dir    string
	world  world
	server string
	device string
}

func newTemplates(t *testing.T) *templates {
	ctx := context.Background()
	tm := &templates{dir: t.TempDir(), world: newWorld(t)}
	tm.server = filepath.Join(tm.dir, "server.db")
	s, err := replica.OpenServer(ctx, tm.server, replica.ServerConfig{Now: newTestClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutReference(ctx, tm.world.reference()...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tm.device = filepath.Join(tm.dir, "device.db")
	db, err := replica.OpenDB(ctx, tm.device, schema.DeviceDB)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return tm
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sim is one schedule's world.
type sim struct {
	ctx     context.Context
	rng     *rand.Rand
	clock   *testClock
	w       world
	server  simServer
	devices []*simDevice
	delayed []func() error // deliveries held back, to arrive late
	// results counts the server's non-duplicate results per device and
	// mutation number; applied keeps the applied mutations in order.
	results map[uuid.UUID]map[int64]int
	applied []appliedMutation
	log     []string
}

type simDevice struct {
	d      *replica.Device
	unit   uuid.UUID
	staff  uuid.UUID
	offset time.Duration // the device clock's error
	now    *testClock
}

type appliedMutation struct {
	device uuid.UUID
	m      wire.Mutation
}

func (s *sim) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

// simServer is the server a schedule syncs with: one SQLite store, or
// several instances on one PostgreSQL database.
type simServer interface {
	Push(ctx context.Context, deviceID uuid.UUID, req *wire.PushRequest) (*wire.PushResponse, error)
	Pull(ctx context.Context, deviceID uuid.UUID, req *wire.PullRequest) (*wire.PullResponse, error)
	RegisterDevice(ctx context.Context, id, unitID uuid.UUID) (*replica.EnrolledDevice, error)
	LookupDevice(ctx context.Context, id uuid.UUID) (*replica.EnrolledDevice, error)
	ScopeRows(ctx context.Context, unit uuid.UUID) ([]*replica.Row, error)
	Close() error
}

// openSim opens a schedule's server in dir, on clock; seed is the
// schedule's.
type openSim func(ctx context.Context, dir string, clock *testClock, seed uint64) (simServer, error)

// sqliteServer opens a copy of the template's server file.
func (tm *templates) sqliteServer(ctx context.Context, dir string, clock *testClock, _ uint64) (simServer, error) {
	if err := copyFile(filepath.Join(dir, "server.db"), tm.server); err != nil {
		return nil, err
	}
	return replica.OpenServer(ctx, filepath.Join(dir, "server.db"), replica.ServerConfig{Now: clock.Now})
}

func runSchedule(t *testing.T, tm *templates, open openSim, seed uint64) (err error) {
	ctx := context.Background()
	dir := t.TempDir()
	s := &sim{ctx: ctx, rng: rand.New(rand.NewPCG(seed, 0x6272796767610a)), clock: newTestClock(), w: tm.world,
		results: map[uuid.UUID]map[int64]int{}}
	defer func() {
		if err != nil && len(s.log) > 0 {
			tail := s.log[max(0, len(s.log)-30):]
			err = fmt.Errorf("%w\nlast steps:\n  %s", err, joinLines(tail))
		}
	}()
	if s.server, err = open(ctx, dir, s.clock, seed); err != nil {
		return err
	}
	defer s.server.Close()

	nd := 3 + s.rng.IntN(3)
	for i := range nd {
		unit, staff := s.w.unitA, s.w.staffA
		if i%2 == 1 {
			unit, staff = s.w.unitB, s.w.staffB
		}
		id := uuid.Must(uuid.NewV7())
		if _, err := s.server.RegisterDevice(ctx, id, unit); err != nil {
			return err
		}
		path := filepath.Join(dir, id.String()+".db")
		if err := copyFile(path, tm.device); err != nil {
			return err
		}
		// Most clocks are a little off; now and then one is days off, as
		// after a dead battery or a wrong manual setting: the server
		// re-stamps its versions, and refuses its records from the future.
		offset := time.Duration(s.rng.IntN(60)-30) * time.Second
		if s.rng.IntN(4) == 0 {
			offset = time.Duration(s.rng.IntN(21)-10) * 24 * time.Hour
		}
		sd := &simDevice{unit: unit, staff: staff, offset: offset, now: s.clock}
		if sd.d, err = replica.OpenDevice(ctx, path, replica.DeviceConfig{ID: id, UnitID: unit, Now: sd.Now}); err != nil {
			return err
		}
		defer sd.d.Close()
		s.devices = append(s.devices, sd)
	}

	steps := 30 + s.rng.IntN(60)
	for range steps {
		s.clock.Advance(time.Duration(s.rng.IntN(5000)) * time.Millisecond)
		dev := s.devices[s.rng.IntN(len(s.devices))]
		var err error
		switch p := s.rng.IntN(100); {
		case p < 50:
			err = s.localWrite(dev)
		case p < 75:
			err = s.push(dev, true)
		case p < 95:
			err = s.pull(dev, true)
		default:
			err = s.deliverDelayed()
		}
		if err != nil {
			return err
		}
	}
	// Late deliveries arrive, then everyone syncs fully, twice round so
	// that what one pushes reaches the others.
	for len(s.delayed) > 0 {
		if err := s.deliverDelayed(); err != nil {
			return err
		}
	}
	for range 2 {
		for _, dev := range s.devices {
			if err := s.syncFully(dev); err != nil {
				return err
			}
		}
	}
	return s.check()
}

func joinLines(lines []string) string {
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

// Now is the device's clock: the true time plus its error.
func (d *simDevice) Now() time.Time { return d.now.Now().Add(d.offset) }

// localWrite makes a random offline write on dev.
func (s *sim) localWrite(dev *simDevice) error {
	ctx := s.ctx
	now := dev.Now()
	header := func() schema.Header {
		return schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: dev.unit, DeviceID: dev.d.ID(), StaffID: dev.staff,
			OccurredAt: now.Add(-time.Duration(s.rng.IntN(3600)) * time.Second).Truncate(time.Millisecond)}
	}
	contacts, err := dev.d.Rows(ctx, schema.KindContact)
	if err != nil {
		return err
	}
	referrals, err := dev.d.Rows(ctx, schema.KindReferral)
	if err != nil {
		return err
	}
	pickOwn := func(rows []*replica.Row) *replica.Row {
		var own []*replica.Row
		for _, r := range rows {
			if schema.HeaderOf(r.Record).UnitID == dev.unit {
				own = append(own, r)
			}
		}
		if len(own) == 0 {
			return nil
		}
		return own[s.rng.IntN(len(own))]
	}
	settings := schema.SettingEnum.Codes()
	switch p := s.rng.IntN(100); {
	case p < 30 || len(contacts) == 0:
		c := &schema.Contact{Header: header(), Gender: schema.Gender(pick(s.rng, schema.GenderEnum.Codes())),
			AgeBand: schema.AgeBand(pick(s.rng, schema.AgeBandEnum.Codes())), Setting: schema.Setting(pick(s.rng, settings)), AreaCode: "2380"}
		s.logf("%s creates contact %s", short(dev.d.ID()), short(c.ID))
		if err := dev.d.Create(ctx, c); err != nil {
			return err
		}
		if s.rng.IntN(2) == 0 {
			x := &schema.SyringeExchange{Header: header(), ContactID: c.ID, SyringesOut: 1 + s.rng.IntN(50), SyringesReturned: s.rng.IntN(50)}
			s.logf("%s creates exchange %s", short(dev.d.ID()), short(x.ID))
			return dev.d.Create(ctx, x)
		}
		if s.rng.IntN(2) == 0 {
			x := &schema.InfectionTest{Header: header(), ContactID: c.ID, Test: schema.TestKind(pick(s.rng, schema.TestKindEnum.Codes())),
				Outcome: schema.TestSampleSent, Result: schema.ResultPending}
			s.logf("%s creates test %s", short(dev.d.ID()), short(x.ID))
			return dev.d.Create(ctx, x)
		}
	case p < 40:
		r := &schema.Referral{Header: header(), Service: schema.ServiceCategory(pick(s.rng, schema.ServiceCategoryEnum.Codes())),
			ToUnitID: s.other(dev.unit), Status: schema.StatusSent}
		if c := pickOwn(contacts); c != nil {
			r.ContactID = c.ID()
		}
		s.logf("%s creates referral %s", short(dev.d.ID()), short(r.ID))
		return dev.d.Create(ctx, r)
	case p < 55:
		c := pickOwn(contacts)
		if c == nil {
			return nil
		}
		rec := c.Record.(*schema.Contact)
		rec.Setting = schema.Setting(pick(s.rng, settings))
		s.logf("%s corrects contact %s setting=%s", short(dev.d.ID()), short(rec.ID), rec.Setting)
		return dev.d.Update(ctx, rec, "setting")
	case p < 61:
		// Any device of the unit sets a test's result, pending again
		// included, whatever it has heard of the others' answers.
		tests, err := dev.d.Rows(ctx, schema.KindInfectionTest)
		if err != nil {
			return err
		}
		c := pickOwn(tests)
		if c == nil {
			return nil
		}
		rec := c.Record.(*schema.InfectionTest)
		rec.Result = schema.TestResult(pick(s.rng, schema.TestResultEnum.Codes()))
		s.logf("%s sets test %s result=%s", short(dev.d.ID()), short(rec.ID), rec.Result)
		return dev.d.Update(ctx, rec, "result")
	case p < 66:
		c := pickOwn(append(contacts, referrals...))
		if c == nil {
			return nil
		}
		s.logf("%s voids %s %s", short(dev.d.ID()), c.Kind, short(c.ID()))
		return dev.d.Void(ctx, c.Kind, c.ID())
	case p < 92:
		var incoming []*replica.Row
		for _, r := range referrals {
			if r.Record.(*schema.Referral).ToUnitID == dev.unit {
				incoming = append(incoming, r)
			}
		}
		if len(incoming) == 0 {
			return nil
		}
		ref := incoming[s.rng.IntN(len(incoming))].Record.(*schema.Referral)
		if s.rng.IntN(6) == 0 {
			ref.Reopened++
			ref.Status = schema.StatusSent
		} else {
			st := schema.ReferralStatus(pick(s.rng, schema.ReferralStatusEnum.Codes()))
			if st == schema.StatusClosed && !ref.Status.Closes() {
				st = schema.StatusAttended // closed follows attended only
			}
			ref.Status = st
		}
		s.logf("%s sets referral %s status=%s reopened=%d", short(dev.d.ID()), short(ref.ID), ref.Status, ref.Reopened)
		return dev.d.Update(ctx, ref, "status", "reopened")
	default:
		// A record the device accepts but the server refuses: made by
		// staff of the other unit.
		c := &schema.Contact{Header: header(), Gender: schema.GenderMan, AgeBand: schema.Age40to49, Setting: schema.SettingShelter, AreaCode: "2380"}
		c.StaffID = s.otherStaff(dev.unit)
		s.logf("%s creates contact %s by foreign staff", short(dev.d.ID()), short(c.ID))
		return dev.d.Create(ctx, c)
	}
	return nil
}

func pick(rng *rand.Rand, codes []string) string { return codes[rng.IntN(len(codes))] }

func short(id uuid.UUID) string { s := id.String(); return s[len(s)-6:] }

func (s *sim) other(unit uuid.UUID) uuid.UUID {
	if unit == s.w.unitA {
		return s.w.unitB
	}
	return s.w.unitA
}

func (s *sim) otherStaff(unit uuid.UUID) uuid.UUID {
	if unit == s.w.unitA {
		return s.w.staffB
	}
	return s.w.staffA
}

// serverPush delivers a push to the server and records its results.
func (s *sim) serverPush(dev *simDevice, req *wire.PushRequest) (*wire.PushResponse, error) {
	resp, err := s.server.Push(s.ctx, dev.d.ID(), req)
	if err != nil {
		return nil, err
	}
	counts := s.results[dev.d.ID()]
	if counts == nil {
		counts = map[int64]int{}
		s.results[dev.d.ID()] = counts
	}
	for i, r := range resp.Results {
		switch r.Status {
		case wire.Applied:
			counts[r.Seq]++
			m := req.Mutations[i]
			if r.Version != 0 { // re-stamped: the server's version counts
				m.Version = r.Version
			}
			s.applied = append(s.applied, appliedMutation{dev.d.ID(), m})
		case wire.Rejected:
			if r.Error.Code == wire.CodeSeqReused {
				return nil, fmt.Errorf("mutation %d: %v", r.Seq, r.Error)
			}
			// A retry of a rejected mutation is rejected again; count the
			// rejection once.
			if counts[r.Seq] == 0 {
				counts[r.Seq] = -1
			} else if counts[r.Seq] > 0 {
				return nil, fmt.Errorf("mutation %d applied, then rejected", r.Seq)
			}
		}
	}
	return resp, nil
}

// push sends dev's next batch over the network; if unreliable, the
// request or its answer may be lost, duplicated or delayed.
func (s *sim) push(dev *simDevice, unreliable bool) error {
	req, err := dev.d.NextPush(s.ctx, 1+s.rng.IntN(8))
	if err != nil || req == nil {
		return err
	}
	deliver := func() error {
		resp, err := s.serverPush(dev, req)
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeSeqGap {
			return dev.d.SkipTo(s.ctx, we.Expected)
		}
		if err != nil {
			return err
		}
		return dev.d.AcceptPush(s.ctx, resp)
	}
	fate := 0
	if unreliable {
		fate = s.rng.IntN(10)
	}
	s.logf("%s pushes %d..%d fate %d", short(dev.d.ID()), req.Mutations[0].Seq, req.Mutations[len(req.Mutations)-1].Seq, fate)
	switch fate {
	case 0, 1, 2, 3, 4:
		return deliver()
	case 5: // the request is lost
		return nil
	case 6: // the answer is lost
		_, err := s.serverPush(dev, req)
		return err
	case 7: // delivered twice, both answers arrive
		if err := deliver(); err != nil {
			return err
		}
		return deliver()
	default: // delayed: arrives later, after whatever happens meanwhile
		s.delayed = append(s.delayed, deliver)
		return nil
	}
}

// pull fetches one page for dev; if unreliable, the answer may be lost or
// arrive late.
func (s *sim) pull(dev *simDevice, unreliable bool) error {
	req, err := dev.d.PullRequest(s.ctx, 1+s.rng.IntN(10))
	if err != nil {
		return err
	}
	resp, err := s.server.Pull(s.ctx, dev.d.ID(), req)
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeCursorInvalid {
		return dev.d.ResetCursor(s.ctx)
	}
	if err != nil {
		return err
	}
	fate := 0
	if unreliable {
		fate = s.rng.IntN(10)
	}
	s.logf("%s pulls %d changes has_more=%v fate %d", short(dev.d.ID()), len(resp.Changes), resp.HasMore, fate)
	switch fate {
	case 7: // lost
		return nil
	case 8, 9: // late
		s.delayed = append(s.delayed, func() error { _, err := dev.d.AcceptPull(s.ctx, resp); return err })
		return nil
	}
	_, err = dev.d.AcceptPull(s.ctx, resp)
	return err
}

func (s *sim) deliverDelayed() error {
	if len(s.delayed) == 0 {
		return nil
	}
	i := s.rng.IntN(len(s.delayed))
	f := s.delayed[i]
	s.delayed = append(s.delayed[:i], s.delayed[i+1:]...)
	s.logf("a delayed delivery arrives")
	return f()
}

func (s *sim) syncFully(dev *simDevice) error {
	for i := 0; ; i++ {
		if i > 10000 {
			return errors.New("push never finished")
		}
		n, err := dev.d.Pending(s.ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if err := s.push(dev, false); err != nil {
			return err
		}
	}
	for i := 0; ; i++ {
		if i > 10000 {
			return errors.New("pull never finished")
		}
		req, err := dev.d.PullRequest(s.ctx, 50)
		if err != nil {
			return err
		}
		resp, err := s.server.Pull(s.ctx, dev.d.ID(), req)
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeCursorInvalid {
			if err := dev.d.ResetCursor(s.ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if ok, err := dev.d.AcceptPull(s.ctx, resp); err != nil || !ok {
			return fmt.Errorf("page not applied (%v)", err)
		}
		if !resp.HasMore {
			return nil
		}
	}
}

// check holds the schedule's end state against the rules.
func (s *sim) check() error {
	ctx := s.ctx
	// Every mutation every device made was processed exactly once.
	for _, dev := range s.devices {
		n, err := dev.d.Pending(ctx)
		if err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("device %s still has %d queued mutations", short(dev.d.ID()), n)
		}
		info, err := s.server.LookupDevice(ctx, dev.d.ID())
		if err != nil {
			return err
		}
		counts := s.results[dev.d.ID()]
		for seq := int64(1); seq <= info.LastSeq; seq++ {
			if counts[seq] != 1 && counts[seq] != -1 {
				return fmt.Errorf("device %s mutation %d processed %d times", short(dev.d.ID()), seq, counts[seq])
			}
		}
		if int64(len(counts)) != info.LastSeq {
			return fmt.Errorf("device %s: %d mutations processed, last number %d", short(dev.d.ID()), len(counts), info.LastSeq)
		}
	}

	// The server holds the join of every applied mutation, nothing else.
	model := map[string]*replica.Row{}
	for _, a := range s.applied {
		w, err := replica.DecodeWrite(a.m.Kind, a.m.ID, a.m.Fields, replica.Key(a.m.Version, a.device))
		if err != nil {
			return fmt.Errorf("applied mutation does not decode: %v", err)
		}
		key := string(a.m.Kind) + "/" + a.m.ID.String()
		if row, ok := model[key]; ok {
			if _, err := replica.Join(row, w); err != nil {
				return fmt.Errorf("applied mutation does not join: %v", err)
			}
		} else {
			model[key] = w
		}
	}
	// A test's result left pending once: if an accepted mutation set a
	// known result, the server holds a known one.
	for _, a := range s.applied {
		if a.m.Kind != schema.KindInfectionTest {
			continue
		}
		w, _ := replica.DecodeWrite(a.m.Kind, a.m.ID, a.m.Fields, replica.Key(a.m.Version, a.device))
		if w.Key("result") == "" || !w.Record.(*schema.InfectionTest).Result.Settled() {
			continue
		}
		if got := model[string(a.m.Kind)+"/"+a.m.ID.String()].Record.(*schema.InfectionTest).Result; !got.Settled() {
			return fmt.Errorf("test %s: a known result was accepted, the merge holds %q", short(a.m.ID), got)
		}
	}
	serverRows := map[string]*replica.Row{}
	for _, unit := range []uuid.UUID{s.w.unitA, s.w.unitB} {
		rows, err := s.server.ScopeRows(ctx, unit)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if schema.IsFieldKind(r.Kind) {
				serverRows[string(r.Kind)+"/"+r.ID().String()] = r
			}
		}
	}
	if len(serverRows) != len(model) {
		return fmt.Errorf("server holds %d records, accepted mutations made %d", len(serverRows), len(model))
	}
	for key, want := range model {
		got, ok := serverRows[key]
		if !ok {
			return fmt.Errorf("accepted record %s missing on the server", key)
		}
		wantCopy := want.Clone()
		wantCopy.Seq = got.Seq
		if !got.Equal(wantCopy) {
			return fmt.Errorf("server row differs from the accepted mutations:\n got %v\nwant %v", got, wantCopy)
		}
	}

	// Every device holds exactly the server's state of its scope.
	encodingChecked := map[uuid.UUID]bool{}
	for _, dev := range s.devices {
		want, err := s.server.ScopeRows(ctx, dev.unit)
		if err != nil {
			return err
		}
		var got []*replica.Row
		for _, k := range append(append([]schema.Kind{}, schema.FieldKinds...), schema.ReferenceKinds...) {
			rows, err := dev.d.Rows(ctx, k)
			if err != nil {
				return err
			}
			got = append(got, rows...)
		}
		byKey := map[string]*replica.Row{}
		for _, r := range want {
			byKey[string(r.Kind)+"/"+r.ID().String()] = r
		}
		for _, r := range got {
			w, ok := byKey[string(r.Kind)+"/"+r.ID().String()]
			if !ok {
				return fmt.Errorf("device %s holds %s %s, not in its scope on the server", short(dev.d.ID()), r.Kind, r.ID())
			}
			if !r.Equal(w) || r.Seq != w.Seq {
				return fmt.Errorf("device %s differs from the server:\n device %v\n server %v", short(dev.d.ID()), r, w)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("device %s holds %d rows, its scope on the server %d", short(dev.d.ID()), len(got), len(want))
		}
		if !encodingChecked[dev.unit] { // devices of a unit have one scope
			encodingChecked[dev.unit] = true
			if err := checkPullEncoding(ctx, s.server, dev.d.ID(), want); err != nil {
				return fmt.Errorf("device %s: %v", short(dev.d.ID()), err)
			}
		}
	}
	return nil
}

// checkPullEncoding pulls the whole scope of device in small pages and
// checks that every change is, byte for byte, what ChangeOf makes of the
// server's row: pull pages are encoded straight from the stored columns,
// not through rows.
func checkPullEncoding(ctx context.Context, s simServer, device uuid.UUID, scope []*replica.Row) error {
	var cursor string
	var i int
	for {
		page, err := s.Pull(ctx, device, &wire.PullRequest{Versions: wire.Current(), Cursor: cursor, Limit: 7})
		if err != nil {
			return err
		}
		for _, got := range page.Changes {
			if i >= len(scope) {
				return fmt.Errorf("pull has more changes than the scope's %d rows", len(scope))
			}
			want := replica.ChangeOf(scope[i])
			if got.Kind != want.Kind || got.ID != want.ID || got.Seq != want.Seq || got.V != want.V ||
				!maps.Equal(got.CV, want.CV) || !bytes.Equal(got.Fields, want.Fields) {
				return fmt.Errorf("pulled change differs from its row:\n got %+v %s\nwant %+v %s", got, got.Fields, want, want.Fields)
			}
			i++
		}
		if !page.HasMore {
			break
		}
		cursor = page.Cursor
	}
	if i != len(scope) {
		return fmt.Errorf("pull has %d changes, the scope %d rows", i, len(scope))
	}
	return nil
}
