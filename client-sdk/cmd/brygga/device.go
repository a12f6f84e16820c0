package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// open opens the device's replica.
func (c *cli) open(opts *brygga.Options) (*brygga.Client, error) {
	return brygga.Open(c.ctx, c.db, opts)
}

// openEnrolled opens the device's replica and fails unless the device is
// enrolled.
func (c *cli) openEnrolled(opts *brygga.Options) (*brygga.Client, error) {
	cl, err := c.open(opts)
	if err != nil {
		return nil, err
	}
	if !cl.Enrolled() {
		cl.Close()
		return nil, fmt.Errorf("%s: %w", c.db, brygga.ErrNotEnrolled)
	}
	return cl, nil
}

// parseID parses the id given to the flag name; an empty value is the nil
// id unless required.
func parseID(name, s string, required bool) (uuid.UUID, error) {
	if s == "" {
		if required {
			return uuid.Nil, usagef("--%s is required", name)
		}
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, usagef("--%s %q is not an id", name, s)
	}
	return id, nil
}

// parseClientCode reads a client code as typed (forgiving case and
// look-alike characters) or as scanned from a card's QR code. An invalid
// code is a *schema.FieldError of the field client_code of kind.
func parseClientCode(kind schema.Kind, s string) (schema.ClientCode, error) {
	if s == "" {
		return "", nil
	}
	var code schema.ClientCode
	var err error
	if strings.HasPrefix(s, schema.ClientQRPrefix) {
		code, err = schema.ParseClientQR(s)
	} else {
		code, err = schema.ParseClientCode(s)
	}
	if err != nil {
		return "", &schema.FieldError{Kind: kind, Field: "client_code", Rule: schema.RuleClientCode, Message: err.Error()}
	}
	return code, nil
}

// atFlag defines the --at flag of a record made at a contact: by default
// it happened when the contact did, or now if there is none.
func atFlag(fs *flag.FlagSet) *string {
	return fs.String("at", "", "when it happened, RFC 3339 `time` (default the contact's time, or now)")
}

// occurredAt is when a record made at con happened: --at if given, else
// the contact's time (zero, meaning now, without a contact).
func occurredAt(at string, con *schema.Contact) (time.Time, error) {
	if at != "" || con == nil {
		return parseAt(at)
	}
	return con.OccurredAt, nil
}

// parseAt parses the --at flag: empty means now.
func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--at %q is not an RFC 3339 time such as 2025-03-01T14:30:00+01:00", s)
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// codes returns an enumeration's codes for a flag's help text.
func codes(e *schema.Enumeration) string { return strings.Join(e.Codes(), ", ") }

// recordAt adds the record build makes of the contact named by contact
// and the record's time (at, else the contact's), and prints its id. The
// contact's id, check (the command's own flags, nil for none) and at are
// checked, in that order, before the replica is opened.
func (c *cli) recordAt(contact, at string, check func() error, build func(con *schema.Contact, when time.Time) schema.Record) error {
	if _, err := parseID("contact", contact, true); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	if _, err := parseAt(at); err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	con, err := c.requireContact(cl, contact, true)
	if err != nil {
		return err
	}
	when, err := occurredAt(at, con)
	if err != nil {
		return err
	}
	rec := build(con, when)
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.RecordID())
	return nil
}

// requireContact parses the --contact flag and checks that the device
// holds the contact.
func (c *cli) requireContact(cl *brygga.Client, s string, required bool) (*schema.Contact, error) {
	id, err := parseID("contact", s, required)
	if err != nil || id == uuid.Nil {
		return nil, err
	}
	rec, err := cl.Get(c.ctx, schema.KindContact, id)
	if errors.Is(err, brygga.ErrLeaseExpired) {
		// Recording stays possible offline; the server checks the contact.
		return &schema.Contact{Header: schema.Header{ID: id}}, nil
	}
	if errors.Is(err, brygga.ErrNotFound) {
		return nil, fmt.Errorf("contact %s is not on this device: %w", id, err)
	}
	if err != nil {
		return nil, err
	}
	return rec.(*schema.Contact), nil
}

// ownUnit returns the device's unit from the reference data, or nil if
// the device has not received it yet.
func ownUnit(ctx context.Context, cl *brygga.Client) (*schema.Unit, error) {
	units, err := cl.Units(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range units {
		if u.ID == cl.UnitID() {
			return u, nil
		}
	}
	return nil, nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeFormat shows a time to the minute with its zone's abbreviation.
const timeFormat = "2006-01-02 15:04 MST"

// localTime returns t in the device's local zone, the zone shown.
func localTime(t time.Time) string { return t.Local().Format(timeFormat) }
