package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brygga/brygga/schema"
)

// supplyFlag collects repeated --supply code=N flags.
type supplyFlag schema.Supplies

// String returns the supplies as code=N pairs.
func (s supplyFlag) String() string {
	var parts []string
	for k, n := range s {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Set adds one code=N pair.
func (s supplyFlag) Set(v string) error {
	k, n, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want code=N, got %q", v)
	}
	count, err := strconv.Atoi(n)
	if err != nil {
		return fmt.Errorf("want code=N with a whole number, got %q", v)
	}
	s[schema.Supply(k)] += count
	return nil
}

func (c *cli) exchange(args []string) error {
	fs := c.flags("exchange")
	contact := fs.String("contact", "", "the contact's `id`")
	syringes := fs.Int("syringes", 0, "syringes handed out")
	needles := fs.Int("needles", 0, "needles handed out")
	returned := fs.Int("returned", 0, "used syringes taken back")
	supplies := supplyFlag{}
	fs.Var(supplies, "supply", "other supplies handed out, code=N, repeatable; codes: "+codes(schema.SupplyEnum))
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return c.recordAt(*contact, *at, nil, func(con *schema.Contact, when time.Time) schema.Record {
		rec := &schema.SyringeExchange{Header: schema.Header{OccurredAt: when}, ContactID: con.ID,
			SyringesOut: *syringes, NeedlesOut: *needles, SyringesReturned: *returned}
		if len(supplies) > 0 {
			rec.Supplies = schema.Supplies(supplies)
		}
		return rec
	})
}
