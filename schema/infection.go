package schema

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// The record kinds of infection testing, vaccination and deaths.
const (
	KindInfectionTest Kind = "infection_tests"
	KindVaccination   Kind = "vaccinations"
	KindDeath         Kind = "deaths"
)

// InfectionTest is a test for an infection offered at a contact: declined,
// or performed as a rapid test or a sample sent to a laboratory. A
// performed test has a result, pending until it is known; the result may
// be set later, by the device that recorded the test or another of the
// unit's devices, and once it has left pending it never returns to it
// (MergeResult). ClientCode is the client's code where there is one.
type InfectionTest struct {
	Header
	ContactID  uuid.UUID   `json:"contact_id"`
	ClientCode ClientCode  `json:"client_code,omitempty"`
	Test       TestKind    `json:"test"`
	Outcome    TestOutcome `json:"outcome"`
	Result     TestResult  `json:"result,omitempty"`
}

// Vaccination is one dose of a hepatitis vaccine given at a contact. Dose
// is the dose's number in its series, from 1.
type Vaccination struct {
	Header
	ContactID  uuid.UUID  `json:"contact_id"`
	ClientCode ClientCode `json:"client_code,omitempty"`
	Vaccine    Vaccine    `json:"vaccine"`
	Dose       int        `json:"dose"`
}

// Death is a client reported deceased: the client code, the date of death
// as the service knows it (OccurredAt, midnight of the date in Swedish
// time, as the SDK sets it from a date) and how the service learnt it.
// Nothing else is recorded, and nothing of the client code's history
// changes: its client, contacts and referrals stay as they were.
type Death struct {
	Header
	ClientCode ClientCode  `json:"client_code"`
	Source     DeathSource `json:"source"`
}

// Kind methods.
func (*InfectionTest) Kind() Kind { return KindInfectionTest }
func (*Vaccination) Kind() Kind   { return KindVaccination }
func (*Death) Kind() Kind         { return KindDeath }

// Fields methods.

func (r *InfectionTest) Fields() []Field { return r.appendFields(make([]Field, 0, MaxFields)) }

func (r *InfectionTest) appendFields(dst []Field) []Field {
	return append(r.Header.appendFields(dst),
		idField("contact_id", &r.ContactID).immutable(),
		codeField("client_code", &r.ClientCode).optional(),
		enumField("test", (*string)(&r.Test), TestKindEnum).immutable(),
		enumField("outcome", (*string)(&r.Outcome), TestOutcomeEnum).immutable(),
		enumField("result", (*string)(&r.Result), TestResultEnum).optional().withMerge(MergeResult),
	)
}

func (r *Vaccination) Fields() []Field { return r.appendFields(make([]Field, 0, MaxFields)) }

func (r *Vaccination) appendFields(dst []Field) []Field {
	return append(r.Header.appendFields(dst),
		idField("contact_id", &r.ContactID).immutable(),
		codeField("client_code", &r.ClientCode).optional(),
		enumField("vaccine", (*string)(&r.Vaccine), VaccineEnum),
		intField("dose", &r.Dose),
	)
}

func (r *Death) Fields() []Field { return r.appendFields(make([]Field, 0, MaxFields)) }

func (r *Death) appendFields(dst []Field) []Field {
	return append(r.Header.appendFields(dst),
		codeField("client_code", &r.ClientCode).immutable(),
		enumField("source", (*string)(&r.Source), DeathSourceEnum),
	)
}

// TestKind is the infection a test looks for, and how.
type TestKind string

// Tests.
const (
	TestHIV         TestKind = "hiv"
	TestHCVAntibody TestKind = "hcv_antibody"
	TestHCVRNA      TestKind = "hcv_rna"
	TestHBsAg       TestKind = "hbsag"
	TestSyphilis    TestKind = "syphilis"
)

// TestKindEnum lists the tests.
var TestKindEnum = newEnumeration("infection_test",
	Option{"hiv", "Hiv", "HIV"},
	Option{"hcv_antibody", "Hepatit C, antikroppar", "Hepatitis C antibody"},
	Option{"hcv_rna", "Hepatit C, RNA", "Hepatitis C RNA"},
	Option{"hbsag", "Hepatit B, ytantigen (HBsAg)", "Hepatitis B surface antigen (HBsAg)"},
	Option{"syphilis", "Syfilis", "Syphilis"},
)

// TestOutcome is what became of a test offered: declined, or performed as
// a rapid test or a sample sent.
type TestOutcome string

// Test outcomes.
const (
	TestDeclined   TestOutcome = "declined"
	TestRapid      TestOutcome = "rapid_test"
	TestSampleSent TestOutcome = "sample_sent"
)

// TestOutcomeEnum lists the outcomes of a test offered.
var TestOutcomeEnum = newEnumeration("test_outcome",
	Option{"declined", "Erbjudet, avböjt", "Offered, declined"},
	Option{"rapid_test", "Snabbtest taget", "Rapid test performed"},
	Option{"sample_sent", "Prov skickat till laboratorium", "Sample sent to a laboratory"},
)

// Performed reports whether a test of outcome o was performed.
func (o TestOutcome) Performed() bool { return o == TestRapid || o == TestSampleSent }

// TestResult is the result of a performed test.
type TestResult string

// Test results.
const (
	ResultPending      TestResult = "pending"
	ResultReactive     TestResult = "reactive"
	ResultNonReactive  TestResult = "non_reactive"
	ResultNotCollected TestResult = "not_collected"
)

// TestResultEnum lists the results of a test.
var TestResultEnum = newEnumeration("test_result",
	Option{"pending", "Väntar på svar", "Pending"},
	Option{"reactive", "Reaktivt", "Reactive"},
	Option{"non_reactive", "Icke-reaktivt", "Non-reactive"},
	Option{"not_collected", "Prov kunde inte tas", "Not collected"},
)

// Settled reports whether a result is known: any result but pending (and
// no result at all).
func (r TestResult) Settled() bool { return r != "" && r != ResultPending }

// Vaccine is a hepatitis vaccine.
type Vaccine string

// Vaccines.
const (
	VaccineHepA  Vaccine = "hepatitis_a"
	VaccineHepB  Vaccine = "hepatitis_b"
	VaccineHepAB Vaccine = "hepatitis_ab"
)

// VaccineEnum lists the vaccines.
var VaccineEnum = newEnumeration("vaccine",
	Option{"hepatitis_a", "Hepatit A", "Hepatitis A"},
	Option{"hepatitis_b", "Hepatit B", "Hepatitis B"},
	Option{"hepatitis_ab", "Hepatit A och B (kombinerat)", "Hepatitis A and B (combined)"},
)

// MaxDose returns the highest dose number of a vaccine's series: two for
// hepatitis A; four for hepatitis B and the combined vaccine, whose rapid
// schedule has three doses and a fourth a year later.
func (v Vaccine) MaxDose() int {
	if v == VaccineHepA {
		return 2
	}
	return 4
}

// CoversHepB reports whether the vaccine protects against hepatitis B.
func (v Vaccine) CoversHepB() bool { return v == VaccineHepB || v == VaccineHepAB }

// HepBSeriesDose is the dose number that completes a hepatitis B series:
// the third, of the standard schedule (0, 1 and 6 months) and of the
// rapid one's primary doses.
const HepBSeriesDose = 3

// DeathSource is how the service learnt of a client's death.
type DeathSource string

// Death sources.
const (
	DeathStaffTold DeathSource = "staff_told"
	DeathRegistry  DeathSource = "registry"
	DeathOther     DeathSource = "other"
)

// DeathSourceEnum lists how a death becomes known.
var DeathSourceEnum = newEnumeration("death_source",
	Option{"staff_told", "Personalen fick veta", "Staff were told"},
	Option{"registry", "Register", "Registry"},
	Option{"other", "Annat", "Other"},
)

// Validate checks the infection test: a declined test has no result; a
// performed one has one, pending until it is known.
func (r *InfectionTest) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	switch {
	case r.Outcome == TestDeclined && r.Result != "":
		c.fail("result", RuleConsistency, "a declined test has no result")
	case r.Outcome.Performed() && r.Result == "":
		c.fail("result", RuleRequired, "a performed test has a result: %s until it is known", ResultPending)
	}
	return c.result()
}

// Validate checks the vaccination: the dose is within its vaccine's
// series.
func (r *Vaccination) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	if VaccineEnum.Has(string(r.Vaccine)) {
		c.rangeInt("dose", r.Dose, 1, r.Vaccine.MaxDose())
	} else {
		c.rangeInt("dose", r.Dose, 1, VaccineHepB.MaxDose())
	}
	return c.result()
}

// Validate checks the death.
func (r *Death) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	return c.result()
}

// ParseDate reads a date YYYY-MM-DD as midnight of it in loc, the
// occurred_at of a record that knows its date only (a death). The error is
// a *FieldError of field with RuleFormat.
func ParseDate(field, s string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		return time.Time{}, &FieldError{Field: field, Rule: RuleFormat, Message: fmt.Sprintf("want a date YYYY-MM-DD, got %q", s)}
	}
	return t.UTC(), nil
}
