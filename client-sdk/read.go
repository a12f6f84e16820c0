package brygga

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// readable checks the offline lease: a device that has not synced for
// longer than the server allows refuses reads until it syncs.
func (c *Client) readable(ctx context.Context) (*replica.Device, error) {
	dev, err := c.device()
	if err != nil {
		return nil, err
	}
	lease, _ := dev.Meta(ctx, metaLease)
	last, _ := dev.Meta(ctx, metaLastSync)
	secs, _ := strconv.ParseInt(lease, 10, 64)
	at, err := time.Parse(time.RFC3339Nano, last)
	if secs > 0 && err == nil && c.now().Sub(at) > time.Duration(secs)*time.Second {
		return nil, ErrLeaseExpired
	}
	return dev, nil
}

// Get returns the record of kind k with id.
func (c *Client) Get(ctx context.Context, k schema.Kind, id uuid.UUID) (schema.Record, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	row, err := dev.Get(ctx, k, id)
	if err != nil {
		return nil, err
	}
	return row.Record, nil
}

func records[T schema.Record](rows []*replica.Row) []T {
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Record.(T))
	}
	return out
}

// ContactsOn returns the unit's contacts on the day of day (in the
// client's time zone), oldest first, voided ones left out.
func (c *Client) ContactsOn(ctx context.Context, day time.Time) ([]*schema.Contact, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	d := day.In(c.opts.Location)
	start := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, c.opts.Location)
	rows, err := dev.Select(ctx, schema.KindContact, `WHERE unit_id = ? AND occurred_at >= ? AND occurred_at < ? AND voided = 0 ORDER BY occurred_at, id`,
		dev.UnitID().String(), start.UnixMilli(), start.AddDate(0, 0, 1).UnixMilli())
	if err != nil {
		return nil, err
	}
	return records[*schema.Contact](rows), nil
}

// Today returns today's contacts of the unit.
func (c *Client) Today(ctx context.Context) ([]*schema.Contact, error) {
	return c.ContactsOn(ctx, c.now())
}

// Contacts returns the unit's contacts, newest first, at most limit,
// voided ones left out.
func (c *Client) Contacts(ctx context.Context, limit int) ([]*schema.Contact, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := dev.Select(ctx, schema.KindContact, `WHERE unit_id = ? AND voided = 0 ORDER BY occurred_at DESC, id LIMIT ?`, dev.UnitID().String(), limit)
	if err != nil {
		return nil, err
	}
	return records[*schema.Contact](rows), nil
}

// History is what the unit knows of one client code.
type History struct {
	Client       *schema.Client // nil if the code was not registered in the unit
	Contacts     []*schema.Contact
	Referrals    []*schema.Referral
	Tests        []*schema.InfectionTest
	Vaccinations []*schema.Vaccination
	// Deaths are the unit's reports of the client's death; the rest of the
	// history stays as it was.
	Deaths []*schema.Death
}

// ClientHistory returns one client code's history within the unit.
func (c *Client) ClientHistory(ctx context.Context, code string) (*History, error) {
	cc, err := schema.ParseClientCode(code)
	if err != nil {
		return nil, &schema.FieldError{Field: "client_code", Rule: schema.RuleClientCode, Message: err.Error()}
	}
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	h := &History{}
	unit := dev.UnitID().String()
	clients, err := dev.Select(ctx, schema.KindClient, `WHERE code = ? AND unit_id = ? AND voided = 0 ORDER BY occurred_at LIMIT 1`, string(cc), unit)
	if err != nil {
		return nil, err
	}
	if len(clients) > 0 {
		h.Client = clients[0].Record.(*schema.Client)
	}
	rows, err := dev.Select(ctx, schema.KindContact, `WHERE client_code = ? AND unit_id = ? AND voided = 0 ORDER BY occurred_at DESC`, string(cc), unit)
	if err != nil {
		return nil, err
	}
	h.Contacts = records[*schema.Contact](rows)
	if rows, err = dev.Select(ctx, schema.KindReferral, `WHERE client_code = ? AND unit_id = ? AND voided = 0 ORDER BY occurred_at DESC`, string(cc), unit); err != nil {
		return nil, err
	}
	h.Referrals = records[*schema.Referral](rows)
	if rows, err = dev.Select(ctx, schema.KindInfectionTest, `WHERE client_code = ? AND unit_id = ? AND voided = 0 ORDER BY occurred_at DESC`, string(cc), unit); err != nil {
		return nil, err
	}
	h.Tests = records[*schema.InfectionTest](rows)
	if rows, err = dev.Select(ctx, schema.KindVaccination, `WHERE client_code = ? AND unit_id = ? AND voided = 0 ORDER BY occurred_at DESC`, string(cc), unit); err != nil {
		return nil, err
	}
	h.Vaccinations = records[*schema.Vaccination](rows)
	if rows, err = dev.Select(ctx, schema.KindDeath, `WHERE client_code = ? AND unit_id = ? AND voided = 0 ORDER BY occurred_at DESC`, string(cc), unit); err != nil {
		return nil, err
	}
	h.Deaths = records[*schema.Death](rows)
	return h, nil
}

// IncomingReferrals returns the referrals addressed to the unit, newest
// first, voided ones left out.
func (c *Client) IncomingReferrals(ctx context.Context) ([]*schema.Referral, error) {
	return c.referrals(ctx, "to_unit_id")
}

// OutgoingReferrals returns the referrals the unit made, newest first.
func (c *Client) OutgoingReferrals(ctx context.Context) ([]*schema.Referral, error) {
	return c.referrals(ctx, "unit_id")
}

func (c *Client) referrals(ctx context.Context, col string) ([]*schema.Referral, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := dev.Select(ctx, schema.KindReferral, fmt.Sprintf(`WHERE %s = ? AND voided = 0 ORDER BY occurred_at DESC, id`, col), dev.UnitID().String())
	if err != nil {
		return nil, err
	}
	return records[*schema.Referral](rows), nil
}

// Units returns the region's active units, by name.
func (c *Client) Units(ctx context.Context) ([]*schema.Unit, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := dev.Select(ctx, schema.KindUnit, `WHERE active = 1 ORDER BY name, id`)
	return records[*schema.Unit](rows), err
}

// Services returns the active service catalogue.
func (c *Client) Services(ctx context.Context) ([]*schema.Service, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := dev.Select(ctx, schema.KindService, `WHERE active = 1 ORDER BY category, id`)
	return records[*schema.Service](rows), err
}

// CurrentStaff returns the staff member the device records for (see
// SetStaff), or the nil id if none is set.
func (c *Client) CurrentStaff() uuid.UUID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.staff
}

// StaffList returns the unit's active staff.
func (c *Client) StaffList(ctx context.Context) ([]*schema.Staff, error) {
	dev, err := c.readable(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := dev.Select(ctx, schema.KindStaff, `WHERE unit_id = ? AND active = 1 ORDER BY id`, dev.UnitID().String())
	return records[*schema.Staff](rows), err
}

// Status is what a worker sees of sync.
type Status struct {
	Enrolled  bool                `json:"enrolled"`
	DeviceID  uuid.UUID           `json:"device_id"`
	UnitID    uuid.UUID           `json:"unit_id"`
	Server    string              `json:"server,omitempty"`
	Pending   int                 `json:"pending"`
	LastSync  *time.Time          `json:"last_sync"`
	LastError string              `json:"last_error,omitempty"`
	Rejected  []replica.Rejection `json:"rejected"`
	// Retired says the device was retired: it records nothing more and
	// sends what it holds; once all is sent its replica is wiped (Sync
	// returns ErrRetired).
	Retired bool `json:"retired,omitempty"`
	// HealRefused counts the records the device sent again after a
	// restore of the server (or an enrolment again) that the server
	// refused; the device keeps them.
	HealRefused int `json:"heal_refused,omitempty"`
}

// DismissRejection removes a rejection from Status once the worker has
// dealt with it (recorded the record again, corrected, or let it go). The
// rejected mutation's fields are in the rejection (Rejection.Record).
// ErrNotFound if there is no rejection of mutation seq.
func (c *Client) DismissRejection(ctx context.Context, seq int64) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	return dev.DismissRejection(ctx, seq)
}

// Status returns the pending mutations, the last successful sync, the last
// error and the rejected records with their reasons and what they wrote.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	st := &Status{Rejected: []replica.Rejection{}}
	c.mu.Lock()
	if c.lastErr != nil {
		st.LastError = c.lastErr.Error()
	}
	c.mu.Unlock()
	dev, err := c.device()
	if err != nil {
		return st, nil
	}
	if st.LastError == "" {
		st.LastError, _ = dev.Meta(ctx, metaLastError)
	}
	st.Enrolled, st.DeviceID, st.UnitID = true, dev.ID(), dev.UnitID()
	st.Server, _ = dev.Meta(ctx, metaServer)
	if st.Pending, err = dev.Pending(ctx); err != nil {
		return nil, err
	}
	if last, _ := dev.Meta(ctx, metaLastSync); last != "" {
		if t, err := time.Parse(time.RFC3339Nano, last); err == nil {
			st.LastSync = &t
		}
	}
	st.Retired = dev.Sealed()
	if n, _ := dev.Meta(ctx, metaHealRefused); n != "" {
		st.HealRefused, _ = strconv.Atoi(n)
	}
	rej, err := dev.Rejections(ctx)
	if err != nil {
		return nil, err
	}
	if rej != nil {
		st.Rejected = rej
	}
	return st, nil
}
