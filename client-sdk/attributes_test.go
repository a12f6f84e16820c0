package brygga_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
)

// TestContactTakesClientAttributes records contacts with a client code
// through the SDK, on the device that registered the client, on another
// that pulled it and on one that has not, and checks what the contacts and
// the server's statistics hold, before and after the client is corrected.
func TestContactTakesClientAttributes(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	a := r.device(r.url(), r.team, r.teamStaf)
	b := r.device(r.url(), r.team, r.teamStaf)
	offline := r.device(r.url(), r.team, r.teamStaf) // does not sync again before it records

	man, err := a.NewClient(ctx, schema.GenderMan, 1988, "")
	if err != nil {
		t.Fatal(err)
	}
	young, err := a.NewClient(ctx, schema.GenderWoman, 1996, "")
	if err != nil {
		t.Fatal(err)
	}
	banded, err := a.NewClient(ctx, schema.GenderWoman, 0, schema.Age18to24)
	if err != nil {
		t.Fatal(err)
	}
	silent, err := a.NewClient(ctx, schema.GenderNotStated, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, a, b)

	june := time.Date(2026, 6, 15, 10, 0, 0, 0, time.UTC)
	// 23:30 UTC on New Year's Eve 2025 is 2026 in Sweden, where statistics
	// count: the client born 1996 is 30 then.
	newYear := time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC)
	cases := []struct {
		name       string
		dev        *brygga.Client
		code       schema.ClientCode
		at         time.Time
		gender     schema.Gender
		band       schema.AgeBand
		wantGender schema.Gender
		wantBand   schema.AgeBand
	}{
		{"registering device", a, man.Code, june, "", "", schema.GenderMan, schema.Age30to39},
		{"device that pulled the client", b, man.Code, june, "", "", schema.GenderMan, schema.Age30to39},
		{"code as typed", b, schema.ClientCode(strings.ToLower(string(man.Code))), june, "", "", schema.GenderMan, schema.Age30to39},
		{"age in Swedish time", b, young.Code, newYear, "", "", schema.GenderWoman, schema.Age30to39},
		{"age the year before", b, young.Code, newYear.Add(-time.Hour), "", "", schema.GenderWoman, schema.Age25to29},
		{"client with an age band", b, banded.Code, june, "", "", schema.GenderWoman, schema.Age18to24},
		{"client who states nothing", b, silent.Code, june, "", "", schema.GenderNotStated, schema.AgeNotStated},
		{"worker gives both", b, man.Code, june, schema.GenderOther, schema.Age40to49, schema.GenderOther, schema.Age40to49},
		{"worker says not stated", b, man.Code, june, schema.GenderNotStated, schema.AgeNotStated, schema.GenderNotStated, schema.AgeNotStated},
		{"worker gives the age band only", b, man.Code, june, "", schema.Age25to29, schema.GenderMan, schema.Age25to29},
		{"device that does not hold the client", offline, man.Code, june, "", "", schema.GenderNotStated, schema.AgeNotStated},
		{"device that does not hold the client, worker states", offline, man.Code, june, schema.GenderMan, schema.Age30to39, schema.GenderMan, schema.Age30to39},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gender, band, known, err := tc.dev.ClientAttributes(ctx, tc.code, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if wantKnown := tc.dev != offline; known != wantKnown {
				t.Errorf("ClientAttributes known = %v, want %v", known, wantKnown)
			}
			con := &schema.Contact{Header: schema.Header{OccurredAt: tc.at}, ClientCode: tc.code, Gender: tc.gender, AgeBand: tc.band,
				Setting: schema.SettingStreet, AreaCode: "2380"}
			if err := tc.dev.Add(ctx, con); err != nil {
				t.Fatal(err)
			}
			if con.Gender != tc.wantGender || con.AgeBand != tc.wantBand {
				t.Errorf("contact recorded as %s, %s; want %s, %s", con.Gender, con.AgeBand, tc.wantGender, tc.wantBand)
			}
			if tc.gender == "" && tc.band == "" && (gender != con.Gender || band != con.AgeBand) {
				t.Errorf("ClientAttributes = %s, %s; Add recorded %s, %s", gender, band, con.Gender, con.AgeBand)
			}
		})
	}
	anonymous := &schema.Contact{Setting: schema.SettingStreet, AreaCode: "2380"}
	if err := b.Add(ctx, anonymous); !isInvalid(err, "gender") {
		t.Errorf("an anonymous contact without a gender: %v, want a validation error on gender", err)
	}
	syncAll(t, a, b, offline)

	byGender := genderCounts(t, r)
	want := map[string]int64{"man": 5, "woman": 3, "other": 1, "not_stated": 3}
	for g, n := range want {
		if byGender[g] != n {
			t.Errorf("server counts %d contacts of gender %s, want %d (all: %v)", byGender[g], g, n, byGender)
		}
	}

	// The client's gender is corrected: contacts recorded before keep
	// theirs, contacts recorded after take the correction.
	man.Gender = schema.GenderWoman
	if err := a.Correct(ctx, man, "gender"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, a, b)
	after := &schema.Contact{Header: schema.Header{OccurredAt: june}, ClientCode: man.Code, Setting: schema.SettingStreet, AreaCode: "2380"}
	if err := b.Add(ctx, after); err != nil {
		t.Fatal(err)
	}
	if after.Gender != schema.GenderWoman {
		t.Errorf("a contact after the correction took %s, want woman", after.Gender)
	}
	syncAll(t, b)
	byGender = genderCounts(t, r)
	want["woman"]++
	for g, n := range want {
		if byGender[g] != n {
			t.Errorf("after the correction the server counts %d contacts of gender %s, want %d (all: %v)", byGender[g], g, n, byGender)
		}
	}

	// Correcting a past contact moves it.
	after.Gender = schema.GenderMan
	if err := b.Correct(ctx, after, "gender"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, b)
	byGender = genderCounts(t, r)
	want["woman"]--
	want["man"]++
	for g, n := range want {
		if byGender[g] != n {
			t.Errorf("after correcting a contact the server counts %d contacts of gender %s, want %d (all: %v)", byGender[g], g, n, byGender)
		}
	}
}

// isInvalid reports whether err is a validation error of field.
func isInvalid(err error, field string) bool {
	var fe *schema.FieldError
	return errors.As(err, &fe) && errors.Is(err, brygga.ErrInvalid) && fe.Field == field
}

// syncAll syncs each device in turn.
func syncAll(t *testing.T, devs ...*brygga.Client) {
	t.Helper()
	for _, d := range devs {
		if err := d.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// genderCounts returns the team's contacts from 2025 to 2026 by gender, as
// the server's statistics count them.
func genderCounts(t *testing.T, r *region) map[string]int64 {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.srv.OrgStats(context.Background(), r.team.OrgID, stats.Query{
		From: time.Date(2025, 1, 1, 0, 0, 0, 0, loc), To: time.Date(2027, 1, 1, 0, 0, 0, 0, loc),
		Period: stats.Year, By: stats.ByGender, Location: loc,
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, row := range st.Rows {
		if row.Group != stats.TotalGroup {
			counts[row.Group] += row.Indicators[stats.Contacts]
		}
	}
	return counts
}
