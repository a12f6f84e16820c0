package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server"
)

// TestDemoNames seeds the demo region and checks every organisation's and
// unit's name as a Swedish reader expects it.
func TestDemoNames(t *testing.T) {
	ctx := context.Background()
	s, err := server.Open(ctx, server.Config{DBPath: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.SeedDemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.OutreachUnit.Name != "Fältgruppen Östersund" {
		t.Errorf("the outreach unit to enrol a first tablet for is %q", d.OutreachUnit.Name)
	}
	orgs, err := s.Organisations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var orgNames []string
	for _, o := range orgs {
		orgNames = append(orgNames, o.Name)
	}
	units, err := s.Units(ctx, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	var unitNames []string
	for _, u := range units {
		unitNames = append(unitNames, u.Name)
	}
	slices.Sort(orgNames)
	slices.Sort(unitNames)
	wantOrgs := []string{"Krokoms kommun", "Region Jämtland Härjedalen", "Åre kommun", "Östersunds kommun"}
	wantUnits := []string{
		"Beroendemottagningen Östersund", "Fältgruppen Östersund", "Hälsocentralen Krokom",
		"Infektionsmottagningen Östersund", "LARO-mottagningen Östersund", "Mobila teamet Åre",
		"Socialtjänsten i Krokom", "Socialtjänsten i Åre", "Socialtjänsten i Östersund",
		"Ungdomsmottagningen Östersund", "Uppsökande teamet Krokom",
	}
	slices.Sort(wantOrgs)
	slices.Sort(wantUnits)
	if !slices.Equal(orgNames, wantOrgs) {
		t.Errorf("organisations %q, want %q", orgNames, wantOrgs)
	}
	if !slices.Equal(unitNames, wantUnits) {
		t.Errorf("units %q, want %q", unitNames, wantUnits)
	}
}
