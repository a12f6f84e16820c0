package replica

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// ServerEngine is the storage a ServerSync applies and serves changes
// through: the records, the change sequence and its counters, the
// devices' sync state, the pushes processed and the cursors' lineage. The
// merge (Join, the applier's checks, the scope) is ServerSync's; an
// engine only reads and writes. Each engine (SQLite here, PostgreSQL in
// server/pgstore) implements it once. It is safe for concurrent use.
type ServerEngine interface {
	// Open readies the store at now and returns its epoch (created if
	// it has none) and the clock the last write left (0 if none). It
	// begins a new span of the change sequence's lineage: a new random
	// mark from the current change number on (see wire.Cursor.Mark).
	Open(ctx context.Context, now time.Time) (epoch uuid.UUID, clock hlc.Timestamp, err error)
	// BeginWrite begins a write transaction and returns it with the
	// last change number taken and the clock the last write left. No
	// other transaction takes change numbers until this one ends, so
	// numbers commit in the order they are taken.
	BeginWrite(ctx context.Context) (tx ServerWrite, seq int64, clock hlc.Timestamp, err error)
	// BeginRead begins a read-only transaction that sees one state of the
	// store throughout.
	BeginRead(ctx context.Context) (ServerRead, error)
	// Get returns the row of kind k with id, or nil if there is none.
	Get(ctx context.Context, k schema.Kind, id uuid.UUID) (*Row, error)
	// Close closes the storage.
	Close() error
}

// ServerWrite is a write transaction of a ServerEngine. It is used by one
// goroutine; Rollback after Commit does nothing.
type ServerWrite interface {
	// Device returns the device id; ErrUnknownDevice if there is none.
	Device(ctx context.Context, id uuid.UUID) (*EnrolledDevice, error)
	// Load returns the row of kind k with id with its echo, or nil if
	// there is none.
	Load(ctx context.Context, k schema.Kind, id uuid.UUID) (*Row, error)
	// Save writes r, inserting or replacing the stored row.
	Save(ctx context.Context, r *Row) error
	// Insert writes r unless a row with its id exists, and reports
	// whether it did. r does not change after.
	Insert(ctx context.Context, r *Row) (bool, error)
	// Owner returns the unit of the record of kind k with id (the id
	// itself for a unit), and whether the record exists: what a new
	// record's references are checked against.
	Owner(ctx context.Context, k schema.Kind, id uuid.UUID) (uuid.UUID, bool, error)
	// EchoSeq returns the change number of the record of kind k with id
	// if its state is the echo of the device's mutation numbered echo
	// (Row.Echo), else 0.
	EchoSeq(ctx context.Context, k schema.Kind, id, device uuid.UUID, echo int64) (int64, error)
	// LastPush returns the push of the device processed last whose first
	// mutation is numbered at most seq; nil if there is none.
	LastPush(ctx context.Context, device uuid.UUID, seq int64) (*PushRecord, error)
	// AddPush records a push of the device processed.
	AddPush(ctx context.Context, device uuid.UUID, p *PushRecord) error
	// NotePush records what a push of the device did (see DevicePush).
	NotePush(ctx context.Context, device uuid.UUID, p DevicePush) error
	// NoteHeal records that the device sent records again at now: its
	// last processed mutation number is last, healed more were healed.
	NoteHeal(ctx context.Context, device uuid.UUID, last, healed int64, now time.Time) error
	// SaveCounters stores the last change number taken, seq, if it
	// changed (changed), and the clock.
	SaveCounters(ctx context.Context, seq int64, changed bool, clock hlc.Timestamp) error
	// Commit commits the transaction.
	Commit() error
	// Rollback undoes the transaction, if it has not committed.
	Rollback() error
}

// ServerPreloader is a ServerWrite that reads ahead: before a batch of
// pushes is applied, Preload is given the devices that pushed and the
// records the batch will look at, by kind (the mutations' records and the
// staff, contacts and units that new records point at), so that it may
// read them all at once and answer Device, Load, Insert, Owner and
// EchoSeq of them without asking its database once each. An engine whose
// reads cost no round trip (SQLite) need not be one.
type ServerPreloader interface {
	Preload(ctx context.Context, devices []uuid.UUID, ids map[schema.Kind][]uuid.UUID) error
}

// preload returns the devices of batch and the records its pushes will
// look at, for ServerPreloader.Preload: each mutation's record and, of a
// record it creates, the records it points at (see applier.checkCreate).
func preload(batch []*pushJob) ([]uuid.UUID, map[schema.Kind][]uuid.UUID) {
	devices := make([]uuid.UUID, 0, len(batch))
	ids := map[schema.Kind][]uuid.UUID{}
	add := func(k schema.Kind, id uuid.UUID) {
		if id != uuid.Nil {
			ids[k] = append(ids[k], id)
		}
	}
	for _, j := range batch {
		devices = append(devices, j.device)
		for i := range j.req.Mutations {
			w := j.pre[i].w
			if w == nil {
				continue
			}
			add(w.Kind, w.ID())
			if !w.IsCreate() {
				continue
			}
			if h := schema.HeaderOf(w.Record); h != nil {
				add(schema.KindStaff, h.StaffID)
			}
			switch rec := w.Record.(type) {
			case *schema.SyringeExchange:
				add(schema.KindContact, rec.ContactID)
			case *schema.NaloxoneHandout:
				add(schema.KindContact, rec.ContactID)
			case *schema.InfectionTest:
				add(schema.KindContact, rec.ContactID)
			case *schema.Vaccination:
				add(schema.KindContact, rec.ContactID)
			case *schema.Reversal:
				add(schema.KindContact, rec.ContactID)
			case *schema.Referral:
				add(schema.KindContact, rec.ContactID)
				add(schema.KindUnit, rec.ToUnitID)
			}
		}
	}
	return devices, ids
}

// ServerRead is a read-only transaction of a ServerEngine, for a pull.
type ServerRead interface {
	// Device returns the device id; ErrUnknownDevice if there is none.
	Device(ctx context.Context, id uuid.UUID) (*EnrolledDevice, error)
	// Head returns the last change number taken and the lineage mark of
	// the current span.
	Head(ctx context.Context) (seq int64, mark int64, err error)
	// Lineage reports whether the lineage has a span of mark, and where
	// that span ends: the change number the next span began from, or
	// open if none began after it.
	Lineage(ctx context.Context, mark int64) (known bool, end int64, open bool, err error)
	// Page returns up to limit changes in unit's scope with seq > after,
	// but skip's, ordered by seq: a pull page, as ChangeOf makes them.
	// The changes' fields may be read into buffers of bufs.
	Page(ctx context.Context, unit uuid.UUID, after int64, skip EchoSkip, limit int, bufs *PageBuffers) ([]wire.Change, error)
	// Rollback ends the transaction.
	Rollback() error
}

// PushRecord is a push processed, as a store keeps it to answer retries:
// its mutations' numbers, their hashes (16 bytes each, in order), and
// which were rejected or re-stamped.
type PushRecord struct {
	First, Last int64
	Hashes      []byte
	Rejections  map[int64]*wire.Error
	Restamps    map[int64]hlc.Timestamp
}

// DevicePush is what one push changes of its device's sync state.
type DevicePush struct {
	LastSeq  int64     // the last mutation number processed
	At       time.Time // when the push arrived
	Protocol int       // the protocol it was sent with
	Rejected int       // how many of its mutations were rejected
	Applied  int64     // how many were applied
	// EchoAfter, if more than the device's, is its new EchoAfter.
	EchoAfter int64
	// EchoSpan is the device's echo span after the push. An engine whose
	// transactions may take change numbers between each other's keeps
	// none (EnrolledDevice.EchoSpan stays zero): a span is sure only where
	// a transaction's numbers follow each other with none between.
	EchoSpan EchoSpan
}

// EchoSpan is a run of change numbers, From to To, every one of them
// given by a device's pushes to the state of a record the device holds
// (Row.Echo) by one of its mutations First to Last. A record written later
// takes a number above To: the run never holds another state. The zero
// value is no span.
type EchoSpan struct {
	From, To    int64
	First, Last int64
}

// echoSpanOf returns the echo span of a push whose transaction had taken
// change numbers up to seq before it and up to last after it, and whose
// answers are results: the numbers it took, if every one is the change of
// a result (Result.Change), else none.
func echoSpanOf(results []wire.Result, seq, last int64) EchoSpan {
	if last <= seq {
		return EchoSpan{}
	}
	var span EchoSpan
	n := int64(0)
	for _, r := range results {
		if r.Change <= seq {
			continue // no echo, or a retry's of a number taken before
		}
		if span.First == 0 {
			span.First = r.Seq
		}
		span.Last = r.Seq
		n++
	}
	if n != last-seq {
		return EchoSpan{} // a number went to a state the device does not hold
	}
	span.From, span.To = seq+1, last
	return span
}

// join returns the span of s and next, the span of the numbers right after
// s's, as one; or next alone where they do not meet.
func (s EchoSpan) join(next EchoSpan) EchoSpan {
	if s.To == 0 || s.To+1 != next.From || s.Last >= next.First {
		return next
	}
	return EchoSpan{From: s.From, To: next.To, First: s.First, Last: next.Last}
}

// EchoSkip says which records a pull leaves out: those whose state a push
// of Device made, which it holds (Row.Echo), numbered above After and at
// most Acked, the highest mutation number the device has had answered.
// From and To, unless 0, are change numbers that every such record in
// them is (the device's echo span): the pull leaves them out whole. The
// zero value leaves out nothing.
type EchoSkip struct {
	Device       uuid.UUID
	After, Acked int64
	From, To     int64
}
