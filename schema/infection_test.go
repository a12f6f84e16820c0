package schema_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// TestValidTestsAndDoses checks the shapes an infection test and a dose
// may take: declined without a result, performed with each result, each
// vaccine's whole series.
func TestValidTestsAndDoses(t *testing.T) {
	contact := uuid.Must(uuid.NewV7())
	recs := []schema.Record{
		&schema.InfectionTest{Header: header(t), ContactID: contact, Test: schema.TestHIV, Outcome: schema.TestDeclined},
	}
	for _, o := range []schema.TestOutcome{schema.TestRapid, schema.TestSampleSent} {
		for _, r := range schema.TestResultEnum.Codes() {
			recs = append(recs, &schema.InfectionTest{Header: header(t), ContactID: contact, Test: schema.TestHCVRNA, Outcome: o, Result: schema.TestResult(r)})
		}
	}
	for _, v := range schema.VaccineEnum.Codes() {
		for dose := 1; dose <= schema.Vaccine(v).MaxDose(); dose++ {
			recs = append(recs, &schema.Vaccination{Header: header(t), ContactID: contact, Vaccine: schema.Vaccine(v), Dose: dose})
		}
	}
	for _, src := range schema.DeathSourceEnum.Codes() {
		recs = append(recs, &schema.Death{Header: header(t), ClientCode: code(t, 9), Source: schema.DeathSource(src)})
	}
	for _, r := range recs {
		if err := r.Validate(now); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	if !schema.ResultReactive.Settled() || schema.ResultPending.Settled() || schema.TestResult("").Settled() {
		t.Error("Settled: a known result is settled, pending and none are not")
	}
}
