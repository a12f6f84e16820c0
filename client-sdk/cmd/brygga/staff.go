package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// staffMember is one line of staff --json.
type staffMember struct {
	*schema.Staff
	// Current is true for the staff member the device records for.
	Current bool `json:"current"`
}

// printStaff prints the unit's staff with a header, the one the device
// records for marked.
func printStaff(w io.Writer, staffs []*schema.Staff, current uuid.UUID) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAFF ID\tROLE\tRECORDING")
	for _, s := range staffs {
		mark := ""
		if s.ID == current {
			mark = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.ID, schema.StaffRoleEnum.Label(string(s.Role), schema.English), mark)
	}
	tw.Flush()
}

func (c *cli) staff(args []string) error {
	fs := c.flags("staff")
	set := fs.String("set", "", "make the staff member `id` the one who records on this device")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	id, err := parseID("set", *set, false)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if id != uuid.Nil {
		if err := cl.SetStaff(c.ctx, id); err != nil {
			return err
		}
	}
	staffs, err := cl.StaffList(c.ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]staffMember, 0, len(staffs))
		for _, s := range staffs {
			out = append(out, staffMember{s, s.ID == cl.CurrentStaff()})
		}
		return writeJSON(c.stdout, out)
	}
	if id != uuid.Nil {
		fmt.Fprintf(c.stdout, "staff %s records on this device\n", id)
		return nil
	}
	if len(staffs) == 0 {
		fmt.Fprintln(c.stdout, "the unit has no active staff on this device yet: sync first")
		return nil
	}
	printStaff(c.stdout, staffs, cl.CurrentStaff())
	return nil
}

// chooseStaff tells how to choose who records, for a device without one.
func (c *cli) chooseStaff(w io.Writer, cl *brygga.Client, staffs []*schema.Staff) {
	fmt.Fprintf(w, "the unit has %d staff members; choose who records on this device with:\n  %s staff --set STAFF_ID\n", len(staffs), c.invocation())
	printStaff(w, staffs, cl.CurrentStaff())
}
