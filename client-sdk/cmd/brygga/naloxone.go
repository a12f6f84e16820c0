package main

import (
	"fmt"

	"github.com/brygga/brygga/schema"
)

func (c *cli) naloxone(args []string) error {
	fs := c.flags("naloxone")
	contact := fs.String("contact", "", "the contact's `id`")
	doses := fs.Int("doses", 0, "doses handed out (a kit of two is 2)")
	training := fs.Bool("training", false, "training was given")
	reason := fs.String("reason", string(schema.NaloxoneFirstKit), codes(schema.NaloxoneReasonEnum))
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, true); err != nil {
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
	con, err := c.requireContact(cl, *contact, true)
	if err != nil {
		return err
	}
	when, err := occurredAt(*at, con)
	if err != nil {
		return err
	}
	rec := &schema.NaloxoneHandout{Header: schema.Header{OccurredAt: when}, ContactID: con.ID,
		Doses: *doses, TrainingGiven: *training, Reason: schema.NaloxoneReason(*reason)}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}
