package replica_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// keyedKinds are the kinds whose records have a record key on the server
// (migrations 0010 and 0018); contacts' and deaths' client codes have a
// client key.
var keyedKinds = []schema.Kind{schema.KindContact, schema.KindSyringeExchange, schema.KindNaloxone, schema.KindReversal,
	schema.KindReferral, schema.KindInfectionTest, schema.KindVaccination, schema.KindDeath}

// serverKeys are the record keys (by kind/id) and client keys (by code) of
// a server database.
type serverKeys struct {
	records, clients map[string]int64
}

// checkKeys reads the keys of db and checks them against its records:
// every record of a keyed kind has a key, and every key names a record
// there is (the server deletes none); every client code of a contact or
// death has a key (a code a contact no longer has keeps its key); every
// key is in [0, 2^32), and every key of before is there unchanged. It
// returns the keys read.
func checkKeys(ctx context.Context, db *sql.DB, before serverKeys) (serverKeys, error) {
	now := serverKeys{records: map[string]int64{}, clients: map[string]int64{}}
	read := func(into map[string]int64, q string) error {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var key int64
			if err := rows.Scan(&id, &key); err != nil {
				return err
			}
			if key < 0 || key >= 1<<32 {
				return fmt.Errorf("key %d of %s out of range", key, id)
			}
			into[id] = key
		}
		return rows.Err()
	}
	if err := read(now.records, `SELECT kind || '/' || id, key FROM record_keys`); err != nil {
		return now, err
	}
	if err := read(now.clients, `SELECT client_code, key FROM client_keys`); err != nil {
		return now, err
	}
	names := func(q string) (map[string]bool, error) {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return nil, err
			}
			out[s] = true
		}
		return out, rows.Err()
	}
	records := map[string]bool{}
	for _, k := range keyedKinds {
		ids, err := names(fmt.Sprintf(`SELECT '%[1]s/' || id FROM %[1]s`, k))
		if err != nil {
			return now, err
		}
		for id := range ids {
			records[id] = true
			if _, ok := now.records[id]; !ok {
				return now, fmt.Errorf("record %s has no key", id)
			}
		}
	}
	for id := range now.records {
		if !records[id] {
			return now, fmt.Errorf("a key for %s, which is no record", id)
		}
	}
	codes, err := names(`SELECT client_code FROM contacts WHERE client_code IS NOT NULL UNION SELECT client_code FROM deaths`)
	if err != nil {
		return now, err
	}
	for c := range codes {
		if _, ok := now.clients[c]; !ok {
			return now, fmt.Errorf("client code %s has no key", c)
		}
	}
	for id, k := range before.records {
		if got, ok := now.records[id]; !ok || got != k {
			return now, fmt.Errorf("the key of %s was %d, is %d (there: %v)", id, k, got, ok)
		}
	}
	for c, k := range before.clients {
		if got, ok := now.clients[c]; !ok || got != k {
			return now, fmt.Errorf("the key of client code %s was %d, is %d (there: %v)", c, k, got, ok)
		}
	}
	return now, nil
}

// TestRecordKeysDrawnOnce runs random schedules against a server database
// on a file: devices of two units create records of every kind with and
// without client codes, correct contacts' codes and settings, void
// records, move referrals along (the receiving unit's device changing the
// sending unit's record), push alone and several at once (applied in one
// transaction), pull, and send their records again (heal), one a day ahead
// (its writes are re-stamped); the server changes referrals itself, is
// copied and put back to its copy. After every step every record and
// client code has a key, and no key drawn before has changed: on the copy
// put back, none the copy had.
//
// BRYGGA_KEY_SCHEDULES sets the number of schedules (default 60, 15 with
// -short) and BRYGGA_SEED the first seed.
func TestRecordKeysDrawnOnce(t *testing.T) {
	first, n := scheduleSeeds("BRYGGA_KEY_SCHEDULES", 60, 15)
	done := map[string]int{}
	for seed := first; seed < first+uint64(n); seed++ {
		if err := runKeySchedule(t, seed, done); err != nil {
			t.Fatalf("schedule %d: %v\nreplay: BRYGGA_SEED=%d BRYGGA_KEY_SCHEDULES=1 go test -run TestRecordKeysDrawnOnce ./sync/replica", seed, err, seed)
		}
	}
	t.Logf("done in %d schedules: %v", n, done)
	if n >= 10 {
		for _, what := range []string{"new client code", "pushes at once", "heal", "server write", "restore", "re-stamp"} {
			if done[what] == 0 {
				t.Errorf("no schedule did a %s", what)
			}
		}
	}
}

// keySim is one schedule of TestRecordKeysDrawnOnce.
type keySim struct {
	ctx     context.Context
	mu      sync.Mutex     // guards done
	done    map[string]int // what the schedules did, by what
	rng     *rand.Rand
	clock   *testClock
	w       world
	path    string
	s       *replica.ServerStore
	devices []*simDevice
	codes   []schema.ClientCode
	keys    serverKeys
	// copyPath is the server's copy, once made, and copyKeys its keys.
	copyPath string
	copyKeys serverKeys
	step     string
}

func runKeySchedule(t *testing.T, seed uint64, done map[string]int) (err error) {
	ctx := context.Background()
	dir := t.TempDir()
	k := &keySim{ctx: ctx, done: done, rng: rand.New(rand.NewPCG(seed, 0x6b657973)), clock: newTestClock(), w: newWorld(t),
		path: filepath.Join(dir, "server.db")}
	defer func() {
		if err != nil {
			err = fmt.Errorf("at %s: %w", k.step, err)
		}
	}()
	if k.s, err = replica.OpenServer(ctx, k.path, replica.ServerConfig{Now: k.clock.Now}); err != nil {
		return err
	}
	defer func() { k.s.Close() }()
	if err := k.s.PutReference(ctx, k.w.reference()...); err != nil {
		return err
	}
	for range 6 {
		code, err := schema.NewClientCode(rngReader{k.rng})
		if err != nil {
			return err
		}
		k.codes = append(k.codes, code)
	}
	for i := range 4 {
		unit, staff := k.w.unitA, k.w.staffA
		if i == 2 {
			unit, staff = k.w.unitB, k.w.staffB
		}
		id := uuid.Must(uuid.NewV7())
		if _, err := k.s.RegisterDevice(ctx, id, unit); err != nil {
			return err
		}
		sd := &simDevice{unit: unit, staff: staff, now: k.clock}
		if i == 3 {
			sd.offset = 24 * time.Hour // re-stamped by the server
		}
		if sd.d, err = replica.OpenDevice(ctx, filepath.Join(dir, id.String()+".db"), replica.DeviceConfig{ID: id, UnitID: unit, Now: sd.Now}); err != nil {
			return err
		}
		defer sd.d.Close()
		k.devices = append(k.devices, sd)
	}
	steps := 40 + k.rng.IntN(40)
	for i := range steps {
		k.clock.Advance(time.Duration(k.rng.IntN(5000)) * time.Millisecond)
		dev := k.devices[k.rng.IntN(len(k.devices))]
		var err error
		switch p := k.rng.IntN(100); {
		case p < 35:
			k.step = fmt.Sprintf("step %d: create", i)
			err = k.create(dev)
		case p < 50:
			k.step = fmt.Sprintf("step %d: correct", i)
			err = k.correct(dev)
		case p < 55:
			k.step = fmt.Sprintf("step %d: void", i)
			err = k.void(dev)
		case p < 62:
			k.step = fmt.Sprintf("step %d: move a referral", i)
			err = k.moveReferral(dev)
		case p < 72:
			k.step = fmt.Sprintf("step %d: push", i)
			err = k.push(dev)
		case p < 80:
			k.step = fmt.Sprintf("step %d: pushes at once", i)
			err = k.pushAll()
		case p < 88:
			k.step = fmt.Sprintf("step %d: pull", i)
			err = k.pull(dev)
		case p < 93:
			k.step = fmt.Sprintf("step %d: heal", i)
			err = k.heal(dev)
		case p < 96:
			k.step = fmt.Sprintf("step %d: server write", i)
			err = k.serverWrite()
		case p < 98:
			k.step = fmt.Sprintf("step %d: copy", i)
			err = k.backup(dir)
		default:
			k.step = fmt.Sprintf("step %d: restore", i)
			err = k.restore()
		}
		if err != nil {
			return err
		}
		if k.keys, err = checkKeys(ctx, k.s.DB().Reader(), k.keys); err != nil {
			return err
		}
	}
	k.step = "the end"
	for range 2 {
		for _, dev := range k.devices {
			if err := k.pushOut(dev); err != nil {
				return err
			}
			if err := k.pull(dev); err != nil {
				return err
			}
		}
	}
	if k.keys, err = checkKeys(ctx, k.s.DB().Reader(), k.keys); err != nil {
		return err
	}
	if len(k.keys.records) == 0 {
		return errors.New("the schedule stored no record")
	}
	return nil
}

// rngReader reads from a math/rand source, for client codes a seed
// replays.
type rngReader struct{ rng *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.rng.Uint32())
	}
	return len(p), nil
}

// code returns one of the schedule's client codes, or none.
func (k *keySim) code() schema.ClientCode {
	if k.rng.IntN(3) == 0 {
		return ""
	}
	return k.codes[k.rng.IntN(len(k.codes))]
}

func (k *keySim) create(dev *simDevice) error {
	now := dev.Now()
	header := func() schema.Header {
		return schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: dev.unit, DeviceID: dev.d.ID(), StaffID: dev.staff,
			OccurredAt: now.Add(-time.Duration(1+k.rng.IntN(3600)) * time.Second).Truncate(time.Millisecond)}
	}
	c := &schema.Contact{Header: header(), ClientCode: k.code(), Gender: schema.Gender(pick(k.rng, schema.GenderEnum.Codes())),
		AgeBand: schema.AgeBand(pick(k.rng, schema.AgeBandEnum.Codes())), Setting: schema.Setting(pick(k.rng, schema.SettingEnum.Codes())), AreaCode: "2380"}
	recs := []schema.Record{c}
	for range k.rng.IntN(4) {
		var rec schema.Record
		switch k.rng.IntN(7) {
		case 0:
			rec = &schema.SyringeExchange{Header: header(), ContactID: c.ID, SyringesOut: 1 + k.rng.IntN(50), SyringesReturned: k.rng.IntN(50)}
		case 1:
			rec = &schema.NaloxoneHandout{Header: header(), ContactID: c.ID, Doses: 1 + k.rng.IntN(2),
				Reason: schema.NaloxoneReason(pick(k.rng, schema.NaloxoneReasonEnum.Codes()))}
		case 2:
			rec = &schema.Reversal{Header: header(), ContactID: c.ID, NaloxoneUsed: true, DosesUsed: 1,
				Outcome: schema.ReversalOutcome(pick(k.rng, schema.ReversalOutcomeEnum.Codes()))}
		case 3:
			rec = &schema.Referral{Header: header(), ContactID: c.ID, ClientCode: c.ClientCode, Status: schema.StatusSent,
				Service: schema.ServiceCategory(pick(k.rng, schema.ServiceCategoryEnum.Codes())), ToUnitID: k.other(dev.unit)}
		case 4:
			rec = &schema.InfectionTest{Header: header(), ContactID: c.ID, ClientCode: c.ClientCode,
				Test: schema.TestKind(pick(k.rng, schema.TestKindEnum.Codes())), Outcome: schema.TestSampleSent, Result: schema.ResultPending}
		case 5:
			rec = &schema.Vaccination{Header: header(), ContactID: c.ID, Vaccine: schema.VaccineHepB, Dose: 1}
		default:
			code := k.code()
			if code == "" {
				code = k.codes[0]
			}
			rec = &schema.Death{Header: header(), ClientCode: code, Source: schema.DeathSource(pick(k.rng, schema.DeathSourceEnum.Codes()))}
		}
		recs = append(recs, rec)
	}
	for _, rec := range recs {
		if err := dev.d.Create(k.ctx, rec); err != nil {
			return fmt.Errorf("create %s: %w", rec.Kind(), err)
		}
	}
	return nil
}

func (k *keySim) other(unit uuid.UUID) uuid.UUID {
	if unit == k.w.unitA {
		return k.w.unitB
	}
	return k.w.unitA
}

// own returns a random record of kind kd of dev's unit that dev holds, or
// nil.
func (k *keySim) own(dev *simDevice, kd schema.Kind) (*replica.Row, error) {
	rows, err := dev.d.Rows(k.ctx, kd)
	if err != nil {
		return nil, err
	}
	var own []*replica.Row
	for _, r := range rows {
		if schema.HeaderOf(r.Record).UnitID == dev.unit {
			own = append(own, r)
		}
	}
	if len(own) == 0 {
		return nil, nil
	}
	return own[k.rng.IntN(len(own))], nil
}

// correct changes a contact's client code (to one of the schedule's, a
// new one, or none) or its setting.
func (k *keySim) correct(dev *simDevice) error {
	r, err := k.own(dev, schema.KindContact)
	if r == nil || err != nil {
		return err
	}
	c := r.Record.(*schema.Contact)
	switch k.rng.IntN(4) {
	case 0:
		c.Setting = schema.Setting(pick(k.rng, schema.SettingEnum.Codes()))
		return dev.d.Update(k.ctx, c, "setting")
	case 1:
		if c.ClientCode, err = schema.NewClientCode(rngReader{k.rng}); err != nil {
			return err
		}
		k.done["new client code"]++
	default:
		c.ClientCode = k.code()
	}
	return dev.d.Update(k.ctx, c, "client_code")
}

func (k *keySim) void(dev *simDevice) error {
	kd := keyedKinds[k.rng.IntN(len(keyedKinds))]
	r, err := k.own(dev, kd)
	if r == nil || err != nil {
		return err
	}
	return dev.d.Void(k.ctx, kd, r.ID())
}

// moveReferral moves on a referral to dev's unit, which the other unit
// made, as the receiving unit does.
func (k *keySim) moveReferral(dev *simDevice) error {
	rows, err := dev.d.Rows(k.ctx, schema.KindReferral)
	if err != nil {
		return err
	}
	var incoming []*schema.Referral
	for _, r := range rows {
		if ref := r.Record.(*schema.Referral); ref.ToUnitID == dev.unit {
			incoming = append(incoming, ref)
		}
	}
	if len(incoming) == 0 {
		return nil
	}
	ref := incoming[k.rng.IntN(len(incoming))]
	if ref.Status.Rank() >= schema.StatusAttended.Rank() {
		return nil
	}
	ref.Status = schema.StatusAttended
	return dev.d.Update(k.ctx, ref, "status", "reopened")
}

// push sends dev's next push and takes its answer.
func (k *keySim) push(dev *simDevice) error {
	req, err := dev.d.NextPush(k.ctx, 1+k.rng.IntN(20))
	if err != nil || req == nil {
		return err
	}
	return k.deliver(dev, req)
}

func (k *keySim) deliver(dev *simDevice, req *wire.PushRequest) error {
	resp, err := k.s.Push(k.ctx, dev.d.ID(), req)
	if resp != nil {
		for _, r := range resp.Results {
			if r.Version != 0 {
				k.mu.Lock()
				k.done["re-stamp"]++
				k.mu.Unlock()
			}
		}
	}
	if wire.ErrorCode(err) == wire.CodeSeqGap {
		var we *wire.Error
		errors.As(err, &we)
		return dev.d.SkipTo(k.ctx, we.Expected)
	}
	if err != nil {
		return err
	}
	return dev.d.AcceptPush(k.ctx, resp)
}

// pushAll sends every device's next push at once, so that the server
// applies those that meet in one transaction, of both units.
func (k *keySim) pushAll() error {
	reqs := make([]*wire.PushRequest, len(k.devices))
	for i, dev := range k.devices {
		var err error
		if reqs[i], err = dev.d.NextPush(k.ctx, 1+k.rng.IntN(20)); err != nil {
			return err
		}
	}
	errs := make([]error, len(k.devices))
	var wg sync.WaitGroup
	for i, dev := range k.devices {
		if reqs[i] == nil {
			continue
		}
		k.done["pushes at once"]++
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = k.deliver(dev, reqs[i])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pushOut pushes everything dev has queued.
func (k *keySim) pushOut(dev *simDevice) error {
	for range 1000 {
		req, err := dev.d.NextPush(k.ctx, wire.MaxMutations)
		if err != nil || req == nil {
			return err
		}
		if err := k.deliver(dev, req); err != nil {
			return err
		}
	}
	return errors.New("push never finished")
}

// pull pulls dev up to date.
func (k *keySim) pull(dev *simDevice) error {
	for range 1000 {
		req, err := dev.d.PullRequest(k.ctx, 50)
		if err != nil {
			return err
		}
		resp, err := k.s.Pull(k.ctx, dev.d.ID(), req)
		switch wire.ErrorCode(err) {
		case wire.CodeCursorInvalid:
			if err := dev.d.ResetCursor(k.ctx); err != nil {
				return err
			}
			continue
		case wire.CodeServerRestored:
			if err := k.heal(dev); err != nil {
				return err
			}
			if err := dev.d.ResetCursor(k.ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if ok, err := dev.d.AcceptPull(k.ctx, resp); err != nil || !ok {
			return fmt.Errorf("page not applied (%v)", err)
		}
		if !resp.HasMore {
			return nil
		}
	}
	return errors.New("pull never finished")
}

// heal sends every record dev holds, its unpushed writes' effects
// included, to the server again.
func (k *keySim) heal(dev *simDevice) error {
	acked, err := dev.d.AckedThrough(k.ctx)
	if err != nil {
		return err
	}
	for hc := (replica.HealCursor{}); ; {
		recs, next, err := dev.d.HealRecords(k.ctx, hc, 1+k.rng.IntN(30))
		if err != nil || len(recs) == 0 {
			return err
		}
		resp, err := k.s.Heal(k.ctx, dev.d.ID(), &wire.HealRequest{Versions: wire.Current(), AckedThrough: acked, Records: recs})
		if err != nil {
			return err
		}
		for _, r := range resp.Results {
			if r.Status == wire.Healed {
				k.done["heal"]++
			}
		}
		hc = next
	}
}

// serverWrite moves on a referral on the server, as a manager does in the
// dashboard.
func (k *keySim) serverWrite() error {
	for _, unit := range []uuid.UUID{k.w.unitA, k.w.unitB} {
		rows, err := k.s.ScopeRows(k.ctx, unit)
		if err != nil {
			return err
		}
		for _, r := range rows {
			ref, ok := r.Record.(*schema.Referral)
			if !ok || ref.Status.Rank() >= schema.StatusReceived.Rank() {
				continue
			}
			k.done["server write"]++
			return k.s.Write(k.ctx, schema.KindReferral, ref.ID, fmt.Appendf(nil, `{"status":"received","reopened":%d}`, ref.Reopened))
		}
	}
	return nil
}

// backup copies the server's database, unless a copy is kept.
func (k *keySim) backup(dir string) error {
	if k.copyPath != "" {
		return nil
	}
	k.copyPath = filepath.Join(dir, uuid.NewString()+".db")
	if _, err := k.s.Backup(k.ctx, k.copyPath); err != nil {
		return err
	}
	k.copyKeys = k.keys
	return nil
}

// restore puts the copy in the server database's place, and every device
// sends its records again: the keys are the copy's, and those of the
// records it lacks are drawn anew.
func (k *keySim) restore() error {
	if k.copyPath == "" {
		return nil
	}
	if err := k.s.Close(); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(k.path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := copyFile(k.path, k.copyPath); err != nil {
		return err
	}
	var err error
	if k.s, err = replica.OpenServer(k.ctx, k.path, replica.ServerConfig{Now: k.clock.Now}); err != nil {
		return err
	}
	k.keys, k.copyPath = k.copyKeys, ""
	k.done["restore"]++
	for _, dev := range k.devices {
		if err := k.heal(dev); err != nil {
			return err
		}
		if err := dev.d.ResetCursor(k.ctx); err != nil {
			return err
		}
	}
	return nil
}

// TestRecordKeysKeptFromOldVersion stores records in a database of the
// version before migration 0022, whose triggers drew their keys as they
// were inserted, and opens it: every key stays as it was drawn, the
// triggers are gone, and what is stored and changed from then on (an old
// contact's new client code, new records) is keyed by the server's write
// transactions.
func TestRecordKeysKeptFromOldVersion(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	w := newWorld(t)
	path := filepath.Join(t.TempDir(), "server.db")
	old, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.MigrateTo(ctx, old, schema.ServerDB, 21); err != nil {
		t.Fatal(err)
	}
	oldDevice := newID(t)
	at := clock.Now().Add(-time.Hour).Truncate(time.Millisecond)
	header := func() schema.Header {
		return schema.Header{ID: newID(t), UnitID: w.unitA, DeviceID: oldDevice, StaffID: w.staffA, OccurredAt: at}
	}
	codes := make([]schema.ClientCode, 3)
	for i := range codes {
		if codes[i], err = schema.NewClientCode(rngReader{rand.New(rand.NewPCG(uint64(i), 3))}); err != nil {
			t.Fatal(err)
		}
	}
	recs := w.reference()
	var contacts []uuid.UUID
	for i := range 30 {
		c := &schema.Contact{Header: header(), ClientCode: codes[i%3], Gender: schema.GenderWoman, AgeBand: schema.Age25to29,
			Setting: schema.SettingStreet, AreaCode: "2380"}
		if i%4 == 0 {
			c.ClientCode = ""
		}
		contacts = append(contacts, c.ID)
		recs = append(recs, c,
			&schema.SyringeExchange{Header: header(), ContactID: c.ID, SyringesOut: 10},
			&schema.NaloxoneHandout{Header: header(), ContactID: c.ID, Doses: 2, Reason: schema.NaloxoneReason(schema.NaloxoneReasonEnum.Codes()[0])})
	}
	recs = append(recs, &schema.Death{Header: header(), ClientCode: codes[1], Source: schema.DeathSource(schema.DeathSourceEnum.Codes()[0])})
	v := replica.Key(hlc.New(at.UnixMilli(), 0), oldDevice)
	for i, rec := range recs {
		var cols []string
		var args []any
		for _, f := range rec.Fields() {
			cols = append(cols, f.Name)
			args = append(args, f.SQLValue())
		}
		cols = append(cols, "v", "seq")
		args = append(args, v, i+1)
		q := fmt.Sprintf(`INSERT INTO %s (%s) VALUES (?%s)`, rec.Kind(), strings.Join(cols, ", "), strings.Repeat(", ?", len(cols)-1))
		if _, err := old.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('change_seq', ?)`, len(recs)); err != nil {
		t.Fatal(err)
	}
	before, err := checkKeys(ctx, old, serverKeys{})
	if err != nil {
		t.Fatalf("the old version's keys: %v", err)
	}
	if len(before.records) != 30*3+1 || len(before.clients) != 3 {
		t.Fatalf("the old version drew %d record keys and %d client keys", len(before.records), len(before.clients))
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := replica.OpenServer(ctx, path, replica.ServerConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, err := checkKeys(ctx, s.DB().Reader(), before)
	if err != nil {
		t.Fatalf("after migration: %v", err)
	}
	var triggers int
	if err := s.DB().Reader().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'
		AND (name LIKE 'record_keys%' OR name LIKE 'client_keys%')`).Scan(&triggers); err != nil {
		t.Fatal(err)
	}
	if triggers != 0 {
		t.Errorf("%d key triggers left", triggers)
	}

	d := MustOpenDevice(t, clock.Now, s, w.unitA)
	syncAll(t, s, d)
	row, err := d.Get(ctx, schema.KindContact, contacts[0])
	if err != nil || row == nil {
		t.Fatalf("the old contact on the device: %v %v", row, err)
	}
	c := row.Record.(*schema.Contact)
	if c.ClientCode, err = schema.NewClientCode(rngReader{rand.New(rand.NewPCG(9, 9))}); err != nil {
		t.Fatal(err)
	}
	if err := d.Update(ctx, c, "client_code"); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, newContact(t, w, d.ID(), clock.Now())); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s, d)
	after, err := checkKeys(ctx, s.DB().Reader(), keys)
	if err != nil {
		t.Fatalf("after new writes: %v", err)
	}
	if _, ok := after.clients[string(c.ClientCode)]; !ok || len(after.records) != len(before.records)+1 {
		t.Errorf("%d record keys after a contact more (%d before); the new client code keyed: %v", len(after.records), len(before.records), ok)
	}
}
