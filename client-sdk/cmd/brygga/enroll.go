package main

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/google/uuid"
)

func (c *cli) enroll(args []string) error {
	fs := c.flags("enroll")
	staff := fs.String("staff", "", "the staff member `id` to record as (asked for on a terminal if the unit has several)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("enroll needs SERVER and CODE, for example: brygga enroll https://brygga.example.org 7K3M-QX2D-V4TB")
	}
	server, code := pos[0], pos[1]
	if u, err := url.Parse(server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("SERVER %q is not an http or https URL", server)
	}
	staffID, err := parseID("staff", *staff, false)
	if err != nil {
		return err
	}
	cl, err := c.open(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Enroll(c.ctx, server, code); err != nil {
		return err
	}
	res := enrolment{DeviceID: cl.DeviceID(), UnitID: cl.UnitID(), Staff: []staffMember{}}
	out := c.stdout
	if *asJSON {
		out = io.Discard
	}
	fmt.Fprintf(out, "device %s\n", cl.DeviceID())
	if err := cl.Sync(c.ctx); err != nil {
		fmt.Fprintf(out, "unit   %s\n", cl.UnitID())
		if brygga.Unreachable(err) {
			return fmt.Errorf("%w: enrolled, but the server cannot be reached for the unit's reference data: sync when it can", errOffline)
		}
		return fmt.Errorf("enrolled, but fetching the reference data failed (sync again): %w", err)
	}
	unit, err := ownUnit(c.ctx, cl)
	if err != nil {
		return err
	}
	if unit != nil {
		res.UnitName, res.AreaCode = unit.Name, unit.AreaCode
		fmt.Fprintf(out, "unit   %s %s (area %s)\n", unit.ID, unit.Name, unit.AreaCode)
	} else {
		fmt.Fprintf(out, "unit   %s\n", cl.UnitID())
	}
	staffs, err := cl.StaffList(c.ctx)
	if err != nil {
		return err
	}
	switch {
	case staffID != uuid.Nil:
	case len(staffs) == 1:
		staffID = staffs[0].ID
	case !*asJSON && isTerminal(c.stdin) && isTerminal(c.stdout) && len(staffs) > 1:
		staffID = c.askStaff(staffs)
	}
	if staffID != uuid.Nil {
		if err := cl.SetStaff(c.ctx, staffID); err != nil {
			return err
		}
		fmt.Fprintf(out, "staff  %s records on this device\n", staffID)
	} else {
		c.chooseStaff(out, cl, staffs)
	}
	if *asJSON {
		for _, s := range staffs {
			res.Staff = append(res.Staff, staffMember{s, s.ID == cl.CurrentStaff()})
		}
		return writeJSON(c.stdout, res)
	}
	return nil
}

// enrolment is what enroll prints with --json.
type enrolment struct {
	DeviceID uuid.UUID     `json:"device_id"`
	UnitID   uuid.UUID     `json:"unit_id"`
	UnitName string        `json:"unit_name,omitempty"`
	AreaCode string        `json:"area_code,omitempty"`
	Staff    []staffMember `json:"staff"` // the unit's; current marks who records
}

// askStaff asks, on a terminal, which of staffs records on the device; nil
// if the answer is empty or not one of them.
func (c *cli) askStaff(staffs []*schema.Staff) uuid.UUID {
	for i, s := range staffs {
		fmt.Fprintf(c.stdout, "  %d  %s  %s\n", i+1, s.ID, schema.StaffRoleEnum.Label(string(s.Role), schema.English))
	}
	fmt.Fprintf(c.stdout, "who records on this device? 1-%d (Enter: choose later): ", len(staffs))
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || n < 1 || n > len(staffs) {
		return uuid.Nil
	}
	return staffs[n-1].ID
}
