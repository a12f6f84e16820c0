package replica

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// DefaultMaxSkew is how far ahead of the server's clock a device's clock
// may be before the server re-stamps the device's writes.
const DefaultMaxSkew = 2 * time.Minute

// Errors of the server store.
var (
	// ErrUnknownDevice means the device is not enrolled.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrDeviceRevoked means the device was revoked.
	ErrDeviceRevoked = errors.New("device revoked")
)

// ServerConfig configures a ServerSync.
type ServerConfig struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew bounds device clocks, see ServerSync; 0 means DefaultMaxSkew.
	MaxSkew time.Duration
}

// ServerSync is the server's side of the sync, on any ServerEngine: it
// applies each pushed mutation exactly once, assigns every change a
// sequence number, serves pulls of a device's scope, takes records sent
// again after a restore, reference data and the server's own writes. It
// holds the merge (Join, the checks of scope and references); the engine
// only reads and writes. It is safe for concurrent use; this process's
// writes are serialised, and the engine serialises the taking of change
// numbers across processes.
//
// Clock policy. A device's hybrid logical clock orders its writes against
// everyone else's. The server observes device clocks, but a write stamped
// more than MaxSkew ahead of the server's own clock, or before the device
// was enrolled, is re-stamped with the server's clock instead: a tablet set
// a week ahead does not win every later conflict, and one whose clock was
// reset keeps its writes (a device persists its clock, so its stamps never
// go back).
type ServerSync struct {
	eng     ServerEngine
	now     func() time.Time
	maxSkew time.Duration
	id      uuid.UUID

	mu    sync.Mutex // serialises this process's writes
	clock *hlc.Clock

	queueMu sync.Mutex // guards queue, pushing and changed
	queue   []*pushJob // pushes waiting for mu
	// pushing holds the number of the first mutation of each push in
	// Push, by device; changed is closed, and replaced, when a batch of
	// pushes has applied something or a push has left Push.
	pushing map[uuid.UUID][]int64
	changed chan struct{}
}

// NewServerSync opens the sync of the store eng holds (ServerEngine.Open).
// Close closes eng.
func NewServerSync(ctx context.Context, eng ServerEngine, cfg ServerConfig) (*ServerSync, error) {
	s := &ServerSync{eng: eng, now: cfg.Now, maxSkew: cfg.MaxSkew}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxSkew == 0 {
		s.maxSkew = DefaultMaxSkew
	}
	id, last, err := eng.Open(ctx, s.now())
	if err != nil {
		return nil, fmt.Errorf("open server store: %w", err)
	}
	s.id = id
	s.clock = hlc.NewClock(s.now, last)
	return s, nil
}

// EnrolledDevice is a device as the server store knows it.
type EnrolledDevice struct {
	ID         uuid.UUID
	UnitID     uuid.UUID
	EnrolledAt time.Time
	RevokedAt  time.Time // zero unless revoked (lost or stolen)
	RetiredAt  time.Time // zero unless retired (taken out of service)
	LastSeq    int64     // last mutation number processed
	LastPushAt time.Time // zero if never
	LastPullAt time.Time // zero if never
	Protocol   int       // the protocol it last pushed with; 0 if never
	Rejected   int       // how many of its mutations were rejected
	Applied    int64     // how many of its mutations were applied
	Healed     int64     // how many records it sent again after a restore
	// EchoAfter is the highest mutation number whose echo (Row.Echo) the
	// device may lack: it reused a number (restored from a copy of its
	// replica), and records it pushed up to here are sent to it again.
	EchoAfter int64
	// EchoSpan is the latest run of change numbers that its pushes gave
	// to states it holds, which its pulls leave out whole.
	EchoSpan EchoSpan
}

// restoredSince reports whether cur, a cursor of this database's epoch,
// was made in a part of the history that the database does not hold: a
// mark it never had, or a number beyond where its mark's span ended or
// beyond maxSeq. Cursors without a mark are judged by maxSeq alone.
func restoredSince(ctx context.Context, tx ServerRead, cur wire.Cursor, maxSeq int64) (bool, error) {
	if cur.Seq > maxSeq {
		return true, nil
	}
	if cur.Mark == 0 {
		return false, nil
	}
	known, end, open, err := tx.Lineage(ctx, int64(cur.Mark))
	if err != nil {
		return false, err
	}
	if !known {
		return true, nil
	}
	return !open && cur.Seq > end, nil
}

// errRestored answers a pull of a device that has seen more of the
// server's history than the server holds.
var errRestored = &wire.Error{Code: wire.CodeServerRestored, Message: "this device has seen more of the server's history than the server holds: " +
	"its database was put back to an older copy; send the records again (heal), then pull from the start"}

// Close closes the store.
func (s *ServerSync) Close() error { return s.eng.Close() }

// ID returns the store's id, which cursors carry.
func (s *ServerSync) ID() uuid.UUID { return s.id }

// Clock returns the server's current hybrid logical clock reading.
func (s *ServerSync) Clock() hlc.Timestamp { return s.clock.Now() }

// deviceSource is what looks devices up: ServerWrite and ServerRead.
type deviceSource interface {
	Device(ctx context.Context, id uuid.UUID) (*EnrolledDevice, error)
}

// activeDevice returns the device, or a *wire.Error if it may not sync:
// a revoked device may do nothing, a retired one may push (what it holds)
// but not pull.
func activeDevice(ctx context.Context, q deviceSource, id uuid.UUID, pull bool) (*EnrolledDevice, error) {
	d, err := q.Device(ctx, id)
	if errors.Is(err, ErrUnknownDevice) {
		return nil, &wire.Error{Code: wire.CodeDeviceUnknown, Message: "the server does not know this device: " +
			"its database may have been restored from a copy older than the enrolment; enrol the device again with a new code, its records are kept and sent again"}
	}
	if err != nil {
		return nil, err
	}
	if !d.RevokedAt.IsZero() {
		return nil, &wire.Error{Code: wire.CodeDeviceRevoked, Message: "device was revoked: its data must be wiped"}
	}
	if pull && !d.RetiredAt.IsZero() {
		return nil, &wire.Error{Code: wire.CodeDeviceRetired, Message: "device was retired: it pulls nothing more; send what it holds, then wipe it"}
	}
	return d, nil
}

// prepared is a mutation as Push decodes it before it takes the lock.
type prepared struct {
	check *wire.Error // what Mutation.Check found, if anything
	w     *Row        // the write, its keys to be set; nil if err
	err   error       // why it could not be decoded
	hash  [16]byte    // mutationHash
	// invalid is, for a write that creates a record, what its validation
	// at now found: a create is validated alone, before the store's lock.
	invalid error
}

func prepare(m *wire.Mutation, now time.Time) prepared {
	p := prepared{hash: mutationHash(m)}
	if p.check = m.Check(); p.check == nil {
		p.w, p.err = decodeFields(m.Kind, m.ID, m.Fields)
	}
	if p.w != nil && p.w.IsCreate() {
		p.invalid = p.w.Record.Validate(now)
	}
	return p
}

// mutationHash identifies a mutation's content, to tell a retry from a
// different mutation that reuses a number.
func mutationHash(m *wire.Mutation) [16]byte {
	var buf [1024]byte // most mutations' content fits: no allocation
	b := buf[:0]
	b = append(b, m.Kind...)
	b = append(b, 0)
	b = append(b, m.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Version))
	b = append(b, m.Fields...)
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

// Push applies a device's mutations in one transaction, in order, each
// exactly once, and returns one result per mutation. A mutation numbered
// at or below the last one processed is a duplicate (if its content is the
// same) or rejected with CodeSeqReused (if not); a first mutation beyond
// the next expected number fails the whole push with CodeSeqGap. Invalid
// or out-of-scope mutations are rejected individually; they count as
// processed. Errors that concern the whole request are *wire.Error.
//
// Pushes that arrive while others are being applied wait, and are then
// applied together: in one transaction, each with its own outcome, and one
// commit for all of them (group commit), so that a thousand tablets
// syncing at once do not wait for a thousand commits.
func (s *ServerSync) Push(ctx context.Context, deviceID uuid.UUID, req *wire.PushRequest) (*wire.PushResponse, error) {
	// Decoding and checking a record by itself need no lock: pushes of
	// several devices decode at once, and only apply one after another.
	// Each is checked against the time it arrived.
	job := &pushJob{device: deviceID, req: req, pre: make([]prepared, len(req.Mutations)), now: s.now()}
	first := job.first()
	s.queueMu.Lock()
	if s.pushing == nil {
		s.pushing = map[uuid.UUID][]int64{}
	}
	s.pushing[deviceID] = append(s.pushing[deviceID], first)
	s.queueMu.Unlock()
	defer func() {
		s.queueMu.Lock()
		in := s.pushing[deviceID]
		if i := slices.Index(in, first); i >= 0 {
			in = slices.Delete(in, i, i+1)
		}
		if len(in) == 0 {
			delete(s.pushing, deviceID)
		} else {
			s.pushing[deviceID] = in
		}
		s.notifyLocked() // a push waiting for this one tries again
		s.queueMu.Unlock()
	}()
	for i := range req.Mutations {
		job.pre[i] = prepare(&req.Mutations[i], job.now)
	}
	// A device may send its next push while one is applied (the SDK keeps
	// several in flight, each on a connection of its own): one that
	// overtook the push before it finds a gap in the numbers. It waits for
	// that one and tries again: while a push of the device numbered before
	// it is here, until that one has been applied or has left, a while at
	// most (overtakeWait); while none is, a short while for it to arrive
	// (arrivalWait), trying again now and then, as another server on the
	// same database may apply it. Either is far cheaper than the device
	// learning of the gap and sending again all it had in flight. A push
	// whose predecessor was lost gets its seq_gap after arrivalWait.
	arrived := time.Now()
	for {
		s.queueMu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.queue = append(s.queue, job)
		s.queueMu.Unlock()
		s.apply(ctx, job)
		var we *wire.Error
		if !errors.As(job.err, &we) || we.Code != wire.CodeSeqGap || first == 0 {
			return job.resp, job.err
		}
		s.queueMu.Lock()
		ahead := slices.ContainsFunc(s.pushing[deviceID], func(f int64) bool { return f > 0 && f < first })
		s.queueMu.Unlock()
		wait := time.Until(arrived.Add(overtakeWait))
		if !ahead {
			wait = min(time.Until(arrived.Add(arrivalWait)), arrivalPoll)
		}
		if wait <= 0 {
			return job.resp, job.err
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			return job.resp, job.err
		}
		job.done, job.resp, job.err = false, nil, nil
	}
}

// How long a push that overtook another of its device waits: for one
// numbered before it that is here (overtakeWait), for one that is not yet
// (arrivalWait, looking again every arrivalPoll). Variables, so that tests
// can stretch them.
var (
	overtakeWait = 2 * time.Second
	arrivalWait  = 500 * time.Millisecond
	arrivalPoll  = 25 * time.Millisecond
)

// notifyLocked wakes the pushes waiting for another; queueMu is held.
func (s *ServerSync) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// apply applies job, leading a batch of the pushes waiting if no push
// before it took it along.
func (s *ServerSync) apply(ctx context.Context, job *pushJob) {
	s.mu.Lock()
	led := !job.done
	defer func() {
		s.mu.Unlock()
		// The pushes waiting for the writer wait for nothing else: the
		// one that leads them next (woken by the unlock, on this
		// goroutine's processor) runs before the answers of the batch
		// just applied are written, rather than after.
		if !led {
			return
		}
		s.queueMu.Lock()
		waiting := len(s.queue) > 0
		s.queueMu.Unlock()
		if waiting {
			runtime.Gosched()
		}
	}()
	if led { // no push before this one took it along: lead
		s.queueMu.Lock()
		batch := s.queue
		s.queue = nil
		s.queueMu.Unlock()
		// The batch is the waiting pushes' too: the leader's request
		// ending must not undo theirs. Without a cancellable context the
		// driver also spares a goroutine a statement to watch it; SQLite's
		// busy timeout bounds the waits.
		s.pushBatch(context.WithoutCancel(ctx), batch)
	}
}

// pushJob is one Push waiting to be applied.
type pushJob struct {
	device uuid.UUID
	req    *wire.PushRequest
	pre    []prepared
	now    time.Time // when it arrived
	// Set under ServerSync.mu by the push that applies it.
	done bool
	resp *wire.PushResponse
	err  error
}

// first is the number of the job's first mutation, 0 if it has none.
func (j *pushJob) first() int64 {
	if len(j.req.Mutations) == 0 {
		return 0
	}
	return j.req.Mutations[0].Seq
}

// pushBatch applies the pushes of batch in one transaction. A push refused
// as a whole is refused before it writes anything (pushOne checks the
// device and the numbering first), so it leaves no trace without a
// savepoint, which would cost SQLite a journal of every page the others
// change; a failure of the database fails them all (they are retried,
// exactly once as ever).
func (s *ServerSync) pushBatch(ctx context.Context, batch []*pushJob) {
	fail := func(err error) {
		for _, j := range batch {
			j.resp, j.err = nil, fmt.Errorf("push: %w", err)
		}
	}
	defer func() {
		for _, j := range batch {
			j.done = true
		}
	}()
	// A device with several pushes in flight (the SDK sends the next
	// while one is applied) has them applied in the order of their numbers
	// when they meet here, whatever order they arrived in.
	slices.SortStableFunc(batch, func(a, b *pushJob) int {
		if c := bytes.Compare(a.device[:], b.device[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.first(), b.first())
	})
	tx, seq, err := s.beginWrite(ctx)
	if err != nil {
		fail(err)
		return
	}
	defer tx.Rollback()
	if p, ok := tx.(ServerPreloader); ok {
		devices, ids := preload(batch)
		if err := p.Preload(ctx, devices, ids); err != nil {
			fail(err)
			return
		}
	}
	from := seq
	for _, j := range batch {
		resp, next, refused, err := s.pushOne(ctx, tx, j, seq)
		if err != nil {
			fail(err)
			return
		}
		if refused != nil {
			j.err = refused // refused before it wrote anything
		} else {
			j.resp, seq = resp, next
		}
	}
	if err := s.saveCounters(ctx, tx, from, seq); err != nil {
		fail(err)
		return
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return
	}
	clock := s.clock.Now()
	some := false
	for _, j := range batch {
		if j.resp != nil {
			j.resp.Clock = clock
			some = true
		}
	}
	if some {
		s.queueMu.Lock()
		s.notifyLocked()
		s.queueMu.Unlock()
	}
}

// pushOne applies one push inside tx, whose last change sequence number
// is seq, and returns its answer and the last sequence number after it; or
// why it is refused as a whole (a *wire.Error), always before it writes;
// or a failure of the database. It is applied at the time it arrived.
func (s *ServerSync) pushOne(ctx context.Context, tx ServerWrite, j *pushJob, seq int64) (*wire.PushResponse, int64, error, error) {
	req, deviceID, pre, now := j.req, j.device, j.pre, j.now
	dev, err := activeDevice(ctx, tx, deviceID, false)
	var we *wire.Error
	if errors.As(err, &we) {
		return nil, 0, err, nil
	}
	if err != nil {
		return nil, 0, nil, err
	}
	if len(req.Mutations) > 0 && req.Mutations[0].Seq > dev.LastSeq+1 {
		return nil, 0, &wire.Error{Code: wire.CodeSeqGap, Expected: dev.LastSeq + 1, Message: fmt.Sprintf(
			"first mutation is %d but the server has processed up to %d: send from %d", req.Mutations[0].Seq, dev.LastSeq, dev.LastSeq+1)}, nil
	}
	if s.plausible(req.Clock, dev, now) {
		s.clock.Observe(req.Clock)
	}

	a := &applier{s: s, tx: tx, dev: dev, now: now, seq: seq}
	resp := &wire.PushResponse{Versions: wire.Current(), Results: make([]wire.Result, 0, len(req.Mutations))}
	last := dev.LastSeq
	first := last + 1
	hashes := make([]byte, 0, 16*len(req.Mutations))
	rejections := map[int64]*wire.Error{}
	restamps := map[int64]hlc.Timestamp{}
	for i := range req.Mutations {
		m := &req.Mutations[i]
		hash := pre[i].hash
		if m.Seq <= last {
			res, err := a.replay(ctx, m, hash)
			if err != nil {
				return nil, 0, nil, err
			}
			resp.Results = append(resp.Results, res)
			continue
		}
		res, err := a.apply(ctx, m, &pre[i])
		if err != nil {
			return nil, 0, nil, fmt.Errorf("mutation %d: %w", m.Seq, err)
		}
		resp.Results = append(resp.Results, res)
		hashes = append(hashes, hash[:]...)
		if res.Error != nil {
			rejections[m.Seq] = res.Error
		}
		if res.Version != 0 {
			restamps[m.Seq] = res.Version
		}
		last = m.Seq
	}
	if last >= first {
		if err := tx.AddPush(ctx, deviceID, &PushRecord{First: first, Last: last, Hashes: hashes, Rejections: rejections, Restamps: restamps}); err != nil {
			return nil, 0, nil, err
		}
	}
	note := DevicePush{LastSeq: last, At: now, Protocol: req.Protocol, Rejected: len(rejections)}
	note.Applied = max(last-first+1, 0) - int64(len(rejections))
	if a.reused {
		// The device lacks what it pushed after the copy it was restored
		// from: its echoes up to the numbers processed before are sent
		// to it again.
		note.EchoAfter = dev.LastSeq
	}
	note.EchoSpan = dev.EchoSpan
	if span := echoSpanOf(resp.Results, seq, a.seq); span.To > 0 {
		// A span of echoes sent again (at or below EchoAfter) is one
		// its pulls cannot pass over: the new one starts afresh.
		if note.EchoSpan.First <= max(dev.EchoAfter, note.EchoAfter) {
			note.EchoSpan = EchoSpan{}
		}
		note.EchoSpan = note.EchoSpan.join(span)
	}
	if err := tx.NotePush(ctx, deviceID, note); err != nil {
		return nil, 0, nil, err
	}
	resp.LastSeq = last
	return resp, a.seq, nil, nil
}

// beginWrite begins a write transaction and returns it with the last
// change sequence number; the clock observes the clock the last write
// left. Both are read anew in every transaction (ServerEngine.BeginWrite),
// never kept between them.
func (s *ServerSync) beginWrite(ctx context.Context) (ServerWrite, int64, error) {
	tx, seq, last, err := s.eng.BeginWrite(ctx)
	if err != nil {
		return nil, 0, err
	}
	if last != 0 {
		s.clock.Observe(last)
	}
	return tx, seq, nil
}

// saveCounters stores the counters of a write transaction that began at
// sequence number from and ends at seq.
func (s *ServerSync) saveCounters(ctx context.Context, tx ServerWrite, from, seq int64) error {
	return tx.SaveCounters(ctx, seq, seq != from, s.clock.Last())
}

// jsonOrNull encodes m as JSON, or nil (NULL) if it is empty.
func jsonOrNull[V any](m map[int64]V) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// replay answers a mutation processed before: a duplicate if it was
// applied, the same rejection if it was rejected, and CodeSeqReused if its
// number was processed with other content.
func (a *applier) replay(ctx context.Context, m *wire.Mutation, hash [16]byte) (wire.Result, error) {
	p := a.pushed
	if p == nil || m.Seq < p.First || m.Seq > p.Last {
		var err error
		if p, err = a.tx.LastPush(ctx, a.dev.ID, m.Seq); err != nil {
			return wire.Result{}, err
		}
		if p == nil || m.Seq > p.Last {
			return wire.Result{Seq: m.Seq, Status: wire.Duplicate}, nil // processed before records were kept
		}
		a.pushed = p
	}
	i := (m.Seq - p.First) * 16
	if int64(len(p.Hashes)) < i+16 || [16]byte(p.Hashes[i:i+16]) != hash {
		a.reused = true
		a.dev.EchoAfter = max(a.dev.EchoAfter, a.dev.LastSeq)
		return rejected(m, &wire.Error{Code: wire.CodeSeqReused, Field: "seq", Message: fmt.Sprintf(
			"mutation %d was already processed with other content: the device's queue was restored or reset; re-enrol it", m.Seq)}), nil
	}
	e, ok := p.Rejections[m.Seq]
	if !ok {
		res := wire.Result{Seq: m.Seq, Status: wire.Duplicate, Version: p.Restamps[m.Seq]}
		if res.Version == 0 && schema.IsFieldKind(m.Kind) {
			var err error
			if res.Change, err = a.echoSeq(ctx, m); err != nil {
				return wire.Result{}, err
			}
		}
		return res, nil
	}
	res := rejected(m, e)
	if !schema.IsFieldKind(m.Kind) {
		return res, nil
	}
	if row, err := a.tx.Load(ctx, m.Kind, m.ID); err != nil {
		return wire.Result{}, err
	} else if row != nil && a.inScope(row) {
		c := ChangeOf(row)
		res.Current = &c
	}
	return res, nil
}

// plausible reports whether a device's timestamp is within the clock
// policy's bounds: not ahead of the server by more than MaxSkew, not
// before the device's enrolment.
func (s *ServerSync) plausible(ts hlc.Timestamp, dev *EnrolledDevice, now time.Time) bool {
	wall := ts.WallMillis()
	return wall <= now.Add(s.maxSkew).UnixMilli() && wall >= dev.EnrolledAt.Add(-s.maxSkew).UnixMilli()
}

// applier applies the mutations of one push.
type applier struct {
	s   *ServerSync
	tx  ServerWrite
	dev *EnrolledDevice
	now time.Time
	seq int64 // the last change sequence number assigned
	// staff, contacts and units seen in this push, by id: their unit
	units map[uuid.UUID]uuid.UUID
	// pushed is the record of the earlier push last replayed from
	pushed *PushRecord
	// reused says a mutation of the push reused a number.
	reused bool
}

// echoSeq returns the change sequence number of m's record if its state is
// still the echo of m (see Row.Echo), else 0: what a retried push answers
// for a mutation applied before, as the first answer did.
func (a *applier) echoSeq(ctx context.Context, m *wire.Mutation) (int64, error) {
	if m.Seq <= a.dev.EchoAfter {
		return 0, nil
	}
	return a.tx.EchoSeq(ctx, m.Kind, m.ID, a.dev.ID, m.Seq)
}

// appliedAt is the result of m applied at version ts: re-stamped if ts is
// not the mutation's own.
func appliedAt(m *wire.Mutation, ts hlc.Timestamp) wire.Result {
	r := wire.Result{Seq: m.Seq, Status: wire.Applied}
	if ts != m.Version {
		r.Version = ts
	}
	return r
}

func rejected(m *wire.Mutation, e *wire.Error) wire.Result {
	return wire.Result{Seq: m.Seq, Status: wire.Rejected, Error: e}
}

// apply applies one mutation. Rejections are results; errors are failures
// of the database.
func (a *applier) apply(ctx context.Context, m *wire.Mutation, p *prepared) (wire.Result, error) {
	if p.check != nil {
		return rejected(m, p.check), nil
	}
	ts := m.Version
	if a.s.plausible(ts, a.dev, a.now) {
		a.s.clock.Observe(ts)
	} else {
		ts = a.s.clock.Now()
	}
	if p.err != nil {
		return a.reject(ctx, m, nil, p.err)
	}
	w := p.w
	w.rekey(Key(ts, a.dev.ID))
	if w.IsCreate() {
		// Most mutations create a record: check it and insert it without
		// looking for an existing one first.
		if e, err := a.checkCreate(ctx, w); e != nil || err != nil {
			if err != nil {
				return wire.Result{}, err
			}
			return rejected(m, e), nil
		}
		if p.invalid != nil {
			return a.reject(ctx, m, nil, p.invalid)
		}
		if err := checkStatus(nil, w); err != nil {
			return a.reject(ctx, m, nil, err)
		}
		w.Seq = a.seq + 1
		// A create at the device's own version is the state the device
		// holds: its echo.
		w.Echo = 0
		if ts == m.Version {
			w.Echo = m.Seq
		}
		inserted, err := a.tx.Insert(ctx, w)
		if err != nil {
			return wire.Result{}, err
		}
		if inserted {
			a.seq++
			a.created(w)
			res := appliedAt(m, ts)
			if w.Echo != 0 {
				res.Change = w.Seq
			}
			return res, nil
		}
	}
	row, err := a.tx.Load(ctx, m.Kind, m.ID)
	if err != nil {
		return wire.Result{}, err
	}
	if row == nil || !a.inScope(row) {
		// Another unit's record is as good as absent.
		if row != nil && w.IsCreate() {
			return rejected(m, &wire.Error{Code: wire.CodeOutOfScope, Field: "id",
				Message: fmt.Sprintf("id %s is taken by a record outside the device's scope", m.ID)}), nil
		}
		return rejected(m, &wire.Error{Code: wire.CodeNotFound, Field: "id",
			Message: fmt.Sprintf("no %s %s to change", m.Kind, m.ID)}), nil
	}
	if e := a.checkUpdate(row, w); e != nil {
		return a.reject(ctx, m, row, e)
	}
	if err := checkStatus(row, w); err != nil {
		return a.reject(ctx, m, row, err)
	}
	merged := row.Clone()
	changed, err := Join(merged, w)
	if err != nil {
		return a.reject(ctx, m, row, err)
	}
	if !changed {
		return appliedAt(m, ts), nil
	}
	if err := merged.Record.Validate(a.now); err != nil {
		return a.reject(ctx, m, row, err)
	}
	a.seq++
	merged.Seq = a.seq
	// A change at the device's own version of a state the device holds
	// is what the device holds after it: a state that is the device's
	// echo (it made both, on nothing else), or the state the device made
	// the change on (its base), whoever made that.
	if ts == m.Version && (row.Echo > a.dev.EchoAfter && row.EchoOf() == a.dev.ID || m.Base > 0 && m.Base == row.Seq) {
		merged.Echo = m.Seq
		if schema.HeaderOf(row.Record).DeviceID != a.dev.ID {
			merged.EchoDevice = a.dev.ID
		}
	}
	if err := a.tx.Save(ctx, merged); err != nil {
		return wire.Result{}, err
	}
	res := appliedAt(m, ts)
	if merged.Echo != 0 {
		res.Change = merged.Seq
	}
	return res, nil
}

// created remembers the unit of a record created in this push, so that
// records pointing at it need not look it up.
func (a *applier) created(w *Row) {
	if w.Kind == schema.KindContact {
		if a.units == nil {
			a.units = map[uuid.UUID]uuid.UUID{}
		}
		a.units[w.ID()] = schema.HeaderOf(w.Record).UnitID
	}
}

// reject builds a rejection carrying the current state of the record.
func (a *applier) reject(ctx context.Context, m *wire.Mutation, current *Row, err error) (wire.Result, error) {
	res := wire.Result{Seq: m.Seq, Status: wire.Rejected}
	var fe *schema.FieldError
	var we *wire.Error
	switch {
	case errors.As(err, &fe):
		res.Error = wire.FromFieldError(fe)
	case errors.As(err, &we):
		res.Error = we
	default:
		return wire.Result{}, err
	}
	if current != nil {
		c := ChangeOf(current)
		res.Current = &c
	}
	return res, nil
}

// inScope reports whether the device may see row.
func (a *applier) inScope(row *Row) bool {
	return inScope(row, a.dev.UnitID)
}

func inScope(row *Row, unit uuid.UUID) bool {
	if rec, ok := row.Record.(*schema.Referral); ok {
		return rec.UnitID == unit || rec.ToUnitID == unit
	}
	if h := schema.HeaderOf(row.Record); h != nil {
		return h.UnitID == unit
	}
	return true // reference data
}

// receiverFields are the fields of a referral its receiving unit may write.
var receiverFields = map[string]bool{"status": true, "reopened": true}

// checkUpdate checks that the device may write w's fields of row.
func (a *applier) checkUpdate(row, w *Row) *wire.Error {
	h := schema.HeaderOf(row.Record)
	if h.UnitID == a.dev.UnitID {
		return nil
	}
	for i, f := range w.fields {
		if w.keys[i] != "" && f.Name != "id" && !receiverFields[f.Name] {
			return &wire.Error{Code: wire.CodeOutOfScope, Field: f.Name,
				Message: "the receiving unit may only change a referral's status"}
		}
	}
	return nil
}

// checkCreate checks a new record against the device and the reference
// data: it must belong to the device's unit and device, be made by staff of
// the unit, and point at records and units that exist.
func (a *applier) checkCreate(ctx context.Context, w *Row) (*wire.Error, error) {
	h := schema.HeaderOf(w.Record)
	if h.UnitID != a.dev.UnitID {
		return &wire.Error{Code: wire.CodeOutOfScope, Field: "unit_id", Message: "a device creates records of its own unit only"}, nil
	}
	if h.DeviceID != a.dev.ID {
		return &wire.Error{Code: wire.CodeOutOfScope, Field: "device_id", Message: "device_id is not the pushing device"}, nil
	}
	if e, err := a.refUnit(ctx, schema.KindStaff, h.StaffID, "staff_id", a.dev.UnitID); e != nil || err != nil {
		return e, err
	}
	switch rec := w.Record.(type) {
	case *schema.SyringeExchange:
		return a.refUnit(ctx, schema.KindContact, rec.ContactID, "contact_id", a.dev.UnitID)
	case *schema.NaloxoneHandout:
		return a.refUnit(ctx, schema.KindContact, rec.ContactID, "contact_id", a.dev.UnitID)
	case *schema.InfectionTest:
		return a.refUnit(ctx, schema.KindContact, rec.ContactID, "contact_id", a.dev.UnitID)
	case *schema.Vaccination:
		return a.refUnit(ctx, schema.KindContact, rec.ContactID, "contact_id", a.dev.UnitID)
	case *schema.Reversal:
		if rec.ContactID != uuid.Nil {
			return a.refUnit(ctx, schema.KindContact, rec.ContactID, "contact_id", a.dev.UnitID)
		}
	case *schema.Referral:
		if rec.ContactID != uuid.Nil {
			if e, err := a.refUnit(ctx, schema.KindContact, rec.ContactID, "contact_id", a.dev.UnitID); e != nil || err != nil {
				return e, err
			}
		}
		return a.refUnit(ctx, schema.KindUnit, rec.ToUnitID, "to_unit_id", uuid.Nil)
	}
	return nil, nil
}

// refUnit checks that the record of kind k with id exists and, unless
// unit is nil, belongs to unit.
func (a *applier) refUnit(ctx context.Context, k schema.Kind, id uuid.UUID, field string, unit uuid.UUID) (*wire.Error, error) {
	if a.units == nil {
		a.units = map[uuid.UUID]uuid.UUID{}
	}
	owner, ok := a.units[id]
	if !ok {
		var found bool
		var err error
		if owner, found, err = a.tx.Owner(ctx, k, id); err != nil {
			return nil, err
		}
		if !found {
			return &wire.Error{Code: wire.CodeNotFound, Field: field, Message: fmt.Sprintf("%s %s does not exist", field, id)}, nil
		}
		a.units[id] = owner
	}
	if unit != uuid.Nil && owner != unit {
		return &wire.Error{Code: wire.CodeNotFound, Field: field, Message: fmt.Sprintf("%s %s does not exist in the device's unit", field, id)}, nil
	}
	return nil, nil
}

// PutReference writes reference data (organisations, units, staff,
// services) as the server, after validating it.
func (s *ServerSync) PutReference(ctx context.Context, recs ...schema.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	tx, from, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("put reference: %w", err)
	}
	defer tx.Rollback()
	seq := from
	for _, rec := range recs {
		if schema.IsFieldKind(rec.Kind()) {
			return fmt.Errorf("put reference: %s are field records", rec.Kind())
		}
		if err := rec.Validate(now); err != nil {
			return fmt.Errorf("put reference: %w", err)
		}
		w := RowOf(rec, Key(s.clock.Now(), s.id))
		row, err := tx.Load(ctx, rec.Kind(), rec.RecordID())
		if err != nil {
			return fmt.Errorf("put reference: %w", err)
		}
		if row != nil {
			if _, err := Join(row, w); err != nil {
				return fmt.Errorf("put reference: %w", err)
			}
			w = row
		}
		seq++
		w.Seq = seq
		if err := tx.Save(ctx, w); err != nil {
			return fmt.Errorf("put reference: %w", err)
		}
	}
	if err := s.saveCounters(ctx, tx, from, seq); err != nil {
		return fmt.Errorf("put reference: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put reference: %w", err)
	}
	return nil
}

// Write applies a write made on the server itself, such as a manager's
// status update of a referral in the dashboard: stamped with the server's
// clock and the store's id as node, merged like any device's write, and
// pulled by devices like any other change. The caller checks who may
// write what. Errors: *schema.FieldError for an invalid write,
// ErrNotFound for a record that does not exist.
func (s *ServerSync) Write(ctx context.Context, k schema.Kind, id uuid.UUID, fields json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	tx, seq, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	w, err := DecodeWrite(k, id, fields, Key(s.clock.Now(), s.id))
	if err != nil {
		return err
	}
	row, err := tx.Load(ctx, k, id)
	if err != nil {
		return err
	}
	if row == nil {
		return fmt.Errorf("%s %s: %w", k, id, ErrNotFound)
	}
	row.Echo = 0 // a state the server made is no device's
	if err := checkStatus(row, w); err != nil {
		return err
	}
	changed, err := Join(row, w)
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	if err := row.Record.Validate(now); err != nil {
		return err
	}
	row.Seq = seq + 1
	if err := tx.Save(ctx, row); err != nil {
		return err
	}
	if err := s.saveCounters(ctx, tx, seq, seq+1); err != nil {
		return err
	}
	return tx.Commit()
}

// Get returns the row of kind k with id, or nil if there is none.
func (s *ServerSync) Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*Row, error) {
	return s.eng.Get(ctx, k, id)
}

// Pull returns the changes in a device's scope after the request's cursor:
// the device's unit's records, referrals to its unit and all reference
// data, oldest change first. A cursor that is malformed, of another
// database or ahead of this one's changes fails with CodeCursorInvalid.
func (s *ServerSync) Pull(ctx context.Context, deviceID uuid.UUID, req *wire.PullRequest) (*wire.PullResponse, error) {
	return s.pull(ctx, deviceID, req, &PageBuffers{}) // the page keeps its arrays
}

// PullAnswer is what AppendPull tells of the page it encoded.
type PullAnswer struct {
	Changes int    // how many
	Cursor  string // the page's cursor
	HasMore bool   // whether changes follow
}

// AppendPull is Pull, with the answer appended to dst as
// wire.AppendPullResponse encodes it: a server's pull without keeping the
// page beyond the call, whose arrays the next pages are read into.
func (s *ServerSync) AppendPull(ctx context.Context, deviceID uuid.UUID, req *wire.PullRequest, dst []byte) ([]byte, PullAnswer, error) {
	var chunks PageBuffers
	defer chunks.release()
	resp, err := s.pull(ctx, deviceID, req, &chunks)
	if err != nil {
		return dst, PullAnswer{}, err
	}
	return wire.AppendPullResponse(dst, resp), PullAnswer{Changes: len(resp.Changes), Cursor: resp.Cursor, HasMore: resp.HasMore}, nil
}

// pull is Pull, the changes' fields read into chunks.
func (s *ServerSync) pull(ctx context.Context, deviceID uuid.UUID, req *wire.PullRequest, chunks *PageBuffers) (*wire.PullResponse, error) {
	limit := req.Limit
	if limit <= 0 || limit > wire.MaxPullLimit {
		limit = wire.DefaultPullLimit
	}
	cur, err := wire.ParseCursor(req.Cursor)
	if err != nil {
		return nil, err
	}
	tx, err := s.eng.BeginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	defer tx.Rollback()
	// A retired device is told of a restore before it is told it is
	// retired: it may have pushed what the restored server lacks.
	dev, err := activeDevice(ctx, tx, deviceID, false)
	if err != nil {
		return nil, err
	}
	maxSeq, mark, err := tx.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	if req.Cursor != "" && cur.Store != s.id {
		return nil, &wire.Error{Code: wire.CodeCursorInvalid, Field: "cursor",
			Message: "cursor belongs to another or a restored database: start over with an empty cursor"}
	}
	if req.Acked > dev.LastSeq {
		return nil, errRestored
	}
	if req.Cursor != "" {
		if restored, err := restoredSince(ctx, tx, cur, maxSeq); err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		} else if restored {
			return nil, errRestored
		}
	}
	if !dev.RetiredAt.IsZero() {
		return nil, &wire.Error{Code: wire.CodeDeviceRetired, Message: "device was retired: it pulls nothing more; send what it holds, then wipe it"}
	}
	skip := EchoSkip{Device: deviceID, After: dev.EchoAfter, Acked: req.Acked}
	if span := dev.EchoSpan; span.To > 0 && span.First > dev.EchoAfter && span.Last <= req.Acked {
		skip.From, skip.To = span.From, span.To
	}
	changes, err := tx.Page(ctx, dev.UnitID, cur.Seq, skip, limit+1, chunks)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	resp := &wire.PullResponse{Versions: wire.Current(), Since: req.Cursor, Changes: changes}
	if len(changes) > limit {
		resp.Changes = changes[:limit]
		resp.HasMore = true
	}
	next := cur.Seq
	if n := len(resp.Changes); n > 0 {
		next = resp.Changes[n-1].Seq
	}
	if !resp.HasMore {
		next = max(next, maxSeq) // nothing in scope up to maxSeq is left
	}
	resp.Cursor = wire.Cursor{Store: s.id, Seq: next, Mark: uint64(mark)}.String()
	resp.Head = maxSeq
	resp.Clock = s.clock.Now()
	return resp, nil
}
