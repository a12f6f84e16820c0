package main

import (
	"fmt"
	"text/tabwriter"
)

func (c *cli) status(args []string) error {
	fs := c.flags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	cl, err := c.open(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.Status(c.ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, st)
	}
	if !st.Enrolled {
		fmt.Fprintf(c.stdout, "%s is not enrolled: %s enroll SERVER CODE\n", c.db, c.invocation())
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "device\t%s\n", st.DeviceID)
	unit := st.UnitID.String()
	if u, err := ownUnit(c.ctx, cl); err == nil && u != nil {
		unit += " " + u.Name
	}
	fmt.Fprintf(tw, "unit\t%s\n", unit)
	fmt.Fprintf(tw, "server\t%s\n", st.Server)
	fmt.Fprintf(tw, "pending\t%d\n", st.Pending)
	last := "never"
	if st.LastSync != nil {
		last = localTime(*st.LastSync)
	}
	fmt.Fprintf(tw, "last sync\t%s\n", last)
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
	}
	fmt.Fprintf(tw, "rejected\t%d\n", len(st.Rejected))
	for _, r := range st.Rejected {
		fmt.Fprintf(tw, "\t%d %s %s: %s\n", r.Seq, r.Kind, r.ID, rejection(string(r.Error.Code), r.Error.Field, r.Error.Message))
		fmt.Fprintf(tw, "\t  wrote %s\n", r.Fields)
	}
	return tw.Flush()
}
