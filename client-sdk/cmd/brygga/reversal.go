package main

import (
	"fmt"

	"github.com/brygga/brygga/schema"
)

func (c *cli) reversal(args []string) error {
	fs := c.flags("reversal")
	contact := fs.String("contact", "", "the contact's `id`, if the report came at one")
	used := fs.Bool("naloxone-used", false, "naloxone was used")
	doses := fs.Int("doses", 0, "doses of naloxone used")
	ems := fs.Bool("ems-called", false, "an ambulance was called")
	outcome := fs.String("outcome", string(schema.OutcomeNotReported), codes(schema.ReversalOutcomeEnum))
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, false); err != nil {
		return err
	}
	if _, err := parseAt(*at); err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec := &schema.Reversal{NaloxoneUsed: *used, DosesUsed: *doses, EMSCalled: *ems, Outcome: schema.ReversalOutcome(*outcome)}
	con, err := c.requireContact(cl, *contact, false)
	if err != nil {
		return err
	}
	if con != nil {
		rec.ContactID = con.ID
	}
	if rec.OccurredAt, err = occurredAt(*at, con); err != nil {
		return err
	}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}
