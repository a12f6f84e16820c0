package brygga

import (
	"context"
	"time"
	_ "time/tzdata" // statistics' zone, whatever the host has installed

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/replica"
)

// statsZone is the zone the server's statistics count periods in, and so
// the zone in which a contact's year, and a client's age, is counted.
var statsZone = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic("brygga: Europe/Stockholm: " + err.Error())
	}
	return loc
}()

// ClientAttributes returns the gender and age band a contact with the
// client code takes at the time at, as Add fills them in: the client's
// gender, and the age band of the client's birth year in at's year
// (counted in Swedish time, as statistics are), or the client's age band.
// What the client does not state is schema.GenderNotStated or
// schema.AgeNotStated. known is false, and both are not stated, if the
// device does not hold the client: it may have been registered on another
// device whose record this one has not pulled yet. Recording stays
// possible after the offline lease: ClientAttributes does not refuse to
// read then.
func (c *Client) ClientAttributes(ctx context.Context, code schema.ClientCode, at time.Time) (gender schema.Gender, band schema.AgeBand, known bool, err error) {
	dev, err := c.device()
	if err != nil {
		return "", "", false, err
	}
	cl, err := clientByCode(ctx, dev, code)
	if err != nil {
		return "", "", false, err
	}
	gender, band = attributesAt(cl, at)
	return gender, band, cl != nil, nil
}

// clientByCode returns the client with code that the device holds, the
// earliest registered if there are several, or nil if it holds none.
func clientByCode(ctx context.Context, dev *replica.Device, code schema.ClientCode) (*schema.Client, error) {
	code = canonical(code)
	rows, err := dev.Select(ctx, schema.KindClient, `WHERE code = ? AND voided = 0 ORDER BY occurred_at, id LIMIT 1`, string(code))
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0].Record.(*schema.Client), nil
}

// attributesAt returns the gender and age band of cl at the time at; not
// stated for a nil client or what it leaves out.
func attributesAt(cl *schema.Client, at time.Time) (schema.Gender, schema.AgeBand) {
	gender, band := schema.GenderNotStated, schema.AgeNotStated
	if cl == nil {
		return gender, band
	}
	if cl.Gender != "" {
		gender = cl.Gender
	}
	switch {
	case cl.BirthYear != 0:
		band = schema.AgeBandOf(cl.BirthYear, at.In(statsZone).Year())
	case cl.AgeBand != "":
		band = cl.AgeBand
	}
	return gender, band
}

// canonical returns code in canonical form if it is a valid client code,
// as typed or as read aloud, and code unchanged otherwise, for validation
// to name.
func canonical(code schema.ClientCode) schema.ClientCode {
	if code == "" {
		return code
	}
	if cc, err := schema.ParseClientCode(string(code)); err == nil {
		return cc
	}
	return code
}
