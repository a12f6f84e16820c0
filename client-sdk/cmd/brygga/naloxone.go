package main

import (
	"time"

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
	return c.recordAt(*contact, *at, nil, func(con *schema.Contact, when time.Time) schema.Record {
		return &schema.NaloxoneHandout{Header: schema.Header{OccurredAt: when}, ContactID: con.ID,
			Doses: *doses, TrainingGiven: *training, Reason: schema.NaloxoneReason(*reason)}
	})
}
