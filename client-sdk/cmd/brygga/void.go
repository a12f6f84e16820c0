package main

import (
	"errors"
	"fmt"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// kinds maps the names void accepts to record kinds.
var kinds = map[string]schema.Kind{
	"client": schema.KindClient, "contact": schema.KindContact, "exchange": schema.KindSyringeExchange,
	"syringe_exchange": schema.KindSyringeExchange, "naloxone": schema.KindNaloxone,
	"naloxone_handout": schema.KindNaloxone, "reversal": schema.KindReversal, "referral": schema.KindReferral,
	"test": schema.KindInfectionTest, "infection_test": schema.KindInfectionTest, "vaccination": schema.KindVaccination,
	"death": schema.KindDeath,
}

func init() {
	for _, k := range []schema.Kind{schema.KindClient, schema.KindContact, schema.KindSyringeExchange,
		schema.KindNaloxone, schema.KindReversal, schema.KindReferral, schema.KindInfectionTest, schema.KindVaccination, schema.KindDeath} {
		kinds[string(k)] = k
	}
}

func (c *cli) void(args []string) error {
	fs := c.flags("void")
	kind := fs.String("kind", "", "the record's `kind`: contact, exchange, naloxone, reversal, referral, test, vaccination, death or client")
	id := fs.String("id", "", "the record's `id`")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	k, ok := kinds[*kind]
	if !ok {
		return usagef("--kind %q is not a kind of record: contact, exchange, naloxone, reversal, referral, test, vaccination, death or client", *kind)
	}
	recID, err := parseID("id", *id, true)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Void(c.ctx, k, recID); err != nil {
		if errors.Is(err, brygga.ErrNotFound) {
			return fmt.Errorf("%s %s is not on this device: %w", k, recID, err)
		}
		return err
	}
	fmt.Fprintf(c.stdout, "voided %s %s\n", k, recID)
	return nil
}
