package server

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// Demo is what SeedDemo created: the accounts to log in with and the
// outreach unit to enrol a first device for.
type Demo struct {
	Accounts     []DemoAccount
	OutreachUnit *schema.Unit
}

// DemoAccount is a demo login.
type DemoAccount struct {
	Username, Password string
	Role               Role
}

// HasData reports whether the database holds any organisation.
func (s *Server) HasData(ctx context.Context) (bool, error) {
	ids, err := s.store.OrganisationIDs(ctx)
	return len(ids) > 0, err
}

// SeedDemo fills an empty database with a demo region: Region Jämtland
// Härjedalen with its addiction, infection and opioid substitution clinics,
// and three municipalities with outreach teams and social services; staff
// for every outreach team; and a manager, an authority user and an admin
// with random passwords, which it returns.
func (s *Server) SeedDemo(ctx context.Context) (*Demo, error) {
	if has, err := s.HasData(ctx); err != nil {
		return nil, err
	} else if has {
		return nil, fmt.Errorf("seed demo: %w: the database already holds organisations", ErrBadArgument)
	}
	region, err := s.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	if err != nil {
		return nil, err
	}
	for _, u := range []struct {
		name, area string
		services   []schema.ServiceCategory
	}{
		{"Beroendemottagningen Östersund", "2380", []schema.ServiceCategory{schema.ServiceAddictionClinic, schema.ServicePsychiatry}},
		{"Infektionsmottagningen Östersund", "2380", []schema.ServiceCategory{schema.ServiceInfectionClinic}},
		{"LARO-mottagningen Östersund", "2380", []schema.ServiceCategory{schema.ServiceOpioidSubstitution}},
		{"Ungdomsmottagningen Östersund", "2380", []schema.ServiceCategory{schema.ServiceYouthClinic}},
		{"Hälsocentralen Krokom", "2309", []schema.ServiceCategory{schema.ServicePrimaryCare}},
	} {
		if _, err := s.AddUnit(ctx, region.ID, u.name, u.area, u.services...); err != nil {
			return nil, err
		}
	}
	demo := &Demo{}
	var ostersund *schema.Organisation
	for _, m := range []struct{ name, area, team, social string }{
		{"Östersunds kommun", "2380", "Fältgruppen Östersund", "Socialtjänsten i Östersund"},
		{"Krokoms kommun", "2309", "Uppsökande teamet Krokom", "Socialtjänsten i Krokom"},
		{"Åre kommun", "2321", "Mobila teamet Åre", "Socialtjänsten i Åre"},
	} {
		org, err := s.AddOrganisation(ctx, schema.OrgMunicipality, m.name, "23")
		if err != nil {
			return nil, err
		}
		if ostersund == nil {
			ostersund = org
		}
		team, err := s.AddUnit(ctx, org.ID, m.team, m.area)
		if err != nil {
			return nil, err
		}
		if demo.OutreachUnit == nil {
			demo.OutreachUnit = team
		}
		if _, err := s.AddUnit(ctx, org.ID, m.social, m.area,
			schema.ServiceSocialServices, schema.ServiceHousing); err != nil {
			return nil, err
		}
		for _, role := range []schema.StaffRole{schema.RoleOutreachWorker, schema.RoleOutreachWorker, schema.RoleNurse, schema.RoleCounsellor} {
			if _, err := s.AddStaff(ctx, team.ID, role); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range []struct {
		username string
		role     Role
		org      uuid.UUID
		unit     uuid.UUID
	}{
		{"chef.ostersund", RoleManager, ostersund.ID, demo.OutreachUnit.ID},
		{"region.uppfoljning", RoleAuthority, region.ID, uuid.Nil},
		{"admin", RoleAdmin, uuid.Nil, uuid.Nil},
	} {
		pw, err := randomToken(12)
		if err != nil {
			return nil, err
		}
		if _, err := s.AddUser(ctx, a.username, pw, a.role, a.org, a.unit); err != nil {
			return nil, err
		}
		demo.Accounts = append(demo.Accounts, DemoAccount{Username: a.username, Password: pw, Role: a.role})
	}
	return demo, nil
}
