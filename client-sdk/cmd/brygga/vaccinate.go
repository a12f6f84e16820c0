package main

import (
	"fmt"

	"github.com/brygga/brygga/schema"
)

// vaccinate records a dose of a hepatitis vaccine given at a contact.
func (c *cli) vaccinate(args []string) error {
	fs := c.flags("vaccinate")
	contact := fs.String("contact", "", "the contact's `id`")
	client := fs.String("client", "", "the client's `code` (default the contact's)")
	vaccine := fs.String("vaccine", "", "the `vaccine`: "+codes(schema.VaccineEnum))
	dose := fs.Int("dose", 0, "the dose's `number` in its series, from 1")
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, true); err != nil {
		return err
	}
	if *vaccine == "" {
		return usagef("--vaccine is required: %s", codes(schema.VaccineEnum))
	}
	if _, err := parseAt(*at); err != nil {
		return err
	}
	code, err := parseClientCode(schema.KindVaccination, *client)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	con, err := c.requireContact(cl, *contact, true)
	if err != nil {
		return err
	}
	when, err := occurredAt(*at, con)
	if err != nil {
		return err
	}
	rec := &schema.Vaccination{Header: schema.Header{OccurredAt: when}, ContactID: con.ID, ClientCode: code,
		Vaccine: schema.Vaccine(*vaccine), Dose: *dose}
	if rec.ClientCode == "" {
		rec.ClientCode = con.ClientCode
	}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}
