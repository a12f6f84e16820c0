package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

func (c *cli) refer(args []string) error {
	fs := c.flags("refer")
	service := fs.String("service", "", "service `category`: "+codes(schema.ServiceCategoryEnum))
	to := fs.String("to", "", "the receiving unit's `id` (default the only other unit offering the service)")
	contact := fs.String("contact", "", "the contact's `id` the referral was made at")
	client := fs.String("client", "", "the client's `code` (default the contact's)")
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseAt(*at); err != nil {
		return err
	}
	if *service == "" {
		return usagef("--service is required: %s", codes(schema.ServiceCategoryEnum))
	}
	toID, err := parseID("to", *to, false)
	if err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, false); err != nil {
		return err
	}
	code, err := parseClientCode(schema.KindReferral, *client)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec := &schema.Referral{Service: schema.ServiceCategory(*service), ClientCode: code, Status: schema.StatusSent}
	con, err := c.requireContact(cl, *contact, false)
	if err != nil {
		return err
	}
	if con != nil {
		rec.ContactID = con.ID
		if rec.ClientCode == "" {
			rec.ClientCode = con.ClientCode
		}
	}
	if rec.OccurredAt, err = occurredAt(*at, con); err != nil {
		return err
	}
	units, err := cl.Units(c.ctx)
	if errors.Is(err, brygga.ErrLeaseExpired) && toID != uuid.Nil {
		// Recording stays possible offline; the server checks the unit.
		units, err = nil, nil
	}
	if err != nil {
		return err
	}
	if toID == uuid.Nil {
		if toID, err = c.serviceUnit(cl, units, rec.Service); err != nil {
			return err
		}
	} else if units != nil && !slices.ContainsFunc(units, func(u *schema.Unit) bool { return u.ID == toID }) {
		return fmt.Errorf("unit %s is not an active unit in the reference data (%s list units): %w", toID, c.invocation(), brygga.ErrNotFound)
	}
	rec.ToUnitID = toID
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}

// serviceUnit returns the only unit other than the device's own that
// offers the service category, or a usage error naming the choices.
func (c *cli) serviceUnit(cl *brygga.Client, units []*schema.Unit, cat schema.ServiceCategory) (uuid.UUID, error) {
	services, err := cl.Services(c.ctx)
	if err != nil {
		return uuid.Nil, err
	}
	var ids []uuid.UUID
	for _, s := range services {
		if s.Category == cat && s.UnitID != cl.UnitID() && !slices.Contains(ids, s.UnitID) {
			ids = append(ids, s.UnitID)
		}
	}
	if len(ids) == 1 {
		return ids[0], nil
	}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		name := id.String()
		for _, u := range units {
			if u.ID == id {
				name += " (" + u.Name + ")"
			}
		}
		names = append(names, name)
	}
	if len(ids) == 0 {
		return uuid.Nil, usagef("--to is required: no other unit lists the service %q (%s list units)", cat, c.invocation())
	}
	return uuid.Nil, usagef("--to is required: %d units offer %q: %s", len(ids), cat, strings.Join(names, ", "))
}
