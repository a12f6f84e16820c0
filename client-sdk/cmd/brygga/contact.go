package main

import (
	"errors"
	"fmt"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

func (c *cli) contact(args []string) error {
	fs := c.flags("contact")
	setting := fs.String("setting", string(schema.SettingStreet), "where it happened: "+codes(schema.SettingEnum))
	client := fs.String("client", "", "the client's `code` or card QR payload; none for an anonymous contact")
	gender := fs.String("gender", "", "the client's gender: "+codes(schema.GenderEnum)+" (default the client's, or not_stated)")
	band := fs.String("age-band", "", "the client's age band: "+codes(schema.AgeBandEnum)+" (default the client's at the contact's time, or not_stated)")
	area := fs.String("area", "", "four-digit municipality `code` (default the unit's)")
	substance := fs.String("substance", "", "optional: "+codes(schema.SubstanceEnum))
	at := fs.String("at", "", "when it happened, RFC 3339 `time` (default now)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	when, err := parseAt(*at)
	if err != nil {
		return err
	}
	code, err := parseClientCode(schema.KindContact, *client)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *area == "" {
		unit, err := ownUnit(c.ctx, cl)
		if err != nil && !errors.Is(err, brygga.ErrLeaseExpired) {
			return err
		}
		if unit == nil || unit.AreaCode == "" {
			return fmt.Errorf("the unit's area code is not known yet: run %s sync, or give --area", c.invocation())
		}
		*area = unit.AreaCode
	}
	rec := &schema.Contact{
		Header:     schema.Header{OccurredAt: when},
		ClientCode: code,
		Gender:     schema.Gender(*gender),
		AgeBand:    schema.AgeBand(*band),
		Setting:    schema.Setting(*setting),
		AreaCode:   *area,
		Substance:  schema.Substance(*substance),
	}
	if code == "" {
		// An anonymous contact states what the worker gives, or nothing.
		rec.Gender, rec.AgeBand = orNotStated(rec.Gender, rec.AgeBand)
	} else if rec.Gender == "" || rec.AgeBand == "" {
		if _, _, known, err := cl.ClientAttributes(c.ctx, code, rec.OccurredAt); err != nil {
			return err
		} else if !known {
			fmt.Fprintf(c.stderr, "note: client %s is not on this device (yet): what --gender and --age-band leave out is recorded as not stated\n", code)
		}
	}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}

// orNotStated returns gender and band, each not stated where empty.
func orNotStated(gender schema.Gender, band schema.AgeBand) (schema.Gender, schema.AgeBand) {
	if gender == "" {
		gender = schema.GenderNotStated
	}
	if band == "" {
		band = schema.AgeNotStated
	}
	return gender, band
}
