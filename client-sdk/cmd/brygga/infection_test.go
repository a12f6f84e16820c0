package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// TestInfectionCommands records a test, its result on another tablet, a
// vaccination and a death with the field client, and checks what the
// server holds and the errors a worker meets.
func TestInfectionCommands(t *testing.T) {
	r := startRegion(t)
	a, _ := r.enroll(t, r.team)
	b, _ := r.enroll(t, r.team)
	code := strings.TrimSpace(strings.SplitN(must(t, "--db", a, "client", "new", "--gender", "man", "--birth-year", "1991"), "\n", 2)[0])
	con := mustID(t, "--db", a, "contact", "--setting", "fixed_site", "--client", code)
	test := mustID(t, "--db", a, "test", "--contact", con.String(), "--test", "hiv", "--outcome", "sample_sent")
	mustID(t, "--db", a, "test", "--contact", con.String(), "--test", "hcv_antibody", "--outcome", "declined")
	vacc := mustID(t, "--db", a, "vaccinate", "--contact", con.String(), "--vaccine", "hepatitis_b", "--dose", "1")
	death := mustID(t, "--db", a, "death", "--client", code, "--date", "2026-01-02", "--source", "staff_told")
	must(t, "--db", a, "sync")
	must(t, "--db", b, "sync")
	if out := must(t, "--db", b, "list", "pending-tests"); !strings.Contains(out, test.String()) || !strings.Contains(out, "sample_sent") {
		t.Errorf("pending tests on the other tablet: %q", out)
	}
	if out := must(t, "--db", b, "test-result", "--id", test.String(), "--result", "non_reactive"); !strings.Contains(out, "hiv non_reactive") {
		t.Errorf("test-result printed %q", out)
	}
	must(t, "--db", b, "sync")
	if out := must(t, "--db", b, "list", "pending-tests"); out != "no tests wait for a result\n" {
		t.Errorf("pending tests after the result: %q", out)
	}
	ctx := context.Background()
	rec, err := r.srv.Record(ctx, schema.KindInfectionTest, test)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.(*schema.InfectionTest); got.Result != schema.ResultNonReactive || string(got.ClientCode) != code {
		t.Errorf("server holds %+v", got)
	}
	if _, err := r.srv.Record(ctx, schema.KindVaccination, vacc); err != nil {
		t.Errorf("vaccination: %v", err)
	}
	if _, err := r.srv.Record(ctx, schema.KindDeath, death); err != nil {
		t.Errorf("death: %v", err)
	}
	for name, tc := range map[string]struct {
		args []string
		want func(error) bool
	}{
		"back to pending": {[]string{"--db", b, "test-result", "--id", test.String(), "--result", "pending"},
			func(err error) bool { return errors.Is(err, brygga.ErrResultSettled) }},
		"unknown test": {[]string{"--db", a, "test", "--contact", con.String(), "--test", "hepatitis", "--outcome", "rapid_test"},
			func(err error) bool { return errors.Is(err, brygga.ErrInvalid) }},
		"dose out of range": {[]string{"--db", a, "vaccinate", "--contact", con.String(), "--vaccine", "hepatitis_a", "--dose", "3"},
			func(err error) bool { return errors.Is(err, brygga.ErrInvalid) }},
		"bad date": {[]string{"--db", a, "death", "--client", code, "--date", "2 jan", "--source", "registry"},
			func(err error) bool { return exitCode(err) == exitUsage }},
	} {
		_, _, err := run(tc.args...)
		if err == nil || !tc.want(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
