package main

import (
	"errors"
	"fmt"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// hintError is an error with a clearer message for a person, still
// matching the error it explains.
type hintError struct {
	msg string
	err error
}

// Error returns the explanation.
func (e *hintError) Error() string { return e.msg }

// Unwrap returns the explained error.
func (e *hintError) Unwrap() error { return e.err }

// explain turns the errors a field worker meets into sentences that say
// what to do: a validation error names the record, the field and the rule.
func (c *cli) explain(err error) error {
	if err == nil || errors.Is(err, errUsage) || errors.Is(err, errOffline) {
		return err
	}
	if brygga.Unreachable(err) {
		return &hintError{msg: "offline: the server cannot be reached; try again when it can (" + err.Error() + ")", err: err}
	}
	var fe *schema.FieldError
	if errors.As(err, &fe) {
		what := "input"
		if name, ok := recordNames[fe.Kind]; ok {
			what = name
		} else if fe.Kind != "" {
			what = string(fe.Kind) + " record"
		}
		msg := fmt.Sprintf("invalid %s: field %s breaks the rule %q: %s", what, fe.Field, fe.Rule, fe.Message)
		if fe.Field == "staff_id" && fe.Rule == schema.RuleRequired {
			msg = fmt.Sprintf("no staff member is set on this device: list them with %[1]s staff, then choose one with %[1]s staff --set STAFF_ID", c.invocation())
		}
		return &hintError{msg: msg, err: err}
	}
	hints := []struct {
		target error
		hint   string
	}{
		{brygga.ErrNotEnrolled, "enrol it first: " + c.invocation() + " enroll SERVER CODE"},
		{brygga.ErrLeaseExpired, "run: " + c.invocation() + " sync"},
		{brygga.ErrRevoked, "the device was revoked; ask for a new enrolment code"},
		{brygga.ErrRetired, "the device was retired: everything it held was sent"},
		{brygga.ErrSealed, "the device was retired: run " + c.invocation() + " sync to send what it holds"},
		{brygga.ErrUnknownDevice, "ask for a new enrolment code of the unit, then: " + c.invocation() + " reenroll CODE"},
		{brygga.ErrEnrolCode, "ask for a new enrolment code"},
		{brygga.ErrStatusBackwards, "reopen it with --reopen"},
		{brygga.ErrResultSettled, "a known result can be corrected to another known result only"},
	}
	for _, h := range hints {
		if errors.Is(err, h.target) {
			return &hintError{msg: err.Error() + "; " + h.hint, err: err}
		}
	}
	return err
}

// recordNames names a field record's kind in a sentence.
var recordNames = map[schema.Kind]string{
	schema.KindClient: "client", schema.KindContact: "contact", schema.KindSyringeExchange: "syringe exchange",
	schema.KindNaloxone: "naloxone handout", schema.KindReversal: "reversal", schema.KindReferral: "referral",
	schema.KindInfectionTest: "infection test", schema.KindVaccination: "vaccination", schema.KindDeath: "death report",
}
