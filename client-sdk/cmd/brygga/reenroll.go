package main

import (
	"fmt"
)

// reenroll enrols the device again with a new code of its unit, keeping its
// replica: its records, unsent ones included, are sent to the server by
// the sync that follows.
func (c *cli) reenroll(args []string) error {
	fs := c.flags("reenroll")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("reenroll needs CODE, for example: brygga reenroll 7K3M-QX2D-V4TB")
	}
	cl, err := c.open(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Reenroll(c.ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "device %s\n", cl.DeviceID())
	if err := cl.Sync(c.ctx); err != nil {
		return fmt.Errorf("enrolled again, but sending the records failed (run brygga sync): %w", err)
	}
	fmt.Fprintln(c.stdout, "records sent; in step with the server")
	return nil
}
