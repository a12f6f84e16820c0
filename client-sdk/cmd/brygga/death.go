package main

import (
	"fmt"
	"time"

	"github.com/brygga/brygga/schema"
)

// death records that a client died: the date the service knows and how
// it learnt it; nothing of the client's history changes.
func (c *cli) death(args []string) error {
	fs := c.flags("death")
	client := fs.String("client", "", "the client's `code`")
	date := fs.String("date", "", "the `date` of death as known, YYYY-MM-DD (Swedish time)")
	source := fs.String("source", "", "how the service learnt it: "+codes(schema.DeathSourceEnum))
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *client == "" || *date == "" || *source == "" {
		return usagef("--client, --date and --source are required")
	}
	code, err := parseClientCode(schema.KindDeath, *client)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return err
	}
	day, err := schema.ParseDate("date", *date, loc)
	if err != nil {
		return usagef("--date %q is not a date such as 2026-03-01", *date)
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec, err := cl.ReportDeath(c.ctx, code, day, schema.DeathSource(*source))
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}
