package main

import (
	"fmt"
	"time"

	"github.com/brygga/brygga/schema"
)

// test records an infection test offered at a contact.
func (c *cli) test(args []string) error {
	fs := c.flags("test")
	contact := fs.String("contact", "", "the contact's `id`")
	client := fs.String("client", "", "the client's `code` (default the contact's)")
	kind := fs.String("test", "", "the `test`: "+codes(schema.TestKindEnum))
	outcome := fs.String("outcome", "", "declined, or how it was performed: "+codes(schema.TestOutcomeEnum))
	result := fs.String("result", "", "the `result` of a performed test (default pending): "+codes(schema.TestResultEnum))
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	var code schema.ClientCode
	check := func() (err error) {
		if *kind == "" || *outcome == "" {
			return usagef("--test and --outcome are required")
		}
		code, err = parseClientCode(schema.KindInfectionTest, *client)
		return err
	}
	return c.recordAt(*contact, *at, check, func(con *schema.Contact, when time.Time) schema.Record {
		rec := &schema.InfectionTest{Header: schema.Header{OccurredAt: when}, ContactID: con.ID, ClientCode: code,
			Test: schema.TestKind(*kind), Outcome: schema.TestOutcome(*outcome), Result: schema.TestResult(*result)}
		if rec.ClientCode == "" {
			rec.ClientCode = con.ClientCode
		}
		if rec.Result == "" && rec.Outcome.Performed() {
			rec.Result = schema.ResultPending
		}
		return rec
	})
}

// testResult sets the result of a performed test, on any device of the
// unit.
func (c *cli) testResult(args []string) error {
	fs := c.flags("test-result")
	id := fs.String("id", "", "the test's `id`")
	result := fs.String("result", "", "the `result`: "+codes(schema.TestResultEnum))
	if err := parseNone(fs, args); err != nil {
		return err
	}
	testID, err := parseID("id", *id, true)
	if err != nil {
		return err
	}
	if *result == "" {
		return usagef("--result is required: %s", codes(schema.TestResultEnum))
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.SetTestResult(c.ctx, testID, schema.TestResult(*result)); err != nil {
		return err
	}
	rec, err := cl.Get(c.ctx, schema.KindInfectionTest, testID)
	if err != nil {
		return err
	}
	t := rec.(*schema.InfectionTest)
	fmt.Fprintf(c.stdout, "%s %s %s\n", t.ID, t.Test, t.Result)
	return nil
}
