package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// TestDashboardRefusesBadInput: every query parameter of the dashboard is
// checked, and a bad one is a 400 HTML page that names it, never JSON; a
// referral's status moves on only to a status that may follow, only once
// confirmed; an admin's ?org= is an organisation id.
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
	type answer struct {
		status int
		ctype  string
		body   string
	}
	send := func(session *http.Cookie, method, path, body string) answer {
		req, _ := http.NewRequest(method, d.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
	}
	manager, admin := login("chef.klinik"), login("admin")
	status := func() schema.ReferralStatus {
		got, err := d.srv.Record(ctx, schema.KindReferral, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.(*schema.Referral).Status
	}

	path := "/dashboard/referrals/" + ref.ID.String() + "/status"
	for _, body := range []string{"status=bogus", "", "status=", "status=Attended", "other=closed", "status=received&confirm=yes", "status=sent&confirm=yes"} {
		if a := send(manager, "POST", path, body); a.status != 400 || !strings.HasPrefix(a.ctype, "text/html") {
			t.Errorf("status form %q: %d %s, want a 400 page", body, a.status, a.ctype)
		}
	}
	// Without confirm=yes, the page asks; with it, the status changes.
	if a := send(manager, "POST", path, "status=closed"); a.status != 200 || !strings.Contains(a.body, `id="confirm"`) || status() != schema.StatusAttended {
		t.Errorf("status form closed without confirmation: %d, status %s", a.status, status())
	}
	if a := send(manager, "GET", path+"?status=closed", ""); a.status != 200 || status() != schema.StatusAttended {
		t.Errorf("the confirmation page: %d, status %s", a.status, status())
	}
	if a := send(manager, "POST", path, "status=closed&confirm=yes"); a.status != 303 || status() != schema.StatusClosed {
		t.Errorf("confirmed: %d, status %s", a.status, status())
	}
	if a := send(manager, "GET", path+"?status=attended&lang=en", ""); a.status != 400 || !strings.Contains(a.body, "is closed") {
		t.Errorf("a closed referral: %d %q", a.status, a.body)
	}
	if a := send(manager, "GET", "/dashboard/referrals/"+uuid.NewString()+"/status?status=closed", ""); a.status != 404 || !strings.HasPrefix(a.ctype, "text/html") {
		t.Errorf("no such referral: %d %s", a.status, a.ctype)
	}

	// Every parameter of every page is checked.
	for _, q := range []string{
		"/dashboard/?period=fortnight", "/dashboard/?from=2026-02-30", "/dashboard/?from=26-01-01", "/dashboard/?from=1999-12-31",
		"/dashboard/?from=2026-05-01&to=2026-04-30", "/dashboard/?unit=" + uuid.NewString(), "/dashboard/?unit=" + d.unit.ID.String(),
		"/dashboard/?unit=x", "/dashboard/?by=municipality", "/dashboard/?compare=2", "/dashboard/?format=json",
		"/dashboard/?colour=red", "/dashboard/?lang=de", "/dashboard/?period=week&from=2020-01-01&to=2026-01-01",
		"/dashboard/referrals?days=0", "/dashboard/referrals?days=x", "/dashboard/referrals?waiting=yes", "/dashboard/referrals?changed=x", "/dashboard/devices?named=1",
		"/dashboard/cards?count=0", "/dashboard/cards?count=61", "/dashboard/cards?x=1",
	} {
		a := send(manager, "GET", q, "")
		if a.status != 400 || !strings.HasPrefix(a.ctype, "text/html") || !strings.Contains(a.body, `id="error-message"`) {
			t.Errorf("%s: %d %s, want a 400 page", q, a.status, a.ctype)
		}
	}
	for _, q := range []string{"/dashboard/nowhere", "/dashboard/devices/" + uuid.NewString() + "/name", "/dashboard/devices/x/retire"} {
		if a := send(manager, "GET", q, ""); a.status != 404 || !strings.HasPrefix(a.ctype, "text/html") {
			t.Errorf("%s: %d %s, want a 404 page", q, a.status, a.ctype)
		}
	}
	for _, q := range []string{"/dashboard/?period=quarter&from=2025-01-01&to=2026-12-31&by=age_band&compare=0", "/dashboard/?by=setting&lang=en", "/dashboard/?unit=" + clinic.ID.String(),
		"/dashboard/referrals?days=30", "/dashboard/cards?count=1", "/dashboard/?lang=en"} {
		if a := send(manager, "GET", q, ""); a.status != 200 {
			t.Errorf("%s: %d", q, a.status)
		}
	}
	a := send(manager, "GET", "/dashboard/?period=year&from=2026-01-01&to=2026-12-31&format=csv", "")
	if a.status != 200 || a.ctype != "text/csv; charset=utf-8" || !strings.HasPrefix(a.body, "organisation,unit,from,to,period,table,row,column,value,by,row_label,column_label\n") {
		t.Errorf("csv: %d %s %.80q", a.status, a.ctype, a.body)
	}

	for _, q := range []string{"not-a-uuid", "1", uuid.NewString()[:8]} {
		for _, page := range []string{"/dashboard/", "/dashboard/devices", "/dashboard/referrals", "/dashboard/enrol", "/dashboard/cards"} {
			if a := send(admin, "GET", page+"?org="+q, ""); a.status != 400 || !strings.HasPrefix(a.ctype, "text/html") {
				t.Errorf("admin %s?org=%s: %d, want 400", page, q, a.status)
			}
		}
	}
	if a := send(admin, "GET", "/dashboard/?org="+uuid.NewString(), ""); a.status != 404 {
		t.Errorf("admin with an unknown org: %d", a.status)
	}
	if a := send(admin, "GET", "/dashboard/?org="+region.ID.String(), ""); a.status != 200 || !strings.Contains(a.body, `id="org-picker"`) {
		t.Errorf("admin with a good org: %d", a.status)
	}
	if a := send(admin, "GET", "/dashboard/", ""); a.status != 200 {
		t.Errorf("admin without org: %d", a.status)
	}
}

// TestDeviceNames: a manager names a tablet of the organisation with PUT
// /v1/devices/{id}/name and sees the name in GET /v1/devices; a name is a
// short label, never free text; another organisation's tablet is not
// found.
func TestDeviceNames(t *testing.T) {
	ctx := context.Background()
	d := startDeviceServer(t)
	region, _ := d.srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	clinic, _ := d.srv.AddUnit(ctx, region.ID, "Beroendemottagningen", "2380")
	for _, u := range []struct {
		name string
		unit uuid.UUID
	}{{"chef.falt", d.unit.ID}, {"chef.klinik", clinic.ID}} {
		if _, err := d.srv.AddUser(ctx, u.name, "ett långt lösenord", server.RoleManager, uuid.Nil, u.unit); err != nil {
			t.Fatal(err)
		}
	}
	code, _ := d.srv.NewEnrolCode(ctx, d.unit.ID, "test")
	dev, err := enrolIn(ctx, t, d.srv, code.Code, newKey(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	token := func(user string) string {
		resp, err := http.Post(d.base+"/v1/auth/login", "application/json", strings.NewReader(`{"username":"`+user+`","password":"ett långt lösenord"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lr server.LoginResponse
		json.NewDecoder(resp.Body).Decode(&lr)
		return lr.AccessToken
	}
	put := func(tok, id, body string) (int, string) {
		req, _ := http.NewRequest("PUT", d.base+"/v1/devices/"+id+"/name", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	mine, other := token("chef.falt"), token("chef.klinik")
	id := dev.DeviceID.String()
	for _, body := range []string{`{"name":"Anna; ring 070-123"}`, `{"name":" Van 1"}`, `{"name":"Van  1"}`, `{"name":"Van 1-"}`,
		`{"name":"` + strings.Repeat("a", 33) + `"}`, `{"name":"Van_1"}`, `{"name":"Bil\n2"}`, `{}`, `{"name":1}`, `{"name":"Van 1","x":1}`} {
		if st, b := put(mine, id, body); st != 400 || !strings.Contains(b, "malformed_request") {
			t.Errorf("name %s: %d %s", body, st, b)
		}
	}
	if st, _ := put(other, id, `{"name":"Van 1"}`); st != 404 {
		t.Errorf("another organisation's manager: %d", st)
	}
	for _, name := range []string{"Van 1", "Bil-2 Östersund", strings.Repeat("å", 32)} {
		st, b := put(mine, id, `{"name":"`+name+`"}`)
		var got server.DeviceInfo
		json.Unmarshal([]byte(b), &got)
		if st != 200 || got.Name != name {
			t.Errorf("name %q: %d %s", name, st, b)
		}
	}
	if st, _ := put(mine, id, `{"name":"Van 1"}`); st != 200 {
		t.Errorf("renaming: %d", st)
	}
	req, _ := http.NewRequest("GET", d.base+"/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer "+mine)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Devices []server.DeviceInfo `json:"devices"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Devices) != 1 || list.Devices[0].Name != "Van 1" {
		t.Errorf("GET /v1/devices: %+v", list.Devices)
	}
	if st, b := put(mine, id, `{"name":""}`); st != 200 || !strings.Contains(b, `"name":""`) {
		t.Errorf("removing the name: %d %s", st, b)
	}
	entries, _ := d.srv.Audit(ctx, 0, 1000)
	named := 0
	for _, e := range entries {
		if e.Action == "device_name" {
			named++
			if strings.Contains(e.Target, "Van") || strings.Contains(e.Actor, "Van") {
				t.Errorf("the name is in the audit log: %+v", e)
			}
		}
	}
	if named != 5 {
		t.Errorf("%d namings audited, want 5", named)
	}
}
