package main

import (
	"time"

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
	var code schema.ClientCode
	check := func() (err error) {
		if *vaccine == "" {
			return usagef("--vaccine is required: %s", codes(schema.VaccineEnum))
		}
		code, err = parseClientCode(schema.KindVaccination, *client)
		return err
	}
	return c.recordAt(*contact, *at, check, func(con *schema.Contact, when time.Time) schema.Record {
		rec := &schema.Vaccination{Header: schema.Header{OccurredAt: when}, ContactID: con.ID, ClientCode: code,
			Vaccine: schema.Vaccine(*vaccine), Dose: *dose}
		if rec.ClientCode == "" {
			rec.ClientCode = con.ClientCode
		}
		return rec
	})
}
