package brygga

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// SetTestResult sets the result of a performed infection test the unit
// holds, on this device or another of the unit's: when a laboratory's
// answer comes, or to correct a result. A known result (anything but
// pending) never goes back to pending: asking for it is ErrResultSettled,
// and a pending written elsewhere loses to a known result whatever the
// order the writes meet in (schema.MergeResult). Of two known results
// written on two devices before they sync, the later write wins. A result
// for a declined test is a *schema.FieldError with schema.RuleConsistency.
func (c *Client) SetTestResult(ctx context.Context, id uuid.UUID, result schema.TestResult) error {
	rec, err := c.Get(ctx, schema.KindInfectionTest, id)
	if err != nil {
		return err
	}
	test := rec.(*schema.InfectionTest)
	if !schema.TestResultEnum.Has(string(result)) {
		return &schema.FieldError{Kind: schema.KindInfectionTest, Field: "result", Rule: schema.RuleEnum, Message: fmt.Sprintf("%q is not a test_result code", result)}
	}
	if test.Result.Settled() && !result.Settled() {
		return fmt.Errorf("test %s is %s: %w", id, test.Result, ErrResultSettled)
	}
	test.Result = result
	return c.Correct(ctx, test, "result")
}

// PendingTests returns the unit's performed tests whose result is still
// pending, oldest first, voided ones left out: the answers the unit waits
// for. A device keeps them however old they are (Purge leaves them).
func (c *Client) PendingTests(ctx context.Context) ([]*schema.InfectionTest, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := dev.Select(ctx, schema.KindInfectionTest, `WHERE unit_id = ? AND voided = 0 AND result = ? ORDER BY occurred_at, id`,
		dev.UnitID().String(), string(schema.ResultPending))
	if err != nil {
		return nil, err
	}
	return records[*schema.InfectionTest](rows), nil
}

// ReportDeath records that the client with code died on date (a day in
// the statistics' zone, Europe/Stockholm; its time of day is ignored), as
// the service learnt it from source. Nothing of the client code's history
// changes. It returns the new record.
func (c *Client) ReportDeath(ctx context.Context, code schema.ClientCode, date time.Time, source schema.DeathSource) (*schema.Death, error) {
	y, m, d := date.In(statsZone).Date()
	rec := &schema.Death{Header: schema.Header{OccurredAt: time.Date(y, m, d, 0, 0, 0, 0, statsZone).UTC()},
		ClientCode: code, Source: source}
	if err := c.Add(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}
