package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// TestDashboardRefusesBadInput: the referral status form takes only a
// status of the lifecycle (also on a referral that has moved on past the
// one asked for), and an admin's ?org= only an organisation id: anything
// else is a 400, and changes nothing.
func TestDashboardRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	d := startDeviceServer(t)
	region, _ := d.srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	clinic, _ := d.srv.AddUnit(ctx, region.ID, "Beroendemottagningen", "2380", schema.ServiceAddictionClinic)
	staff, _ := d.srv.AddStaff(ctx, d.unit.ID, schema.RoleOutreachWorker)
	for _, u := range []struct {
		name string
		role server.Role
		unit uuid.UUID
	}{{"chef.klinik", server.RoleManager, clinic.ID}, {"admin", server.RoleAdmin, uuid.Nil}} {
		if _, err := d.srv.AddUser(ctx, u.name, "ett långt lösenord", u.role, uuid.Nil, u.unit); err != nil {
			t.Fatal(err)
		}
	}
	// A referral to the clinic that has moved on to attended.
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: now.Add(-time.Hour)},
		Gender: schema.GenderMan, AgeBand: schema.Age30to39, Setting: schema.SettingStreet, AreaCode: "2309"}
	ref := &schema.Referral{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), OccurredAt: c.OccurredAt}, ContactID: c.ID,
		Service: schema.ServiceAddictionClinic, ToUnitID: clinic.ID, Status: schema.StatusAttended}
	pushRecords(t, d.srv, d.base, d.unit.ID, staff.ID, func(uuid.UUID) []schema.Record { return []schema.Record{c, ref} })

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(user string) *http.Cookie {
		resp, err := noRedirect.PostForm(d.base+"/dashboard/login", url.Values{"username": {user}, "password": {"ett långt lösenord"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == "brygga_session" {
				return ck
			}
		}
		t.Fatalf("login %s: %d, no session", user, resp.StatusCode)
		return nil
	}
	send := func(session *http.Cookie, method, path, body string) int {
		req, _ := http.NewRequest(method, d.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	manager, admin := login("chef.klinik"), login("admin")
	path := "/dashboard/referrals/" + ref.ID.String() + "/status"
	for _, body := range []string{"status=bogus", "", "status=", "status=Attended", "other=closed"} {
		if st := send(manager, "POST", path, body); st != 400 {
			t.Errorf("status form %q: %d, want 400", body, st)
		}
	}
	if st := send(manager, "POST", path, "status=closed"); st != 303 {
		t.Errorf("status form closed: %d, want 303", st)
	}
	got, err := d.srv.Record(ctx, schema.KindReferral, ref.ID)
	if err != nil || got.(*schema.Referral).Status != schema.StatusClosed {
		t.Errorf("referral after the forms: %+v %v", got, err)
	}
	for _, q := range []string{"not-a-uuid", "1", uuid.NewString()[:8]} {
		for _, page := range []string{"/dashboard/", "/dashboard/devices", "/dashboard/referrals", "/dashboard/enrol"} {
			if st := send(admin, "GET", page+"?org="+q, ""); st != 400 {
				t.Errorf("admin %s?org=%s: %d, want 400", page, q, st)
			}
		}
	}
	if st := send(admin, "GET", "/dashboard/?org="+region.ID.String(), ""); st != 200 {
		t.Errorf("admin with a good org: %d", st)
	}
	if st := send(admin, "GET", "/dashboard/", ""); st != 200 {
		t.Errorf("admin without org: %d", st)
	}
}
