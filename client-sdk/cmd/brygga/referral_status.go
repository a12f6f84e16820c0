package main

import (
	"fmt"

	"github.com/brygga/brygga/schema"
)

func (c *cli) referralStatus(args []string) error {
	fs := c.flags("referral-status")
	id := fs.String("id", "", "the referral's `id`")
	status := fs.String("status", "", "the new status: "+codes(schema.ReferralStatusEnum))
	reopen := fs.Bool("reopen", false, "reopen the referral: its status goes back to sent")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	refID, err := parseID("id", *id, true)
	if err != nil {
		return err
	}
	if (*status == "") == !*reopen {
		return usagef("give either --status or --reopen")
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *reopen {
		if err := cl.ReopenReferral(c.ctx, refID); err != nil {
			return err
		}
	} else if err := cl.SetReferralStatus(c.ctx, refID, schema.ReferralStatus(*status)); err != nil {
		return err
	}
	rec, err := cl.Get(c.ctx, schema.KindReferral, refID)
	if err != nil {
		return err
	}
	ref := rec.(*schema.Referral)
	fmt.Fprintf(c.stdout, "%s %s\n", ref.ID, ref.Status)
	return nil
}
