package main

import (
	"fmt"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/brygga/brygga/schema"
)

func (c *cli) client(args []string) error {
	if len(args) == 0 || (args[0] != "new" && args[0] != "show") {
		return usagef("client needs a subcommand: new or show")
	}
	if args[0] == "show" {
		return c.clientShow(args[1:])
	}
	fs := c.flags("client new")
	gender := fs.String("gender", string(schema.GenderNotStated), codes(schema.GenderEnum))
	birth := fs.Int("birth-year", 0, "the client's birth `year`")
	band := fs.String("age-band", "", "the client's age band, instead of the birth year: "+codes(schema.AgeBandEnum))
	qr := fs.Bool("qr", false, "also draw the card's QR code")
	asJSON := fs.Bool("json", false, "print the new client record as JSON")
	if err := parseNone(fs, args[1:]); err != nil {
		return err
	}
	if *birth != 0 && *band != "" {
		return usagef("give --birth-year or --age-band, not both")
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec, err := cl.NewClient(c.ctx, schema.Gender(*gender), *birth, schema.AgeBand(*band))
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, rec)
	}
	fmt.Fprintln(c.stdout, rec.Code)
	fmt.Fprintln(c.stdout, rec.Code.QRPayload())
	if *qr {
		q, err := qrcode.New(rec.Code.QRPayload(), qrcode.Medium)
		if err != nil {
			return err
		}
		fmt.Fprint(c.stdout, q.ToSmallString(false))
	}
	return nil
}

func (c *cli) clientShow(args []string) error {
	fs := c.flags("client show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("client show needs one client CODE")
	}
	code, err := parseClientCode(schema.KindClient, pos[0])
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	h, err := cl.ClientHistory(c.ctx, string(code))
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, h)
	}
	if h.Client != nil {
		fmt.Fprintf(c.stdout, "client %s registered %s, gender %s", h.Client.Code, localTime(h.Client.OccurredAt), h.Client.Gender)
		if h.Client.BirthYear != 0 {
			fmt.Fprintf(c.stdout, ", born %d", h.Client.BirthYear)
		}
		if h.Client.AgeBand != "" {
			fmt.Fprintf(c.stdout, ", age %s", h.Client.AgeBand)
		}
		fmt.Fprintln(c.stdout)
	} else {
		fmt.Fprintf(c.stdout, "client %s is not registered in this unit\n", code)
	}
	fmt.Fprintf(c.stdout, "%d contacts, %d referrals\n", len(h.Contacts), len(h.Referrals))
	units, _ := cl.Units(c.ctx)
	printContacts(c.stdout, h.Contacts)
	printReferrals(c.stdout, h.Referrals, units, false)
	return nil
}
