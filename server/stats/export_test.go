package stats

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// FullCount counts the indicators of q from the record tables, as Compute
// does for a query cut in a zone the rollups are not kept in, whatever
// q's zone: the reference the rollups are tested against.
var FullCount = scan

// Repinned runs the audit's reasoning over p as it is published, as an
// outside reader and as each organisation's manager, and returns how many
// counts from 1 to k-1 it pins, withholding nothing.
func Repinned(p *Publication) int {
	n := 0
	for _, fam := range auditFamilies() {
		s := p.newSystem(fam)
		for _, o := range append([]int{-1}, p.insiders()...) {
			n += len(s.run(o))
		}
	}
	return n
}

// Publish sets the published value of a count cell of p, as the table
// could have given it for the cell's true count (which it must be in the
// preimage of): the cell of indicator ind in period (a period's key) and
// group of breakdown by. It returns the cell's true count.
func Publish(p *Publication, period string, by Dim, group string, ind Indicator, value int64) int64 {
	i := p.cell(p.grid.byKey[period], groupIndex(p, by, group))
	p.cells[ind].value[i] = value
	return p.cells[ind].n[i]
}

// TrueCount returns the true count behind a cell of p.
func TrueCount(p *Publication, period string, by Dim, group string, ind Indicator) int64 {
	return p.cells[ind].n[p.cell(p.grid.byKey[period], groupIndex(p, by, group))]
}

func groupIndex(p *Publication, by Dim, group string) int {
	if by == ByTotal || group == TotalGroup {
		return 0
	}
	for i := p.dims[by][0]; i < p.dims[by][1]; i++ {
		if p.groups[i].key == group {
			return i
		}
	}
	panic("no group " + group)
}

// Reaudit withholds nothing but the sums of too few records and audits p
// again.
func Reaudit(p *Publication) AuditStats {
	for ind, c := range p.cells {
		if kindOf(ind) != magnitudeKind {
			clear(c.withheld)
			clear(c.held)
		}
	}
	return p.audit(nil)
}

// SoleKey is the key a cell is frozen with when its records are all one
// organisation's.
var SoleKey = soleKey

// SumShown reports whether a sum of records contributing records, of cell
// key key, is published with threshold k.
var SumShown = sumShown

// RecordWithheld records the count cells p's audit withheld, as a build
// does.
func RecordWithheld(p *Publication, db DB) error {
	ctx := context.Background()
	tx, err := db.write(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := recordWithheld(ctx, tx, p.newlyWithheld()); err != nil {
		return err
	}
	return tx.Commit()
}

// KeptKey returns the key the publisher keeps for a record, and whether
// it has one.
func KeptKey(pb *Publisher, kind schema.Kind, id uuid.UUID) (uint32, bool) {
	k, ok := pb.keys.records[kind][id]
	return k, ok
}

// BuildUnrecorded builds the publication as BuildPublication does, from
// one snapshot, and returns it with the function that records what it
// fixed, which returns ErrRaced if another build recorded one of those
// cells first.
func BuildUnrecorded(db DB, now time.Time, k int64) (*Publication, func() error, error) {
	if err := ensureRollups(context.Background(), db); err != nil {
		return nil, nil, err
	}
	return buildUnrecorded(context.Background(), db, now, k, &keyCache{})
}

// ErrRaced is what recording a publication returns when another build
// recorded one of its cells first.
var ErrRaced = errRaced

// SetPageSize sets how many records a rebuild reads at a time where the
// dialect does not stream, and returns the function that sets it back.
func SetPageSize(n int) (restore func()) {
	was := pageSize
	pageSize = n
	return func() { pageSize = was }
}
