package main

import (
	"fmt"
)

func (c *cli) dismiss(args []string) error {
	fs := c.flags("dismiss")
	seq := fs.Int64("seq", 0, "the rejected mutation's `number`, as status shows it")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *seq <= 0 {
		return usagef("--seq is required: the number status shows before a rejection")
	}
	cl, err := c.open(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.DismissRejection(c.ctx, *seq); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "dismissed %d\n", *seq)
	return nil
}
