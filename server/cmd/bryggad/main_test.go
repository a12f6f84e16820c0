package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// syncBuffer is a buffer Run writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bryggad is a running server: Run on a free loopback port with a fresh
// database and the demo region.
type bryggad struct {
	url      string
	db       string
	out      *syncBuffer
	accounts map[string]string // role -> username:password
	outreach uuid.UUID
}

func startBryggad(t *testing.T) *bryggad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db := filepath.Join(t.TempDir(), "brygga.db")
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--demo"}, nil, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bryggad: %v", err)
		}
	})
	b := waitBryggad(t, out, done)
	b.db = db
	return b
}

// waitBryggad waits for a bryggad serving with the demo region to say
// where it listens, and reads its accounts from what it printed.
func waitBryggad(t *testing.T, out *syncBuffer, done <-chan error) *bryggad {
	t.Helper()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			b := &bryggad{url: m[1], out: out, accounts: map[string]string{}}
			for _, line := range strings.Split(out.String(), "\n") {
				f := strings.Fields(line)
				if len(f) == 3 && (f[0] == "manager" || f[0] == "authority" || f[0] == "admin") {
					b.accounts[f[0]] = f[1] + ":" + f[2]
				}
				if m := regexp.MustCompile(`--unit (\S+)`).FindStringSubmatch(line); m != nil {
					b.outreach = uuid.MustParse(m[1])
				}
			}
			return b
		}
		select {
		case err := <-done:
			t.Fatalf("bryggad stopped: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bryggad did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 20 * time.Second}

// call makes a request and decodes the JSON answer into out (if not nil).
func (b *bryggad) call(t *testing.T, method, path, token string, body any, out any) (int, *wire.Error) {
	t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	default:
		data, _ := json.Marshal(v)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct{ Error *wire.Error }
		if err := json.Unmarshal(data, &e); err != nil || e.Error == nil {
			t.Fatalf("%s %s: status %d without an error body: %s", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, nil
}

func (b *bryggad) login(t *testing.T, role string) string {
	t.Helper()
	user, pw, _ := strings.Cut(b.accounts[role], ":")
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	if st, e := b.call(t, "POST", "/v1/auth/login", "", map[string]string{"username": user, "password": pw}, &resp); e != nil {
		t.Fatalf("login %s: %d %v", role, st, e)
	}
	return resp.AccessToken
}

type enrolment struct {
	DeviceID      uuid.UUID `json:"device_id"`
	UnitID        uuid.UUID `json:"unit_id"`
	AccessToken   string    `json:"access_token"`
	TokenAudience string    `json:"token_audience"`
	// key is the device's private key, which the test made.
	key ed25519.PrivateKey
}

// enrolDevice enrols a device with code and a new key pair.
func (b *bryggad) enrolDevice(t *testing.T, code string) (enrolment, int, *wire.Error) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	dev := enrolment{key: priv}
	st, e := b.call(t, "POST", wire.EnrolPath, "", enrolRequest(code, priv), &dev)
	dev.key = priv
	return dev, st, e
}

// enrolRequest is an enrolment request as the SDK makes it, with a fresh
// proof.
func enrolRequest(code string, priv ed25519.PrivateKey) map[string]string {
	proof, err := server.SignEnrolProof(priv, code, time.Now())
	if err != nil {
		panic(err)
	}
	return map[string]string{"code": code, "public_key": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), "proof": proof}
}

// assertion is a token request of the device, as the SDK makes it.
func (d *enrolment) assertion(edit func(jwt.MapClaims)) map[string]string {
	now := time.Now()
	sub := "device:" + d.DeviceID.String()
	c := jwt.MapClaims{"iss": sub, "sub": sub, "aud": d.TokenAudience, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString()}
	if edit != nil {
		edit(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(d.key)
	if err != nil {
		panic(err)
	}
	return map[string]string{"grant_type": wire.GrantJWTBearer, "assertion": s}
}

func (b *bryggad) enrolCode(t *testing.T, token string, unit uuid.UUID) string {
	t.Helper()
	var code struct {
		Code      string `json:"code"`
		QRPayload string `json:"qr_payload"`
		QRPNG     string `json:"qr_png"`
	}
	if st, e := b.call(t, "POST", "/v1/devices/enroll-codes", token, map[string]any{"unit_id": unit}, &code); e != nil || st != 201 {
		t.Fatalf("enrolment code: %d %v", st, e)
	}
	if code.Code == "" || !strings.Contains(code.QRPayload, code.Code[:4]) || code.QRPNG == "" {
		t.Fatalf("enrolment code answer incomplete: %+v", code)
	}
	return code.Code
}

func pullAll(t *testing.T, b *bryggad, token string) []wire.Change {
	t.Helper()
	var all []wire.Change
	cursor := ""
	for range 100 {
		var page wire.PullResponse
		path := fmt.Sprintf("/v1/sync/pull?protocol=%d&schema=%d&limit=50&cursor=%s", wire.Protocol, schema.Version, cursor)
		if st, e := b.call(t, "GET", path, token, nil, &page); e != nil {
			t.Fatalf("pull: %d %v", st, e)
		}
		all = append(all, page.Changes...)
		cursor = page.Cursor
		if !page.HasMore {
			return all
		}
	}
	t.Fatal("pull did not end")
	return nil
}

// TestFlow drives the whole flow over HTTP: a manager enrols a device with
// a one-time code, the device pulls its scope, pushes records (once, and
// again as a retry), refreshes its token (and a reused token ends its
// session), and is revoked.
func TestFlow(t *testing.T) {
	b := startBryggad(t)
	manager := b.login(t, "manager")
	code := b.enrolCode(t, manager, b.outreach)

	dev, st, e := b.enrolDevice(t, strings.ToLower(code))
	if e != nil || st != 201 {
		t.Fatalf("enrol: %d %v", st, e)
	}
	if dev.UnitID != b.outreach || dev.AccessToken == "" || dev.TokenAudience == "" {
		t.Fatalf("enrolment %+v", dev)
	}
	var repeated enrolment
	if st, e := b.call(t, "POST", wire.EnrolPath, "", enrolRequest(code, dev.key), &repeated); e != nil || st != 201 || repeated.DeviceID != dev.DeviceID {
		t.Errorf("the same enrolment again: %d %v %s", st, e, repeated.DeviceID)
	}
	if _, _, e := b.enrolDevice(t, code); e == nil || e.Code != wire.CodeEnrolCodeInvalid {
		t.Errorf("second use of a code by another key: %v", e)
	}

	// The first pull brings the reference data: the unit's staff among it.
	changes := pullAll(t, b, dev.AccessToken)
	var staff uuid.UUID
	units := 0
	for _, c := range changes {
		if c.Kind == schema.KindUnit {
			units++
		}
		if c.Kind == schema.KindStaff && staff == uuid.Nil {
			var st schema.Staff
			json.Unmarshal(c.Fields, &st)
			if st.UnitID == b.outreach {
				staff = st.ID
			}
		}
	}
	if staff == uuid.Nil || units < 8 {
		t.Fatalf("first pull: %d changes, %d units, staff %s", len(changes), units, staff)
	}

	// Push a contact, an exchange and one invalid record; then the retry.
	clock := hlc.NewClock(nil, 0)
	contact := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: dev.UnitID, DeviceID: dev.DeviceID, StaffID: staff,
		OccurredAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)},
		Gender: schema.GenderWoman, AgeBand: schema.Age18to24, Setting: schema.SettingStreet, AreaCode: "2380"}
	exchange := &schema.SyringeExchange{Header: contact.Header, ContactID: contact.ID, SyringesOut: 30, NeedlesOut: 30, SyringesReturned: 22}
	exchange.ID = uuid.Must(uuid.NewV7())
	bad := &schema.NaloxoneHandout{Header: contact.Header, ContactID: contact.ID, Doses: -2, Reason: schema.NaloxoneFirstKit}
	bad.ID = uuid.Must(uuid.NewV7())
	var ms []wire.Mutation
	for i, rec := range []schema.Record{contact, exchange, bad} {
		obj := map[string]json.RawMessage{}
		for _, f := range rec.Fields() {
			obj[f.Name], _ = f.MarshalJSON()
		}
		fields, _ := json.Marshal(obj)
		ms = append(ms, wire.Mutation{Seq: int64(i + 1), Kind: rec.Kind(), ID: rec.RecordID(), Version: clock.Now(), Fields: fields})
	}
	req := wire.PushRequest{Versions: wire.Current(), Clock: clock.Now(), Mutations: ms}
	var pushed wire.PushResponse
	if st, e := b.call(t, "POST", "/v1/sync/push", dev.AccessToken, req, &pushed); e != nil {
		t.Fatalf("push: %d %v", st, e)
	}
	want := []wire.Status{wire.Applied, wire.Applied, wire.Rejected}
	for i, r := range pushed.Results {
		if r.Status != want[i] {
			t.Errorf("mutation %d: %s %v, want %s", i+1, r.Status, r.Error, want[i])
		}
	}
	if e := pushed.Results[2].Error; e == nil || e.Code != wire.CodeInvalidRecord || e.Field != "doses" || e.Rule != schema.RuleRange {
		t.Errorf("rejection of negative doses: %+v", e)
	}
	var again wire.PushResponse
	b.call(t, "POST", "/v1/sync/push", dev.AccessToken, req, &again)
	for i, r := range again.Results {
		if i < 2 && r.Status != wire.Duplicate || i == 2 && r.Status != wire.Rejected {
			t.Errorf("retried mutation %d: %s", i+1, r.Status)
		}
	}
	found := 0
	for _, c := range pullAll(t, b, dev.AccessToken) {
		if c.ID == contact.ID || c.ID == exchange.ID {
			found++
		}
		if c.ID == bad.ID {
			t.Error("the rejected record reached the server")
		}
	}
	if found != 2 {
		t.Errorf("pulled %d of the 2 pushed records", found)
	}

	// Managers see the device, its last sync and its rejection.
	var list struct {
		Devices []struct {
			ID         uuid.UUID  `json:"id"`
			LastSyncAt *time.Time `json:"last_sync_at"`
			Rejected   int        `json:"rejected"`
			Protocol   int        `json:"protocol"`
		} `json:"devices"`
	}
	b.call(t, "GET", "/v1/devices", manager, nil, &list)
	if len(list.Devices) != 1 || list.Devices[0].ID != dev.DeviceID || list.Devices[0].LastSyncAt == nil || list.Devices[0].Rejected != 1 || list.Devices[0].Protocol != wire.Protocol {
		t.Errorf("device list: %+v", list.Devices)
	}

	// The manager sees the organisation's figures as recorded; the
	// authority's report suppresses the count of one.
	var figures struct {
		Rows []struct {
			Group         string           `json:"group"`
			Indicators    map[string]int64 `json:"indicators"`
			ReturnRate    *float64         `json:"return_rate"`
			AttendedShare *float64         `json:"attended_share"`
		} `json:"rows"`
	}
	b.call(t, "GET", "/v1/stats?period=year", manager, nil, &figures)
	var contacts, syringes int64
	for _, r := range figures.Rows {
		if r.Group == "total" {
			contacts += r.Indicators["contacts"]
			syringes += r.Indicators["syringes_out"]
			// 22 of 30 syringes came back; no referral was made.
			if r.ReturnRate == nil || *r.ReturnRate != 22.0/30 || r.AttendedShare != nil {
				t.Errorf("manager's rates: return %v, attended %v; want 22/30 and none", r.ReturnRate, r.AttendedShare)
			}
		}
	}
	if contacts != 1 || syringes != 30 {
		t.Errorf("manager's stats: %d contacts, %d syringes; want 1 and 30", contacts, syringes)
	}
	authority := b.login(t, "authority")
	req2, _ := http.NewRequest("GET", b.url+"/v1/reports/indicators?period=year&by=municipality&format=csv", nil)
	req2.Header.Set("Authorization", "Bearer "+authority)
	resp2, err := client.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !strings.HasPrefix(string(csvBody), "period,status,by,group,label,indicator,value,withheld,revised\n") {
		t.Fatalf("report csv: %.200s", csvBody)
	}
	totals := 0
	for _, line := range strings.Split(string(csvBody), "\n") {
		if strings.Contains(line, ",total,Total,contacts,") {
			totals++
			// One contact is published as 0 or k, never as 1.
			if !strings.Contains(line, ",contacts,0,false,") && !strings.Contains(line, ",contacts,5,false,") {
				t.Errorf("a count of one contact published as %q", line)
			}
		}
		if strings.Contains(line, string(contact.ID.String())) {
			t.Error("the report holds a record id")
		}
	}
	if totals != 1 {
		t.Errorf("%d total rows of contacts in a year's report, want 1:\n%s", totals, csvBody)
	}

	// Access tokens for assertions signed by the device's key; each
	// assertion works once.
	var next enrolment
	treq := dev.assertion(nil)
	if st, e := b.call(t, "POST", wire.TokenPath, "", treq, &next); e != nil || st != 200 || next.AccessToken == "" {
		t.Fatalf("token: %d %v", st, e)
	}
	if _, e := b.call(t, "POST", wire.TokenPath, "", treq, nil); e == nil || e.Code != wire.CodeAssertionReplayed {
		t.Errorf("a replayed assertion: %v", e)
	}
	if st, e := b.call(t, "POST", wire.TokenPath, "", dev.assertion(nil), nil); e != nil || st != 200 {
		t.Errorf("a new assertion after a replayed one: %d %v", st, e)
	}

	// Revocation: the device's next request is told to wipe.
	if st, e := b.call(t, "POST", "/v1/devices/"+dev.DeviceID.String()+"/revoke", manager, map[string]bool{"confirm": true}, nil); e != nil {
		t.Fatalf("revoke: %d %v", st, e)
	}
	st, e = b.call(t, "POST", "/v1/sync/push", next.AccessToken, wire.PushRequest{Versions: wire.Current(), Clock: hlc.NewClock(nil, 0).Now(), Mutations: []wire.Mutation{}}, nil)
	if e == nil || e.Code != wire.CodeDeviceRevoked || st != 403 {
		t.Errorf("push after revocation: %d %v", st, e)
	}

	// The audit log has it all, for the admin only.
	admin := b.login(t, "admin")
	var audit struct {
		Entries []struct{ Action, Outcome string } `json:"entries"`
	}
	b.call(t, "GET", "/v1/audit?limit=1000", admin, nil, &audit)
	actions := map[string]int{}
	for _, a := range audit.Entries {
		actions[a.Action]++
	}
	for _, a := range []string{"login", "enrol_code", "enrol", "pull", "token", "revoke", "stats", "report"} {
		if actions[a] == 0 {
			t.Errorf("audit has no %s: %v", a, actions)
		}
	}
	if st, e := b.call(t, "GET", "/v1/audit", manager, nil, nil); e == nil || st != 403 {
		t.Errorf("a manager read the audit log: %d", st)
	}
}

// TestEndpoints checks each endpoint's answers to good and bad requests.
func TestEndpoints(t *testing.T) {
	b := startBryggad(t)
	manager := b.login(t, "manager")
	authority := b.login(t, "authority")
	admin := b.login(t, "admin")
	dev, _, _ := b.enrolDevice(t, b.enrolCode(t, manager, b.outreach))
	v := fmt.Sprintf("protocol=%d&schema=%d", wire.Protocol, schema.Version)
	otherUnit := uuid.Nil
	var units struct {
		Units []schema.Unit `json:"units"`
	}
	b.call(t, "GET", "/v1/units", admin, nil, &units)
	for _, u := range units.Units {
		if u.Name == "Mobila teamet Åre" {
			otherUnit = u.ID
		}
	}
	push := func(extra string) string {
		return `{"protocol":2,"schema":2,"clock":"018e3a5f0c000001","mutations":[]` + extra + `}`
	}

	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      wire.Code
	}{
		{"health", "GET", "/healthz", "", nil, 200, ""},
		{"ready", "GET", "/readyz", "", nil, 200, ""},
		{"jwks", "GET", "/.well-known/jwks.json", "", nil, 200, ""},
		{"metrics", "GET", "/metrics", "", nil, 200, ""},
		{"unknown route", "GET", "/v1/patients", "", nil, 404, wire.CodeNotFound},
		{"wrong method", "DELETE", "/v1/auth/login", "", nil, 405, wire.CodeMethodNotAllowed},

		{"login wrong password", "POST", "/v1/auth/login", "", map[string]string{"username": "admin", "password": "nope"}, 401, wire.CodeUnauthorized},
		{"login unknown user", "POST", "/v1/auth/login", "", map[string]string{"username": "nobody", "password": "nope"}, 401, wire.CodeUnauthorized},
		{"login empty", "POST", "/v1/auth/login", "", map[string]string{}, 400, wire.CodeMalformed},
		{"login unknown field", "POST", "/v1/auth/login", "", `{"username":"a","password":"b","otp":1}`, 400, wire.CodeMalformed},
		{"login malformed json", "POST", "/v1/auth/login", "", `{"username":`, 400, wire.CodeMalformed},

		{"refresh of protocol 1", "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": "x"}, 426, wire.CodeUnsupportedVersion},
		{"token", "POST", wire.TokenPath, "", dev.assertion(nil), 200, ""},
		{"token expired assertion", "POST", wire.TokenPath, "", dev.assertion(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-59*time.Minute).Unix()
		}), 401, wire.CodeClockSkew},
		{"token wrong audience", "POST", wire.TokenPath, "", dev.assertion(func(c jwt.MapClaims) { c["aud"] = "brygga-api" }), 401, wire.CodeUnauthorized},
		{"token missing", "POST", wire.TokenPath, "", map[string]string{"grant_type": wire.GrantJWTBearer}, 400, wire.CodeMalformed},
		{"enrol bad code", "POST", "/v1/devices/enroll", "", enrolRequest("AAAA-BBBB-CCCC", dev.key), 401, wire.CodeEnrolCodeInvalid},
		{"enrol protocol 1", "POST", "/v1/devices/enroll", "", map[string]string{"code": "AAAA-BBBB-CCCC"}, 426, wire.CodeUnsupportedVersion},
		{"enrol missing code", "POST", "/v1/devices/enroll", "", map[string]string{}, 400, wire.CodeMalformed},

		{"enrol code by manager for own unit", "POST", "/v1/devices/enroll-codes", manager, map[string]any{"unit_id": b.outreach}, 201, ""},
		{"enrol code for another org's unit", "POST", "/v1/devices/enroll-codes", manager, map[string]any{"unit_id": otherUnit}, 404, wire.CodeNotFound},
		{"enrol code by admin anywhere", "POST", "/v1/devices/enroll-codes", admin, map[string]any{"unit_id": otherUnit}, 201, ""},
		{"enrol code by authority", "POST", "/v1/devices/enroll-codes", authority, map[string]any{"unit_id": b.outreach}, 403, wire.CodeForbidden},
		{"enrol code by device", "POST", "/v1/devices/enroll-codes", dev.AccessToken, map[string]any{"unit_id": b.outreach}, 403, wire.CodeForbidden},
		{"enrol code without token", "POST", "/v1/devices/enroll-codes", "", map[string]any{"unit_id": b.outreach}, 401, wire.CodeUnauthorized},
		{"enrol code bad token", "POST", "/v1/devices/enroll-codes", "abc.def.ghi", map[string]any{"unit_id": b.outreach}, 401, wire.CodeUnauthorized},
		{"enrol code unknown unit", "POST", "/v1/devices/enroll-codes", admin, map[string]any{"unit_id": uuid.New()}, 404, wire.CodeNotFound},

		{"devices by manager", "GET", "/v1/devices", manager, nil, 200, ""},
		{"devices by authority", "GET", "/v1/devices", authority, nil, 403, wire.CodeForbidden},
		{"units by authority", "GET", "/v1/units", authority, nil, 200, ""},
		{"revoke unknown device", "POST", "/v1/devices/" + uuid.NewString() + "/revoke", manager, nil, 404, wire.CodeNotFound},
		{"revoke malformed id", "POST", "/v1/devices/robert/revoke", manager, nil, 400, wire.CodeMalformed},
		{"audit by admin", "GET", "/v1/audit", admin, nil, 200, ""},
		{"audit bad limit", "GET", "/v1/audit?limit=0", admin, nil, 400, wire.CodeMalformed},

		{"push empty", "POST", "/v1/sync/push", dev.AccessToken, push(""), 200, ""},
		{"push by user", "POST", "/v1/sync/push", manager, push(""), 403, wire.CodeForbidden},
		{"push without token", "POST", "/v1/sync/push", "", push(""), 401, wire.CodeUnauthorized},
		{"push old protocol", "POST", "/v1/sync/push", dev.AccessToken, strings.Replace(push(""), `"protocol":2`, `"protocol":0`, 1), 426, wire.CodeUnsupportedVersion},
		{"push unknown field", "POST", "/v1/sync/push", dev.AccessToken, push(`,"device":"me"`), 400, wire.CodeMalformed},
		{"push malformed", "POST", "/v1/sync/push", dev.AccessToken, `{"protocol":2,`, 400, wire.CodeMalformed},
		{"push seq gap", "POST", "/v1/sync/push", dev.AccessToken, strings.Replace(push(""), `[]`, `[{"seq":5,"kind":"contacts","id":"`+uuid.NewString()+`","version":"018e3a5f0c000001","fields":{"voided":true}}]`, 1), 409, wire.CodeSeqGap},
		{"pull", "GET", "/v1/sync/pull?" + v, dev.AccessToken, nil, 200, ""},
		{"pull without versions", "GET", "/v1/sync/pull", dev.AccessToken, nil, 426, wire.CodeUnsupportedVersion},
		{"pull newer schema", "GET", "/v1/sync/pull?protocol=2&schema=99", dev.AccessToken, nil, 426, wire.CodeUnsupportedVersion},
		{"pull bad cursor", "GET", "/v1/sync/pull?" + v + "&cursor=xyz", dev.AccessToken, nil, 410, wire.CodeCursorInvalid},
		{"pull bad limit", "GET", "/v1/sync/pull?" + v + "&limit=100000", dev.AccessToken, nil, 400, wire.CodeMalformed},
		{"pull by user", "GET", "/v1/sync/pull?" + v, admin, nil, 403, wire.CodeForbidden},

		{"stats by manager", "GET", "/v1/stats?period=month&by=gender", manager, nil, 200, ""},
		{"stats by authority", "GET", "/v1/stats", authority, nil, 403, wire.CodeForbidden},
		{"stats by device", "GET", "/v1/stats", dev.AccessToken, nil, 403, wire.CodeForbidden},
		{"stats bad period", "GET", "/v1/stats?period=fortnight", manager, nil, 400, wire.CodeMalformed},
		{"stats bad breakdown", "GET", "/v1/stats?by=client", manager, nil, 400, wire.CodeMalformed},
		{"stats bad date", "GET", "/v1/stats?from=yesterday", manager, nil, 400, wire.CodeMalformed},
		{"stats reversed dates", "GET", "/v1/stats?from=2026-05-01&to=2026-04-01", manager, nil, 400, wire.CodeMalformed},
		{"stats by admin needs org", "GET", "/v1/stats", admin, nil, 400, wire.CodeMalformed},
		{"report by authority", "GET", "/v1/reports/indicators?by=municipality&period=quarter", authority, nil, 200, ""},
		{"report csv", "GET", "/v1/reports/indicators?by=age_band&format=csv", authority, nil, 200, ""},
		{"report bad format", "GET", "/v1/reports/indicators?format=xml", authority, nil, 400, wire.CodeMalformed},
		{"report by manager", "GET", "/v1/reports/indicators", manager, nil, 403, wire.CodeForbidden},
		{"report without token", "GET", "/v1/reports/indicators", "", nil, 401, wire.CodeUnauthorized},
		{"client cards", "GET", "/v1/client-cards?count=6", manager, nil, 200, ""},
		{"client card png", "GET", "/v1/client-cards?count=1&format=png", manager, nil, 200, ""},
		{"client cards too many", "GET", "/v1/client-cards?count=5000", manager, nil, 400, wire.CodeMalformed},
		{"client cards by authority", "GET", "/v1/client-cards", authority, nil, 403, wire.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, e := b.call(t, tt.method, tt.path, tt.token, tt.body, nil)
			if st != tt.status {
				t.Errorf("status %d (%v), want %d", st, e, tt.status)
			}
			if tt.code != "" && (e == nil || e.Code != tt.code) {
				t.Errorf("error %v, want code %s", e, tt.code)
			}
		})
	}

	// Wrong content type and oversized bodies are 4xx with a code.
	req, _ := http.NewRequest("POST", b.url+"/v1/auth/login", strings.NewReader("username=admin"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("form body: %d, want 415", resp.StatusCode)
	}
	big := bytes.Repeat([]byte("a"), wire.MaxBodyBytes+1)
	req, _ = http.NewRequest("POST", b.url+"/v1/sync/push", bytes.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+dev.AccessToken)
	resp, err = client.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("oversized body: %d, want 413", resp.StatusCode)
		}
	}

	// A gzip-compressed push is read; a gzip bomb is refused with 413.
	gzipPost := func(payload []byte) int {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(payload)
		zw.Close()
		req, _ := http.NewRequest("POST", b.url+"/v1/sync/push", &zb)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+dev.AccessToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := gzipPost([]byte(push(""))); st != 200 {
		t.Errorf("gzip push: %d", st)
	}
	bomb := []byte(`{"protocol":2,"schema":2,"clock":"` + strings.Repeat("0", 2*wire.MaxBodyBytes) + `","mutations":[]}`)
	if st := gzipPost(bomb); st != 413 {
		t.Errorf("gzip bomb: %d, want 413", st)
	}

	// Metrics carry request, sync and database figures.
	resp, err = client.Get(b.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"brygga_http_requests_total", "brygga_sync_mutations_total", "brygga_db_size_bytes", "brygga_db_open_connections"} {
		if !strings.Contains(string(metricsText), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	// Refused requests are counted with the status they were answered.
	if want := `brygga_http_requests_total{method="POST",route="/v1/sync/push",status="413"} 1`; !strings.Contains(string(metricsText), want) {
		var have []string
		for _, line := range strings.Split(string(metricsText), "\n") {
			if strings.HasPrefix(line, "brygga_http_requests_total{") {
				have = append(have, line)
			}
		}
		t.Errorf("metrics lack %s; they have\n%s", want, strings.Join(have, "\n"))
	}

	// The PNG of an enrolment code.
	req, _ = http.NewRequest("POST", b.url+"/v1/devices/enroll-codes", strings.NewReader(`{"unit_id":"`+b.outreach.String()+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "image/png")
	req.Header.Set("Authorization", "Bearer "+manager)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !bytes.HasPrefix(png, []byte("\x89PNG")) || resp.Header.Get("X-Brygga-Enrol-Code") == "" {
		t.Errorf("QR PNG: %d %q %q", resp.StatusCode, png[:min(8, len(png))], resp.Header.Get("X-Brygga-Enrol-Code"))
	}

	// Five failed logins lock the username out.
	for range 5 {
		b.call(t, "POST", "/v1/auth/login", "", map[string]string{"username": "chef.ostersund", "password": "wrong password"}, nil)
	}
	user, pw, _ := strings.Cut(b.accounts["manager"], ":")
	if st, e := b.call(t, "POST", "/v1/auth/login", "", map[string]string{"username": user, "password": pw}, nil); st != 429 || e.Code != wire.CodeRateLimited {
		t.Errorf("login after 5 failures: %d %v", st, e)
	}
}

// TestAdminCommands drives the admin subcommands on a database directly.
func TestAdminCommands(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "b.db")
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, args, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	org, err := run("", "org", "add", "--db", db, "--kind", "municipality", "--name", "Bergs kommun", "--region", "23")
	if err != nil {
		t.Fatal(err)
	}
	orgID := strings.TrimSpace(org)
	unit, err := run("", "unit", "add", "--db", db, "--org", orgID, "--name", "Fältteamet Berg", "--area", "2326")
	if err != nil {
		t.Fatal(err)
	}
	unitID := strings.TrimSpace(unit)
	list, _ := run("", "unit", "list", "--db", db)
	if !strings.HasPrefix(list, unitID+"\t") {
		t.Errorf("unit list does not start with the unit's id: %q", list)
	}
	if _, err := run("a long enough password\n", "user", "add", "--db", db, "--username", "chef.berg", "--role", "manager", "--unit", unitID, "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("short\n", "user", "add", "--db", db, "--username", "x.berg", "--role", "manager", "--unit", unitID, "--password-stdin"); err == nil {
		t.Error("a short password was accepted")
	}
	if _, err := run("a long enough password\n", "user", "add", "--db", db, "--username", "chef.berg", "--role", "admin", "--password-stdin"); err == nil {
		t.Error("a taken username was accepted")
	}
	if _, err := run("a long enough password\n", "user", "add", "--db", db, "--username", "y", "--role", "king", "--password-stdin"); err == nil {
		t.Error("an unknown role was accepted")
	}
	out, err := run("", "device", "enroll-code", "--db", db, "--unit", unitID)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(out, "\n")
	if !regexp.MustCompile(`^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$`).MatchString(first) || !strings.Contains(out, "█") && !strings.Contains(out, "▀") {
		t.Errorf("enroll-code output: %q", out)
	}
	if _, err := run("", "device", "enroll-code", "--db", db, "--unit", uuid.NewString()); err == nil {
		t.Error("a code for an unknown unit")
	}
	if _, err := run("", "frobnicate"); err == nil {
		t.Error("an unknown command ran")
	}
	users, _ := run("", "user", "list", "--db", db)
	sc := bufio.NewScanner(strings.NewReader(users))
	n := 0
	for sc.Scan() {
		n++
	}
	if n != 1 {
		t.Errorf("user list: %q", users)
	}
}

// TestShutdownDuringPush stops the server while a large push is in
// flight: afterwards the push is either wholly applied or not at all.
func TestShutdownDuringPush(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db := filepath.Join(t.TempDir(), "brygga.db")
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--demo"}, nil, out, io.Discard)
	}()
	var b *bryggad
	for b == nil {
		if m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out.String()); m != nil {
			b = &bryggad{url: m[1], accounts: map[string]string{}}
			for _, line := range strings.Split(out.String(), "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[0] == "manager" {
					b.accounts["manager"] = f[1] + ":" + f[2]
				}
				if m := regexp.MustCompile(`--unit (\S+)`).FindStringSubmatch(line); m != nil {
					b.outreach = uuid.MustParse(m[1])
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	manager := b.login(t, "manager")
	dev, _, _ := b.enrolDevice(t, b.enrolCode(t, manager, b.outreach))
	var staff uuid.UUID
	for _, c := range pullAll(t, b, dev.AccessToken) {
		var st schema.Staff
		if c.Kind == schema.KindStaff && json.Unmarshal(c.Fields, &st) == nil && st.UnitID == b.outreach {
			staff = st.ID
		}
	}
	clock := hlc.NewClock(nil, 0)
	req := wire.PushRequest{Versions: wire.Current(), Clock: clock.Now()}
	for i := range wire.MaxMutations {
		c := &schema.Contact{Header: schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: dev.UnitID, DeviceID: dev.DeviceID, StaffID: staff,
			OccurredAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)},
			Gender: schema.GenderMan, AgeBand: schema.Age30to39, Setting: schema.SettingFixedSite, AreaCode: "2380"}
		obj := map[string]json.RawMessage{}
		for _, f := range c.Fields() {
			obj[f.Name], _ = f.MarshalJSON()
		}
		fields, _ := json.Marshal(obj)
		req.Mutations = append(req.Mutations, wire.Mutation{Seq: int64(i + 1), Kind: c.Kind(), ID: c.ID, Version: clock.Now(), Fields: fields})
	}
	body, _ := json.Marshal(req)
	pushed := make(chan int, 1)
	go func() {
		r, _ := http.NewRequest("POST", b.url+"/v1/sync/push", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+dev.AccessToken)
		resp, err := client.Do(r)
		if err != nil {
			pushed <- 0
			return
		}
		resp.Body.Close()
		pushed <- resp.StatusCode
	}()
	time.Sleep(5 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	status := <-pushed

	// Reopen the database: all of the push or none of it.
	var contacts, lastSeq int
	dbh, err := replicaOpen(db)
	if err != nil {
		t.Fatal(err)
	}
	defer dbh.Close()
	dbh.QueryRow(`SELECT count(*) FROM contacts`).Scan(&contacts)
	dbh.QueryRow(`SELECT last_seq FROM devices WHERE id = ?`, dev.DeviceID.String()).Scan(&lastSeq)
	if !(contacts == 0 && lastSeq == 0) && !(contacts == wire.MaxMutations && lastSeq == wire.MaxMutations) {
		t.Errorf("half a push applied: %d contacts, last seq %d", contacts, lastSeq)
	}
	if status == 200 && contacts != wire.MaxMutations {
		t.Errorf("push answered 200 but %d contacts stored", contacts)
	}
	t.Logf("push answered %d; %d contacts stored", status, contacts)
}

func replicaOpen(path string) (*sql.DB, error) {
	return sql.Open("sqlite3", "file:"+path+"?mode=ro")
}
