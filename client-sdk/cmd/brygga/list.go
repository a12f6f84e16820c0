package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

func (c *cli) list(args []string) error {
	fs := c.flags("list")
	asJSON := fs.Bool("json", false, "print JSON")
	incoming := fs.Bool("incoming", false, "referrals: those addressed to the unit instead of those it made")
	limit := fs.Int("limit", 100, "contacts: the most to list, newest first")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !slices.Contains([]string{"contacts", "referrals", "units", "pending-tests"}, pos[0]) {
		return usagef("list needs one of: contacts, referrals, units, pending-tests")
	}
	if *limit <= 0 {
		return usagef("--limit must be positive")
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	units, err := cl.Units(c.ctx)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "contacts":
		recs, err := cl.Contacts(c.ctx, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, recs)
		}
		printContacts(c.stdout, recs)
	case "referrals":
		var recs []*schema.Referral
		if *incoming {
			recs, err = cl.IncomingReferrals(c.ctx)
		} else {
			recs, err = cl.OutgoingReferrals(c.ctx)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, recs)
		}
		printReferrals(c.stdout, recs, units, *incoming)
	case "pending-tests":
		recs, err := cl.PendingTests(c.ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, recs)
		}
		printPendingTests(c.stdout, recs)
	case "units":
		services, err := cl.Services(c.ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, map[string]any{"units": units, "services": services})
		}
		tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "UNIT ID\tAREA\tNAME\tSERVICES\t")
		for _, u := range units {
			var cats []string
			for _, s := range services {
				if s.UnitID == u.ID {
					cats = append(cats, string(s.Category))
				}
			}
			own := ""
			if u.ID == cl.UnitID() {
				own = "(this device's unit)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.AreaCode, u.Name, orDash(strings.Join(cats, ",")), own)
		}
		return tw.Flush()
	}
	return nil
}

// printContacts prints contacts a line each under a header, or says
// there are none.
func printContacts(w io.Writer, recs []*schema.Contact) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no contacts")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTACT ID\tWHEN\tSETTING\tGENDER\tAGE BAND\tAREA\tCLIENT\tSUBSTANCE")
	for _, r := range recs {
		client := string(r.ClientCode)
		if client == "" {
			client = "anonymous"
		}
		voided := ""
		if r.Voided {
			voided = "\tvoided"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n", r.ID, localTime(r.OccurredAt),
			r.Setting, r.Gender, r.AgeBand, r.AreaCode, client, orDash(string(r.Substance)), voided)
	}
	tw.Flush()
}

// printReferrals prints referrals a line each under a header, or says
// there are none.
func printReferrals(w io.Writer, recs []*schema.Referral, units []*schema.Unit, incoming bool) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no referrals")
		return
	}
	name := func(id uuid.UUID) string {
		for _, u := range units {
			if u.ID == id {
				return u.Name
			}
		}
		return id.String()
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if incoming {
		fmt.Fprintln(tw, "REFERRAL ID\tWHEN\tSERVICE\tFROM\tSTATUS\tCLIENT")
	} else {
		fmt.Fprintln(tw, "REFERRAL ID\tWHEN\tSERVICE\tTO\tSTATUS\tCLIENT")
	}
	for _, r := range recs {
		other := name(r.ToUnitID)
		if incoming {
			other = name(r.UnitID)
		}
		status := string(r.Status)
		if r.Reopened > 0 {
			status += fmt.Sprintf(" (reopened %d)", r.Reopened)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, localTime(r.OccurredAt),
			r.Service, other, status, orDash(string(r.ClientCode)))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printPendingTests prints the tests that wait for their result, a line
// each under a header, or says there are none.
func printPendingTests(w io.Writer, recs []*schema.InfectionTest) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no tests wait for a result")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST ID\tWHEN\tTEST\tOUTCOME\tCLIENT")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, localTime(r.OccurredAt), r.Test, r.Outcome, orDash(string(r.ClientCode)))
	}
	tw.Flush()
}
