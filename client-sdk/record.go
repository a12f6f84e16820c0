package brygga

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// SetStaff sets the staff member the device records for from now on: one
// of the unit's staff, as the reference data lists them.
func (c *Client) SetStaff(ctx context.Context, id uuid.UUID) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	row, err := dev.Get(ctx, schema.KindStaff, id)
	if err != nil {
		return fmt.Errorf("staff %s: %w", id, err)
	}
	if st := row.Record.(*schema.Staff); st.UnitID != dev.UnitID() || !st.Active {
		return fmt.Errorf("staff %s is not active staff of the unit: %w", id, ErrNotFound)
	}
	if err := dev.SetMeta(ctx, metaStaff, id.String()); err != nil {
		return err
	}
	c.mu.Lock()
	c.staff = id
	c.mu.Unlock()
	return nil
}

// Add records a new field record: a *schema.Contact, *schema.SyringeExchange,
// *schema.NaloxoneHandout, *schema.Reversal, *schema.Referral,
// *schema.InfectionTest, *schema.Vaccination, *schema.Death or
// *schema.Client. What the header leaves out is filled in: a new UUIDv7
// id, the device's unit and id, the current staff member (SetStaff) and,
// for occurred_at, now. A client code typed the forgiving way
// (schema.ParseClientCode) is written in its canonical form.
//
// A contact with a client code takes what it leaves empty of its gender
// and age band from the client (ClientAttributes): the client's gender,
// and the age band of the client's birth year at the contact's time, or
// the client's age band. A value given, schema.GenderNotStated and
// schema.AgeNotStated included, is kept. If the device does not hold the
// client (its record may still be on another device), what is left empty
// is recorded as not stated. The contact keeps these attributes when the
// client's are corrected later: correct the contact itself to change its
// statistics.
//
// A validation failure is a *schema.FieldError (errors.Is ErrInvalid)
// that names the field and the rule.
func (c *Client) Add(ctx context.Context, rec schema.Record) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	h := schema.HeaderOf(rec)
	if h == nil {
		return fmt.Errorf("%s are reference data, written on the server", rec.Kind())
	}
	if h.ID == uuid.Nil {
		if h.ID, err = uuid.NewV7(); err != nil {
			return err
		}
	}
	if h.UnitID == uuid.Nil {
		h.UnitID = dev.UnitID()
	}
	if h.DeviceID == uuid.Nil {
		h.DeviceID = dev.ID()
	}
	if h.StaffID == uuid.Nil {
		c.mu.Lock()
		h.StaffID = c.staff
		c.mu.Unlock()
		if h.StaffID == uuid.Nil {
			return &schema.FieldError{Kind: rec.Kind(), Field: "staff_id", Rule: schema.RuleRequired, Message: "no staff member set: call SetStaff"}
		}
	}
	if h.OccurredAt.IsZero() {
		h.OccurredAt = c.now().UTC().Truncate(time.Millisecond)
	}
	switch r := rec.(type) {
	case *schema.Contact:
		r.ClientCode = canonical(r.ClientCode)
	case *schema.Referral:
		r.ClientCode = canonical(r.ClientCode)
	case *schema.InfectionTest:
		r.ClientCode = canonical(r.ClientCode)
	case *schema.Vaccination:
		r.ClientCode = canonical(r.ClientCode)
	case *schema.Death:
		r.ClientCode = canonical(r.ClientCode)
	}
	if con, ok := rec.(*schema.Contact); ok && con.ClientCode != "" && (con.Gender == "" || con.AgeBand == "") {
		cl, err := clientByCode(ctx, dev, con.ClientCode)
		if err != nil {
			return err
		}
		gender, band := attributesAt(cl, con.OccurredAt)
		if con.Gender == "" {
			con.Gender = gender
		}
		if con.AgeBand == "" {
			con.AgeBand = band
		}
	}
	if err := dev.Create(ctx, rec); err != nil {
		return err
	}
	c.written()
	return nil
}

// NewClient registers a new pseudonymous client with a random client code
// (for the card) and returns it. Give the birth year or the age band, or
// neither.
func (c *Client) NewClient(ctx context.Context, gender schema.Gender, birthYear int, band schema.AgeBand) (*schema.Client, error) {
	code, err := schema.NewClientCode(rand.Reader)
	if err != nil {
		return nil, err
	}
	cl := &schema.Client{Code: code, Gender: gender, BirthYear: birthYear, AgeBand: band}
	if err := c.Add(ctx, cl); err != nil {
		return nil, err
	}
	return cl, nil
}

// Correct writes the named fields of rec, a record the device holds, as a
// correction.
func (c *Client) Correct(ctx context.Context, rec schema.Record, fields ...string) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	if err := dev.Update(ctx, rec, fields...); err != nil {
		return err
	}
	c.written()
	return nil
}

// Void marks a record as entered by mistake.
func (c *Client) Void(ctx context.Context, k schema.Kind, id uuid.UUID) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	if err := dev.Void(ctx, k, id); err != nil {
		return err
	}
	c.written()
	return nil
}

// SetReferralStatus moves a referral along its lifecycle, as its receiving
// unit does. A status before the current one is ErrStatusBackwards: reopen
// the referral instead. Closing a referral that was not attended is a
// *schema.FieldError with schema.RuleTransition: a closed referral is one
// that was attended.
func (c *Client) SetReferralStatus(ctx context.Context, id uuid.UUID, status schema.ReferralStatus) error {
	ref, err := c.referral(ctx, id)
	if err != nil {
		return err
	}
	if status.Rank() < 0 {
		return &schema.FieldError{Kind: schema.KindReferral, Field: "status", Rule: schema.RuleEnum, Message: fmt.Sprintf("%q is not a referral status", status)}
	}
	if status.Rank() < ref.Status.Rank() {
		return fmt.Errorf("referral %s is %s: %w", id, ref.Status, ErrStatusBackwards)
	}
	ref.Status = status
	return c.Correct(ctx, ref, "status", "reopened")
}

// ReopenReferral reopens a referral: its status goes back to sent.
func (c *Client) ReopenReferral(ctx context.Context, id uuid.UUID) error {
	ref, err := c.referral(ctx, id)
	if err != nil {
		return err
	}
	ref.Reopened++
	ref.Status = schema.StatusSent
	return c.Correct(ctx, ref, "status", "reopened")
}

func (c *Client) referral(ctx context.Context, id uuid.UUID) (*schema.Referral, error) {
	rec, err := c.Get(ctx, schema.KindReferral, id)
	if err != nil {
		return nil, err
	}
	return rec.(*schema.Referral), nil
}
